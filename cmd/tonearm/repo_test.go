package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// maxTrackedBytes is the largest file the repository may track (the rule
// is that no built binary or file over 1 MB is ever tracked).
const maxTrackedBytes = 1 << 20

// TestRepositoryTracksNoBuiltFiles fails when git tracks a file over 1 MB
// or a built program (an ELF, Mach-O or PE executable, or a Go test
// binary): build outputs belong in bin/ and .gitignore.
func TestRepositoryTracksNoBuiltFiles(t *testing.T) {
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("git", "-C", root, "ls-files", "-z").Output()
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("git ls-files: %v (CI runs on a git clone)", err)
		}
		t.Skipf("not a git checkout: %v", err)
	}
	magics := map[string][]byte{
		"ELF executable":    {0x7f, 'E', 'L', 'F'},
		"Mach-O executable": {0xcf, 0xfa, 0xed, 0xfe},
		"Windows program":   {'M', 'Z'},
	}
	for _, name := range strings.Split(strings.TrimRight(string(out), "\x00"), "\x00") {
		if name == "" {
			continue
		}
		path := filepath.Join(root, name)
		info, err := os.Lstat(path)
		if err != nil || !info.Mode().IsRegular() {
			continue // deleted in the work tree, or a symlink
		}
		if info.Size() > maxTrackedBytes {
			t.Errorf("%s is tracked and is %d bytes (over 1 MB): build outputs and data stay out of git", name, info.Size())
		}
		head := make([]byte, 4)
		f, err := os.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		n, _ := f.Read(head)
		f.Close()
		for kind, magic := range magics {
			if n >= len(magic) && bytes.Equal(head[:len(magic)], magic) {
				t.Errorf("%s is tracked and is a built %s: remove it and list it in .gitignore", name, kind)
			}
		}
	}
}
