package script_test

import (
	"context"
	"testing"
	"time"

	lua "github.com/yuin/gopher-lua"

	"github.com/moonforge/moonforge/engine/call"
	"github.com/moonforge/moonforge/engine/protocol"
	"github.com/moonforge/moonforge/engine/script"
	"github.com/moonforge/moonforge/engine/store"
)

// gatedStore is a store whose calls wait until the test opens the gate, as
// a remote store's round trip would; down makes them fail as unreachable.
type gatedStore struct {
	store.Store
	gate chan struct{}
	down bool
}

func (g *gatedStore) wait(ctx context.Context) error {
	select {
	case <-g.gate:
	case <-ctx.Done():
		return ctx.Err()
	}
	if g.down {
		return store.ErrUnavailable
	}
	return nil
}

func (g *gatedStore) GetVersion(ctx context.Context, key string) ([]byte, uint64, error) {
	if err := g.wait(ctx); err != nil {
		return nil, 0, err
	}
	return g.Store.GetVersion(ctx, key)
}

func (g *gatedStore) Put(ctx context.Context, key string, value []byte) error {
	return g.Batch(ctx, []store.Op{{Key: key, Value: value}})
}

func (g *gatedStore) Batch(ctx context.Context, ops []store.Op) error {
	if err := g.wait(ctx); err != nil {
		return err
	}
	return g.Store.Batch(ctx, ops)
}

// TestDBWaitsByYielding: a handler's mf.db calls run off the actor while the
// handler waits; the actor answers other players meanwhile, and the results
// (several values) and errors (with codes) reach the handler when it resumes.
func TestDBWaitsByYielding(t *testing.T) {
	files := map[string]string{"lobby/db.lua": `
mf.handle("EchoReq", function(ctx, req)
  if req.body == "now" then return "EchoAck", { n = req.n } end
  if req.body == "cas" then
    local v, ver = mf.db.get("k")
    local ok = mf.db.cas("k", ver, (v or 0) + req.n)
    local after = mf.db.get("k")
    return "EchoAck", { n = after, body = tostring(ok) }
  end
  local ok, err = pcall(mf.db.put, "k", 1)
  return "EchoAck", { n = err.code, body = err.message }
end)`}
	gated := &gatedStore{Store: openStore(t), gate: make(chan struct{})}
	vm := newVM(t, compile(t, files), "lobby", &script.Services{Store: gated, HandlerTimeout: 10 * time.Second})
	answers := make(chan call.Answer, 16)
	vm.SetReplyTo(call.Address{Box: 1}, posted(func(a call.Answer) { answers <- a }))
	// resume opens the gate for one store call and gives the VM its answer.
	resume := func() {
		t.Helper()
		gated.gate <- struct{}{}
		select {
		case a := <-answers:
			vm.Resume(a)
		case <-time.After(10 * time.Second):
			t.Fatal("the store call did not answer")
		}
	}

	slow := send(t, vm, "p1", "cas", 5)
	if slow.count() != 0 || vm.Waiting() != 1 {
		t.Fatalf("the handler answered (%d) or does not wait (%d) while the store works", slow.count(), vm.Waiting())
	}
	other := send(t, vm, "p2", "now", 7)
	if other.count() != 1 || other.err != nil {
		t.Fatalf("another player was not served while the store call was out: %+v", other)
	}
	resume() // get
	resume() // cas
	resume() // get
	if slow.count() != 1 || slow.err != nil {
		t.Fatalf("the waiting handler's answer: %+v", slow)
	}
	if n, body := reply(t, vm, slow); n != 5 || body != "true" {
		t.Fatalf("reply n=%d body=%q; want n=5 body=true", n, body)
	}

	gated.down = true
	failing := send(t, vm, "p1", "put", 0)
	if failing.count() != 0 {
		t.Fatalf("the put did not wait: %+v", failing)
	}
	resume()
	if n, body := reply(t, vm, failing); n != int(protocol.Unavailable) {
		t.Fatalf("a store that is down: code %d (%s); want UNAVAILABLE", n, body)
	}
}

// reply decodes an EchoAck's n and body.
func reply(t *testing.T, vm *script.VM, a *answer) (int, string) {
	t.Helper()
	if a.err != nil {
		t.Fatalf("error answer: %v", a.err)
	}
	tbl, err := vm.Bundle().Codecs.ByName("EchoAck").Decode(vm.L, a.body)
	if err != nil {
		t.Fatal(err)
	}
	return int(lua.LVAsNumber(tbl.RawGetString("n"))), lua.LVAsString(tbl.RawGetString("body"))
}
