package call

import (
	"errors"
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
