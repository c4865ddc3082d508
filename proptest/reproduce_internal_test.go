package proptest

import (
	"os"
	"path/filepath"
	"testing"
)

// The go test line names the failing test's package from the module root:
// "./sub/pkg" below it, "." at the root itself (a user's module whose
// scenario lives at its root got "./.").
func TestTestPackageFromModuleRoot(t *testing.T) {
	root := t.TempDir()
	if err := os.WriteFile(filepath.Join(root, "go.mod"), []byte("module example.com/m\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	sub := filepath.Join(root, "sub", "pkg")
	if err := os.MkdirAll(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ dir, want string }{{root, "."}, {sub, "./sub/pkg"}} {
		dir, want := c.dir, c.want
		t.Chdir(dir)
		if got := testPackage(); got != want {
			t.Errorf("testPackage() in %s = %q, want %q", dir, got, want)
		}
	}
}
