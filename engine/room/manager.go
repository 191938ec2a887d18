// Package room is the Go side of game rooms: each room is its own actor, ticking at its type's
// rate, with the players that joined it. manager.go is the room service of one process (rooms by
// id, the player → room directory, create, join, leave, delivery of room messages); room.go is one
// room (membership, capacity, ticks, closing). The Lua side — mf.room, mf.room_type and the
// callbacks a room's VM runs — is in package script (room_api.go, room_type.go, room_script.go).
//
// Join, Leave and the delivery of messages are messages to the room's actor with a reply address
// (call.Call, call.Request): nothing waits here, so the same calls can cross a bus.
package room

import (
	"context"
	"log/slog"
	"sort"
	"sync"
	"time"

	"github.com/moonforge/moonforge/engine/actor"
	"github.com/moonforge/moonforge/engine/call"
	"github.com/moonforge/moonforge/engine/config"
	"github.com/moonforge/moonforge/engine/ident"
	"github.com/moonforge/moonforge/engine/protocol"
	"github.com/moonforge/moonforge/engine/script"
)

// Observer receives room events for metrics. Calls come from room goroutines.
type Observer interface {
	Tick(roomType string, late time.Duration)
}

type noObserver struct{}

func (noObserver) Tick(string, time.Duration) {}

// Config configures a Manager.
type Config struct {
	System      *actor.System
	Versions    *script.Versions
	Players     script.Players  // where room pushes go
	Presence    script.Presence // who has a live session (join refuses others); nil: everybody
	Log         *slog.Logger
	Observer    Observer // optional
	MailboxSize int      // per room; default: config.Default
	MaxRooms    int      // default: config.Default
	// Directory, if set, hears every player that enters or leaves a room of this process (the
	// cluster's room directory, so that a proxy can route room messages here).
	Directory Directory
}

// Directory follows rooms and their members. Its methods are called from the goroutines of
// Create and of the rooms, and must not block.
type Directory interface {
	Member(playerID, roomID, roomType string, in bool)
	Room(roomID string, open bool)
}

// Manager is the set of rooms of this process. Safe for concurrent use.
type Manager struct {
	cfg Config
	log *slog.Logger

	mu       sync.Mutex
	draining bool // Create refuses new rooms
	rooms    map[string]*Room
	byPlayer map[string]*Room
}

// NewManager returns an empty manager.
func NewManager(cfg Config) *Manager {
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	if cfg.Observer == nil {
		cfg.Observer = noObserver{}
	}
	d := config.Default().Session
	if cfg.MaxRooms <= 0 {
		cfg.MaxRooms = d.MaxRooms
	}
	if cfg.MailboxSize <= 0 {
		cfg.MailboxSize = d.RoomMailboxes
	}
	return &Manager{cfg: cfg, log: cfg.Log, rooms: map[string]*Room{}, byPlayer: map[string]*Room{}}
}

// Create opens a room of a declared type and returns its id at once; on_create(room, args) is the
// room's first task.
func (m *Manager) Create(roomType string, args any) (string, error) {
	rt, ok := m.cfg.Versions.Load().RoomTypes[roomType]
	if !ok {
		return "", protocol.Errorf(protocol.BadRequest, "no room type %q", roomType)
	}
	r := &Room{id: ident.New("r", 16), rt: rt, m: m, members: map[string]struct{}{}}
	m.mu.Lock()
	if m.draining {
		m.mu.Unlock()
		return "", &protocol.CodeError{Code: protocol.Unavailable, Message: "this node is draining: it opens no new rooms", RetryAfterMs: 1000}
	}
	if len(m.rooms) >= m.cfg.MaxRooms {
		m.mu.Unlock()
		return "", protocol.Errorf(protocol.Unavailable, "the room limit (%d) is reached", m.cfg.MaxRooms)
	}
	m.rooms[r.id] = r
	m.mu.Unlock()

	cfg := actor.Config{
		Name:        "room/" + r.id,
		Role:        rt.Role,
		MailboxSize: m.cfg.MailboxSize,
		OnStop:      r.stopped,
		AfterRun:    r.settle, // room:close() or room:remove() in a timer or a resumed on_message
	}
	if rt.TickHz > 0 {
		cfg.Tick = time.Duration(float64(time.Second) / rt.TickHz)
		cfg.OnTick = func(vm *script.VM, dt, late time.Duration) {
			m.cfg.Observer.Tick(rt.Name, late)
			vm.RoomTick(r, dt)
			r.settle(vm)
		}
	}
	a, err := m.cfg.System.Spawn(cfg)
	if err != nil {
		m.forget(r)
		return "", protocol.Errorf(protocol.Unavailable, "cannot start room: %v", err)
	}
	r.actor = a
	if m.cfg.Directory != nil {
		m.cfg.Directory.Room(r.id, true)
	}
	a.Send(func(vm *script.VM) {
		if err := vm.RoomCreate(r, args); err != nil {
			m.log.Error("room on_create failed, closing it", "room", r.id, "type", rt.Name, "error", err)
			r.closing = true
		}
		r.settle(vm)
	})
	return r.id, nil
}

// Join puts c.PlayerID into room c.Target, leaving any other room first, and answers c with what
// on_join returned. A player without a live session is refused (BAD_REQUEST). It returns at once;
// the room's actor answers.
func (m *Manager) Join(c *call.Call) {
	if m.cfg.Presence != nil {
		if online, _ := m.cfg.Presence.Online(c.PlayerID); !online {
			c.Fail(protocol.Errorf(protocol.BadRequest, "player %s is offline (no live session)", c.PlayerID))
			return
		}
	}
	m.mu.Lock()
	r := m.open(c.Target)
	cur := m.roomOf(c.PlayerID)
	m.mu.Unlock()
	switch {
	case r == nil:
		c.Fail(protocol.Errorf(protocol.BadRequest, "no room %q", c.Target))
		return
	case cur == r:
		c.Fail(protocol.Errorf(protocol.BadRequest, "already in room %s", c.Target))
		return
	}
	join := func() {
		ok := r.actor.Send(func(vm *script.VM) {
			out, err := r.join(vm, c)
			if err != nil {
				c.Fail(err)
			} else {
				c.Return(out)
			}
			r.settle(vm)
		})
		if !ok {
			c.Fail(protocol.Errorf(protocol.Unavailable, "room %s is busy", r.id))
		}
	}
	if cur == nil {
		join()
		return
	}
	// Leave the current room first: its actor sends the join on when on_leave has run.
	if err := m.leave(cur, c.PlayerID, "left", func(any) { join() }); err != nil {
		c.Fail(err)
	}
}

// Leave takes c.PlayerID out of its room (on_leave with reason "left") and answers c with what
// on_leave returned. It returns at once.
func (m *Manager) Leave(c *call.Call) {
	m.mu.Lock()
	r := m.roomOf(c.PlayerID)
	m.mu.Unlock()
	if r == nil {
		c.Fail(protocol.Errorf(protocol.BadRequest, "not in a room"))
		return
	}
	if err := m.leave(r, c.PlayerID, "left", c.Return); err != nil {
		c.Fail(err)
	}
}

// Call runs on_call(room, c.Name, c.Args) in room c.Target and answers c with its result. It
// returns at once; the room's actor answers.
func (m *Manager) Call(c *call.Call) {
	m.mu.Lock()
	r := m.open(c.Target)
	m.mu.Unlock()
	if r == nil {
		c.Fail(protocol.Errorf(protocol.BadRequest, "no room %q", c.Target))
		return
	}
	ok := r.actor.Send(func(vm *script.VM) {
		vm.RoomCall(r, c)
		r.settle(vm)
	})
	if !ok {
		c.Fail(protocol.Errorf(protocol.Unavailable, "room %s is busy", r.id))
	}
}

// Notify follows the sessions' presence messages (call.Notifier): a player whose session expired
// or who logged out leaves its room (on_leave, reason "offline"); a dropped connection runs the room's
// on_disconnect, a resume or a new login on_reconnect.
func (m *Manager) Notify(p call.Presence) {
	m.mu.Lock()
	r := m.roomOf(p.PlayerID)
	m.mu.Unlock()
	if r == nil {
		return
	}
	switch p.Event {
	case call.SessionEnded:
		if p.Reason != "expired" && p.Reason != "logout" {
			return
		}
		if err := m.leave(r, p.PlayerID, "offline", nil); err != nil {
			m.log.Warn("could not remove an offline player from its room", "player", p.PlayerID, "error", err)
		}
	case call.SessionDetached, call.SessionResumed, call.SessionStarted:
		if p.Event == call.SessionStarted && p.Reason == "moved" {
			return // a proxy took the session over, detached: its resume follows
		}
		if !r.actor.Send(func(vm *script.VM) {
			vm.RoomPresence(r, p.PlayerID, p.Event)
			r.settle(vm)
		}) {
			m.log.Warn("room too busy for a presence change", "room", r.id, "player", p.PlayerID, "event", p.Event)
		}
	}
}

// leave queues on_leave in r; then, if not nil, runs on r's goroutine with its result.
func (m *Manager) leave(r *Room, playerID, reason string, then func(out any)) error {
	ok := r.actor.Send(func(vm *script.VM) {
		out := r.leave(vm, playerID, reason)
		r.settle(vm)
		if then != nil {
			then(out)
		}
	})
	if !ok {
		return protocol.Errorf(protocol.Unavailable, "room %s is busy", r.id)
	}
	return nil
}

// Where returns the id and type of the player's room, or "", "" (router.Rooms).
func (m *Manager) Where(playerID string) (string, string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if r := m.roomOf(playerID); r != nil {
		return r.id, r.rt.Name
	}
	return "", ""
}

// Of returns the id of the player's room, or "".
func (m *Manager) Of(playerID string) string {
	m.mu.Lock()
	defer m.mu.Unlock()
	if r := m.roomOf(playerID); r != nil {
		return r.id
	}
	return ""
}

// List describes the open rooms of a type ("" for all), sorted by id.
func (m *Manager) List(roomType string) []script.RoomInfo {
	m.mu.Lock()
	out := make([]script.RoomInfo, 0, len(m.rooms))
	for _, r := range m.rooms {
		if (roomType == "" || r.rt.Name == roomType) && !r.closed {
			out = append(out, script.RoomInfo{ID: r.id, Type: r.rt.Name, Players: len(r.members), MaxPlayers: r.rt.MaxPlayers})
		}
	}
	m.mu.Unlock()
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// Count returns the number of open rooms.
func (m *Manager) Count() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.rooms)
}

// Deliver puts a client request in a room's mailbox (on_message runs on the room's actor). It
// answers at once with BAD_REQUEST when the room is gone and UNAVAILABLE when its mailbox is full.
func (m *Manager) Deliver(roomID string, req *call.Request) {
	m.mu.Lock()
	r := m.open(roomID)
	m.mu.Unlock()
	if r == nil {
		req.Fail(protocol.Errorf(protocol.BadRequest, "not in a room"))
		return
	}
	// The request's deadline is checked on the actor, before its handler runs (VM.RoomMessage).
	ok := r.actor.SendBytes(func(vm *script.VM) {
		vm.RoomMessage(r, req)
		r.settle(vm)
	}, len(req.Payload))
	if !ok {
		req.Fail(protocol.Errorf(protocol.Unavailable, "room %s is busy", r.id))
	}
}

// Drain makes Create refuse new rooms and waits until the open ones have ended by themselves, or
// ctx ends; it returns how many are still open (Stop closes them).
func (m *Manager) Drain(ctx context.Context) int {
	m.mu.Lock()
	m.draining = true
	m.mu.Unlock()
	t := time.NewTicker(50 * time.Millisecond)
	defer t.Stop()
	for {
		n := m.Count()
		if n == 0 {
			return 0
		}
		select {
		case <-ctx.Done():
			return n
		case <-t.C:
		}
	}
}

// Stop closes every room (on_leave for nobody; on_close runs) and waits for their actors.
func (m *Manager) Stop() {
	m.mu.Lock()
	rooms := make([]*Room, 0, len(m.rooms))
	for _, r := range m.rooms {
		rooms = append(rooms, r)
	}
	m.mu.Unlock()
	for _, r := range rooms {
		r.actor.Stop()
	}
	for _, r := range rooms {
		<-r.actor.Done()
	}
}

// open returns the room with that id, or nil when there is none or it closed (its players
// leave, on_close runs); m.mu held.
func (m *Manager) open(id string) *Room {
	if r := m.rooms[id]; r != nil && !r.closed {
		return r
	}
	return nil
}

// roomOf returns the player's room, or nil when it is in none or its room closed; m.mu held.
func (m *Manager) roomOf(playerID string) *Room {
	if r := m.byPlayer[playerID]; r != nil && !r.closed {
		return r
	}
	return nil
}

func (m *Manager) forget(r *Room) {
	m.mu.Lock()
	defer m.mu.Unlock()
	r.closed = true
	if _, ok := m.rooms[r.id]; ok && r.actor != nil && m.cfg.Directory != nil {
		m.cfg.Directory.Room(r.id, false)
	}
	delete(m.rooms, r.id)
	for p := range r.members {
		if m.byPlayer[p] == r {
			delete(m.byPlayer, p)
		}
		if m.cfg.Directory != nil {
			m.cfg.Directory.Member(p, r.id, r.Type(), false)
		}
	}
	r.members = map[string]struct{}{}
}
