package watch

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"

	"github.com/fsnotify/fsnotify"
)

// tree tracks which directories are under watch. It is not safe for concurrent use: New uses it,
// then only the watcher's goroutine.
//
// inotify keeps one watch per directory, so a directory reachable by several paths (a symlink to
// a watched directory, a symlink cycle) is watched once, under the first path met, and events
// name it by that path.
type tree struct {
	fw    *fsnotify.Watcher
	dirs  map[string]string // watched directory, as events name it → its real path
	reals map[string]string // real path → the watched directory that names it
	roots []*root
}

// root is one configured directory. Its parent directory is watched too, so that removing,
// re-creating or re-pointing the root shows up as an event on an entry of the parent.
type root struct {
	path   string      // absolute, symlinks unresolved
	parent string      // filepath.Dir(path)
	info   os.FileInfo // the directory path resolved to at the last check; nil while missing
}

func newTree(fw *fsnotify.Watcher, roots []*root) *tree {
	return &tree{fw: fw, dirs: map[string]string{}, reals: map[string]string{}, roots: roots}
}

// start watches every root, which must exist, and its parent.
func (t *tree) start() error {
	for _, r := range t.roots {
		fi, err := os.Stat(r.path)
		if err != nil {
			return fmt.Errorf("watch: %w", err)
		}
		if !fi.IsDir() {
			return fmt.Errorf("watch: %s is not a directory", filepath.ToSlash(r.path))
		}
		r.info = fi
		if err := t.fw.Add(r.parent); err != nil {
			return fmt.Errorf("watch: %w", watchErr(r.parent, err))
		}
		if err := t.walk(r.path, nil); err != nil {
			return fmt.Errorf("watch: %w", err)
		}
	}
	return nil
}

// moved re-resolves r and reports whether it names a different directory than at the last check,
// or none where it named one, or one where it named none.
func (t *tree) moved(r *root) bool {
	fi, err := os.Stat(r.path)
	if err != nil || !fi.IsDir() {
		fi = nil
	}
	if fi == nil && r.info == nil || fi != nil && r.info != nil && os.SameFile(fi, r.info) {
		return false
	}
	r.info = fi
	return true
}

// rootOf returns the root holding path, or nil.
func (t *tree) rootOf(path string) *root {
	for _, r := range t.roots {
		if within(path, r.path) {
			return r
		}
	}
	return nil
}

// walk watches dir and every directory below it, following symlinks, and skips a directory
// already watched under another path. found, if not nil, is called with each entry met, after
// the watch on its directory is in place: an entry created during the walk is reported by an
// event, by found, or both. Entries that vanish during the walk are skipped; walk stops at the
// first other error.
func (t *tree) walk(dir string, found func(path string)) error {
	real, err := filepath.EvalSymlinks(dir)
	if err != nil {
		return ignoreGone(err)
	}
	if owner, ok := t.reals[real]; ok && owner != dir {
		return nil
	}
	if _, ok := t.dirs[dir]; !ok {
		if err := t.fw.Add(dir); err != nil {
			return ignoreGone(watchErr(dir, err))
		}
		t.dirs[dir] = real
		t.reals[real] = dir
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return ignoreGone(err)
	}
	for _, e := range entries {
		p := filepath.Join(dir, e.Name())
		if found != nil {
			found(p)
		}
		if isDir(p, e) {
			if err := t.walk(p, found); err != nil {
				return err
			}
		}
	}
	return nil
}

// drop stops watching dir and every watched directory below it. It returns the real paths of the
// directories dropped, none if dir was not watched.
func (t *tree) drop(dir string) []string {
	var reals []string
	for d, real := range t.dirs {
		if !within(d, dir) {
			continue
		}
		// The kernel may have dropped the watch already (directory deleted): nothing to undo.
		_ = t.fw.Remove(d)
		delete(t.dirs, d)
		delete(t.reals, real)
		reals = append(reals, real)
	}
	return reals
}

// isDir reports whether e, found at p, is a directory or a symlink to one.
func isDir(p string, e fs.DirEntry) bool {
	if e.IsDir() {
		return true
	}
	if e.Type()&fs.ModeSymlink == 0 {
		return false
	}
	fi, err := os.Stat(p)
	return err == nil && fi.IsDir()
}

func ignoreGone(err error) error {
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	return err
}

func watchErr(dir string, err error) error {
	if errors.Is(err, syscall.ENOSPC) {
		return fmt.Errorf("%s: %w (inotify watch limit reached: raise fs.inotify.max_user_watches)", filepath.ToSlash(dir), err)
	}
	return fmt.Errorf("%s: %w", filepath.ToSlash(dir), err)
}
