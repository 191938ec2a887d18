package script_test

import (
	"testing"

	"github.com/moonforge/moonforge/engine/call"
	"github.com/moonforge/moonforge/engine/protocol"
	"github.com/moonforge/moonforge/engine/script"
)

type presence map[string][2]bool

func (p presence) Online(id string) (bool, bool) { return p[id][0], p[id][1] }

// A message declared by rooms may also have a handler (for players in no such room); the table
// routes both, and a second handler is still refused.
func TestRoomMessageWithAHandler(t *testing.T) {
	b := compile(t, map[string]string{
		"game/arena.lua":  `mf.room_type("arena", { messages = { "ArenaMoveReq" } })`,
		"game/duel.lua":   `mf.room_type("duel", { messages = { "ArenaMoveReq" } })`,
		"lobby/move.lua":  `mf.handle("ArenaMoveReq", function() mf.error(1700, "not in a match") end)`,
		"lobby/other.lua": `mf.handle("EchoReq", function() return "EchoAck", {} end)`,
	})
	r := b.Routes.Messages[b.Schema.ByName("ArenaMoveReq").ID]
	if r.Role != "lobby" || len(r.Rooms) != 2 || r.Rooms[0] != "arena" || r.Rooms[1] != "duel" {
		t.Fatalf("route %+v", r)
	}
	_, err := script.Compile(writeTree(t, map[string]string{
		"lobby/move.lua": `mf.handle("ArenaMoveReq", function() end)`,
		"match/move.lua": `mf.handle("ArenaMoveReq", function() end)`,
	}), loadSchema(t), nil)
	if err == nil {
		t.Fatal("two handlers of one message compiled")
	}
}

func TestOnlineSessionEndAndRoomCall(t *testing.T) {
	files := map[string]string{"lobby/l.lua": `
local m = mf.module("l")
mf.on_session_end(function(player_id, reason) m.ended = player_id .. ":" .. reason end, { key = "k" })
mf.handle("EchoReq", function(ctx, req)
  if req.body == "online" then
    local on, conn = mf.player.online("p2")
    local off = mf.player.online("p3")
    return "EchoAck", { body = tostring(on) .. tostring(conn) .. tostring(off) }
  elseif req.body == "ended" then
    return "EchoAck", { body = m.ended }
  end
  local v = mf.room.call("r7", "score", { n = req.n })
  return "EchoAck", { n = v.n }
end)`}
	rooms := &calls{}
	b := compile(t, files)
	if key, ok := b.Routes.SessionEnd["lobby"]; !ok || key != "k" {
		t.Fatalf("session-end hooks in the table: %v", b.Routes.SessionEnd)
	}
	vm := newVM(t, b, "lobby", &script.Services{Rooms: rooms, Presence: presence{"p2": {true, false}}})
	vm.SetReplyTo(call.Address{Box: 1}, posted(func(call.Answer) {}))
	if got := replyField(t, vm, send(t, vm, "p1", "online", 0), "body"); got != "truefalsefalse" {
		t.Fatalf("mf.player.online: %s", got)
	}
	vm.SessionEnded(call.Presence{PlayerID: "p9", Event: call.SessionEnded, Reason: "expired"}, "k")
	if got := replyField(t, vm, send(t, vm, "p1", "ended", 0), "body"); got != "p9:expired" {
		t.Fatalf("mf.on_session_end: %s", got)
	}

	a := send(t, vm, "p1", "call", 4)
	cs := rooms.take()
	if a.count() != 0 || len(cs) != 1 || cs[0].Target != "r7" || cs[0].Name != "score" || cs[0].Args.(map[string]any)["n"] != 4.0 {
		t.Fatalf("mf.room.call: answered %d, calls %+v", a.count(), cs)
	}
	vm.Resume(call.Answer{ID: cs[0].ID, Value: map[string]any{"n": 5.0}})
	if got := replyField(t, vm, a, "n"); got != "5" {
		t.Fatalf("mf.room.call's answer: n = %s", got)
	}
	a = send(t, vm, "p1", "call", 1)
	vm.Resume(call.Answer{ID: rooms.take()[0].ID, Err: &protocol.CodeError{Code: 1601, Message: "no"}})
	if a.err == nil || a.err.Code != 1601 {
		t.Fatalf("an on_call error reaches the handler as mf.error: %+v", a.err)
	}
}
