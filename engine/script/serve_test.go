package script_test

import (
	"sync"
	"testing"
	"time"

	"github.com/moonforge/moonforge/engine/call"
	"github.com/moonforge/moonforge/engine/protocol"
	"github.com/moonforge/moonforge/engine/script"
)

// heldCalls is a Calls service whose mf.call calls wait until the test answers them.
type heldCalls struct {
	mu    sync.Mutex
	calls []*call.Call
}

func (h *heldCalls) Call(c *call.Call, _ string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.calls = append(h.calls, c)
}
func (h *heldCalls) Send(string, string, any) error          { return nil }
func (h *heldCalls) Broadcast(string, string, any) error     { return nil }
func (h *heldCalls) Kick(string, protocol.Code, string) bool { return false }

func (h *heldCalls) take() []*call.Call {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := h.calls
	h.calls = nil
	return out
}

// served records the answer of a served call.
type served struct {
	mu  sync.Mutex
	n   int
	val any
	err *protocol.CodeError
}

func (s *served) Post(a call.Answer) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.n++
	s.val, s.err = a.Value, a.Err
}

func (s *served) get() (int, any, *protocol.CodeError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.n, s.val, s.err
}

const relay = `
mf.serve("relay", function(ctx, args)
	local out = mf.call("micro", "triple", { n = args.n })
	return { n = out.n + 1, player = ctx.player_id }
end)
mf.serve("guarded", function(ctx, args)
	local ok, err = pcall(mf.call, "micro", "triple", { n = args.n })
	if ok then return { n = err.n } end
	return { code = err.code }
end)
mf.serve("now", function(ctx, args) return { n = args.n } end)
`

func serveVM(t *testing.T, timeout time.Duration) (*script.VM, *heldCalls) {
	t.Helper()
	calls := &heldCalls{}
	vm := newVM(t, compile(t, map[string]string{"game/relay.lua": relay}), "game", &script.Services{Calls: calls, HandlerTimeout: timeout})
	vm.SetReplyTo(call.Address{Box: 1}, posted(func(call.Answer) {}))
	return vm, calls
}

// A served function that calls another node waits for its answer without holding its actor: a
// second served call runs and is answered meanwhile; the first then returns what it got, and the
// inner call carries the caller's player.
func TestServedFunctionWaits(t *testing.T) {
	vm, calls := serveVM(t, 5*time.Second)
	first := &served{}
	vm.CallServe(&call.Call{ID: 1, Name: "relay", PlayerID: "p1", Args: map[string]any{"n": 4.0}, Deadline: time.Now().Add(5 * time.Second), Post: first})
	if n, _, _ := first.get(); n != 0 {
		t.Fatal("relay answered before its own call was answered")
	}
	inner := calls.take()
	if len(inner) != 1 || inner[0].Target != "micro" || inner[0].Name != "triple" || inner[0].PlayerID != "p1" {
		t.Fatalf("inner calls: %+v", inner)
	}
	second := &served{}
	vm.CallServe(&call.Call{ID: 2, Name: "now", Args: map[string]any{"n": 7.0}, Post: second})
	if n, v, err := second.get(); n != 1 || err != nil || v.(map[string]any)["n"] != 7.0 {
		t.Fatalf("a served call while another waits: %d %v %v", n, v, err)
	}
	vm.Resume(call.Answer{ID: inner[0].ID, Value: map[string]any{"n": 12.0}})
	n, v, err := first.get()
	if n != 1 || err != nil {
		t.Fatalf("relay answered %d times: %v %v", n, v, err)
	}
	if m := v.(map[string]any); m["n"] != 13.0 || m["player"] != "p1" {
		t.Fatalf("relay returned %v", m)
	}
	if vm.Waiting() != 0 {
		t.Fatalf("%d calls still wait", vm.Waiting())
	}
}

// A served function's wait fails like a handler's: the inner call's error reaches pcall, and a
// wait past the deadline answers the served call TIMEOUT.
func TestServedFunctionWaitErrors(t *testing.T) {
	vm, calls := serveVM(t, 5*time.Second)
	got := &served{}
	vm.CallServe(&call.Call{ID: 1, Name: "guarded", Args: map[string]any{"n": 1.0}, Deadline: time.Now().Add(5 * time.Second), Post: got})
	inner := calls.take()
	vm.Resume(call.Answer{ID: inner[0].ID, Err: protocol.Errorf(protocol.Unavailable, "no node")})
	if n, v, err := got.get(); n != 1 || err != nil || v.(map[string]any)["code"] != float64(protocol.Unavailable) {
		t.Fatalf("guarded: %d %v %v", n, v, err)
	}

	late := &served{}
	vm.CallServe(&call.Call{ID: 2, Name: "relay", Args: map[string]any{"n": 1.0}, Deadline: time.Now().Add(50 * time.Millisecond), Post: late})
	inner = calls.take()
	at, ok := vm.NextTimer()
	if !ok {
		t.Fatal("no timer for the served call's deadline")
	}
	vm.RunTimers(at.Add(time.Millisecond))
	if n, _, err := late.get(); n != 1 || err == nil || err.Code != protocol.Timeout {
		t.Fatalf("a served call past its deadline: %d %v", n, err)
	}
	vm.Resume(call.Answer{ID: inner[0].ID, Value: map[string]any{"n": 1.0}}) // too late: ignored
	if n, _, _ := late.get(); n != 1 {
		t.Fatalf("the served call was answered %d times", n)
	}
}

// BenchmarkCallServe is one served call that does not wait, run in its coroutine: the cost of
// serving an mf.call on the served side, without the bus.
func BenchmarkCallServe(b *testing.B) {
	t := &testing.T{}
	calls := &heldCalls{}
	bundle, err := script.Compile(writeTree(t, map[string]string{"game/relay.lua": relay}), loadSchema(t), nil)
	if err != nil {
		b.Fatal(err)
	}
	vm := script.NewVM("game", &script.Services{Calls: calls, HandlerTimeout: 5 * time.Second})
	defer vm.Close()
	if err := vm.Apply(bundle); err != nil {
		b.Fatal(err)
	}
	vm.SetReplyTo(call.Address{Box: 1}, posted(func(call.Answer) {}))
	got := &served{}
	c := &call.Call{Name: "now", Args: map[string]any{"n": 7.0}, Post: got}
	b.ReportAllocs()
	for range b.N {
		vm.CallServe(c)
	}
	if n, _, err := got.get(); n != b.N || err != nil {
		b.Fatalf("%d answers for %d calls: %v", n, b.N, err)
	}
}

// A served function's mf.db writes are committed as a handler's are: its result is returned only
// once they are in the store, and one that raises writes nothing.
func TestServedFunctionCommitsItsWrites(t *testing.T) {
	vm, gated, resume := gatedVM(t, map[string]string{"lobby/serve.lua": `
mf.serve("grant", function(ctx, args)
  mf.db.put("grant/" .. args.who, { n = args.n })
  if args.fail then mf.error(1001, "refused") end
  return { ok = true }
end)`})
	ok := &served{}
	vm.CallServe(&call.Call{ID: 1, Name: "grant", Args: map[string]any{"who": "a", "n": 3.0}, Deadline: time.Now().Add(5 * time.Second), Post: ok})
	if n, _, _ := ok.get(); n != 0 {
		t.Fatal("the served function answered before its write was committed")
	}
	resume()
	if n, val, err := ok.get(); n != 1 || err != nil || val.(map[string]any)["ok"] != true {
		t.Fatalf("after the commit: %d answers, %v, %v", n, val, err)
	}
	if v, err := gated.Store.Get(t.Context(), "lua/grant/a"); err != nil || string(v) != `{"n":3}` {
		t.Fatalf("stored grant/a = %s, %v", v, err)
	}
	failed := &served{}
	vm.CallServe(&call.Call{ID: 2, Name: "grant", Args: map[string]any{"who": "b", "n": 1.0, "fail": true}, Deadline: time.Now().Add(5 * time.Second), Post: failed})
	if n, _, err := failed.get(); n != 1 || err == nil || err.Code != 1001 {
		t.Fatalf("a served function that raises: %d answers, %v", n, err)
	}
	if v, err := gated.Store.Get(t.Context(), "lua/grant/b"); err == nil || v != nil {
		t.Fatalf("a served function that raised wrote grant/b = %s", v)
	}
}
