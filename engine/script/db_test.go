package script_test

import (
	"context"
	"slices"
	"strings"
	"sync"
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
	gate    chan struct{}
	mu      sync.Mutex
	down    bool
	batches [][]store.Op // every batch applied, in order
}

func (g *gatedStore) setDown(down bool) {
	g.mu.Lock()
	g.down = down
	g.mu.Unlock()
}

func (g *gatedStore) applied() [][]store.Op {
	g.mu.Lock()
	defer g.mu.Unlock()
	return slices.Clone(g.batches)
}

func (g *gatedStore) wait(ctx context.Context) error {
	select {
	case <-g.gate:
	case <-ctx.Done():
		return ctx.Err()
	}
	g.mu.Lock()
	defer g.mu.Unlock()
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
	err := g.Store.Batch(ctx, ops)
	if err == nil {
		g.mu.Lock()
		g.batches = append(g.batches, ops)
		g.mu.Unlock()
	}
	return err
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
  local ok, err = pcall(mf.db.get, "k")
  return "EchoAck", { n = err.code, body = err.message }
end)`}
	gated := &gatedStore{Store: openStore(t), gate: make(chan struct{}, 1)}
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

	gated.setDown(true)
	failing := send(t, vm, "p1", "put", 0)
	if failing.count() != 0 {
		t.Fatalf("the get did not wait: %+v", failing)
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

// gatedVM is a VM of files on a gated store whose answers are resumed by resume.
func gatedVM(t *testing.T, files map[string]string) (vm *script.VM, gated *gatedStore, resume func()) {
	t.Helper()
	gated = &gatedStore{Store: openStore(t), gate: make(chan struct{}, 1)}
	vm = newVM(t, compile(t, files), "lobby", &script.Services{Store: gated, HandlerTimeout: 10 * time.Second, Dev: true})
	answers := make(chan call.Answer, 16)
	vm.SetReplyTo(call.Address{Box: 1}, posted(func(a call.Answer) { answers <- a }))
	return vm, gated, func() {
		t.Helper()
		gated.gate <- struct{}{}
		select {
		case a := <-answers:
			vm.Resume(a)
		case <-time.After(10 * time.Second):
			t.Fatal("the store call did not answer")
		}
	}
}

// TestHandlerWritesAreOneBatch: a handler's puts and deletes are buffered, read back from the
// buffer, and committed in one batch before its reply; the player's next request waits for the
// commit; a handler that fails writes nothing; a failed commit is the handler's error reply.
func TestHandlerWritesAreOneBatch(t *testing.T) {
	vm, gated, resume := gatedVM(t, map[string]string{"lobby/db.lua": `
mf.handle("EchoReq", function(ctx, req)
  if req.body == "write" then
    mf.db.put("a", { n = req.n })
    mf.db.put("b", "x")
    mf.db.delete("c")
    mf.db.put("a", { n = req.n + 1 })
    local a, va = mf.db.get("a")
    local c, vc = mf.db.get("c")
    return "EchoAck", { n = a.n, body = tostring(va) .. "," .. tostring(c) .. "," .. tostring(vc) }
  end
  if req.body == "fail" then
    mf.db.put("a", "lost")
    mf.error(1001, "changed my mind")
  end
  if req.body == "cas" then
    mf.db.put("d", 1)
    local _, v = mf.db.get("d")
    local stale = mf.db.cas("d", v, 2) -- -1: never matches; commits "d" = 1 first
    local now, v2 = mf.db.get("d")
    local ok = mf.db.cas("d", v2, now + 1)
    return "EchoAck", { n = mf.db.get("d"), body = tostring(stale) .. "," .. tostring(ok) }
  end
  return "EchoAck", { n = req.n }
end)`})

	w := send(t, vm, "p1", "write", 5)
	next := send(t, vm, "p1", "now", 9)
	other := send(t, vm, "p2", "now", 7)
	if w.count() != 0 || next.count() != 0 || other.count() != 1 {
		t.Fatalf("before the commit: the writer answered %d, its player's next %d, another player %d; want 0, 0, 1", w.count(), next.count(), other.count())
	}
	resume() // the commit
	if n, body := reply(t, vm, w); n != 6 || body != "-1,nil,0" {
		t.Fatalf("reads of buffered keys: n=%d body=%q; want 6, -1,nil,0", n, body)
	}
	if next.count() != 1 {
		t.Fatal("the player's next request did not run after the commit")
	}
	got := gated.applied()
	if len(got) != 1 || len(got[0]) != 3 {
		t.Fatalf("batches applied: %v; want one of 3 ops (a, b, c)", got)
	}
	if v, err := gated.Store.Get(t.Context(), "lua/a"); err != nil || string(v) != `{"n":6}` {
		t.Fatalf("stored a = %s, %v", v, err)
	}

	f := send(t, vm, "p1", "fail", 0)
	if f.err == nil || f.err.Code != 1001 {
		t.Fatalf("a failing handler: %+v", f.err)
	}
	if v, _ := gated.Store.Get(t.Context(), "lua/a"); string(v) != `{"n":6}` || len(gated.applied()) != 1 {
		t.Fatalf("a failing handler wrote: a = %s, %d batches", v, len(gated.applied()))
	}

	c := send(t, vm, "p1", "cas", 0)
	for range 4 { // the earlier put with the first cas, get, cas, get
		resume()
	}
	if n, body := reply(t, vm, c); n != 2 || body != "false,true" {
		t.Fatalf("cas after buffered writes: n=%d body=%q; want 2, false,true", n, body)
	}

	gated.setDown(true)
	d := send(t, vm, "p1", "write", 1)
	resume()
	if d.err == nil || d.err.Code != protocol.Unavailable || !strings.Contains(d.err.Message, "mf.db writes") {
		t.Fatalf("a failed commit: %+v; want UNAVAILABLE", d.err)
	}
}
