package cli

import (
	"os"
	"path/filepath"
	"runtime/debug"
	"testing"

	"github.com/stretchr/testify/assert"
)

// Reproduce lines name the program actually run: go run's temporary
// binary as "go run ./PKG", an installed one found on PATH by its name,
// anything else by absolute path.
func TestCommandName(t *testing.T) {
	bi := &debug.BuildInfo{Path: "github.com/wqsim/wqsim/examples/mydriver/cmd/mydriver", Main: debug.Module{Path: "github.com/wqsim/wqsim"}}
	assert.Equal(t, "go run ./examples/mydriver/cmd/mydriver", commandName("/tmp/go-build123/b001/exe/mydriver", bi))

	bin := t.TempDir()
	exe := filepath.Join(bin, "wqsim")
	assert.NoError(t, os.WriteFile(exe, []byte("#!/bin/sh\n"), 0o755))
	t.Setenv("PATH", bin)
	assert.Equal(t, "wqsim", commandName("wqsim", bi), "found on PATH")
	assert.Equal(t, exe, commandName(exe, bi), "run by path")

	wd, _ := os.Getwd()
	assert.Equal(t, filepath.Join(wd, "mydriver"), commandName("./mydriver", bi), "a relative path becomes absolute")
}

// --version reports the build information: package, module version,
// revision (+dirty) and Go version.
func TestVersionLine(t *testing.T) {
	bi := &debug.BuildInfo{GoVersion: "go1.26.0", Path: "github.com/wqsim/wqsim/cmd/wqsim", Main: debug.Module{Path: "github.com/wqsim/wqsim", Version: "(devel)"},
		Settings: []debug.BuildSetting{{Key: "vcs.revision", Value: "abc123"}, {Key: "vcs.modified", Value: "true"}, {Key: "vcs.time", Value: "2026-12-04T18:00:00Z"}}}
	assert.Equal(t, "github.com/wqsim/wqsim/cmd/wqsim (devel) abc123+dirty 2026-12-04T18:00:00Z go1.26.0", versionLine(bi))
	assert.Contains(t, versionLine(nil), "no build information")
}
