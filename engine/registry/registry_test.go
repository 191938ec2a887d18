package registry

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/moonforge/moonforge/engine/bus"
)

func open(t *testing.T, ttl time.Duration) *Registry {
	t.Helper()
	f, err := bus.Open(bus.Options{DataDir: t.TempDir(), MaxPayload: 1 << 20, Name: "reg"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(f.Close)
	r, err := Open(context.Background(), f.JS, Config{Replicas: 1, NodeTTL: ttl})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// A node that stops refreshing its record disappears after the TTL, and a watcher learns it.
func TestRecordExpiresAndWatcherSeesIt(t *testing.T) {
	r := open(t, time.Second)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	events := make(chan string, 256)
	view, err := r.Watch(ctx, func(id string, _ Record, gone bool) {
		events <- fmt.Sprintf("%s gone=%v", id, gone)
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Announce(ctx, Record{ID: "lobby-1", Roles: []string{"lobby"}, Handles: []uint16{1001}, State: StateUp}); err != nil {
		t.Fatal(err)
	}
	keepCtx, stopKeeping := context.WithCancel(ctx)
	go r.Keep(keepCtx, 200*time.Millisecond, func() Record { return Record{ID: "game-1", Roles: []string{"game"}} }, nil)
	want := map[string]bool{"lobby-1 gone=false": true, "game-1 gone=false": true}
	for len(want) > 0 {
		select {
		case e := <-events:
			delete(want, e)
		case <-time.After(5 * time.Second):
			t.Fatalf("missing events %v", want)
		}
	}
	if rec, ok := view.Get("lobby-1"); !ok || !rec.HandlesMsg(1001) || !rec.Has("lobby") {
		t.Fatalf("view: %+v %v", rec, ok)
	}
	// game-1 is refreshed: it must outlive the TTL; lobby-1 is not: it must go.
	start := time.Now()
	for e := range events {
		if e == "lobby-1 gone=true" {
			break
		}
		if e == "game-1 gone=true" {
			t.Fatal("a refreshed record expired")
		}
		if time.Since(start) > 10*time.Second {
			t.Fatal("the silent record never expired")
		}
	}
	if _, ok := view.Get("lobby-1"); ok {
		t.Fatal("view still has the expired record")
	}
	if _, ok := view.Get("game-1"); !ok {
		t.Fatal("view lost the refreshed record")
	}
	stopKeeping() // Keep removes its record when it stops
	for {
		select {
		case e := <-events:
			if e == "game-1 gone=true" {
				return
			}
			if e != "game-1 gone=false" { // refreshes written before the stop
				t.Fatalf("event %s", e)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("stopping Keep did not remove the record")
		}
	}
}

// Racing logins of one player: every claim but one displaces exactly one earlier session.
func TestClaimSessionRace(t *testing.T) {
	r := open(t, time.Second)
	ctx := context.Background()
	const n = 8
	var wg sync.WaitGroup
	var mu sync.Mutex
	displaced := map[Session]int{}
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			prev, ok, err := r.ClaimSession(ctx, "p1", Session{Proxy: fmt.Sprintf("proxy-%d", i), Session: fmt.Sprint(i)})
			if err != nil {
				t.Error(err)
				return
			}
			if ok {
				mu.Lock()
				displaced[prev]++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if len(displaced) != n-1 {
		t.Fatalf("%d sessions displaced, want %d: %v", len(displaced), n-1, displaced)
	}
	for s, c := range displaced {
		if c != 1 {
			t.Fatalf("session %v displaced %d times", s, c)
		}
	}
	cur, ok, err := r.SessionOf(ctx, "p1")
	if err != nil || !ok || displaced[cur] != 0 {
		t.Fatalf("survivor %v %v %v was also displaced", cur, ok, err)
	}
	if err := r.ReleaseSession(ctx, "p1", Session{Proxy: "other"}); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := r.SessionOf(ctx, "p1"); !ok {
		t.Fatal("releasing someone else's session removed the entry")
	}
	if err := r.ReleaseSession(ctx, "p1", cur); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := r.SessionOf(ctx, "p1"); ok {
		t.Fatal("entry still there after release")
	}
}

func TestRoomDirectory(t *testing.T) {
	r := open(t, time.Second)
	ctx := context.Background()
	if n, err := r.RoomNode(ctx, "r1"); err != nil || n != "" {
		t.Fatalf("unknown room: %q %v", n, err)
	}
	if err := r.PlaceRoom(ctx, "r1", "game-2"); err != nil {
		t.Fatal(err)
	}
	if n, _ := r.RoomNode(ctx, "r1"); n != "game-2" {
		t.Fatalf("room on %q", n)
	}
	if err := r.RemoveRoom(ctx, "r1"); err != nil {
		t.Fatal(err)
	}
	if n, _ := r.RoomNode(ctx, "r1"); n != "" {
		t.Fatalf("removed room on %q", n)
	}
}

// A session moves between proxies only from the entry the mover expects.
func TestMoveSession(t *testing.T) {
	r := open(t, time.Second)
	ctx := context.Background()
	one, two := Session{Proxy: "proxy-1", Session: "s1"}, Session{Proxy: "proxy-2", Session: "s1"}
	if err := r.MoveSession(ctx, "p1", one, two); !errors.Is(err, ErrMoved) {
		t.Fatalf("move of no entry: %v", err)
	}
	if _, _, err := r.ClaimSession(ctx, "p1", one); err != nil {
		t.Fatal(err)
	}
	if err := r.MoveSession(ctx, "p1", one, two); err != nil {
		t.Fatal(err)
	}
	if s, _, _ := r.SessionOf(ctx, "p1"); s != two {
		t.Fatalf("entry %v after the move", s)
	}
	if err := r.MoveSession(ctx, "p1", one, Session{Proxy: "proxy-3", Session: "s1"}); !errors.Is(err, ErrMoved) {
		t.Fatalf("a stale move: %v", err)
	}
}

// A proxy marks its entry detached and attached again; a mark never touches another session's
// entry, and a move or a release still finds an entry whose flag changed since it was read.
func TestMarkSession(t *testing.T) {
	r := open(t, time.Second)
	ctx := context.Background()
	one := Session{Proxy: "proxy-1", Session: "s1"}
	dropped := Session{Proxy: "proxy-1", Session: "s1", Detached: true}
	if err := r.MarkSession(ctx, "p1", dropped); err != nil {
		t.Fatalf("mark of no entry: %v", err)
	}
	if _, ok, _ := r.SessionOf(ctx, "p1"); ok {
		t.Fatal("a mark created an entry")
	}
	if _, _, err := r.ClaimSession(ctx, "p1", one); err != nil {
		t.Fatal(err)
	}
	if err := r.MarkSession(ctx, "p1", dropped); err != nil {
		t.Fatal(err)
	}
	if s, _, _ := r.SessionOf(ctx, "p1"); s != dropped {
		t.Fatalf("entry %v after the drop's mark", s)
	}
	if err := r.MarkSession(ctx, "p1", Session{Proxy: "proxy-2", Session: "s1"}); err != nil {
		t.Fatal(err)
	}
	if s, _, _ := r.SessionOf(ctx, "p1"); s != dropped {
		t.Fatalf("another proxy's mark changed the entry to %v", s)
	}
	// The mover read the entry before the drop was marked.
	two := Session{Proxy: "proxy-2", Session: "s1"}
	if err := r.MoveSession(ctx, "p1", one, two); err != nil {
		t.Fatalf("move after the drop's mark: %v", err)
	}
	if s, _, _ := r.SessionOf(ctx, "p1"); s != two {
		t.Fatalf("entry %v after the move", s)
	}
	if err := r.MarkSession(ctx, "p1", Session{Proxy: "proxy-2", Session: "s1", Detached: true}); err != nil {
		t.Fatal(err)
	}
	if err := r.ReleaseSession(ctx, "p1", two); err != nil {
		t.Fatal(err)
	}
	if s, ok, _ := r.SessionOf(ctx, "p1"); ok {
		t.Fatalf("entry %v left after the release", s)
	}
}
