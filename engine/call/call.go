// Package call is the contract of work in flight between the parts of Moonforge: a client request
// on its way to a handler, a login check, a call between services (a room join), and the one
// Answer each gets. Everything that may later cross a process is plain data: a request names its
// reply Address (a node and a box on it), and the answer is posted there, never handed to a Go
// callback. Post is the one process-local field: how answers leave this process (the local Boxes,
// or a bus).
package call

import (
	"time"

	"github.com/moonforge/moonforge/engine/protocol"
)

// Address says where an answer goes: a box (a connection, an actor, a waiting service) on a node.
type Address struct {
	Node string `json:"node,omitempty"` // "" is this process
	Box  uint64 `json:"box"`
}

// Answer is the one answer to a Request, Login or Call.
type Answer struct {
	To      Address
	ID      uint64              // the id of the request it answers, unique within its box
	MsgID   uint16              // a reply message (client requests, logins)
	Payload []byte              // its protobuf encoding
	Value   any                 // a call's result: plain data (nil, bool, float64, string, []any, map[string]any)
	Err     *protocol.CodeError // the answer is an error
}

// Poster carries answers to their address. Implementations are safe for concurrent use and never
// block; an answer whose box is gone is dropped and counted.
type Poster interface {
	Post(a Answer)
}

// Request is one client message on its way to a handler. The gateway creates it; after it is
// handed to a router, the goroutine that handles it owns it.
type Request struct {
	ID        uint64 // in the sender's table of requests in flight
	MsgID     uint16
	Msg       string // the message's full name, for logs and metrics
	Seq       uint32 // 0: a one-way message (its answer is only logged)
	Payload   []byte // protobuf encoding of MsgID's message; owned by the request
	PlayerID  string
	SessionID string
	// PlayerHash is route.Hash(PlayerID) when the sender knew it, 0 when not; process-local.
	PlayerHash uint64
	Received   time.Time
	Deadline   time.Time // the sender answers TIMEOUT at this time if no answer came
	ReplyTo    Address
	Post       Poster // process-local
}

// Reply answers r with a message.
func (r *Request) Reply(msgID uint16, payload []byte) {
	r.Post.Post(Answer{To: r.ReplyTo, ID: r.ID, MsgID: msgID, Payload: payload})
}

// Fail answers r with an error: its *protocol.CodeError, or INTERNAL.
func (r *Request) Fail(err error) {
	r.Post.Post(Answer{To: r.ReplyTo, ID: r.ID, Err: protocol.AsCodeError(err)})
}

// Expired reports whether r's deadline has passed at now.
func (r *Request) Expired(now time.Time) bool { return !r.Deadline.IsZero() && now.After(r.Deadline) }

// Login is a LoginReq to check. The login service answers it with a LoginAck (player_id and
// created set); a custom method's Lua function answers the service's own Login with Value, the
// account id it vouches for.
type Login struct {
	ID       uint64
	Method   string
	Account  string
	Secret   string
	Extra    map[string]string
	Address  string // the client's IP, for per-address limits
	Deadline time.Time
	ReplyTo  Address
	Post     Poster // process-local
}

// Answer posts a to l's reply address.
func (l *Login) Answer(a Answer) {
	a.To, a.ID = l.ReplyTo, l.ID
	l.Post.Post(a)
}

// Fail answers l with an error: its *protocol.CodeError, or INTERNAL.
func (l *Login) Fail(err error) { l.Answer(Answer{Err: protocol.AsCodeError(err)}) }

// Call is a request from one engine service to another: a room join or leave, and later calls
// between roles and to rooms from Lua. It is answered with Value or an error.
type Call struct {
	ID       uint64
	Target   string // what is called: a room id; for mf.call a node id or a role
	Name     string // mf.room.call's name or the mf.serve name of an mf.call; "" for a join or leave
	PlayerID string
	Args     any // plain data
	Deadline time.Time
	ReplyTo  Address
	Post     Poster // process-local
}

// Return answers c with a value (plain data).
func (c *Call) Return(v any) { c.Post.Post(Answer{To: c.ReplyTo, ID: c.ID, Value: v}) }

// Fail answers c with an error: its *protocol.CodeError, or INTERNAL.
func (c *Call) Fail(err error) {
	c.Post.Post(Answer{To: c.ReplyTo, ID: c.ID, Err: protocol.AsCodeError(err)})
}

// Presence events, in the order a session goes through them: started, then any number of
// disconnected and resumed, then ended.
const (
	SessionStarted  = "started"      // a login opened the session
	SessionDetached = "disconnected" // its connection dropped; it waits for a resume
	SessionResumed  = "resumed"      // a new connection resumed it
	SessionEnded    = "ended"        // the session is over (Reason: expired, replaced, shutdown)
	SessionMoved    = "moved"        // its client resumed it on another proxy: it lives on there
)

// Presence tells the services that follow players (rooms, the presence directory, the roles'
// session-end hooks) that a player's session changed. Plain data: a bus carries it unchanged.
type Presence struct {
	PlayerID  string
	SessionID string
	Event     string
	Reason    string
}

// Notifier takes presence messages. Notify never blocks; a bus carries them to other nodes.
type Notifier interface {
	Notify(p Presence)
}

// Notifiers hands each presence message to every one of its notifiers, in order.
type Notifiers []Notifier

// Notify implements Notifier.
func (ns Notifiers) Notify(p Presence) {
	for _, n := range ns {
		n.Notify(p)
	}
}
