package gate

import (
	"testing"
	"time"
)

// TestPendingSlots: ids name their slots, freed slots are reused last-in first-out, and an answer
// for a request that left its slot does not take the slot's new request.
func TestPendingSlots(t *testing.T) {
	c := &conn{}
	defer c.stopTimer()
	req := func(seq uint32) inflight { return inflight{seq: seq, deadline: time.Now().Add(time.Hour)} }
	take := func(id uint64) (inflight, bool, bool) { // as Deliver does
		f, only, ok := c.take(id)
		if ok {
			c.pending.answered()
		}
		return f, only, ok
	}
	a, b, d := c.add(req(1)), c.add(req(2)), c.add(req(3))
	if uint32(a) != 0 || uint32(b) != 1 || uint32(d) != 2 {
		t.Fatalf("slots of the first three: %d %d %d", uint32(a), uint32(b), uint32(d))
	}
	if f, last, ok := take(b); !ok || last || f.seq != 2 {
		t.Fatalf("take b: %+v %v %v", f, last, ok)
	}
	e := c.add(req(4))
	if uint32(e) != 1 || e == b {
		t.Fatalf("the freed slot 1 is reused under a new id: %x after %x", e, b)
	}
	if _, _, ok := take(b); ok {
		t.Fatal("a stale id took the request now in its slot")
	}
	if _, _, ok := take(a); !ok {
		t.Fatal("take a")
	}
	f := c.add(req(5))
	if uint32(f) != 0 {
		t.Fatalf("slot 0 freed last, the next request took slot %d", uint32(f))
	}
	if n := c.inFlight(); n != 3 {
		t.Fatalf("in flight: %d, want 3", n)
	}
	for _, id := range []uint64{d, e} {
		if _, _, ok := take(id); !ok {
			t.Fatalf("take %x", id)
		}
	}
	if _, last, ok := take(f); !ok || !last {
		t.Fatalf("the last request: last %v ok %v", last, ok)
	}
	if _, _, ok := take(1<<40 | 7); ok {
		t.Fatal("an id past the table took something")
	}
}

// TestPendingCountsUntilAnswered: a request taken from the table still counts as in flight until
// its answer is queued, so that a half-closed connection, which closes once nothing is in flight,
// does not close before the answer is queued.
func TestPendingCountsUntilAnswered(t *testing.T) {
	c := &conn{}
	defer c.stopTimer()
	id := c.add(inflight{seq: 1, deadline: time.Now().Add(time.Hour)})
	if _, only, ok := c.take(id); !ok || !only {
		t.Fatalf("take: only %v ok %v", only, ok)
	}
	if n := c.inFlight(); n != 1 {
		t.Fatalf("in flight after take, before the answer is queued: %d, want 1", n)
	}
	c.pending.answered()
	if n := c.inFlight(); n != 0 {
		t.Fatalf("in flight after the answer: %d, want 0", n)
	}
}
