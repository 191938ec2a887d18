package script_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	lua "github.com/yuin/gopher-lua"

	"github.com/moonforge/moonforge/engine/call"
	"github.com/moonforge/moonforge/engine/playerdata"
	"github.com/moonforge/moonforge/engine/protocol"
	"github.com/moonforge/moonforge/engine/script"
	"github.com/moonforge/moonforge/engine/store"
)

const playerLua = `
mf.handle("EchoReq", function(ctx, req)
  if req.body == "nil" then mf.player.data(nil) end
  local me = mf.player.data(ctx)
  if req.body == "gold" then me.gold = me.gold + req.n end
  if req.body == "bad" then me.gold = "lots" end
  if req.body == "save" then me.gold = me.gold + req.n; mf.player.save(ctx) end
  if req.body == "same" then assert(me == mf.player.data(ctx), "another table") end
  if req.body == "raise" then me.gold = me.gold + req.n; mf.error(1001, "after a change") end
  return "EchoAck", { n = me.gold }
end)
mf.handle("ChatSendReq", function(ctx, req)
  mf.player.data(ctx)
  return "ChatSendAck", {}
end, { key = "chat" })
`

// playerVM is a lobby VM with player data on a bolt store; resume feeds it the answers of its
// waits.
func playerVM(t *testing.T, role string) (*script.VM, *playerdata.Manager, store.Store, func()) {
	t.Helper()
	st := openStore(t)
	m, err := playerdata.Open(playerdata.Config{Store: st, Dir: t.TempDir(), FlushEvery: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Close(context.Background()) })
	vm := newVM(t, compile(t, map[string]string{role + "/p.lua": playerLua}), role, &script.Services{
		Store: st, PlayerData: m, PlayerRole: "lobby", PlayerMessage: "demo.PlayerData", Dev: true, HandlerTimeout: 10 * time.Second,
	})
	answers := make(chan call.Answer, 16)
	vm.SetReplyTo(call.Address{Box: 1}, posted(func(a call.Answer) { answers <- a }))
	return vm, m, st, func() {
		t.Helper()
		select {
		case a := <-answers:
			vm.Resume(a)
		case <-time.After(10 * time.Second):
			t.Fatal("no answer to the handler's wait")
		}
	}
}

// storedGold decodes the gold of the player's stored record.
func storedGold(t *testing.T, vm *script.VM, st store.Store, player string) int {
	t.Helper()
	raw, err := st.Get(t.Context(), store.PlayerKey(player, "data"))
	if err != nil {
		t.Fatalf("stored data of %s: %v", player, err)
	}
	tbl, err := vm.Bundle().Codecs.Type("demo.PlayerData").Decode(vm.L, raw)
	if err != nil {
		t.Fatal(err)
	}
	return int(lua.LVAsNumber(tbl.RawGetString("gold")))
}

func TestPlayerDataInAVM(t *testing.T) {
	vm, m, st, resume := playerVM(t, "lobby")

	first := send(t, vm, "p1", "gold", 3)
	if first.count() != 0 {
		t.Fatal("the first mf.player.data did not wait for the load")
	}
	resume()
	if n, _ := reply(t, vm, first); n != 3 {
		t.Fatalf("gold %d after the first handler, want 3", n)
	}
	if a := send(t, vm, "p1", "same", 0); a.count() != 1 || a.err != nil {
		t.Fatalf("a loaded player's table: answered %d, %v (it must not wait, and be the same table)", a.count(), a.err)
	}
	if _, err := st.Get(t.Context(), store.PlayerKey("p1", "data")); err == nil {
		t.Fatal("a change was written to the store before a save, a flush or the session's end")
	}

	// A change then an error: the change stays (the table is the data).
	if a := send(t, vm, "p1", "raise", 2); a.err == nil || a.err.Code != 1001 {
		t.Fatalf("raise: %+v", a.err)
	}
	// A value that does not encode: INTERNAL naming the field, and the table is put back.
	bad := send(t, vm, "p1", "bad", 0)
	if bad.err == nil || bad.err.Code != protocol.Internal || !strings.Contains(bad.err.Message, "gold") {
		t.Fatalf("a bad value: %+v", bad.err)
	}
	save := send(t, vm, "p1", "save", 4)
	resume()
	if n, _ := reply(t, vm, save); n != 9 {
		t.Fatalf("gold %d after the save, want 9 (3 + 2 + 4)", n)
	}
	if got := storedGold(t, vm, st, "p1"); got != 9 {
		t.Fatalf("stored gold %d after mf.player.save, want 9", got)
	}

	// Keyed handlers run on another actor: refused.
	m2 := vm.Bundle().Codecs.ByName("ChatSendReq")
	keyed := &answer{}
	vm.CallHandler(&call.Request{MsgID: m2.ID, Msg: m2.FullName, Seq: 1, PlayerID: "p1", Deadline: time.Now().Add(5 * time.Second), Post: keyed})
	if keyed.err == nil || !strings.Contains(keyed.err.Message, "opts.key") {
		t.Fatalf("mf.player.data in a keyed handler: %+v", keyed.err)
	}

	// The session's end unloads: saved, lease released.
	gold := send(t, vm, "p1", "gold", 1)
	if gold.err != nil {
		t.Fatal(gold.err)
	}
	vm.SessionEnded(call.Presence{PlayerID: "p1", Event: call.SessionEnded, Reason: "logout"}, "p1")
	other, err := playerdata.Open(playerdata.Config{Store: st, Owner: "other-node", Dir: t.TempDir(), FlushEvery: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close(context.Background())
	// Another node takes the player as soon as the unload released the lease, after its save.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		_, err := other.Load(t.Context(), "p1")
		if err == nil {
			break
		}
		if !errors.Is(err, store.ErrLeaseHeld) || time.Now().After(deadline) {
			t.Fatalf("another node after the session's end: %v", err)
		}
	}
	if m.Loaded("p1") != nil {
		t.Fatal("the player is still loaded after the session's end")
	}
	if got := storedGold(t, vm, st, "p1"); got != 10 {
		t.Fatalf("stored gold %d after the session's end, want 10", got)
	}
	if err := other.Unload(t.Context(), "p1"); err != nil {
		t.Fatal(err)
	}
	// The next session loads it again.
	again := send(t, vm, "p1", "gold", 0)
	resume()
	if n, _ := reply(t, vm, again); n != 10 {
		t.Fatalf("gold %d in the next session, want 10", n)
	}
}

func TestPlayerDataOnlyInThePlayerRole(t *testing.T) {
	vm, _, _, _ := playerVM(t, "game")
	a := send(t, vm, "p1", "gold", 1)
	if a.err == nil || !strings.Contains(a.err.Message, "role lobby") {
		t.Fatalf("mf.player.data in role game: %+v", a.err)
	}
}

// TestPlayerDataMisuse: a call without the handler's ctx is an error, and the actor goes on.
func TestPlayerDataMisuse(t *testing.T) {
	vm, _, _, resume := playerVM(t, "lobby")
	a := send(t, vm, "p1", "nil", 0)
	if a.err == nil || !strings.Contains(a.err.Message, "pass the handler's ctx") {
		t.Fatalf("mf.player.data(nil): %+v", a.err)
	}
	b := send(t, vm, "p1", "gold", 1)
	resume()
	if n, _ := reply(t, vm, b); n != 1 {
		t.Fatalf("the actor after a misuse: gold %d", n)
	}
}

// TestPlayerDataLeaseHeldElsewhere: while another node holds the player's lease, the handler
// gets UNAVAILABLE and the actor goes on.
func TestPlayerDataLeaseHeldElsewhere(t *testing.T) {
	vm, _, st, resume := playerVM(t, "lobby")
	other, err := playerdata.Open(playerdata.Config{Store: st, Owner: "other-node", Dir: t.TempDir(), FlushEvery: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close(context.Background())
	if _, err := other.Load(t.Context(), "p2"); err != nil {
		t.Fatal(err)
	}
	a := send(t, vm, "p2", "gold", 1)
	resume()
	if a.err == nil || a.err.Code != protocol.Unavailable || !strings.Contains(a.err.Message, "other-node") {
		t.Fatalf("a player held by another node: %+v", a.err)
	}
	if b := send(t, vm, "p3", "gold", 1); b.count() != 0 {
		t.Fatal("the actor did not go on")
	}
	resume()
}
