package watch

import (
	"path/filepath"
	"strings"
	"testing"
)

func TestDefaultFilter(t *testing.T) {
	dir := t.TempDir()
	mkdir(t, filepath.Join(dir, "sub"))
	write(t, filepath.Join(dir, "notes.txt"), "x")
	symlink(t, "sub", filepath.Join(dir, "..data"))
	for name, want := range map[string]bool{
		"chat.lua":              true,
		"gone.lua":              true, // does not exist: judged by name
		"msg.proto":             true,
		"sub":                   true,
		"..data":                true,
		"notes.txt":             false,
		"missing":               false,
		".#chat.lua":            false,
		"#chat.lua#":            false,
		"chat.lua~":             false,
		"chat.lua.swp":          false,
		".chat.lua.swx":         false,
		".chat.lua.swo":         false,
		"4913":                  false,
		".chat.lua.tmp":         false,
		"chat.lua.tmp":          false,
		"chat.lua___jb_tmp___":  false,
		".goutputstream-ABC123": false,
	} {
		if got := DefaultFilter(filepath.Join(dir, name)); got != want {
			t.Errorf("DefaultFilter(%q) = %v, want %v", name, got, want)
		}
	}
}

// FuzzDefaultFilter feeds file names as the file system hands them over. For a path that does not
// exist it must accept exactly the Lua and proto names that are not editors' files, and never panic.
func FuzzDefaultFilter(f *testing.F) {
	for _, s := range []string{"chat.lua", ".#chat.lua", "chat.lua~", "4913", ".x.tmp", "a.proto", "", ".", "..", "#", "a/b.lua", "\x00.lua", "ü.lua"} {
		f.Add(s)
	}
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, name string) {
		if strings.ContainsAny(name, "/\x00") || name == "" || name == "." || name == ".." {
			DefaultFilter(name) // any string: no panic
			return
		}
		path := filepath.Join(dir, name) // never created: judged by name alone
		got := DefaultFilter(path)
		if editorTemp(name) && got {
			t.Fatalf("accepted editor file %q", name)
		}
		ext := filepath.Ext(name)
		if want := !editorTemp(name) && (ext == ".lua" || ext == ".proto"); got != want {
			t.Fatalf("DefaultFilter(%q) = %v, want %v", name, got, want)
		}
	})
}
