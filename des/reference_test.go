package des_test

// Reference hygiene: every § citation in the module names a section of
// docs/REFERENCE.md, the reference names only files and tests that exist,
// and nothing in the repository points at documents outside it.

import (
	"bytes"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const referencePath = "docs/REFERENCE.md"

var (
	// citationRe matches "§4.3", "§ 2.7A", "§6" and the end of a range
	// such as "§3.2–3.3" (group 2).
	citationRe = regexp.MustCompile(`§ ?([0-9]+(?:\.[0-9]+[A-Z]?)?)(?:–§?([0-9]+\.[0-9]+[A-Z]?))?`)
	// headingRe defines a section: a heading "## §4" / "### §4.3", or a
	// bold list entry "**§2.7A" / "**§6.1".
	headingRe = regexp.MustCompile(`(?m)^(?:#{2,4} |\s*(?:[0-9]+\. |- )?\*\*)§([0-9]+(?:\.[0-9]+[A-Z]?)?)`)
	// codeRefRe is a backticked repository path or test name in the reference.
	codeRefRe  = regexp.MustCompile("`((?:[a-z0-9_]+/)+[a-z0-9_]+\\.(?:go|md)|(?:Test|Example|Fuzz|Benchmark)[A-Za-z0-9_]*)`")
	testFuncRe = regexp.MustCompile(`(?m)^func ((?:Test|Example|Fuzz|Benchmark)[A-Za-z0-9_]*)\(`)
)

// outsidePointers are strings no file of the repository may contain: the
// background notes a clone does not have. Built by concatenation so that
// this file does not match itself.
var outsidePointers = []string{".." + "/shared", "/work" + "/shared", "SEMAN" + "TICS"}

// referenceSections returns the sections docs/REFERENCE.md defines.
func referenceSections(text string) map[string]bool {
	secs := map[string]bool{}
	for _, m := range headingRe.FindAllStringSubmatch(text, -1) {
		secs[m[1]] = true
	}
	return secs
}

// repoTextFiles returns every text file under root (relative, slash
// separated), skipping VCS directories and binary files.
func repoTextFiles(t *testing.T, root string) map[string][]byte {
	t.Helper()
	files := map[string][]byte{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if p != root && strings.HasPrefix(d.Name(), ".") {
				return filepath.SkipDir
			}
			return nil
		}
		if !d.Type().IsRegular() {
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if bytes.IndexByte(b, 0) >= 0 {
			return nil // binary (images, fuzz corpora of bytes)
		}
		rel, err := filepath.Rel(root, p)
		if err != nil {
			return err
		}
		files[filepath.ToSlash(rel)] = b
		return nil
	})
	require.NoError(t, err)
	return files
}

// missingCitations returns "file:line §x" for every citation in text that
// names a section outside secs.
func missingCitations(name, text string, secs map[string]bool) []string {
	var bad []string
	for i, line := range strings.Split(text, "\n") {
		for _, m := range citationRe.FindAllStringSubmatch(line, -1) {
			for _, s := range m[1:] {
				if s != "" && !secs[s] {
					bad = append(bad, name+":"+strconv.Itoa(i+1)+" §"+s)
				}
			}
		}
	}
	return bad
}

// TestReferenceCitations fails if a § citation anywhere in the module's
// Go sources or Markdown names a section docs/REFERENCE.md lacks.
func TestReferenceCitations(t *testing.T) {
	root := moduleRoot(t)
	files := repoTextFiles(t, root)
	ref, ok := files[referencePath]
	require.True(t, ok, "%s is missing", referencePath)
	secs := referenceSections(string(ref))
	for _, want := range []string{"0", "1.8", "2.7A", "4.7", "5.8", "6.20", "9"} {
		require.True(t, secs[want], "the reference parser lost §%s", want)
	}
	var bad []string
	for _, name := range slices.Sorted(maps.Keys(files)) {
		if strings.HasSuffix(name, ".go") || strings.HasSuffix(name, ".md") {
			bad = append(bad, missingCitations(name, string(files[name]), secs)...)
		}
	}
	assert.Empty(t, bad, "citations of sections %s does not have", referencePath)
}

// TestReferenceNamesRealCode fails if docs/REFERENCE.md names a file or a
// test function that does not exist, so the reference cannot drift from
// the code it points at.
func TestReferenceNamesRealCode(t *testing.T) {
	root := moduleRoot(t)
	files := repoTextFiles(t, root)
	tests := map[string]bool{}
	for name, b := range files {
		if strings.HasSuffix(name, "_test.go") {
			for _, m := range testFuncRe.FindAllStringSubmatch(string(b), -1) {
				tests[m[1]] = true
			}
		}
	}
	var bad []string
	for _, m := range codeRefRe.FindAllStringSubmatch(string(files[referencePath]), -1) {
		ref := m[1]
		switch {
		case strings.Contains(ref, "/"):
			if _, ok := files[ref]; !ok {
				bad = append(bad, "file "+ref)
			}
		case !tests[ref]:
			bad = append(bad, "test "+ref)
		}
	}
	assert.Empty(t, bad, "%s names files or tests that do not exist", referencePath)
}

// TestNothingPointsOutsideTheRepository fails if any file refers to the
// background notes outside the repository instead of docs/REFERENCE.md.
func TestNothingPointsOutsideTheRepository(t *testing.T) {
	files := repoTextFiles(t, moduleRoot(t))
	var bad []string
	for _, name := range slices.Sorted(maps.Keys(files)) {
		for i, line := range strings.Split(string(files[name]), "\n") {
			for _, p := range outsidePointers {
				if strings.Contains(line, p) {
					bad = append(bad, name+":"+strconv.Itoa(i+1)+": "+strings.TrimSpace(line))
				}
			}
		}
	}
	assert.Empty(t, bad, "cite docs/REFERENCE.md (REFERENCE §x) instead of documents outside the repository")
}

// TestReferenceChecker runs the checks on planted mistakes, so a parser
// that stopped matching would not pass vacuously.
func TestReferenceChecker(t *testing.T) {
	secs := referenceSections("## §1 A\n### §1.2 B\n- **§2.7A C**\n5. **§6.5 D**\n")
	assert.Equal(t, map[string]bool{"1": true, "1.2": true, "2.7A": true, "6.5": true}, secs)
	got := missingCitations("x.go", "// REFERENCE §1.2, §2.7A\n// see §1.3 and §1.2–1.4\n", secs)
	assert.Equal(t, []string{"x.go:2 §1.3", "x.go:2 §1.4"}, got)
	assert.Len(t, codeRefRe.FindAllString("`kernel/irp.go` `TestBugChecks` `Kernel.IoCancelIrp`", -1), 2)
}
