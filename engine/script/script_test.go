package script_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	lua "github.com/yuin/gopher-lua"

	"github.com/moonforge/moonforge/engine/call"
	"github.com/moonforge/moonforge/engine/protocol"
	"github.com/moonforge/moonforge/engine/schema"
	"github.com/moonforge/moonforge/engine/script"
	"github.com/moonforge/moonforge/engine/store"
)

// The tests run scripts against the project's real schema (proto/), which has the demo messages.
func loadSchema(t *testing.T) *schema.Schema {
	t.Helper()
	sch, err := schema.Load("../../proto")
	if err != nil {
		t.Fatal(err)
	}
	return sch
}

// writeTree writes files (path → content) under a new lua/ directory and returns it.
func writeTree(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "lua")
	for name, src := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func compile(t *testing.T, files map[string]string) *script.Bundle {
	t.Helper()
	b, err := script.Compile(writeTree(t, files), loadSchema(t), nil)
	if err != nil {
		t.Fatalf("compile: %v", err)
	}
	return b
}

// posted is a Poster that calls a function.
type posted func(call.Answer)

func (f posted) Post(a call.Answer) { f(a) }

// answer records the one answer of a request.
type answer struct {
	mu    sync.Mutex
	msgID uint16
	body  []byte
	err   *protocol.CodeError
	n     int
}

func (a *answer) Post(ans call.Answer) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.msgID, a.body, a.err, a.n = ans.MsgID, ans.Payload, ans.Err, a.n+1
}

// pushes records what scripts push.
type pushes struct {
	mu   sync.Mutex
	list []string
}

func (p *pushes) Push(player string, id uint16, _ []byte) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.list = append(p.list, player)
	return player != "offline"
}

func (p *pushes) PushAll(uint16, []byte) int { return 3 }

// request calls the handler of msg with a request built by a Lua table constructor.
func request(t *testing.T, vm *script.VM, msg string, fields string) *answer {
	t.Helper()
	m := vm.Bundle().Codecs.ByName(msg)
	if m == nil {
		t.Fatalf("no message %s", msg)
	}
	if err := vm.L.DoString("__req = " + fields); err != nil {
		t.Fatal(err)
	}
	payload, err := m.Encode(nil, vm.L.GetGlobal("__req").(*lua.LTable))
	if err != nil {
		t.Fatal(err)
	}
	a := &answer{}
	vm.CallHandler(&call.Request{MsgID: m.ID, Msg: m.FullName, Seq: 1, Payload: payload, PlayerID: "p1", SessionID: "s1", Deadline: time.Now().Add(5 * time.Second), Post: a})
	if a.n != 1 {
		t.Fatalf("%d answers", a.n)
	}
	return a
}

// replyField decodes a reply and returns one field as a string.
func replyField(t *testing.T, vm *script.VM, a *answer, field string) string {
	t.Helper()
	if a.err != nil {
		t.Fatalf("error reply: %v", a.err)
	}
	tbl, err := vm.Bundle().Codecs.ByID(a.msgID).Decode(vm.L, a.body)
	if err != nil {
		t.Fatal(err)
	}
	return tbl.RawGetString(field).String()
}

func newVM(t *testing.T, b *script.Bundle, role string, svc *script.Services) *script.VM {
	t.Helper()
	vm := script.NewVM(role, svc)
	t.Cleanup(vm.Close)
	if err := vm.Apply(b); err != nil {
		t.Fatal(err)
	}
	return vm
}

const echo = `mf.handle("EchoReq", function(ctx, req) return "EchoAck", { n = req.n + 1, body = ctx.player_id } end)`

func TestHandlerReply(t *testing.T) {
	b := compile(t, map[string]string{"lobby/echo.lua": echo})
	vm := newVM(t, b, "lobby", &script.Services{})
	a := request(t, vm, "EchoReq", `{ n = 41 }`)
	if got := replyField(t, vm, a, "n"); got != "42" {
		t.Fatalf("n = %s", got)
	}
	if got := replyField(t, vm, a, "body"); got != "p1" {
		t.Fatalf("ctx.player_id = %s", got)
	}
	if r := b.Routes.Messages[vm.Bundle().Schema.ByName("EchoReq").ID]; r.Role != "lobby" || len(r.Rooms) > 0 {
		t.Fatalf("route %+v", r)
	}
}

func TestHandlerErrors(t *testing.T) {
	b := compile(t, map[string]string{"lobby/h.lua": `
mf.handle("EchoReq", function(ctx, req)
  if req.n == 1 then mf.error(1234, "nope") end
  if req.n == 2 then local x = nil; return x.y end
  if req.n == 3 then while true do end end
  if req.n == 4 then return end
  if req.n == 5 then return "EchoAck", { nope = 1 } end
  if req.n == 6 then mf.error(mf.code.BAD_REQUEST, "bad") end
  if req.n == 7 then mf.error(1, "closes connections") end
  if req.n == 8 then return "NoSuchMessage", {} end
  if req.n == 10 then return "ArenaMoveAck", { pos = { x = "far" } } end
  return "EchoAck", { n = req.n }
end)`})
	for _, dev := range []bool{true, false} {
		vm := newVM(t, b, "lobby", &script.Services{Dev: dev, HandlerTimeout: 100 * time.Millisecond})
		stop := make(chan struct{})
		go func() { // the actor system's watchdog, in small
			for {
				select {
				case <-stop:
					return
				case now := <-time.After(10 * time.Millisecond):
					vm.Interrupt(now)
				}
			}
		}()
		cases := []struct {
			n    string
			code protocol.Code
			text string
		}{
			{"1", 1234, "nope"},
			{"2", protocol.Internal, "h.lua:4:"},
			{"3", protocol.Internal, "deadline"},
			{"4", protocol.Internal, "no reply"},
			{"5", protocol.Internal, `(handler at lua/lobby/h.lua:2): demo.EchoAck: unknown field "nope"`},
			{"6", protocol.BadRequest, "bad"},
			{"7", protocol.Internal, "may not be raised"},
			{"8", protocol.Internal, "NoSuchMessage"},
			{"10", protocol.Internal, "(handler at lua/lobby/h.lua:2): demo.ArenaMoveAck.pos.x"},
		}
		for _, c := range cases {
			a := request(t, vm, "EchoReq", "{ n = "+c.n+" }")
			if a.err == nil || a.err.Code != c.code {
				t.Fatalf("dev=%v n=%s: got %v, want code %d", dev, c.n, a.err, c.code)
			}
			detailed := c.code != protocol.Internal || c.n == "3" || c.n == "7"
			if (dev || detailed) && !strings.Contains(a.err.Message, c.text) {
				t.Errorf("dev=%v n=%s: message %q lacks %q", dev, c.n, a.err.Message, c.text)
			}
			if !dev && !detailed && a.err.Message != "internal error" {
				t.Errorf("production message leaks detail: %q", a.err.Message)
			}
		}
		// The VM goes on after all of that.
		if got := replyField(t, vm, request(t, vm, "EchoReq", "{ n = 9 }"), "n"); got != "9" {
			t.Fatalf("after errors: n = %s", got)
		}
		close(stop)
	}
}

func TestRequestDeadlineIsTimeout(t *testing.T) {
	b := compile(t, map[string]string{"lobby/h.lua": `mf.handle("EchoReq", function() while true do end end)`})
	vm := newVM(t, b, "lobby", &script.Services{HandlerTimeout: time.Minute})
	m := b.Schema.ByName("EchoReq")
	a := &answer{}
	go func() {
		time.Sleep(150 * time.Millisecond)
		vm.Interrupt(time.Now())
	}()
	vm.CallHandler(&call.Request{MsgID: m.ID, Seq: 1, Deadline: time.Now().Add(50 * time.Millisecond), Post: a})
	if a.err == nil || a.err.Code != protocol.Timeout {
		t.Fatalf("got %v, want TIMEOUT", a.err)
	}
}

func TestDecodeFailedAndMissingHandler(t *testing.T) {
	b := compile(t, map[string]string{"lobby/echo.lua": echo})
	vm := newVM(t, b, "lobby", &script.Services{})
	m := b.Schema.ByName("EchoReq")
	a := &answer{}
	vm.CallHandler(&call.Request{MsgID: m.ID, Seq: 1, Payload: []byte{0xff, 0xff, 0xff}, Post: a})
	if a.err == nil || a.err.Code != protocol.DecodeFailed {
		t.Fatalf("garbage payload: %v", a.err)
	}
	a = &answer{}
	vm.CallHandler(&call.Request{MsgID: b.Schema.ByName("ChatSendReq").ID, Seq: 1, Post: a})
	if a.err == nil || a.err.Code != protocol.Unavailable {
		t.Fatalf("no handler: %v", a.err)
	}
}

func TestCompileProblemsHaveFileAndLine(t *testing.T) {
	sch := loadSchema(t)
	cases := []struct {
		files map[string]string
		want  string
	}{
		{map[string]string{"lobby/a.lua": "local x = \nmf.handle(("}, "lua/lobby/a.lua:2"},
		{map[string]string{"lobby/a.lua": "\n\nlocal t = nil\nt.x = 1"}, "lua/lobby/a.lua:4"},
		{map[string]string{"lobby/a.lua": `mf.handle("ChatSendRq", function() end)`}, `no message "ChatSendRq"`},
		{map[string]string{"lobby/a.lua": `mf.handle("Ping", function() end)`}, "framework message"},
		{map[string]string{"lobby/a.lua": echo, "game/b.lua": echo}, "handled twice"},
		{map[string]string{"lobby/a.lua": echo + "\n" + echo}, "already has a handler"},
		{map[string]string{"lobby/a.lua": `mf.push("p", "EchoAck", {})`}, "may not be called while the script loads"},
		{map[string]string{"lobby/a.lua": `require("shared.nothing")`}, "module 'shared.nothing' not found"},
		{map[string]string{"lobby/a.lua": `mf.room_type("arena", { messages = { "Nope" } })`}, `no message "Nope"`},
		{map[string]string{"lobby/a.lua": `mf.login("guest", function() end)`}, "built-in"},
	}
	for _, c := range cases {
		_, err := script.Compile(writeTree(t, c.files), sch, nil)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: got %v, want %q", c.files, err, c.want)
		}
	}
}

func TestReloadKeepsModulesAndReplacesFunctions(t *testing.T) {
	v1 := compile(t, map[string]string{"lobby/c.lua": `
local m = mf.module("counter")
m.n = m.n or 0
mf.handle("EchoReq", function(ctx, req) m.n = m.n + 1; return "EchoAck", { n = m.n } end)`})
	v2 := compile(t, map[string]string{"lobby/c.lua": `
local m = mf.module("counter")
m.n = m.n or 0
mf.handle("EchoReq", function(ctx, req) m.n = m.n + 100; return "EchoAck", { n = m.n } end)`})
	broken := map[string]string{"lobby/c.lua": `mf.handle("EchoReq", function() return "EchoAck", {} end)` + "\nerror('boom')"}
	vm := newVM(t, v1, "lobby", &script.Services{})
	request(t, vm, "EchoReq", "{}")
	if got := replyField(t, vm, request(t, vm, "EchoReq", "{}"), "n"); got != "2" {
		t.Fatalf("v1: %s", got)
	}
	if err := vm.Apply(v2); err != nil {
		t.Fatal(err)
	}
	if got := replyField(t, vm, request(t, vm, "EchoReq", "{}"), "n"); got != "102" {
		t.Fatalf("v2 keeps the module's data: got %s, want 102", got)
	}
	if vm.Version() != v2.Version || v1.Version == v2.Version {
		t.Fatalf("versions %s %s %s", vm.Version(), v1.Version, v2.Version)
	}
	// A version whose scripts fail while loading in this VM leaves the VM on its previous one.
	if _, err := script.Compile(writeTree(t, broken), loadSchema(t), nil); err == nil {
		t.Fatal("a script raising at load time compiled")
	}
}

func TestApplyFailureKeepsPreviousVersion(t *testing.T) {
	good := compile(t, map[string]string{"lobby/c.lua": echo})
	// Loads in the probe (no store) but fails in a VM with a store whose data breaks it.
	tricky := compile(t, map[string]string{"lobby/c.lua": `
if mf.db.get("flag") then error("flag is set") end
mf.handle("EchoReq", function() return "EchoAck", { n = 7 } end)`})
	st := openStore(t)
	vm := newVM(t, good, "lobby", &script.Services{Store: st})
	if err := st.Put(t.Context(), "lua/flag", []byte("true")); err != nil {
		t.Fatal(err)
	}
	if err := vm.Apply(tricky); err == nil || !strings.Contains(err.Error(), "flag is set") {
		t.Fatalf("apply: %v", err)
	}
	if vm.Version() != good.Version {
		t.Fatal("the VM left its working version")
	}
	if got := replyField(t, vm, request(t, vm, "EchoReq", "{ n = 1 }"), "n"); got != "2" {
		t.Fatalf("old handler: %s", got)
	}
}

func TestSandbox(t *testing.T) {
	b := compile(t, map[string]string{"lobby/s.lua": `
local s = mf.module("sandbox")
s.io, s.execute, s.loadfile, s.dofile, s.getenv = io, os.execute, loadfile, dofile, os.getenv
s.time = os.time()
mf.handle("EchoReq", function() return "EchoAck", {} end)`})
	vm := newVM(t, b, "lobby", &script.Services{})
	if err := vm.L.DoString(`
local s = mf.module("sandbox")
assert(s.io == nil and s.execute == nil and s.loadfile == nil and s.dofile == nil and s.getenv == nil, "host access")
assert(s.time > 0)
assert(not pcall(require, "os"))`); err != nil {
		t.Fatal(err)
	}
}

func TestRequireSharedModule(t *testing.T) {
	b := compile(t, map[string]string{
		"shared/util.lua": `local u = {}; function u.double(x) return 2 * x end; return u`,
		"lobby/a.lua":     `local u = require("shared.util"); mf.handle("EchoReq", function(ctx, req) return "EchoAck", { n = u.double(req.n) } end)`,
	})
	if _, ok := b.RoomTypes["x"]; ok || len(b.Chunks("shared")) != 0 {
		t.Fatal("shared/ is not a role")
	}
	vm := newVM(t, b, "lobby", &script.Services{})
	if got := replyField(t, vm, request(t, vm, "EchoReq", "{ n = 21 }"), "n"); got != "42" {
		t.Fatalf("n = %s", got)
	}
}

func TestTimers(t *testing.T) {
	b := compile(t, map[string]string{"lobby/t.lua": `
local m = mf.module("t")
m.loaded, m.later, m.every = 0, 0, 0
mf.timer.every(0.01, function() m.loaded = m.loaded + 1 end)
mf.handle("EchoReq", function(ctx, req)
  if req.n == 1 then mf.timer.after(0, function() m.later = m.later + 1 end) end
  if req.n == 2 then m.id = mf.timer.every(0.01, function() m.every = m.every + 1 end) end
  if req.n == 3 then mf.timer.cancel(m.id) end
  if req.n == 4 then mf.timer.after(0, function() error("timer failure") end) end
  return "EchoAck", { n = m.loaded * 1000000 + m.later * 1000 + m.every }
end)`})
	vm := newVM(t, b, "lobby", &script.Services{})
	run := func(now time.Time) {
		for at, ok := vm.NextTimer(); ok && !at.After(now); at, ok = vm.NextTimer() {
			vm.RunTimers(now)
		}
	}
	now := time.Now().Add(time.Second)
	run(now)
	for _, n := range []string{"1", "2", "4"} {
		request(t, vm, "EchoReq", "{ n = "+n+" }")
	}
	run(now.Add(2 * time.Second))
	got := replyField(t, vm, request(t, vm, "EchoReq", "{ n = 3 }"), "n")
	if got != "2001001" {
		t.Fatalf("counters %s, want loaded 2, later 1, every 1", got)
	}
	// Reloading cancels the timers set while loading; the one set by a handler was cancelled.
	if err := vm.Apply(compile(t, map[string]string{"lobby/t.lua": `mf.handle("EchoReq", function() return "EchoAck", {} end)`})); err != nil {
		t.Fatal(err)
	}
	if at, ok := vm.NextTimer(); ok {
		t.Fatalf("a timer survived the reload, due %v", at)
	}
}

func openStore(t *testing.T) store.Store {
	t.Helper()
	st, err := store.OpenBolt(store.BoltConfig{Path: filepath.Join(t.TempDir(), "db")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func TestDB(t *testing.T) {
	b := compile(t, map[string]string{"lobby/db.lua": `
mf.handle("EchoReq", function(ctx, req)
  if req.n == 1 then mf.db.put("k", { list = { 1, 2, 3 }, name = "x", nested = { ok = true } }) end
  if req.n == 2 then
    local v = mf.db.get("k")
    assert(v.list[3] == 3 and v.name == "x" and v.nested.ok == true, "round trip")
    assert(mf.db.get("missing") == nil)
    mf.db.delete("k")
    assert(mf.db.get("k") == nil)
  end
  if req.n == 3 then mf.db.put("f", { fn = print }) end
  if req.n == 4 then local t = {}; t.self = t; mf.db.put("c", t) end
  return "EchoAck", {}
end)`})
	st := openStore(t)
	vm := newVM(t, b, "lobby", &script.Services{Store: st, Dev: true})
	for _, n := range []string{"1", "2"} {
		if a := request(t, vm, "EchoReq", "{ n = "+n+" }"); a.err != nil {
			t.Fatalf("n=%s: %v", n, a.err)
		}
	}
	for n, want := range map[string]string{"3": "value.fn: a function cannot be stored", "4": "contains itself"} {
		a := request(t, vm, "EchoReq", "{ n = "+n+" }")
		if a.err == nil || !strings.Contains(a.err.Message, want) {
			t.Errorf("n=%s: %v, want %q", n, a.err, want)
		}
	}
}

// TestDBVersions: mf.db.get's version, mf.db.cas and mf.db.batch, and
// store errors as codes that leave the actor going.
func TestDBVersions(t *testing.T) {
	b := compile(t, map[string]string{"lobby/db.lua": `
mf.handle("EchoReq", function(ctx, req)
  if req.n == 1 then
    local v, ver = mf.db.get("c")
    assert(v == nil and ver == 0, "missing key: nil, 0")
    assert(mf.db.cas("c", 0, 1) == true, "create")
    assert(mf.db.cas("c", 0, 2) == false, "create again")
    v, ver = mf.db.get("c")
    assert(v == 1 and ver > 0, "after create")
    assert(mf.db.cas("c", ver, v + 1) == true, "increment")
    assert(mf.db.cas("c", ver, 99) == false, "stale version")
    local _, ver2 = mf.db.get("c")
    assert(mf.db.batch({ { key = "c", value = 10, version = ver2 }, { key = "d", value = "x" } }) == true, "batch")
    assert(mf.db.batch({ { key = "d", delete = true }, { key = "c", value = 0, version = ver2 } }) == false, "stale batch")
    assert(mf.db.get("d") == "x" and mf.db.get("c") == 10, "a failed batch wrote nothing")
    assert(mf.db.cas("d", select(2, mf.db.get("d")), nil) == true, "conditional delete")
    assert(mf.db.get("d") == nil)
  end
  if req.n == 2 then mf.db.put("big", string.rep("x", 16 * 1024 * 1024)) end -- 2 bytes over, as JSON
  if req.n == 3 then mf.db.cas("c", -2, 1) end
  if req.n == 4 then mf.db.batch({ "not a table" }) end
  return "EchoAck", {}
end)`})
	st := openStore(t)
	vm := newVM(t, b, "lobby", &script.Services{Store: st, Dev: true})
	if a := request(t, vm, "EchoReq", "{ n = 1 }"); a.err != nil {
		t.Fatal(a.err)
	}
	a := request(t, vm, "EchoReq", "{ n = 2 }")
	if a.err == nil || a.err.Code != protocol.BadRequest || !strings.Contains(a.err.Message, "too large") {
		t.Fatalf("a value over the store's limit: %v, want BAD_REQUEST", a.err)
	}
	for n, want := range map[string]string{"3": "a version is a whole number", "4": "op 1 is not a table"} {
		if a := request(t, vm, "EchoReq", "{ n = "+n+" }"); a.err == nil || !strings.Contains(a.err.Message, want) {
			t.Errorf("n=%s: %v, want %q", n, a.err, want)
		}
	}
	if a := request(t, vm, "EchoReq", "{ n = 1 }"); a.err == nil || !strings.Contains(a.err.Message, "missing key") {
		t.Fatalf("the actor after the errors: %v", a.err) // c exists now: the first assert fails
	}
}

func TestPushAndLogin(t *testing.T) {
	b := compile(t, map[string]string{
		"lobby/p.lua": `mf.handle("EchoReq", function(ctx, req)
  local a = mf.push("p2", "ChatMessage", { text = "hi" })
  local b = mf.push("offline", "ChatMessage", { text = "hi" })
  return "EchoAck", { n = (a and 1 or 0) + (b and 10 or 0) + mf.push_all("ChatMessage", {}) * 100 }
end)`,
		"login/l.lua": `mf.login("ticket", function(ctx, req)
  if req.secret == "good" then return "acct-" .. req.account end
  if req.secret == "raise" then mf.error(mf.code.UNAUTHENTICATED, "bad ticket") end
  return nil
end)`,
	})
	p := &pushes{}
	vm := newVM(t, b, "lobby", &script.Services{Players: p})
	if got := replyField(t, vm, request(t, vm, "EchoReq", "{}"), "n"); got != "301" {
		t.Fatalf("push results %s", got)
	}
	if strings.Join(p.list, ",") != "p2,offline" {
		t.Fatalf("pushed to %v", p.list)
	}
	if b.Routes.Logins["ticket"] != "login" {
		t.Fatalf("logins %v", b.Routes.Logins)
	}
	lvm := newVM(t, b, "login", &script.Services{})
	for secret, want := range map[string]string{"good": "acct-bob", "raise": "UNAUTHENTICATED: bad ticket", "other": "UNAUTHENTICATED: login refused"} {
		var got string
		lvm.CallLogin(&call.Login{Method: "ticket", Account: "bob", Secret: secret, Post: posted(func(a call.Answer) {
			got, _ = a.Value.(string)
			if a.Err != nil {
				got = a.Err.Error()
			}
		})})
		if got != want {
			t.Errorf("secret %s: %q, want %q", secret, got, want)
		}
	}
}

// room is a RoomHandle that records what the room's scripts do.
type room struct {
	pushed  []string
	removed []string
	closed  bool
}

func (r *room) ID() string   { return "r1" }
func (r *room) Type() string { return "arena" }
func (r *room) Broadcast(id uint16, _ []byte, except string) {
	r.pushed = append(r.pushed, "all-"+except)
}
func (r *room) Send(p string, _ uint16, _ []byte) bool { r.pushed = append(r.pushed, p); return true }
func (r *room) Remove(p string)                        { r.removed = append(r.removed, p) }
func (r *room) Close()                                 { r.closed = true }

func TestRoomCallbacks(t *testing.T) {
	b := compile(t, map[string]string{"game/arena.lua": `
local arena = mf.room_type("arena", { tick_hz = 20, max_players = 2, messages = { "ArenaMoveReq" } })
function arena.on_create(room, args) room.state.label = args.label end
function arena.on_join(room, player, args)
  if player.id == "banned" then mf.error(1500, "banned") end
  player.moves = 0
  return { label = room.state.label, n = 1 }
end
function arena.on_message(room, player, name, msg)
  player.moves = player.moves + 1
  room:send(player.id, "ArenaMoveAck", {})
  return "ArenaMoveAck", { pos = { x = player.moves } }
end
function arena.on_tick(room, dt)
  room.state.dt = dt
  room:broadcast("ArenaState", { tick = room.tick })
  if room.tick == 2 then room:remove("p1") end
end
function arena.on_leave(room, player, reason) return { moves = player.moves, reason = reason } end
function arena.on_close(room) room:close() end`})
	rt := b.RoomTypes["arena"]
	if rt.TickHz != 20 || rt.MaxPlayers != 2 || rt.Role != "game" || rt.Messages[0] != "demo.ArenaMoveReq" {
		t.Fatalf("room type %+v", rt)
	}
	if r := b.Routes.Messages[b.Schema.ByName("ArenaMoveReq").ID]; r.Role != "" || !r.InRooms("arena") {
		t.Fatalf("route %+v", r)
	}
	vm := newVM(t, b, "game", &script.Services{})
	h := &room{}
	if err := vm.RoomCreate(h, map[string]any{"label": "L"}); err != nil {
		t.Fatal(err)
	}
	out, err := vm.RoomJoin(h, "p1", nil, time.Now().Add(time.Second))
	if err != nil || out.(map[string]any)["label"] != "L" {
		t.Fatalf("join: %v %v", out, err)
	}
	var ce *protocol.CodeError
	if _, err := vm.RoomJoin(h, "banned", nil, time.Now().Add(time.Second)); !errors.As(err, &ce) || ce.Code != 1500 {
		t.Fatalf("banned join: %v", err)
	}
	m := b.Schema.ByName("ArenaMoveReq")
	a := &answer{}
	vm.RoomMessage(h, &call.Request{MsgID: m.ID, Seq: 3, PlayerID: "p1", Deadline: time.Now().Add(time.Second), Post: a})
	if a.err != nil || a.msgID != b.Schema.ByName("ArenaMoveAck").ID {
		t.Fatalf("room message: %+v", a)
	}
	a = &answer{}
	vm.RoomMessage(h, &call.Request{MsgID: m.ID, Seq: 4, PlayerID: "stranger", Post: a})
	if a.err == nil || a.err.Code != protocol.BadRequest {
		t.Fatalf("stranger: %v", a.err)
	}
	vm.RoomTick(h, 50*time.Millisecond)
	vm.RoomTick(h, 50*time.Millisecond)
	if len(h.removed) != 1 || h.removed[0] != "p1" {
		t.Fatalf("removed %v", h.removed)
	}
	left := vm.RoomLeave(h, "p1", "left").(map[string]any)
	if left["moves"] != 1.0 || left["reason"] != "left" {
		t.Fatalf("leave: %v", left)
	}
	vm.RoomClosed(h)
	if !h.closed || strings.Join(h.pushed, ",") != "p1,all-,all-" {
		t.Fatalf("closed %v pushed %v", h.closed, h.pushed)
	}
}

func TestExportImport(t *testing.T) {
	L := lua.NewState()
	defer L.Close()
	if err := L.DoString(`v = { 1, 2, { a = "x", [5] = true }, n = 2.5 }`); err != nil {
		t.Fatal(err)
	}
	x, err := script.Export(L.GetGlobal("v"))
	if err != nil {
		t.Fatal(err)
	}
	m := x.(map[string]any)
	if m["n"] != 2.5 || m["1"] != 1.0 || m["3"].(map[string]any)["5"] != true {
		t.Fatalf("export %v", x)
	}
	seq, _ := script.Export(L.GetGlobal("v").(*lua.LTable).RawGetInt(3))
	back := script.Import(L, []any{1.0, "two", seq}).(*lua.LTable)
	if back.Len() != 3 || back.RawGetInt(2).String() != "two" {
		t.Fatalf("import %v", back)
	}
}

func TestRoomWithoutCallbacks(t *testing.T) {
	b := compile(t, map[string]string{"game/bare.lua": `mf.room_type("arena", {})`})
	vm := newVM(t, b, "game", &script.Services{})
	h := &room{}
	if err := vm.RoomCreate(h, nil); err != nil {
		t.Fatal(err)
	}
	if out, err := vm.RoomJoin(h, "p1", nil, time.Now().Add(time.Second)); err != nil || out != nil {
		t.Fatalf("join without on_join: %v %v", out, err)
	}
	if out := vm.RoomLeave(h, "p1", "left"); out != nil {
		t.Fatalf("leave without on_leave: %v", out)
	}
	vm.RoomTick(h, time.Millisecond)
	vm.RoomClosed(h)
}

func TestContextIsReadOnly(t *testing.T) {
	b := compile(t, map[string]string{"lobby/c.lua": `
mf.handle("EchoReq", function(ctx, req)
  assert(ctx.player_id == "p1" and ctx.session_id == "s1" and ctx.seq == 1 and ctx.msg == "EchoReq" and ctx.nope == nil)
  if req.n == 1 then ctx.player_id = "someone else" end
  return "EchoAck", { n = req.n }
end)`})
	vm := newVM(t, b, "lobby", &script.Services{Dev: true})
	if a := request(t, vm, "EchoReq", "{ n = 0 }"); a.err != nil {
		t.Fatal(a.err)
	}
	if a := request(t, vm, "EchoReq", "{ n = 1 }"); a.err == nil || !strings.Contains(a.err.Message, "read-only") {
		t.Fatalf("writing ctx: %v", a.err)
	}
}
