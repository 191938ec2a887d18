package watch

import (
	"maps"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// configMap lays out dir the way the kubelet does: a timestamped directory, ..data pointing to it,
// and each file a symlink through ..data. update swaps in a new version the same way.
type configMap struct {
	t       *testing.T
	dir     string
	current string
}

func newConfigMap(t *testing.T, dir string) *configMap {
	c := &configMap{t: t, dir: dir}
	c.current = c.version("..2026_11_26_00", "v0")
	symlink(t, c.current, filepath.Join(dir, "..data"))
	symlink(t, filepath.Join("..data", "chat.lua"), filepath.Join(dir, "chat.lua"))
	return c
}

func (c *configMap) version(name, content string) string {
	mkdir(c.t, filepath.Join(c.dir, name))
	write(c.t, filepath.Join(c.dir, name, "chat.lua"), content)
	return name
}

// update swaps in a new version and returns its directory.
func (c *configMap) update(name, content string) string {
	old := c.current
	c.current = c.version(name, content)
	symlink(c.t, c.current, filepath.Join(c.dir, "..data_tmp"))
	rename(c.t, filepath.Join(c.dir, "..data_tmp"), filepath.Join(c.dir, "..data"))
	removeAll(c.t, filepath.Join(c.dir, old))
	return filepath.Join(c.dir, c.current)
}

func TestConfigMapSwap(t *testing.T) {
	dir := tempDir(t, "lua")
	cm := newConfigMap(t, dir)
	_, rec := start(t, Config{}, dir)

	for _, name := range []string{"..2026_11_26_01", "..2026_11_26_02"} {
		version := cm.update(name, "v"+name)
		rec.waitFor(t, filepath.Join(dir, "..data"), filepath.Join(version, "chat.lua"))

		// The new version's directory is watched.
		write(t, filepath.Join(dir, "..data", "chat.lua"), "edited")
		rec.waitFor(t, filepath.Join(version, "chat.lua"))
	}
}

func TestConfigMapRootIsADataSymlink(t *testing.T) {
	// The configured directory is itself a path through ..data, as when a ConfigMap is mounted
	// higher up and lua/ is one of its subdirectories.
	mount := t.TempDir()
	mkdir(t, filepath.Join(mount, "..2026_11_26_00", "lua"))
	write(t, filepath.Join(mount, "..2026_11_26_00", "lua", "a.lua"), "v0")
	symlink(t, "..2026_11_26_00", filepath.Join(mount, "..data"))
	symlink(t, filepath.Join("..data", "lua"), filepath.Join(mount, "lua"))
	root := filepath.Join(mount, "lua")
	_, rec := start(t, Config{Recheck: time.Hour}, root)

	mkdir(t, filepath.Join(mount, "..2026_11_26_01", "lua"))
	write(t, filepath.Join(mount, "..2026_11_26_01", "lua", "a.lua"), "v1")
	symlink(t, "..2026_11_26_01", filepath.Join(mount, "..data_tmp"))
	rename(t, filepath.Join(mount, "..data_tmp"), filepath.Join(mount, "..data"))
	removeAll(t, filepath.Join(mount, "..2026_11_26_00"))
	a := filepath.Join(root, "a.lua")
	rec.waitFor(t, root, a)

	write(t, a, "v1 edited")
	rec.waitFor(t, a)
}

func TestRootSymlinkRepointed(t *testing.T) {
	base := t.TempDir()
	mkdir(t, filepath.Join(base, "v1"))
	write(t, filepath.Join(base, "v1", "a.lua"), "v1")
	root := filepath.Join(base, "lua")
	symlink(t, "v1", root)
	// Recheck is off in practice: the watch on base must notice the swap.
	_, rec := start(t, Config{Recheck: time.Hour}, root)

	mkdir(t, filepath.Join(base, "v2"))
	write(t, filepath.Join(base, "v2", "a.lua"), "v2")
	symlink(t, "v2", root+".tmp")
	rename(t, root+".tmp", root)
	rec.waitFor(t, root, filepath.Join(root, "a.lua"))

	// v2 is watched now and v1 no longer is.
	write(t, filepath.Join(base, "v1", "old.lua"), "x")
	b := filepath.Join(root, "b.lua")
	write(t, filepath.Join(base, "v2", "b.lua"), "b")
	calls := rec.waitFor(t, b)
	for _, p := range flatten(calls) {
		if strings.HasSuffix(p, "old.lua") {
			t.Fatalf("the old target is still watched: %q", p)
		}
	}
}

func TestAncestorSymlinkRepointed(t *testing.T) {
	base := t.TempDir()
	for _, r := range []string{"r1", "r2"} {
		mkdir(t, filepath.Join(base, "releases", r, "lua"))
		write(t, filepath.Join(base, "releases", r, "lua", "a.lua"), r)
	}
	current := filepath.Join(base, "current")
	symlink(t, filepath.Join("releases", "r1"), current)
	root := filepath.Join(current, "lua")
	_, rec := start(t, Config{Recheck: 20 * time.Millisecond}, root)

	// The parent watched for root is current/, inside r1: only the recheck sees this.
	symlink(t, filepath.Join("releases", "r2"), current+".tmp")
	rename(t, current+".tmp", current)
	rec.waitFor(t, root, filepath.Join(root, "a.lua"))

	b := filepath.Join(root, "b.lua")
	write(t, filepath.Join(base, "releases", "r2", "lua", "b.lua"), "b")
	rec.waitFor(t, b)
}

func TestSymlinkedDirectoryOutsideTheTree(t *testing.T) {
	dir := tempDir(t, "lua")
	outside := tempDir(t, "common")
	symlink(t, outside, filepath.Join(dir, "shared"))
	_, rec := start(t, Config{}, dir)

	write(t, filepath.Join(outside, "x.lua"), "x")
	rec.waitFor(t, filepath.Join(dir, "shared", "x.lua"))

	// A symlink to a directory added later is followed too.
	other := tempDir(t, "other")
	write(t, filepath.Join(other, "y.lua"), "y")
	link := filepath.Join(dir, "other")
	symlink(t, other, link)
	rec.waitFor(t, link, filepath.Join(link, "y.lua"))
	write(t, filepath.Join(other, "z.lua"), "z")
	rec.waitFor(t, filepath.Join(link, "z.lua"))
}

func TestSymlinkCycle(t *testing.T) {
	dir := tempDir(t, "lua")
	sub := filepath.Join(dir, "sub")
	mkdir(t, sub)
	symlink(t, ".", filepath.Join(dir, "self"))
	symlink(t, "..", filepath.Join(sub, "up"))
	w, rec := start(t, Config{}, dir)

	x := filepath.Join(sub, "x.lua")
	write(t, x, "x")
	calls := rec.waitFor(t, x)
	for _, p := range flatten(calls) {
		if strings.Contains(p, "self") || strings.Contains(p, "up") {
			t.Errorf("reported through a cycle: %q", p)
		}
	}
	w.Close()
	if got := slices.Sorted(maps.Keys(w.tree.dirs)); !slices.Equal(got, []string{dir, sub}) {
		t.Errorf("watched %q, want %q", got, []string{dir, sub})
	}
}

func TestAliasAdoptedWhenFirstPathRemoved(t *testing.T) {
	dir := tempDir(t, "lua")
	outside := tempDir(t, "common")
	symlink(t, outside, filepath.Join(dir, "s1"))
	symlink(t, outside, filepath.Join(dir, "s2"))
	_, rec := start(t, Config{}, dir)

	// outside is watched once, as s1; removing s1 must move the watch to s2.
	s1 := filepath.Join(dir, "s1")
	removeAll(t, s1)
	rec.waitFor(t, s1)
	write(t, filepath.Join(outside, "y.lua"), "y")
	rec.waitFor(t, filepath.Join(dir, "s2", "y.lua"))
}
