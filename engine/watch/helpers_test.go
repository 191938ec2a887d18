package watch

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

// waitTimeout is how long a test waits for a callback before failing.
const waitTimeout = 5 * time.Second

// recorder receives a Watcher's callbacks.
type recorder struct {
	calls chan []string
}

// start runs a Watcher on dirs with a short debounce; cfg's other fields are kept.
func start(t *testing.T, cfg Config, dirs ...string) (*Watcher, *recorder) {
	t.Helper()
	rec := &recorder{calls: make(chan []string, 256)}
	cfg.Dirs = dirs
	if cfg.Debounce == 0 {
		cfg.Debounce = 30 * time.Millisecond
	}
	w, err := New(cfg, func(paths []string) { rec.calls <- paths })
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { w.Close() })
	return w, rec
}

// waitFor takes callbacks until every path in want has been reported and returns the callbacks
// taken. It fails the test if that does not happen within waitTimeout.
func (r *recorder) waitFor(t *testing.T, want ...string) [][]string {
	t.Helper()
	var calls [][]string
	missing := slices.Clone(want)
	deadline := time.After(waitTimeout)
	for len(missing) > 0 {
		select {
		case paths := <-r.calls:
			if !slices.IsSorted(paths) || len(slices.Compact(slices.Clone(paths))) != len(paths) {
				t.Fatalf("callback paths not sorted and unique: %q", paths)
			}
			calls = append(calls, paths)
			missing = slices.DeleteFunc(missing, func(p string) bool { return slices.Contains(paths, p) })
		case <-deadline:
			t.Fatalf("no callback reported %q; got %q", missing, calls)
		}
	}
	return calls
}

func flatten(calls [][]string) []string {
	var all []string
	for _, c := range calls {
		all = append(all, c...)
	}
	return all
}

func write(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func mkdir(t *testing.T, path string) {
	t.Helper()
	if err := os.MkdirAll(path, 0o755); err != nil {
		t.Fatal(err)
	}
}

func symlink(t *testing.T, target, link string) {
	t.Helper()
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
}

func rename(t *testing.T, from, to string) {
	t.Helper()
	if err := os.Rename(from, to); err != nil {
		t.Fatal(err)
	}
}

func removeAll(t *testing.T, path string) {
	t.Helper()
	if err := os.RemoveAll(path); err != nil {
		t.Fatal(err)
	}
}

// tempDir is t.TempDir with a name joined on, created.
func tempDir(t *testing.T, elem ...string) string {
	t.Helper()
	d := filepath.Join(append([]string{t.TempDir()}, elem...)...)
	mkdir(t, d)
	return d
}
