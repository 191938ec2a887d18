package room_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
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
function arena.on_leave(room, player, reason)
  if reason == "closed" and room.state.slow_close then
    local t = os.clock()
    while os.clock() - t < 0.3 do end -- a slow goodbye keeps the room closing
  end
  return { moves = player.moves, reason = reason }
end
function arena.on_message(room, player, name, msg)
  player.moves = player.moves + 1
  return "ArenaMoveAck", { pos = { x = player.moves } }
end
function arena.on_tick(room, dt) room:broadcast("ArenaState", { tick = room.tick }) end
function arena.on_disconnect(room, player) room.state.log = (room.state.log or "") .. "d:" .. player.id .. " " end
function arena.on_reconnect(room, player) room.state.log = (room.state.log or "") .. "r:" .. player.id .. " " end
function arena.on_call(room, name, args)
  if name == "log" then return { log = room.state.log or "", timer = room.state.timer or 0 } end
  if name == "watch" then
    -- A timer set in a room callback runs in the room's VM, with its room object.
    mf.timer.every(0.01, function()
      room.state.timer = (room.state.timer or 0) + 1
      mf.push(args.watcher, "ArenaState", { tick = room.state.timer })
    end)
    return true
  end
  if name == "close" then room:close() return "closing" end
  if name == "slow close" then room.state.slow_close = true room:close() return "closing" end
  mf.error(1601, "no call " .. name)
end
local still = mf.room_type("still", { tick_hz = 0 })
function still.on_call(room) mf.timer.after(0.01, function() room:close() end) return true end
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
	return setupWith(t, nil)
}

// online is a presence directory of the players named in it.
type online map[string]bool

func (o online) Online(id string) (bool, bool) { return o[id], o[id] }

func setupWith(t *testing.T, presence script.Presence) (*room.Manager, *players, *script.Bundle) {
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
	m := room.NewManager(room.Config{System: sys, Versions: versions, Players: p, Presence: presence})
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
	// A message larger than the mailbox's byte bound (16 MiB by default) is refused at once.
	m.Deliver(id, &call.Request{MsgID: move.ID, Seq: 3, PlayerID: "a", Deadline: soon(), Post: r, Payload: make([]byte, 17<<20)})
	if got := <-answers; got != uint16(protocol.Unavailable) {
		t.Fatalf("a message over the mailbox's bytes: %d", got)
	}
	// A message that waited past its deadline is answered TIMEOUT; its handler does not run (the
	// move count checked at the leave below stays 1).
	m.Deliver(id, &call.Request{MsgID: move.ID, Seq: 4, PlayerID: "a", Deadline: time.Now().Add(-time.Millisecond), Post: r})
	if got := <-answers; got != uint16(protocol.Timeout) {
		t.Fatalf("a message past its deadline: %d", got)
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

func roomCall(m *room.Manager, roomID, name string, args any) (any, error) {
	return ask(m.Call, &call.Call{Target: roomID, Name: name, Args: args})
}

func TestJoinRefusesOfflinePlayers(t *testing.T) {
	m, _, _ := setupWith(t, online{"a": true})
	id, _ := m.Create("duel", nil)
	if _, err := join(m, id, "a", nil); err != nil {
		t.Fatal(err)
	}
	_, err := join(m, id, "gone", nil)
	if code(err) != protocol.BadRequest || !strings.Contains(err.Error(), "offline") {
		t.Fatalf("offline player joined: %v", err)
	}
	if m.Of("gone") != "" {
		t.Fatal("an offline player is in the room")
	}
}

func TestPresenceCallbacksAndCall(t *testing.T) {
	m, _, _ := setup(t)
	id, _ := m.Create("duel", nil)
	for _, p := range []string{"a", "b"} {
		if _, err := join(m, id, p, nil); err != nil {
			t.Fatal(err)
		}
	}
	m.Notify(call.Presence{PlayerID: "a", Event: call.SessionDetached})
	m.Notify(call.Presence{PlayerID: "a", Event: call.SessionResumed})
	m.Notify(call.Presence{PlayerID: "b", Event: call.SessionDetached})
	m.Notify(call.Presence{PlayerID: "b", Event: call.SessionStarted}) // logged in again instead of resuming
	m.Notify(call.Presence{PlayerID: "b", Event: call.SessionEnded, Reason: "replaced"})
	m.Notify(call.Presence{PlayerID: "nobody", Event: call.SessionDetached})
	out, err := roomCall(m, id, "log", nil)
	if err != nil || out.(map[string]any)["log"] != "d:a r:a d:b r:b " {
		t.Fatalf("presence callbacks: %v %v", out, err)
	}
	if m.Of("b") != id {
		t.Fatal("a replaced session took the player out of the room")
	}
	if _, err := roomCall(m, id, "nope", nil); code(err) != 1601 {
		t.Fatalf("on_call raising: %v", err)
	}
	if _, err := roomCall(m, "rnone", "log", nil); code(err) != protocol.BadRequest {
		t.Fatalf("call to no room: %v", err)
	}
}

func TestTimerRunsInTheRoomAndStopsWithIt(t *testing.T) {
	m, p, _ := setup(t)
	id, _ := m.Create("duel", nil)
	if _, err := join(m, id, "a", nil); err != nil {
		t.Fatal(err)
	}
	if _, err := roomCall(m, id, "watch", map[string]any{"watcher": "w"}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return p.count("w") >= 3 })
	out, err := roomCall(m, id, "log", nil)
	if err != nil || out.(map[string]any)["timer"].(float64) < 3 {
		t.Fatalf("the timer did not change the room's state: %v %v", out, err)
	}
	if out, err := roomCall(m, id, "close", nil); err != nil || out != "closing" {
		t.Fatalf("close: %v %v", out, err)
	}
	waitFor(t, func() bool { return m.Count() == 0 })
	n := p.count("w")
	time.Sleep(100 * time.Millisecond) // ten periods of the timer
	if p.count("w") != n {
		t.Fatalf("the timer ran after its room closed: %d pushes, then %d", n, p.count("w"))
	}
}

// A room that is closing (its players leaving, on_close to run) is answered for as one that is
// gone: its players are in no room, and a call to it is BAD_REQUEST, not UNAVAILABLE as from a
// busy room. A lobby asking for a player's room right after a duel ended got UNAVAILABLE.
func TestClosingRoomIsGone(t *testing.T) {
	m, _, _ := setup(t)
	id, _ := m.Create("duel", nil)
	if _, err := join(m, id, "a", nil); err != nil {
		t.Fatal(err)
	}
	if _, err := roomCall(m, id, "slow close", nil); err != nil {
		t.Fatal(err)
	}
	var err error
	for deadline := time.Now().Add(5 * time.Second); err == nil && time.Now().Before(deadline); {
		_, err = roomCall(m, id, "log", nil)
	}
	if code(err) != protocol.BadRequest {
		t.Fatalf("a call to a closing room: %v, want BAD_REQUEST", err)
	}
	if m.Count() != 1 {
		t.Fatal("the room ended before its slow on_leave: the test did not see it closing")
	}
	if got := m.Of("a"); got != "" {
		t.Fatalf("a player of a closing room is in room %q", got)
	}
	if _, err := leave(m, "a"); code(err) != protocol.BadRequest {
		t.Fatalf("leaving a closing room: %v, want BAD_REQUEST", err)
	}
	// The player may join another room at once; the closing one still says goodbye.
	other, _ := m.Create("duel", nil)
	if _, err := join(m, other, "a", nil); err != nil {
		t.Fatalf("joining another room while the last one closes: %v", err)
	}
	waitFor(t, func() bool { return m.Count() == 1 })
	if got := m.Of("a"); got != other {
		t.Fatalf("after the old room ended, the player is in %q, want %q", got, other)
	}
}

// room:close() in a timer takes effect without a tick or a message to follow it.
func TestCloseFromATimerOfARoomWithoutTicks(t *testing.T) {
	m, _, _ := setup(t)
	id, _ := m.Create("still", nil)
	if _, err := join(m, id, "a", nil); err != nil {
		t.Fatal(err)
	}
	if _, err := roomCall(m, id, "later", nil); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return m.Count() == 0 })
}

// A draining manager opens no new room and waits for the open ones to end.
func TestDrainWaitsForRooms(t *testing.T) {
	m, _, _ := setup(t)
	id, err := m.Create("duel", nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := join(m, id, "a", nil); err != nil {
		t.Fatal(err)
	}
	done, cancel := context.WithCancel(context.Background())
	cancel()
	if n := m.Drain(done); n != 1 { // ctx already over: it only stops new rooms
		t.Fatalf("Drain with its time over: %d rooms open, want 1", n)
	}
	if _, err := m.Create("duel", nil); code(err) != protocol.Unavailable {
		t.Fatalf("Create while draining: %v, want UNAVAILABLE", err)
	}
	left := make(chan int, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		left <- m.Drain(ctx)
	}()
	select {
	case n := <-left:
		t.Fatalf("Drain returned %d while a room was open", n)
	case <-time.After(100 * time.Millisecond):
	}
	if _, err := leave(m, "a"); err != nil { // the last player leaving ends the room
		t.Fatal(err)
	}
	if n := <-left; n != 0 {
		t.Fatalf("Drain left %d rooms", n)
	}
}
