package source

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
)

func TestFilesFollowsLinksAndSkipsDotNames(t *testing.T) {
	root := t.TempDir()
	mk := func(p, content string) {
		full := filepath.Join(root, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	link := func(target, name string) {
		if err := os.Symlink(target, filepath.Join(root, name)); err != nil {
			t.Fatal(err)
		}
	}
	// A Kubernetes ConfigMap: ..2026_01/ holds the files, ..data links to it, entries link through it.
	mk("..2026_01/lobby/chat.lua", "")
	mk("..2026_01/shared/util.lua", "")
	link("..2026_01", "..data")
	link("..data/lobby", "lobby")
	link("..data/shared", "shared")
	mk("game/arena.lua", "")
	mk("game/.#arena.lua", "")
	mk("game/notes.txt", "")
	mk(".git/x.lua", "")
	link(".", "loop") // a loop: stopped by the depth bound
	_, err := Files(os.DirFS(root), ".lua")
	if err == nil {
		t.Fatal("a symlink loop was walked without error")
	}
	if err := os.Remove(filepath.Join(root, "loop")); err != nil {
		t.Fatal(err)
	}
	got, err := Files(os.DirFS(root), ".lua")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"game/arena.lua", "lobby/chat.lua", "shared/util.lua"}
	if !slices.Equal(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
}
