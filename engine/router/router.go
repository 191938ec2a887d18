// Package router decides where a client request is handled and hands it to a Dispatcher, which
// delivers it. Deciding needs only the routing table of the version in force (route.Table, plain
// data) and where each player's room is, so a node that runs no scripts can decide too. The local
// dispatcher (actor mailboxes and rooms of this process) is today's only Dispatcher; a bus
// dispatcher for other nodes implements the same interface.
package router

import (
	"github.com/moonforge/moonforge/engine/call"
	"github.com/moonforge/moonforge/engine/protocol"
	"github.com/moonforge/moonforge/engine/route"
)

// Tables gives the routing table in force (script.Versions implements it). Safe for concurrent use.
type Tables interface {
	Table() *route.Table
}

// Rooms says which room a player is in (room.Manager implements it). Safe for concurrent use.
type Rooms interface {
	// Of returns the id of the player's room, or "".
	Of(playerID string) string
}

// Router decides destinations. Safe for concurrent use; it never blocks.
type Router struct {
	tables Tables
	rooms  Rooms
	disp   Dispatcher
}

// New returns a router that decides with tables and rooms and delivers through disp.
func New(tables Tables, rooms Rooms, disp Dispatcher) *Router {
	return &Router{tables: tables, rooms: rooms, disp: disp}
}

// Decide returns where req goes: the role's pool, keyed by the handler's partition key or the
// player, or the player's room. Errors are *protocol.CodeError: UNAVAILABLE when no handler is
// declared, BAD_REQUEST for a room message from a player in no room.
func (r *Router) Decide(req *call.Request) (Destination, error) {
	rt, ok := r.tables.Table().Messages[req.MsgID]
	if !ok {
		return Destination{}, protocol.Errorf(protocol.Unavailable, "no handler for %s", req.Msg)
	}
	if rt.Room {
		id := r.rooms.Of(req.PlayerID)
		if id == "" {
			return Destination{}, protocol.Errorf(protocol.BadRequest, "not in a room")
		}
		return Destination{Role: rt.Role, Room: id}, nil
	}
	key := req.PlayerID
	if rt.Key != "" {
		key = rt.Key
	}
	return Destination{Role: rt.Role, Key: key}, nil
}

// Route decides req's destination and dispatches it, or answers it at once with the error of
// Decide. It returns at once; req gets its answer through its reply address.
func (r *Router) Route(req *call.Request) {
	dst, err := r.Decide(req)
	if err != nil {
		req.Fail(err)
		return
	}
	r.disp.Dispatch(dst, req)
}

// Login dispatches a custom login method to the role that registered it, on the actor its
// account hashes to. False if no script registered the method (nothing is answered then).
func (r *Router) Login(l *call.Login) bool {
	role, ok := r.tables.Table().Logins[l.Method]
	if !ok {
		return false
	}
	r.disp.Login(Destination{Role: role, Key: l.Account}, l)
	return true
}
