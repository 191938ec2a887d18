package room

import (
	"sort"

	"github.com/moonforge/moonforge/engine/actor"
	"github.com/moonforge/moonforge/engine/call"
	"github.com/moonforge/moonforge/engine/protocol"
	"github.com/moonforge/moonforge/engine/script"
)

// Room is one room. Its Lua side runs on its actor; the fields below the mutex line are owned by
// that actor's goroutine.
type Room struct {
	id    string
	rt    script.RoomType
	m     *Manager
	actor *actor.Actor

	members map[string]struct{} // guarded by m.mu
	closed  bool                // guarded by m.mu; set when the room starts closing

	removals []string // room goroutine only
	closing  bool     // room goroutine only
}

// ID returns the room id.
func (r *Room) ID() string { return r.id }

// Type returns the room type's name.
func (r *Room) Type() string { return r.rt.Name }

// Broadcast queues a push to every member except one.
func (r *Room) Broadcast(msgID uint16, payload []byte, except string) {
	for _, p := range r.Members() {
		if p != except {
			r.m.cfg.Players.Push(p, msgID, payload)
		}
	}
}

// Send queues a push to one member.
func (r *Room) Send(playerID string, msgID uint16, payload []byte) bool {
	r.m.mu.Lock()
	_, ok := r.members[playerID]
	r.m.mu.Unlock()
	return ok && r.m.cfg.Players.Push(playerID, msgID, payload)
}

// Remove makes a player leave once the current callback returns.
func (r *Room) Remove(playerID string) { r.removals = append(r.removals, playerID) }

// Close closes the room once the current callback returns.
func (r *Room) Close() { r.closing = true }

// Members returns the ids of the room's players, sorted.
func (r *Room) Members() []string {
	r.m.mu.Lock()
	out := make([]string, 0, len(r.members))
	for p := range r.members {
		out = append(out, p)
	}
	r.m.mu.Unlock()
	sort.Strings(out)
	return out
}

// join checks the room's state and capacity, adds the player and runs on_join; on the room's
// goroutine.
func (r *Room) join(vm *script.VM, c *call.Call) (any, error) {
	m := r.m
	m.mu.Lock()
	full := len(r.members) >= r.rt.MaxPlayers
	taken := m.roomOf(c.PlayerID) != nil
	closed := r.closed || r.closing
	m.mu.Unlock()
	switch {
	case closed:
		return nil, protocol.Errorf(protocol.BadRequest, "room %s is closed", r.id)
	case full:
		return nil, protocol.Errorf(protocol.BadRequest, "room %s is full (%d players)", r.id, r.rt.MaxPlayers)
	case taken:
		return nil, protocol.Errorf(protocol.BadRequest, "player is in another room")
	}
	m.mu.Lock()
	r.members[c.PlayerID] = struct{}{}
	m.byPlayer[c.PlayerID] = r
	m.mu.Unlock()
	out, err := vm.RoomJoin(r, c.PlayerID, c.Args, c.Deadline)
	if err != nil {
		m.mu.Lock()
		delete(r.members, c.PlayerID)
		delete(m.byPlayer, c.PlayerID)
		m.mu.Unlock()
		return nil, err
	}
	if m.cfg.Directory != nil {
		m.cfg.Directory.Member(c.PlayerID, r.id, r.Type(), true)
	}
	return out, nil
}

// leave runs on_leave and drops the membership; on the room's goroutine.
func (r *Room) leave(vm *script.VM, playerID, reason string) any {
	r.m.mu.Lock()
	_, in := r.members[playerID]
	r.m.mu.Unlock()
	if !in {
		return nil
	}
	out := vm.RoomLeave(r, playerID, reason)
	r.m.mu.Lock()
	delete(r.members, playerID)
	if r.m.byPlayer[playerID] == r {
		delete(r.m.byPlayer, playerID)
	}
	empty := len(r.members) == 0
	r.m.mu.Unlock()
	if r.m.cfg.Directory != nil {
		r.m.cfg.Directory.Member(playerID, r.id, r.Type(), false)
	}
	if empty && !r.rt.KeepEmpty {
		r.closing = true
	}
	return out
}

// settle applies what the last callback asked for (removals, close); on the room's goroutine.
func (r *Room) settle(vm *script.VM) {
	for len(r.removals) > 0 {
		p := r.removals[0]
		r.removals = r.removals[1:]
		r.leave(vm, p, "removed")
	}
	if r.closing {
		// Closed from now on: requests for it are answered as for a room that is gone, while its
		// players leave and on_close runs (OnStop).
		r.m.mu.Lock()
		r.closed = true
		r.m.mu.Unlock()
		r.actor.Stop()
	}
}

// stopped runs when the room's actor stops: remaining players leave, on_close runs.
func (r *Room) stopped(vm *script.VM) {
	for _, p := range r.Members() {
		vm.RoomLeave(r, p, "closed")
	}
	vm.RoomClosed(r)
	r.m.forget(r)
}
