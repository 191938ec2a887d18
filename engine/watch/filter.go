package watch

import (
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// DefaultFilter is the default Config.Filter. It accepts *.lua and *.proto files and any existing
// directory or symlink, and rejects editors' temporary, backup and lock files even when their
// names end in .lua. A path that no longer exists counts only by its name. Safe for concurrent use.
func DefaultFilter(path string) bool {
	name := filepath.Base(path)
	if editorTemp(name) {
		return false
	}
	switch filepath.Ext(name) {
	case ".lua", ".proto":
		return true
	}
	fi, err := os.Lstat(path)
	return err == nil && (fi.IsDir() || fi.Mode()&fs.ModeSymlink != 0)
}

// editorTemp reports whether a file name is one that editors write beside the file they save.
func editorTemp(name string) bool {
	switch {
	case name == "4913", // vim's probe for a writable directory
		strings.HasSuffix(name, "~"),                                 // vim and emacs backups
		strings.HasPrefix(name, ".#"),                                // emacs lock files
		strings.HasPrefix(name, "#") && strings.HasSuffix(name, "#"), // emacs auto-saves
		strings.HasPrefix(name, ".") && strings.HasSuffix(name, ".tmp"),
		strings.HasSuffix(name, ".swp"), strings.HasSuffix(name, ".swx"), strings.HasSuffix(name, ".swo"),
		strings.HasSuffix(name, "___jb_tmp___"), strings.HasSuffix(name, "___jb_old___"), // JetBrains
		strings.HasPrefix(name, ".goutputstream-"): // GNOME
		return true
	}
	return false
}
