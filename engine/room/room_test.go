package room_test

import (
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/moonforge/moonforge/engine/actor"
	"github.com/moonforge/moonforge/engine/call"
	"github.com/moonforge/moonforge/engine/protocol"
	"github.com/moonforge/moonforge/engine/room"
	"github.com/moonforge/moonforge/engine/schema"
	"github.com/moonforge/moonforge/engine/script"
)

const arena = `
local function roster(room) local n = {} for id in pairs(room.players) do n[#n + 1] = id end return n end
local arena = mf.room_type("duel", { tick_hz = 50, max_players = 2, messages = { "ArenaMoveReq" } })
function arena.on_join(room, player, args)
  if args and args.refuse then mf.error(1600, "refused") end
  player.moves = 0
  return { count = #roster(room) }
end
function arena.on_leave(room, player, reason) return { moves = player.moves, reason = reason } end
function arena.on_message(room, player, name, msg)
  player.moves = player.moves + 1
  return "ArenaMoveAck", { pos = { x = player.moves } }
end
function arena.on_tick(room, dt) room:broadcast("ArenaState", { tick = room.tick }) end
`

// players records pushes per player.
type players struct {
	mu sync.Mutex
	n  map[string]int
}

func (p *players) Push(id string, _ uint16, _ []byte) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.n[id]++
	return true
}
func (p *players) PushAll(uint16, []byte) int { return 0 }
func (p *players) count(id string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.n[id]
}

func setup(t *testing.T) (*room.Manager, *players, *script.Bundle) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "lua")
	if err := os.MkdirAll(filepath.Join(dir, "game"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "game", "duel.lua"), []byte(arena), 0o644); err != nil {
		t.Fatal(err)
	}
	sch, err := schema.Load("../../proto")
	if err != nil {
		t.Fatal(err)
	}
	b, err := script.Compile(dir, sch, nil)
	if err != nil {
		t.Fatal(err)
	}
	versions := script.NewVersions(b)
	p := &players{n: map[string]int{}}
	svc := &script.Services{Players: p}
	sys := actor.NewSystem(actor.SystemConfig{Services: svc, Versions: versions})
	m := room.NewManager(room.Config{System: sys, Versions: versions, Players: p})
	svc.Rooms = m
	t.Cleanup(func() { m.Stop(); sys.Stop() })
	return m, p, b
}

func soon() time.Time { return time.Now().Add(5 * time.Second) }

func code(err error) protocol.Code {
	var ce *protocol.CodeError
	if errors.As(err, &ce) {
		return ce.Code
	}
	return 0
}

func TestJoinLeaveAndCapacity(t *testing.T) {
	m, _, _ := setup(t)
	if _, err := m.Create("nope", nil); code(err) != protocol.BadRequest {
		t.Fatalf("unknown type: %v", err)
	}
	id, err := m.Create("duel", nil)
	if err != nil {
		t.Fatal(err)
	}
	out, err := join(m, id, "a", nil)
	if err != nil || out.(map[string]any)["count"] != 1.0 {
		t.Fatalf("join a: %v %v", out, err)
	}
	if _, err := join(m, id, "x", map[string]any{"refuse": true}); code(err) != 1600 {
		t.Fatalf("refused join: %v", err)
	}
	if m.Of("x") != "" {
		t.Fatal("a refused player is in the room")
	}
	if _, err := join(m, id, "b", nil); err != nil {
		t.Fatal(err)
	}
	if _, err := join(m, id, "c", nil); code(err) != protocol.BadRequest {
		t.Fatalf("third player in a room of 2: %v", err)
	}
	if _, err := join(m, id, "a", nil); code(err) != protocol.BadRequest {
		t.Fatalf("joining twice: %v", err)
	}
	list := m.List("duel")
	if len(list) != 1 || list[0].Players != 2 || list[0].MaxPlayers != 2 {
		t.Fatalf("list %+v", list)
	}
	left, err := leave(m, "a")
	if err != nil || left.(map[string]any)["reason"] != "left" {
		t.Fatalf("leave: %v %v", left, err)
	}
	if _, err := leave(m, "a"); code(err) != protocol.BadRequest {
		t.Fatalf("leave twice: %v", err)
	}
	// The last player leaving closes the room.
	if _, err := leave(m, "b"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return m.Count() == 0 })
	if _, err := join(m, id, "a", nil); code(err) != protocol.BadRequest {
		t.Fatalf("join a closed room: %v", err)
	}
}

func TestSwitchRoomsAndPlayerGone(t *testing.T) {
	m, _, _ := setup(t)
	r1, _ := m.Create("duel", nil)
	r2, _ := m.Create("duel", nil)
	if _, err := join(m, r1, "a", nil); err != nil {
		t.Fatal(err)
	}
	if _, err := join(m, r1, "b", nil); err != nil {
		t.Fatal(err)
	}
	if _, err := join(m, r2, "a", nil); err != nil {
		t.Fatal(err)
	}
	if m.Of("a") != r2 || m.Of("b") != r1 {
		t.Fatalf("a in %s, b in %s", m.Of("a"), m.Of("b"))
	}
	m.Notify(call.Presence{PlayerID: "b", Event: call.SessionEnded, Reason: "expired"})
	waitFor(t, func() bool { return m.Of("b") == "" && m.Count() == 1 })
}

func TestMessagesAndTicks(t *testing.T) {
	m, p, b := setup(t)
	id, _ := m.Create("duel", nil)
	if _, err := join(m, id, "a", nil); err != nil {
		t.Fatal(err)
	}
	move := b.Schema.ByName("ArenaMoveReq")
	answers := make(chan uint16, 2)
	r := replier(func(id uint16, err *protocol.CodeError) {
		if err != nil {
			answers <- uint16(err.Code)
			return
		}
		answers <- id
	})
	m.Deliver(id, &call.Request{MsgID: move.ID, Seq: 1, PlayerID: "a", Deadline: soon(), Post: r})
	if got := <-answers; got != b.Schema.ByName("ArenaMoveAck").ID {
		t.Fatalf("move answered with %d", got)
	}
	m.Deliver("rgone", &call.Request{MsgID: move.ID, Seq: 2, PlayerID: "nobody", Deadline: soon(), Post: r})
	if got := <-answers; got != uint16(protocol.BadRequest) {
		t.Fatalf("move by a player in no room: %d", got)
	}
	waitFor(t, func() bool { return p.count("a") >= 5 }) // ArenaState at 50 Hz
	left, err := leave(m, "a")
	if err != nil || left.(map[string]any)["moves"] != 1.0 {
		t.Fatalf("leave: %v %v", left, err)
	}
}

type replier func(id uint16, err *protocol.CodeError)

func (f replier) Post(a call.Answer) { f(a.MsgID, a.Err) }

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached in 5s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// answerCh is a Poster that hands the one answer to the test.
type answerCh chan call.Answer

func (c answerCh) Post(a call.Answer) { c <- a }

// ask sends a call through f and waits for its answer.
func ask(f func(*call.Call), c *call.Call) (any, error) {
	ch := make(answerCh, 1)
	c.ID, c.Deadline, c.Post = 1, soon(), ch
	f(c)
	select {
	case a := <-ch:
		if a.Err != nil {
			return nil, a.Err
		}
		return a.Value, nil
	case <-time.After(5 * time.Second):
		return nil, errors.New("no answer")
	}
}

func join(m *room.Manager, roomID, player string, args any) (any, error) {
	return ask(m.Join, &call.Call{Target: roomID, PlayerID: player, Args: args})
}

func leave(m *room.Manager, player string) (any, error) {
	return ask(m.Leave, &call.Call{PlayerID: player})
}
