// Package source lists the files of the gameplay source trees (lua/, proto/) the way deployments
// lay them out: symlinked directories are followed (a release link, a Kubernetes ConfigMap's
// ..data swap), names starting with "." are skipped (editor files, .git, the ConfigMap's own
// timestamped directories, which are reached through their links instead).
package source

import (
	"fmt"
	"io/fs"
	"path"
	"slices"
	"strings"
)

// MaxDepth bounds directory nesting under a root, which also stops symlink loops.
const MaxDepth = 32

// Files returns the slash-separated paths, relative to the root of fsys, of the files whose names
// end with suffix, sorted.
func Files(fsys fs.FS, suffix string) ([]string, error) {
	var out []string
	var walk func(dir string, depth int) error
	walk = func(dir string, depth int) error {
		if depth > MaxDepth {
			return fmt.Errorf("%s: directories nested deeper than %d (a symlink loop?)", dir, MaxDepth)
		}
		entries, err := fs.ReadDir(fsys, dir)
		if err != nil {
			return err
		}
		for _, e := range entries {
			name := e.Name()
			if strings.HasPrefix(name, ".") {
				continue
			}
			p := path.Join(dir, name)
			isDir := e.IsDir()
			if e.Type()&fs.ModeSymlink != 0 {
				if info, err := fs.Stat(fsys, p); err == nil {
					isDir = info.IsDir()
				}
			}
			switch {
			case isDir:
				if err := walk(p, depth+1); err != nil {
					return err
				}
			case strings.HasSuffix(name, suffix):
				out = append(out, p)
			}
		}
		return nil
	}
	if err := walk(".", 0); err != nil {
		return nil, err
	}
	slices.Sort(out)
	return out, nil
}
