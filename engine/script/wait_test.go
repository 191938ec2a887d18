package script_test

import (
	"strings"
	"testing"
	"time"

	lua "github.com/yuin/gopher-lua"

	"github.com/moonforge/moonforge/engine/call"
	"github.com/moonforge/moonforge/engine/protocol"
	"github.com/moonforge/moonforge/engine/script"
)

// calls is a Rooms service whose joins wait until the test answers them.
type calls struct{ joins []*call.Call }

func (c *calls) Create(string, any) (string, error) { return "r1", nil }
func (c *calls) Join(j *call.Call)                  { c.joins = append(c.joins, j) }
func (c *calls) Leave(l *call.Call)                 { l.Fail(protocol.Errorf(protocol.BadRequest, "not in a room")) }
func (c *calls) Call(r *call.Call)                  { c.joins = append(c.joins, r) }
func (c *calls) Of(string) string                   { return "" }
func (c *calls) List(string) []script.RoomInfo      { return nil }

// take returns the joins made so far and forgets them.
func (c *calls) take() []*call.Call {
	out := c.joins
	c.joins = nil
	return out
}

// waiter's handler waits for mf.room.join when the body says so; its version tag is in body.
func waiter(tag string) map[string]string {
	return map[string]string{"lobby/w.lua": `
local m = mf.module("state")
mf.handle("EchoReq", function(ctx, req)
	if req.body == "wait" then
		local v = mf.room.join("r1", ctx.player_id, { n = req.n })
		return "EchoAck", { n = v.n + (m.bump or 0), body = "` + tag + `" }
	elseif req.body == "pwait" then
		local ok, v = pcall(mf.room.join, "r1", ctx.player_id)
		if ok then return "EchoAck", { n = v.n, body = "pcall-ok" } end
		return "EchoAck", { n = v.code, body = "pcall-err" }
	elseif req.body == "bump" then
		m.bump = req.n
	elseif req.body == "yield" then
		coroutine.yield(1)
	elseif req.body == "timer" then
		mf.timer.after(0, function()
			local ok, err = pcall(mf.room.join, "r1", "x")
			m.timer_err = tostring(err)
		end)
	end
	return "EchoAck", { n = req.n, body = m.timer_err or "now" }
end)
`}
}

func waitVM(t *testing.T, files map[string]string, timeout time.Duration) (*script.VM, *calls) {
	t.Helper()
	rooms := &calls{}
	vm := newVM(t, compile(t, files), "lobby", &script.Services{Rooms: rooms, HandlerTimeout: timeout})
	vm.SetReplyTo(call.Address{Box: 1}, posted(func(call.Answer) {}))
	return vm, rooms
}

// send hands the VM a request of player with body and n; the answer is recorded, maybe later.
func send(t *testing.T, vm *script.VM, player, body string, n int) *answer {
	t.Helper()
	m := vm.Bundle().Codecs.ByName("EchoReq")
	tbl := vm.L.NewTable()
	tbl.RawSetString("body", lua.LString(body))
	tbl.RawSetString("n", lua.LNumber(n))
	payload, err := m.Encode(nil, tbl)
	if err != nil {
		t.Fatal(err)
	}
	a := &answer{}
	vm.CallHandler(&call.Request{MsgID: m.ID, Msg: m.FullName, Seq: 1, Payload: payload, PlayerID: player, Deadline: time.Now().Add(5 * time.Second), Post: a})
	return a
}

func (a *answer) count() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.n
}

func TestWaitingHandlerLetsOthersRunAndKeepsPlayerOrder(t *testing.T) {
	vm, rooms := waitVM(t, waiter("v1"), 0)
	first := send(t, vm, "p1", "wait", 10)
	if first.count() != 0 || vm.Waiting() != 1 {
		t.Fatalf("the waiting handler answered (%d) or does not wait (%d)", first.count(), vm.Waiting())
	}
	second := send(t, vm, "p1", "now", 20) // p1's next request waits for p1's first
	other := send(t, vm, "p2", "now", 30)  // p2 is served meanwhile
	if second.count() != 0 {
		t.Fatal("a player's second request ran before the first finished")
	}
	if got := replyField(t, vm, other, "n"); got != "30" {
		t.Fatalf("another player's request: n = %s", got)
	}
	joins := rooms.take()
	if len(joins) != 1 || joins[0].Target != "r1" || joins[0].PlayerID != "p1" || joins[0].Args.(map[string]any)["n"] != float64(10) {
		t.Fatalf("join calls %+v", joins)
	}
	vm.Resume(call.Answer{ID: joins[0].ID, Value: map[string]any{"n": float64(11)}})
	if got := replyField(t, vm, first, "n"); got != "11" {
		t.Fatalf("resumed handler: n = %s", got)
	}
	if got := replyField(t, vm, second, "n"); got != "20" || vm.Waiting() != 0 {
		t.Fatalf("the queued request: n = %s, %d waiting", got, vm.Waiting())
	}
}

// The deadline spans the wait: at the deadline the request is answered, and the answer that
// comes afterwards is ignored.
func TestWaitingHandlerDeadline(t *testing.T) {
	vm, rooms := waitVM(t, waiter("v1"), 50*time.Millisecond)
	a := send(t, vm, "p1", "wait", 1)
	queued := send(t, vm, "p1", "now", 2)
	at, ok := vm.NextTimer()
	if !ok || time.Until(at) > 50*time.Millisecond {
		t.Fatalf("no timer for the waiting handler's deadline: %v %v", at, ok)
	}
	vm.RunTimers(time.Now()) // before the deadline: nothing happens
	if a.count() != 0 {
		t.Fatal("answered before its deadline")
	}
	vm.RunTimers(at.Add(time.Millisecond))
	if a.count() != 1 || a.err == nil || a.err.Code != protocol.Internal || !strings.Contains(a.err.Message, "deadline") {
		t.Fatalf("at the deadline: %d answers, %v", a.count(), a.err)
	}
	if got := replyField(t, vm, queued, "n"); got != "2" {
		t.Fatalf("the request queued behind it: n = %s", got)
	}
	vm.Resume(call.Answer{ID: rooms.take()[0].ID, Value: map[string]any{"n": float64(5)}})
	if a.count() != 1 || vm.Waiting() != 0 {
		t.Fatalf("a late answer was used: %d answers", a.count())
	}
}

// A reload during the wait: the handler finishes on the code it started with; the next request
// runs the new code. A module table changed meanwhile is seen by the waiting handler.
func TestWaitingHandlerAcrossReloadSeesModuleChanges(t *testing.T) {
	vm, rooms := waitVM(t, waiter("v1"), 0)
	a := send(t, vm, "p1", "wait", 1)
	if err := vm.Apply(compile(t, waiter("v2"))); err != nil {
		t.Fatal(err)
	}
	send(t, vm, "p2", "bump", 100)
	vm.Resume(call.Answer{ID: rooms.take()[0].ID, Value: map[string]any{"n": float64(1)}})
	if body, n := replyField(t, vm, a, "body"), replyField(t, vm, a, "n"); body != "v1" || n != "101" {
		t.Fatalf("after the reload: body %s (want v1), n %s (want 101)", body, n)
	}
	b := send(t, vm, "p1", "wait", 1)
	vm.Resume(call.Answer{ID: rooms.take()[0].ID, Value: map[string]any{"n": float64(1)}})
	if body := replyField(t, vm, b, "body"); body != "v2" {
		t.Fatalf("a new request runs %s, want v2", body)
	}
}

func TestWaitingInsidePcallAndErrors(t *testing.T) {
	vm, rooms := waitVM(t, waiter("v1"), 0)
	ok := send(t, vm, "p1", "pwait", 0)
	vm.Resume(call.Answer{ID: rooms.take()[0].ID, Value: map[string]any{"n": float64(7)}})
	if body, n := replyField(t, vm, ok, "body"), replyField(t, vm, ok, "n"); body != "pcall-ok" || n != "7" {
		t.Fatalf("pcall around a wait: %s %s", body, n)
	}
	failed := send(t, vm, "p1", "pwait", 0)
	vm.Resume(call.Answer{ID: rooms.take()[0].ID, Err: protocol.Errorf(protocol.BadRequest, "room full")})
	if body, n := replyField(t, vm, failed, "body"), replyField(t, vm, failed, "n"); body != "pcall-err" || n != "15" {
		t.Fatalf("a failed wait inside pcall: %s code %s, want pcall-err 15 (BAD_REQUEST)", body, n)
	}
	raised := send(t, vm, "p1", "wait", 0)
	vm.Resume(call.Answer{ID: rooms.take()[0].ID, Err: protocol.Errorf(protocol.BadRequest, "room full")})
	if raised.err == nil || raised.err.Code != protocol.BadRequest || raised.err.Message != "room full" {
		t.Fatalf("a failed wait: %v", raised.err)
	}
	yielded := send(t, vm, "p1", "yield", 0)
	if yielded.err == nil || yielded.err.Code != protocol.Internal || vm.Waiting() != 0 {
		t.Fatalf("coroutine.yield in a handler: %v", yielded.err)
	}
	send(t, vm, "p1", "timer", 0)
	vm.RunTimers(time.Now().Add(time.Millisecond))
	if got := replyField(t, vm, send(t, vm, "p1", "now", 0), "body"); !strings.Contains(got, "waits for an answer") {
		t.Fatalf("waiting in a timer: %q", got)
	}
}
