package watch

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fsnotify/fsnotify"
)

func TestWriteCreateRemoveRename(t *testing.T) {
	dir := tempDir(t, "lua")
	chat := filepath.Join(dir, "chat.lua")
	write(t, chat, "v1")
	_, rec := start(t, Config{}, dir)

	write(t, chat, "v2")
	rec.waitFor(t, chat)

	room := filepath.Join(dir, "room.lua")
	write(t, room, "v1")
	rec.waitFor(t, room)

	if err := os.Remove(room); err != nil {
		t.Fatal(err)
	}
	rec.waitFor(t, room)

	lobby := filepath.Join(dir, "lobby.lua")
	rename(t, chat, lobby)
	rec.waitFor(t, chat, lobby)
}

func TestRenameOverSave(t *testing.T) {
	dir := tempDir(t, "lua")
	chat := filepath.Join(dir, "chat.lua")
	write(t, chat, "v1")
	_, rec := start(t, Config{}, dir)

	write(t, chat+".tmp", "v2")
	rename(t, chat+".tmp", chat)
	calls := rec.waitFor(t, chat)
	if all := flatten(calls); slices.Contains(all, chat+".tmp") {
		t.Errorf("temp file reported: %q", all)
	}

	// vim with backupcopy=no: probe file, file → file~, write a new file.
	write(t, filepath.Join(dir, "4913"), "")
	os.Remove(filepath.Join(dir, "4913"))
	rename(t, chat, chat+"~")
	write(t, chat, "v3")
	calls = rec.waitFor(t, chat)
	for _, p := range flatten(calls) {
		if p != chat {
			t.Errorf("unexpected path reported: %q", p)
		}
	}
}

func TestNewSubdirectory(t *testing.T) {
	dir := tempDir(t, "lua")
	_, rec := start(t, Config{}, dir)

	// mkdir -p and an immediate write: the file may exist before the new watches do.
	sub := filepath.Join(dir, "a", "b")
	mkdir(t, sub)
	x := filepath.Join(sub, "x.lua")
	write(t, x, "x")
	rec.waitFor(t, filepath.Join(dir, "a"), x)

	// The new directory is watched now.
	y := filepath.Join(sub, "y.lua")
	write(t, y, "y")
	rec.waitFor(t, y)
}

func TestDeepTreeCreatedAtOnce(t *testing.T) {
	dir := tempDir(t, "lua")
	_, rec := start(t, Config{}, dir)

	var want []string
	for i := range 4 {
		d := filepath.Join(dir, fmt.Sprintf("t%d", i))
		for depth := range 5 {
			d = filepath.Join(d, fmt.Sprintf("d%d", depth))
			mkdir(t, d)
			p := filepath.Join(d, "m.lua")
			write(t, p, "x")
			want = append(want, p)
		}
	}
	rec.waitFor(t, want...)
}

func TestDirectoryMovedInIsScanned(t *testing.T) {
	dir := tempDir(t, "lua")
	outside := tempDir(t, "staging")
	mkdir(t, filepath.Join(outside, "deep"))
	write(t, filepath.Join(outside, "a.lua"), "a")
	write(t, filepath.Join(outside, "deep", "b.proto"), "b")
	_, rec := start(t, Config{}, dir)

	// One event only (the move); the files inside are found by the scan.
	moved := filepath.Join(dir, "pkg")
	rename(t, outside, moved)
	rec.waitFor(t, moved, filepath.Join(moved, "a.lua"), filepath.Join(moved, "deep", "b.proto"))

	c := filepath.Join(moved, "deep", "c.lua")
	write(t, c, "c")
	rec.waitFor(t, c)
}

func TestBurstIsOneCallback(t *testing.T) {
	dir := tempDir(t, "lua")
	// A long debounce so that 50 writes land in one window even on a loaded machine.
	_, rec := start(t, Config{Debounce: time.Second, MaxDelay: time.Minute}, dir)

	var want []string
	for i := range 50 {
		p := filepath.Join(dir, fmt.Sprintf("f%02d.lua", i))
		write(t, p, "x")
		want = append(want, p)
	}
	calls := rec.waitFor(t, want...)
	if len(calls) != 1 {
		t.Fatalf("50 writes gave %d callbacks, want 1", len(calls))
	}
	if len(calls[0]) != 50 {
		t.Fatalf("callback has %d paths, want 50", len(calls[0]))
	}
}

func TestMaxDelayBoundsTheWait(t *testing.T) {
	dir := tempDir(t, "lua")
	// The debounce alone would wait an hour.
	_, rec := start(t, Config{Debounce: time.Hour, MaxDelay: 100 * time.Millisecond}, dir)
	p := filepath.Join(dir, "a.lua")
	write(t, p, "a")
	rec.waitFor(t, p)
}

func TestFilteredFilesAloneDoNotFire(t *testing.T) {
	dir := tempDir(t, "lua")
	_, rec := start(t, Config{}, dir)

	for _, name := range []string{"notes.txt", ".#chat.lua", "chat.lua.swp", "chat.lua~", "4913", ".chat.lua.tmp", "#chat.lua#"} {
		write(t, filepath.Join(dir, name), "x")
	}
	// Events arrive in order, so once the fence is reported the files above have been judged.
	fence := filepath.Join(dir, "fence.lua")
	write(t, fence, "x")
	calls := rec.waitFor(t, fence)
	if all := flatten(calls); !slices.Equal(all, []string{fence}) {
		t.Fatalf("reported %q, want only the fence", all)
	}
}

func TestChmodAloneDoesNotFire(t *testing.T) {
	dir := tempDir(t, "lua")
	a := filepath.Join(dir, "a.lua")
	write(t, a, "a")
	_, rec := start(t, Config{}, dir)

	if err := os.Chmod(a, 0o600); err != nil {
		t.Fatal(err)
	}
	fence := filepath.Join(dir, "fence.lua")
	write(t, fence, "x")
	calls := rec.waitFor(t, fence)
	if all := flatten(calls); !slices.Equal(all, []string{fence}) {
		t.Fatalf("reported %q, want only the fence", all)
	}
}

func TestCustomFilter(t *testing.T) {
	dir := tempDir(t, "proto")
	only := func(p string) bool { return strings.HasSuffix(p, ".proto") }
	_, rec := start(t, Config{Filter: only}, dir)

	write(t, filepath.Join(dir, "a.lua"), "x")
	fence := filepath.Join(dir, "a.proto")
	write(t, fence, "x")
	calls := rec.waitFor(t, fence)
	if all := flatten(calls); !slices.Equal(all, []string{fence}) {
		t.Fatalf("reported %q, want only %q", all, fence)
	}
}

func TestRootRemovedAndRecreated(t *testing.T) {
	dir := tempDir(t, "lua")
	write(t, filepath.Join(dir, "a.lua"), "a")
	// Recheck is off in practice: the watch on the parent must see it.
	_, rec := start(t, Config{Recheck: time.Hour}, dir)

	removeAll(t, dir)
	rec.waitFor(t, dir)

	mkdir(t, dir)
	a := filepath.Join(dir, "a.lua")
	write(t, a, "a2")
	rec.waitFor(t, dir, a)

	// The new directory is watched, not just scanned.
	write(t, a, "a3")
	rec.waitFor(t, a)
}

func TestSubdirectoryRemovedAndRecreated(t *testing.T) {
	dir := tempDir(t, "lua")
	sub := filepath.Join(dir, "sub")
	mkdir(t, sub)
	_, rec := start(t, Config{}, dir)

	removeAll(t, sub)
	rec.waitFor(t, sub)
	mkdir(t, sub)
	rec.waitFor(t, sub)

	a := filepath.Join(sub, "a.lua")
	write(t, a, "a")
	rec.waitFor(t, a)
}

func TestSubdirectoryMovedAway(t *testing.T) {
	dir := tempDir(t, "lua")
	sub := filepath.Join(dir, "sub")
	mkdir(t, sub)
	write(t, filepath.Join(sub, "a.lua"), "a")
	only := func(p string) bool { return strings.HasSuffix(p, ".lua") }
	_, rec := start(t, Config{Filter: only}, dir)

	// Code left the tree with a single event on a directory: reported despite the filter.
	rename(t, sub, filepath.Join(t.TempDir(), "elsewhere"))
	rec.waitFor(t, sub)
}

func TestClose(t *testing.T) {
	dir := tempDir(t, "lua")
	var calls atomic.Int32
	w, err := New(Config{Dirs: []string{dir}, Debounce: time.Hour, MaxDelay: time.Hour}, func([]string) { calls.Add(1) })
	if err != nil {
		t.Fatal(err)
	}
	write(t, filepath.Join(dir, "a.lua"), "a")
	if err := w.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	select {
	case <-w.exited:
	default:
		t.Fatal("goroutine still running after Close returned")
	}
	if err := w.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	write(t, filepath.Join(dir, "b.lua"), "b")
	if n := calls.Load(); n != 0 {
		t.Fatalf("%d callbacks, want 0", n)
	}
}

func TestCloseWaitsForCallback(t *testing.T) {
	dir := tempDir(t, "lua")
	entered := make(chan struct{}, 1)
	release := make(chan struct{})
	w, err := New(Config{Dirs: []string{dir}, Debounce: time.Millisecond}, func([]string) {
		select {
		case entered <- struct{}{}:
		default:
		}
		<-release
	})
	if err != nil {
		t.Fatal(err)
	}
	write(t, filepath.Join(dir, "a.lua"), "a")
	select {
	case <-entered:
	case <-time.After(waitTimeout):
		t.Fatal("no callback")
	}
	closed := make(chan struct{})
	go func() {
		w.Close()
		close(closed)
	}()
	<-w.done // Close has begun
	// The grace period only gives a Close that does not wait the chance to return early; a
	// correct Close cannot return before release, so this cannot fail spuriously.
	select {
	case <-closed:
		t.Fatal("Close returned while onChange was running")
	case <-time.After(50 * time.Millisecond):
	}
	close(release)
	select {
	case <-closed:
	case <-time.After(waitTimeout):
		t.Fatal("Close did not return after onChange did")
	}
	select {
	case <-w.exited:
	default:
		t.Fatal("goroutine still running after Close returned")
	}
}

func TestCallbackPanicKeepsWatching(t *testing.T) {
	dir := tempDir(t, "lua")
	calls := make(chan []string, 16)
	panicked := make(chan struct{})
	var n atomic.Int32
	w, err := New(Config{Dirs: []string{dir}, Debounce: time.Millisecond}, func(paths []string) {
		if n.Add(1) == 1 {
			close(panicked)
			panic("gameplay reload bug")
		}
		calls <- paths
	})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	rec := &recorder{calls: calls}
	write(t, filepath.Join(dir, "a.lua"), "a")
	select {
	case <-panicked:
	case <-time.After(waitTimeout):
		t.Fatal("no callback")
	}
	b := filepath.Join(dir, "b.lua")
	write(t, b, "b")
	rec.waitFor(t, b)
}

func TestOverflowRescans(t *testing.T) {
	dir := tempDir(t, "lua")
	a := filepath.Join(dir, "a.lua")
	write(t, a, "a")
	w, rec := start(t, Config{}, dir)

	w.tree.fw.Errors <- fsnotify.ErrEventOverflow
	rec.waitFor(t, dir, a)

	b := filepath.Join(dir, "b.lua")
	write(t, b, "b")
	rec.waitFor(t, b)
}

func TestNewRejectsBadConfig(t *testing.T) {
	dir := tempDir(t, "lua")
	file := filepath.Join(dir, "a.lua")
	write(t, file, "a")
	nop := func([]string) {}
	for name, cfg := range map[string]Config{
		"no dirs":        {},
		"empty dir":      {Dirs: []string{""}},
		"missing dir":    {Dirs: []string{filepath.Join(dir, "missing")}},
		"file":           {Dirs: []string{file}},
		"duplicate":      {Dirs: []string{dir, dir + "/"}},
		"nested":         {Dirs: []string{filepath.Dir(dir), dir}},
		"negative delay": {Dirs: []string{dir}, Debounce: -time.Second},
	} {
		if w, err := New(cfg, nop); err == nil {
			w.Close()
			t.Errorf("%s: New succeeded", name)
		}
	}
	if _, err := New(Config{Dirs: []string{dir}}, nil); err == nil {
		t.Error("nil onChange: New succeeded")
	}
}

func TestDefaults(t *testing.T) {
	cfg, err := Config{Dirs: []string{"lua"}}.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Debounce != 150*time.Millisecond || cfg.MaxDelay != time.Second || cfg.Recheck != 2*time.Second ||
		cfg.Filter == nil || cfg.Logger == nil {
		t.Fatalf("defaults not applied: %+v", cfg)
	}
}

func TestRelativeDirReportsAbsolutePaths(t *testing.T) {
	dir := tempDir(t, "game", "lua")
	t.Chdir(filepath.Dir(dir))
	_, rec := start(t, Config{}, "lua")
	a := filepath.Join(dir, "a.lua")
	write(t, a, "a")
	rec.waitFor(t, a)
}
