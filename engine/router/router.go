// Package router decides where a client request is handled and hands it to a Dispatcher, which
// delivers it. Deciding needs only the routing table of the version in force (route.Table, plain
// data) and where each player's room is, so a node that runs no scripts can decide too. The local
// dispatcher (actor mailboxes and rooms of this process) is today's only Dispatcher; a bus
// dispatcher for other nodes implements the same interface.
package router

import (
	"strings"

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
	// Where returns the id and type of the player's room, or "", "".
	Where(playerID string) (roomID, roomType string)
}

// Router decides destinations. Safe for concurrent use; it never blocks.
type Router struct {
	tables Tables
	rooms  Rooms
	disp   Dispatcher
	// playerRole holds players' data (config player.role); "": none.
	playerRole string
}

// New returns a router that decides with tables and rooms and delivers through disp.
func New(tables Tables, rooms Rooms, disp Dispatcher) *Router {
	return &Router{tables: tables, rooms: rooms, disp: disp}
}

// Decide returns where req goes: the sender's room when its type declares the message, else the
// role's pool, keyed by the handler's partition key or the player. Errors are *protocol.CodeError:
// UNAVAILABLE when nothing takes the message, BAD_REQUEST for a message that only rooms take from
// a player in no room of those types.
func (r *Router) Decide(req *call.Request) (Destination, error) {
	rt, ok := r.tables.Table().Message(req.MsgID)
	if !ok {
		return Destination{}, noHandler(req)
	}
	if len(rt.Rooms) > 0 {
		id, typ := r.rooms.Where(req.PlayerID)
		if id != "" && rt.InRooms(typ) {
			return Destination{Room: id}, nil
		}
		if rt.Role == "" {
			return Destination{}, inNoRoom(req, rt)
		}
	}
	if rt.Key != "" {
		return Destination{Role: rt.Role, Key: rt.Key}, nil
	}
	return Destination{Role: rt.Role, Key: req.PlayerID, KeyHash: req.PlayerHash}, nil
}

func noHandler(req *call.Request) error {
	return protocol.Errorf(protocol.Unavailable, "no handler for %s", req.Msg)
}

func inNoRoom(req *call.Request, rt route.Route) error {
	return protocol.Errorf(protocol.BadRequest, "%s goes to a room of type %s; the player is in none", req.Msg, strings.Join(rt.Rooms, " or "))
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

// Notify follows the sessions' presence messages (call.Notifier): when a session ends, each role
// that registered mf.on_session_end gets it, on the actor its key (or else the player) picks; and
// the player role (see PlayerRole), if the scripts have it, on the player's actor, which unloads
// the player's data (once when its hook is keyed by the player too).
func (r *Router) Notify(p call.Presence) {
	if p.Event != call.SessionEnded {
		return
	}
	t := r.tables.Table()
	for role, key := range t.SessionEnd {
		if key == "" {
			key = p.PlayerID
		}
		r.disp.Notify(Destination{Role: role, Key: key}, p)
	}
	if key, hooked := t.SessionEnd[r.playerRole]; r.playerRole != "" && (!hooked || key != "") && t.Roles()[r.playerRole] {
		r.disp.Notify(Destination{Role: r.playerRole, Key: p.PlayerID}, p)
	}
}

// PlayerRole names the role whose actors hold players' data (config player.role): Notify tells
// it of each session's end. Call it before the router is used; it returns r.
func (r *Router) PlayerRole(role string) *Router {
	r.playerRole = role
	return r
}
