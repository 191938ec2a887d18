// Package call describes a client request in flight between the gateway and the actor that
// handles it: who sent it, by when it must be answered, and where its answer goes. It is the
// contract a router honours whether the handler runs in this process or, later, across the bus.
package call

import (
	"time"

	"github.com/moonforge/moonforge/engine/protocol"
)

// Request is one client message on its way to a handler. The gateway creates it; after it is
// handed to a router, the goroutine that handles it owns it.
type Request struct {
	MsgID     uint16
	Msg       string // the message's full name, for logs and metrics
	Seq       uint32 // 0: a one-way message, nothing is answered
	Payload   []byte // protobuf encoding of MsgID's message; owned by the request
	PlayerID  string
	SessionID string
	Received  time.Time
	Deadline  time.Time // after this the answer is Error{TIMEOUT}
	Replier   Replier   // where the answer goes; the gateway sets it for one-way messages too
}

// Replier takes the one answer of a request. Implementations are safe for concurrent use and
// never block on the network.
type Replier interface {
	// Reply sends the handler's reply message (nothing for a one-way message).
	Reply(r *Request, msgID uint16, payload []byte)
	// Fail sends Error with err's code and message (one-way messages: logs it).
	Fail(r *Request, err *protocol.CodeError)
}

// Reply answers r with a message.
func (r *Request) Reply(msgID uint16, payload []byte) {
	if r.Replier != nil {
		r.Replier.Reply(r, msgID, payload)
	}
}

// Fail answers r with an error: its *protocol.CodeError, or INTERNAL.
func (r *Request) Fail(err error) {
	if r.Replier != nil {
		r.Replier.Fail(r, protocol.AsCodeError(err))
	}
}

// Expired reports whether r's deadline has passed at now.
func (r *Request) Expired(now time.Time) bool { return !r.Deadline.IsZero() && now.After(r.Deadline) }

// Login is a custom login method's check, run by the Lua function the application registered
// with mf.login. The answer is an account id that the method vouches for.
type Login struct {
	Method   string
	Account  string
	Secret   string
	Extra    map[string]string
	Deadline time.Time
	Done     func(accountID string, err *protocol.CodeError) // called exactly once
}

// Fail answers l with an error: its *protocol.CodeError, or INTERNAL.
func (l *Login) Fail(err error) { l.Done("", protocol.AsCodeError(err)) }
