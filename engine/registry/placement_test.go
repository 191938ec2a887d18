package registry

import (
	"context"
	"sync"
	"testing"
	"time"
)

// Of racing placements of one key exactly one is written and every racer learns it; an entry
// naming a node that left is replaced; a removal leaves another node's entry; watchers follow and
// count the entries of each node.
func TestPlace(t *testing.T) {
	r := open(t, time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	live, err := r.WatchPlacements(ctx)
	if err != nil {
		t.Fatal(err)
	}
	k, ok := PlacementKey("lobby", "p1")
	if !ok {
		t.Fatal("a player id is a placement key")
	}
	var mu sync.Mutex
	up := map[string]bool{"lobby-1": true, "lobby-2": true, "lobby-3": true, "lobby-4": true}
	usable := func(n string) bool {
		mu.Lock()
		defer mu.Unlock()
		return up[n]
	}
	var wg sync.WaitGroup
	won := make([]string, 4)
	for i, n := range []string{"lobby-1", "lobby-2", "lobby-3", "lobby-4"} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w, err := r.Place(ctx, k, n, usable)
			if err != nil {
				t.Error(err)
			}
			won[i] = w
		}()
	}
	wg.Wait()
	for _, w := range won {
		if w != won[0] {
			t.Fatalf("racers were told different winners: %v", won)
		}
	}
	up[won[0]] = false // the winner leaves: the next placement replaces it
	if got, err := r.Place(ctx, k, "lobby-9", usable); err != nil || got != "lobby-9" {
		t.Fatalf("placing over a node that left: %q, %v", got, err)
	}
	waitLive := func(want string) {
		t.Helper()
		for end := time.Now().Add(5 * time.Second); ; time.Sleep(5 * time.Millisecond) {
			p, ok := live.Of(k)
			if p.Node == want && ok == (want != "") {
				return
			}
			if time.Now().After(end) {
				t.Fatalf("the watcher has %+v %v, want %q", p, ok, want)
			}
		}
	}
	waitLive("lobby-9")
	if n, m := live.Count(PlacedOn("lobby", "lobby-9")), live.Count(PlacedOn("lobby", won[0])); n != 1 || m != 0 {
		t.Fatalf("placements counted on lobby-9: %d, on %s (replaced): %d; want 1 and 0", n, won[0], m)
	}
	if err := r.Unplace(ctx, k, "lobby-1"); err != nil { // not the node in place: kept
		t.Fatal(err)
	}
	waitLive("lobby-9")
	if err := r.Unplace(ctx, k, "lobby-9"); err != nil {
		t.Fatal(err)
	}
	waitLive("")
	if n := live.Count(PlacedOn("lobby", "lobby-9")); n != 0 {
		t.Fatalf("%d placements counted on lobby-9 after its removal", n)
	}
	for _, bad := range []string{"", "a.b", "a b", "a*", "a>"} {
		if _, ok := PlacementKey("lobby", bad); ok {
			t.Errorf("%q was taken as a placement key", bad)
		}
	}
}
