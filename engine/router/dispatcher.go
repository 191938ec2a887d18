package router

import "github.com/moonforge/moonforge/engine/call"

// Destination is where the router decided that a request goes. Plain data.
type Destination struct {
	Node string // "" is this process; a cluster names the node that holds the role or room
	Role string // role whose scripts handle it
	Key  string // partition key within the role's actor pool (route.Pick); "" for a room
	// KeyHash is route.Hash(Key) when the decider knew it, 0 when not.
	KeyHash uint64
	Room    string // room id, for a room message
}

// Dispatcher delivers decided requests. Implementations never block the caller (a connection's
// reader goroutine) and answer every request exactly once through its reply address: the
// handler's answer, or an error when it cannot be delivered (UNAVAILABLE for a full mailbox or an
// unknown node). The caller enforces the deadline whatever the dispatcher does.
type Dispatcher interface {
	Dispatch(dst Destination, req *call.Request)
	// Login delivers a custom login method's check to the role that registered it.
	Login(dst Destination, l *call.Login)
	// Notify delivers a presence message to a role's mf.on_session_end hook (no answer).
	Notify(dst Destination, p call.Presence)
}
