package cluster

import (
	"errors"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/moonforge/moonforge/engine/bus"
	"github.com/moonforge/moonforge/engine/call"
	"github.com/moonforge/moonforge/engine/protocol"
	"github.com/moonforge/moonforge/engine/router"
)

// onMessage serves what other nodes send to this one, on the subscription's goroutine: it
// never blocks (requests go to mailboxes). Bad input is answered with its PROTOCOL.md code when
// the sender waits for an answer, dropped and counted when not, and logged once per kind.
func (c *Cluster) onMessage(m *nats.Msg) {
	e, err := bus.Decode(m.Data)
	if err != nil {
		code := protocol.DecodeFailed
		if errors.Is(err, bus.ErrFormat) || errors.Is(err, bus.ErrKind) {
			code = protocol.BadRequest
		}
		c.refuse(m, "envelope", code, err)
		return
	}
	switch e.Kind {
	case bus.Kind_KIND_REQUEST:
		c.onRequest(m, e)
	case bus.Kind_KIND_LOGIN, bus.Kind_KIND_LOGIN_METHOD:
		c.onLogin(m, e)
	case bus.Kind_KIND_PUSH:
		c.onPush(m, e)
	case bus.Kind_KIND_CALL, bus.Kind_KIND_SEND:
		c.onCall(m, e)
	case bus.Kind_KIND_COMMAND:
		go c.onCommand(m, e)
	case bus.Kind_KIND_PRESENCE:
		p := call.Presence{PlayerID: e.Player, SessionID: e.Session, Event: e.Event, Reason: e.Reason}
		if e.Role == "" {
			if c.deps.Seats != nil {
				c.deps.Seats.Notify(p)
			}
			return
		}
		if !c.Runs(e.Role) {
			c.refuse(m, "presence", protocol.BadRequest, errors.New("this node does not run role "+e.Role))
			return
		}
		c.deps.Local.Notify(router.Destination{Role: e.Role, Key: e.Key}, p)
	case bus.Kind_KIND_HANDOVER:
		c.onHandover(m, e)
	case bus.Kind_KIND_KICK:
		if c.deps.Kick != nil {
			c.deps.Kick(e.Player, e.Session, protocol.Code(e.Code), e.Error)
		}
	default:
		c.refuse(m, "kind-"+e.Kind.String(), protocol.BadRequest, errors.New("this node does not serve "+e.Kind.String()))
	}
}

// refuse answers a message the node will not serve (when its sender waits), counts and logs it.
func (c *Cluster) refuse(m *nats.Msg, kind string, code protocol.Code, err error) {
	c.logOnce(kind, "refused a message from the bus", err)
	if m.Reply == "" {
		return
	}
	e := &bus.Envelope{Kind: bus.Kind_KIND_ANSWER, Source: c.cfg.Node}
	e.SetError(&protocol.CodeError{Code: code, Message: err.Error()})
	_ = c.nc.Publish(m.Reply, bus.Encode(e))
}

func (c *Cluster) onRequest(m *nats.Msg, e *bus.Envelope) {
	now := time.Now()
	if e.Expired(now) {
		c.refuse(m, "expired", protocol.Timeout, errors.New("the request arrived past its deadline"))
		return
	}
	name, ok := c.deps.Schema.MsgName(uint16(e.MsgId))
	if !ok || e.MsgId > 0xffff {
		c.refuse(m, "unknown-msg", protocol.UnknownMessage, errors.New("the schema in force declares no such msg id"))
		return
	}
	req := &call.Request{
		ID: e.RequestId, MsgID: uint16(e.MsgId), Msg: name, Seq: e.Seq, Payload: e.Payload,
		PlayerID: e.Player, SessionID: e.Session, Received: now, Deadline: e.Deadline(),
		ReplyTo: call.Address{Node: e.Source, Box: e.ReplyBox}, Post: c.deps.Boxes,
	}
	if e.ReplyBox == 0 {
		req.Post = dropAnswers{}
	}
	c.deps.Inbox.Route(req)
}

func (c *Cluster) onLogin(m *nats.Msg, e *bus.Envelope) {
	l := &call.Login{
		ID: e.RequestId, Method: e.Name, Account: e.Account, Secret: e.Secret, Extra: e.Extra,
		Deadline: e.Deadline(), ReplyTo: call.Address{Node: e.Source, Box: e.ReplyBox}, Post: c.deps.Boxes,
	}
	if e.Expired(time.Now()) {
		c.refuse(m, "expired", protocol.Timeout, errors.New("the login arrived past its deadline"))
		return
	}
	if e.Kind == bus.Kind_KIND_LOGIN {
		c.deps.Login.Login(l)
		return
	}
	if !c.deps.Inbox.Login(l) {
		l.Fail(protocol.Errorf(protocol.Unavailable, "no script on %s registers login method %q", c.cfg.Node, e.Name))
	}
}

// dropAnswers takes the answers of one-way messages.
type dropAnswers struct{}

func (dropAnswers) Post(call.Answer) {}

// Push sends a push to a player's client on the proxy that holds its session. Each push carries
// this node's sequence for that proxy, so the proxy detects and counts a push lost on the bus.
func (c *Cluster) Push(proxy, player string, msgID uint16, payload []byte) error {
	v, _ := c.pushSeq.LoadOrStore(proxy, new(atomic.Uint32))
	e := &bus.Envelope{Kind: bus.Kind_KIND_PUSH, Source: c.cfg.Node, Target: proxy, Player: player, MsgId: uint32(msgID), Payload: payload, Seq: v.(*atomic.Uint32).Add(1)}
	return c.nc.Publish(bus.ProxySubject(proxy), bus.Encode(e))
}

// KickAt ends a player's session on the proxy that holds it.
func (c *Cluster) KickAt(proxy, player, session string, code protocol.Code, reason string) error {
	e := &bus.Envelope{Kind: bus.Kind_KIND_KICK, Source: c.cfg.Node, Target: proxy, Player: player, Session: session, Code: uint32(code), Error: reason}
	return c.nc.Publish(bus.ProxySubject(proxy), bus.Encode(e))
}

// onPush delivers a push to the player's session here (or where it moved, deliver); a push sent
// as a request (pushTo) is answered once delivered or forwarded, UNAVAILABLE if neither.
func (c *Cluster) onPush(m *nats.Msg, e *bus.Envelope) {
	v, _ := c.pushSeen.LoadOrStore(e.Source, new(atomic.Uint32))
	last := v.(*atomic.Uint32)
	if prev := last.Swap(e.Seq); prev != 0 && e.Seq > prev+1 {
		c.pushLost.Add(uint64(e.Seq - prev - 1))
		c.log.Warn("pushes lost on the bus", "from", e.Source, "missing", e.Seq-prev-1, "last", prev, "now", e.Seq)
	}
	switch {
	case e.Player == "" && c.deps.PushAll != nil:
		c.deps.PushAll(uint16(e.MsgId), e.Payload)
	case c.deps.Push != nil:
		// A push sent through this proxy after the player's session moved (pushTo) only follows
		// the move: a session of the player still here is an older one that a login replaced.
		through := m.Reply != "" && e.Session != ""
		ok := !through && c.deps.Push(e.Player, uint16(e.MsgId), e.Payload) || c.deliver(e.Player, uint16(e.MsgId), e.Payload)
		if !ok {
			c.answer(m, e, nil, protocol.Errorf(protocol.Unavailable, "no session of %s here", e.Player))
			return
		}
	}
	c.answer(m, e, nil, nil)
}

var _ router.Dispatcher = (*Cluster)(nil)

// onCommand runs a cluster command on a goroutine of its own (a reload blocks) and answers it.
func (c *Cluster) onCommand(m *nats.Msg, e *bus.Envelope) {
	ans := &bus.Envelope{Kind: bus.Kind_KIND_ANSWER, Source: c.cfg.Node, Name: e.Name}
	if c.deps.Command == nil {
		ans.SetError(protocol.Errorf(protocol.Unavailable, "this node takes no commands"))
	} else if out, err := c.deps.Command(e.Name); err != nil {
		ans.SetError(protocol.AsCodeError(err))
	} else {
		ans.Payload = out
	}
	if m.Reply != "" {
		_ = m.Respond(bus.Encode(ans))
	}
}
