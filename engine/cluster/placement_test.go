package cluster

import (
	"testing"
	"time"

	"github.com/moonforge/moonforge/engine/registry"
)

// Under round robin, a key placed by one proxy keeps its node when another proxy picks for it (the
// placements bucket), and is placed anew, on every proxy, when that node leaves.
func TestPlacementsAcrossProxies(t *testing.T) {
	_, start := fabric(t, map[string]string{"lobby": "round_robin"})
	a := start("proxy-a", "proxy", nil)
	b := start("proxy-b", "proxy", nil)
	lobbies := map[string]*Cluster{"lobby-1": start("lobby-1", "lobby", nil), "lobby-2": start("lobby-2", "lobby", nil)}
	waitFor(t, "both lobbies in both views", func() bool {
		return len(a.view.Select(func(r registry.Record) bool { return r.Has("lobby") })) == 2 &&
			len(b.view.Select(func(r registry.Record) bool { return r.Has("lobby") })) == 2
	})
	first := map[string]string{}
	for _, p := range []string{"p1", "p2", "p3", "p4"} {
		first[p] = a.pick("lobby", p, 0, shareWrite)
	}
	if first["p1"] == first["p2"] {
		t.Fatalf("round robin put p1 and p2 on one node: %v", first)
	}
	waitFor(t, "the placements in proxy-b's copy", func() bool {
		for p, n := range first {
			if got, ok := b.placements.Of("lobby/" + p); !ok || got.Node != n {
				return false
			}
		}
		return true
	})
	for _, p := range []string{"p4", "p3", "p2", "p1"} { // proxy-b's own turn would differ
		if got := b.pick("lobby", p, 0, shareWrite); got != first[p] {
			t.Errorf("%s: %s on proxy-a, %s on proxy-b", p, first[p], got)
		}
	}
	gone := first["p1"]
	lobbies[gone].Stop(time.Second) // its record is removed: every view drops it
	waitFor(t, gone+" gone from proxy-b's view", func() bool { _, ok := b.view.Get(gone); return !ok })
	moved := b.pick("lobby", "p1", 0, shareWrite)
	if moved == gone || moved == "" {
		t.Fatalf("p1 stays on %q after %s left", moved, gone)
	}
	waitFor(t, "p1's new placement on proxy-a", func() bool {
		_, ok := a.view.Get(gone)
		p, _ := a.placements.Of("lobby/p1")
		return !ok && p.Node == moved
	})
	if got := a.pick("lobby", "p1", 0, shareWrite); got != moved {
		t.Fatalf("p1 on %s through proxy-a, %s through proxy-b", got, moved)
	}
	a.Forget("p1", true) // the player's session ended: its placement goes
	waitFor(t, "p1's placement removed", func() bool { _, ok := b.placements.Of("lobby/p1"); return !ok })
}

// BenchmarkPickPlaced is a proxy's pick for a player already placed: no allocation beyond the
// placement key.
func BenchmarkPickPlaced(b *testing.B) {
	_, start := fabric(b, map[string]string{"lobby": "round_robin"})
	p := start("proxy-a", "proxy", nil)
	start("lobby-1", "lobby", nil)
	for p.pick("lobby", "p1", 0, shareWrite) == "" {
		time.Sleep(time.Millisecond)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if p.pick("lobby", "p1", 0, shareWrite) == "" {
			b.Fatal("no node")
		}
	}
}

// waitFor polls cond for up to 5 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for end := time.Now().Add(5 * time.Second); !cond(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(end) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}
