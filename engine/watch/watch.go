// Package watch tells hot reload that gameplay files changed.
//
// A Watcher watches directory trees (lua/, proto/) with fsnotify, adds directories created later,
// follows symlinks, notices when a configured directory is removed, re-created or re-pointed
// (Kubernetes ConfigMap swaps, release symlinks), and calls back once per burst of changes. It only
// detects changes: the caller recompiles and decides.
//
// Symlinks: a symlinked directory inside a tree is watched through the link, so events name paths
// under the link. A configured directory is re-resolved (os.Stat, compared with os.SameFile)
// whenever an entry of its parent directory, which is watched for this, is created, removed or
// renamed: that covers the directory being removed, re-created, or re-pointed, itself or through a
// sibling such as a ConfigMap's ..data. Config.Recheck re-resolves it periodically as well, for a
// symlink swapped higher up the path or a symlink's target removed. When it resolves to a different
// directory, its whole tree is watched afresh and reported.
package watch

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"sync"
	"time"

	"github.com/fsnotify/fsnotify"
)

// Config configures a Watcher. Zero fields take their defaults.
type Config struct {
	// Dirs are the directories watched recursively. Each must exist when New is called and may be
	// a symlink or contain symlinks, which are followed. They must not overlap.
	Dirs []string
	// Debounce is how long after the last event of a burst the callback fires (default 150ms).
	Debounce time.Duration
	// MaxDelay bounds the wait under a continuous stream of events: a burst is reported at most
	// this long after its first event (default 1s).
	MaxDelay time.Duration
	// Recheck is how often each Dir is re-resolved, as a backstop to the watch on its parent
	// directory: it catches a symlink re-pointed higher up the path (default 2s).
	Recheck time.Duration
	// Filter decides which event paths count; it is called only from the watcher's goroutine and
	// the path may no longer exist (default DefaultFilter). Removing, renaming or replacing a
	// watched directory, and a Dir that changes target, are reported without asking Filter.
	Filter func(path string) bool
	// Logger receives watch failures and overflows (default slog.Default()).
	Logger *slog.Logger
}

const (
	defaultDebounce = 150 * time.Millisecond
	defaultMaxDelay = time.Second
	defaultRecheck  = 2 * time.Second
)

func (c Config) withDefaults() (Config, error) {
	if len(c.Dirs) == 0 {
		return c, errors.New("watch: no directories to watch")
	}
	if c.Debounce < 0 || c.MaxDelay < 0 || c.Recheck < 0 {
		return c, errors.New("watch: Debounce, MaxDelay and Recheck must not be negative")
	}
	if c.Debounce == 0 {
		c.Debounce = defaultDebounce
	}
	if c.MaxDelay == 0 {
		c.MaxDelay = defaultMaxDelay
	}
	if c.Recheck == 0 {
		c.Recheck = defaultRecheck
	}
	if c.Filter == nil {
		c.Filter = DefaultFilter
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c, nil
}

// Watcher watches the configured directories until Close. Its methods are safe for concurrent use.
type Watcher struct {
	cfg      Config
	onChange func(paths []string)
	done     chan struct{} // closed by Close
	exited   chan struct{} // closed when the goroutine returns
	close    sync.Once
	closeErr error

	// Owned by the goroutine once New returns.
	tree  *tree
	burst burst
	timer *time.Timer
}

// New watches cfg.Dirs and starts the watcher's goroutine. It returns an error if a directory does
// not exist or cannot be watched (for example when the inotify watch limit is reached).
//
// onChange is called from the watcher's goroutine, never concurrently with itself, with the sorted,
// de-duplicated paths that changed in one burst, absolute and named as under the configured Dir
// (symlinks unresolved). The slice is the callee's. While onChange runs, events wait in the kernel;
// it must not call Close. A panic in onChange is logged and watching goes on.
func New(cfg Config, onChange func(paths []string)) (*Watcher, error) {
	if onChange == nil {
		return nil, errors.New("watch: nil onChange")
	}
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	roots, err := rootsOf(cfg.Dirs)
	if err != nil {
		return nil, err
	}
	fw, err := fsnotify.NewWatcher()
	if err != nil {
		return nil, fmt.Errorf("watch: %w", err)
	}
	t := newTree(fw, roots)
	if err := t.start(); err != nil {
		fw.Close()
		return nil, err
	}
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	w := &Watcher{
		cfg:      cfg,
		onChange: onChange,
		done:     make(chan struct{}),
		exited:   make(chan struct{}),
		tree:     t,
		burst:    burst{debounce: cfg.Debounce, maxDelay: cfg.MaxDelay},
		timer:    timer,
	}
	go w.loop()
	return w, nil
}

// rootsOf makes dirs absolute and rejects empty, duplicate and nested ones.
func rootsOf(dirs []string) ([]*root, error) {
	roots := make([]*root, 0, len(dirs))
	for _, d := range dirs {
		if d == "" {
			return nil, errors.New("watch: empty directory name in Dirs")
		}
		abs, err := filepath.Abs(d)
		if err != nil {
			return nil, fmt.Errorf("watch: %w", err)
		}
		for _, r := range roots {
			if within(abs, r.path) || within(r.path, abs) {
				return nil, fmt.Errorf("watch: directories %s and %s overlap", filepath.ToSlash(r.path), filepath.ToSlash(abs))
			}
		}
		roots = append(roots, &root{path: abs, parent: filepath.Dir(abs)})
	}
	return roots, nil
}

// within reports whether path is dir or lies below it.
func within(path, dir string) bool {
	return path == dir || strings.HasPrefix(path, strings.TrimSuffix(dir, string(filepath.Separator))+string(filepath.Separator))
}

// Close stops the watcher and waits for its goroutine to return; a burst not yet reported is
// dropped. After Close returns onChange is not called again. Calling it again returns the first
// result. It blocks while onChange runs, so onChange must not call it.
func (w *Watcher) Close() error {
	w.close.Do(func() {
		close(w.done)
		<-w.exited
		w.closeErr = w.tree.fw.Close()
	})
	return w.closeErr
}

func (w *Watcher) loop() {
	defer close(w.exited)
	tick := time.NewTicker(w.cfg.Recheck)
	defer tick.Stop()
	for {
		select {
		case <-w.done:
			return
		case ev, ok := <-w.tree.fw.Events:
			if !ok {
				return
			}
			w.handle(ev)
		case err, ok := <-w.tree.fw.Errors:
			if !ok {
				return
			}
			w.fail(err)
		case <-tick.C:
			for _, r := range w.tree.roots {
				w.recheck(r, false)
			}
		case <-w.timer.C:
			paths := w.burst.take()
			select {
			case <-w.done:
				return
			default:
			}
			if len(paths) > 0 {
				w.fire(paths)
			}
		}
	}
}

// handle turns one fsnotify event into watches added or dropped and paths reported.
func (w *Watcher) handle(ev fsnotify.Event) {
	structural := ev.Has(fsnotify.Create) || ev.Has(fsnotify.Remove) || ev.Has(fsnotify.Rename)
	if !structural && !ev.Has(fsnotify.Write) {
		return // a Chmod alone changes no code
	}
	dir := filepath.Dir(ev.Name)
	if structural {
		for _, r := range w.tree.roots {
			if r.parent == dir {
				w.recheck(r, false)
			}
		}
	}
	if _, ok := w.tree.dirs[dir]; !ok {
		return // an entry beside a Dir, in the parent watched for it
	}
	if structural {
		if reals := w.tree.drop(ev.Name); len(reals) > 0 {
			w.changed(ev.Name)
			w.adoptAliases(ev.Name, reals)
		}
	}
	if ev.Has(fsnotify.Create) {
		if fi, err := os.Stat(ev.Name); err == nil && fi.IsDir() {
			w.add(ev.Name, w.offer)
		}
	}
	w.offer(ev.Name)
}

// recheck re-resolves r; if it names another directory now (or none), or force is set, r's tree
// is watched afresh and everything in it reported.
func (w *Watcher) recheck(r *root, force bool) {
	if !w.tree.moved(r) && !force {
		return
	}
	w.cfg.Logger.Info("watch: directory re-resolved", "dir", r.path, "exists", r.info != nil, "rescan", force)
	w.tree.drop(r.path)
	w.changed(r.path)
	if r.info == nil {
		return
	}
	if err := w.tree.fw.Add(r.parent); err != nil {
		w.cfg.Logger.Warn("watch: cannot watch parent directory", "dir", r.parent, "err", err)
	}
	w.add(r.path, w.offer)
}

// adoptAliases re-walks the Dir holding path when a dropped directory still exists: another
// symlink may name it, and it was watched only under path. Nothing changed in it, so nothing is
// reported.
func (w *Watcher) adoptAliases(path string, reals []string) {
	for _, real := range reals {
		if fi, err := os.Stat(real); err == nil && fi.IsDir() {
			if r := w.tree.rootOf(path); r != nil && r.info != nil {
				w.add(r.path, nil)
			}
			return
		}
	}
}

// add watches dir's tree and passes every entry in it to found, if not nil: a new directory may
// have filled before its watch began.
func (w *Watcher) add(dir string, found func(path string)) {
	if err := w.tree.walk(dir, found); err != nil {
		w.cfg.Logger.Warn("watch: cannot watch directory", "dir", dir, "err", err)
	}
}

func (w *Watcher) fail(err error) {
	if errors.Is(err, fsnotify.ErrEventOverflow) {
		w.cfg.Logger.Warn("watch: events lost, rescanning", "err", err)
		for _, r := range w.tree.roots {
			w.recheck(r, true)
		}
		return
	}
	w.cfg.Logger.Warn("watch: fsnotify error", "err", err)
}

// offer reports path if the filter accepts it.
func (w *Watcher) offer(path string) {
	if w.cfg.Filter(path) {
		w.changed(path)
	}
}

// changed adds path to the current burst and moves the timer to the burst's deadline.
func (w *Watcher) changed(path string) {
	w.timer.Reset(w.burst.add(path, time.Now()))
}

func (w *Watcher) fire(paths []string) {
	defer func() {
		if p := recover(); p != nil {
			w.cfg.Logger.Error("watch: onChange panicked", "panic", p, "stack", string(debug.Stack()))
		}
	}()
	w.onChange(paths)
}
