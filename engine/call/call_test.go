package call

import (
	"errors"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/moonforge/moonforge/engine/protocol"
)

type inbox []Answer

func (in *inbox) Deliver(a Answer) { *in = append(*in, a) }

type remote []Answer

func (r *remote) Post(a Answer) { *r = append(*r, a) }

func TestBoxesDeliverDropAndForward(t *testing.T) {
	var far remote
	b := NewBoxes("n1", &far)
	var in inbox
	addr := b.Open(&in)
	if addr.Node != "n1" || addr.Box == 0 {
		t.Fatalf("address %+v", addr)
	}
	req := &Request{ID: 7, ReplyTo: addr, Post: b}
	req.Reply(1001, []byte("x"))
	req.Fail(errors.New("boom"))
	if len(in) != 2 || in[0].ID != 7 || in[0].MsgID != 1001 || in[1].Err.Code != protocol.Internal {
		t.Fatalf("delivered %+v", in)
	}
	(&Call{ID: 8, ReplyTo: Address{Node: "n2", Box: 3}, Post: b}).Return("ok")
	if len(far) != 1 || far[0].Value != "ok" || far[0].To.Node != "n2" {
		t.Fatalf("forwarded %+v", far)
	}
	b.Close(addr)
	(&Login{ID: 9, ReplyTo: addr, Post: b}).Fail(protocol.Errorf(protocol.Timeout, "late"))
	if len(in) != 2 || b.Dropped() != 1 {
		t.Fatalf("an answer to a closed box was delivered (%d) or not counted (%d)", len(in), b.Dropped())
	}
	alone := NewBoxes("", nil)
	alone.Post(Answer{To: Address{Node: "n2", Box: 1}})
	if alone.Dropped() != 1 {
		t.Fatal("an answer for another node without a bus was not counted")
	}
}

// TestBoxesReuseSlots opens more boxes than a page holds, closes some and opens again: every
// open box gets its own answers, and an answer to a closed box never reaches the box that took
// over its slot.
func TestBoxesReuseSlots(t *testing.T) {
	b := NewBoxes("", nil)
	const n = boxPageSize + 10
	ins := make([]inbox, n)
	addrs := make([]Address, n)
	for i := range ins {
		addrs[i] = b.Open(&ins[i])
	}
	for i := 0; i < n; i += 2 {
		b.Close(addrs[i])
	}
	reused := make([]inbox, n/2)
	for i := range reused {
		b.Open(&reused[i])
	}
	for i, a := range addrs {
		b.Post(Answer{To: a, ID: uint64(i)})
	}
	for i := range ins {
		want := i % 2
		if len(ins[i]) != want || want == 1 && ins[i][0].ID != uint64(i) {
			t.Fatalf("box %d got %+v", i, ins[i])
		}
	}
	for i := range reused {
		if len(reused[i]) != 0 {
			t.Fatalf("a box that took over a closed slot got its answers: %+v", reused[i])
		}
	}
	if b.Dropped() != n/2 {
		t.Fatalf("dropped %d, want %d", b.Dropped(), n/2)
	}
}

// TestBoxesConcurrent posts while other goroutines open and close boxes (run with -race).
func TestBoxesConcurrent(t *testing.T) {
	b := NewBoxes("", nil)
	var got atomic.Int64
	in := countingInbox{&got}
	addr := b.Open(in)
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 2000 {
				b.Close(b.Open(in))
			}
		}()
	}
	for range 10000 {
		b.Post(Answer{To: addr})
	}
	wg.Wait()
	if got.Load() != 10000 {
		t.Fatalf("delivered %d of 10000", got.Load())
	}
}

type countingInbox struct{ n *atomic.Int64 }

func (c countingInbox) Deliver(Answer) { c.n.Add(1) }
