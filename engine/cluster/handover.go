package cluster

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"google.golang.org/protobuf/proto"

	"github.com/moonforge/moonforge/engine/bus"
	"github.com/moonforge/moonforge/engine/protocol"
	"github.com/moonforge/moonforge/engine/registry"
	"github.com/moonforge/moonforge/engine/session"
)

// movedFor is how long a proxy that handed a session over forwards the pushes that still reach
// it for the player (senders whose view of the session directory is behind).
const movedFor = time.Minute

// adoption holds the pushes forwarded to this proxy for a player whose session it is taking over,
// until the session is installed.
type adoption struct {
	mu   sync.Mutex
	done bool
	held []session.Pushed
}

// Takeover moves the player's session sessionID from the proxy that holds it, as the session
// directory says, to this one, for a client that resumes here: that proxy hands it over
// (KIND_HANDOVER) and forgets it, this one installs it (Deps.Adopt, detached, the caller resumes
// it), delivers the pushes forwarded meanwhile, and claims the directory entry by compare-and-set.
// It blocks up to ctx's deadline, on the caller's goroutine. The error is a RESUME_FAILED
// *protocol.CodeError: the client logs in again.
func (c *Cluster) Takeover(ctx context.Context, player, sessionID string) error {
	failed := func(msg string, args ...any) error { return protocol.Errorf(protocol.ResumeFailed, msg, args...) }
	if c.cfg.Registry == nil || c.deps.Adopt == nil {
		return failed("the session is no longer held: log in again")
	}
	from, ok, err := c.cfg.Registry.SessionOf(ctx, player)
	switch {
	case err != nil:
		return failed("the session directory cannot be read: %v", err)
	case !ok || from.Session != sessionID || from.Proxy == c.cfg.Node:
		return failed("the session is no longer held: log in again")
	}
	a := &adoption{}
	c.adopting.Store(player, a)
	defer c.adopting.CompareAndDelete(player, a)
	e := &bus.Envelope{Kind: bus.Kind_KIND_HANDOVER, Source: c.cfg.Node, Target: from.Proxy, Player: player, Session: sessionID}
	if d, ok := ctx.Deadline(); ok {
		e.SetDeadline(d)
	}
	m, err := c.nc.RequestWithContext(ctx, bus.ProxySubject(from.Proxy), bus.Encode(e))
	if err != nil {
		if errors.Is(err, nats.ErrNoResponders) {
			return failed("the proxy %s that held the session is gone: log in again", from.Proxy)
		}
		return failed("the proxy %s did not hand the session over: %v", from.Proxy, err)
	}
	ans, err := bus.Decode(m.Data)
	if err != nil {
		return failed("the proxy %s answered a bad envelope: %v", from.Proxy, err)
	}
	if ce := ans.Err(); ce != nil {
		return failed("%s", ce.Message)
	}
	st, err := handoverState(ans.Payload, sessionID, player)
	if err != nil {
		return failed("the proxy %s handed over a bad session: %v", from.Proxy, err)
	}
	c.deps.Adopt(st)
	a.mu.Lock()
	for _, p := range a.held {
		c.deps.Push(player, p.MsgID, p.Payload)
	}
	a.done, a.held = true, nil
	a.mu.Unlock()
	if err := c.cfg.Registry.MoveSession(ctx, player, from, registry.Session{Proxy: c.cfg.Node, Session: sessionID}); err != nil {
		c.deps.Kick(player, sessionID, protocol.KickedDuplicateLogin, "the player logged in elsewhere during the resume")
		return failed("the session directory moved on: %v", err)
	}
	return nil
}

// onHandover hands a session held here to the proxy that asks for it (Takeover there). From the
// moment it is asked, a push for the player that finds no session here is forwarded to that
// proxy, for movedFor.
func (c *Cluster) onHandover(m *nats.Msg, e *bus.Envelope) {
	if c.deps.Handover == nil || !bus.ValidName(e.Source) {
		c.refuse(m, "handover", protocol.BadRequest, errors.New("this node holds no sessions"))
		return
	}
	to := &moved{proxy: e.Source}
	c.moved.Store(e.Player, to)
	st, err := c.deps.Handover(e.Player, e.Session)
	if err != nil {
		c.moved.CompareAndDelete(e.Player, to)
		c.answer(m, e, nil, protocol.Errorf(protocol.ResumeFailed, "%s", err.Error()))
		return
	}
	time.AfterFunc(movedFor, func() { c.moved.CompareAndDelete(e.Player, to) })
	h := &bus.Handover{Session: st.ID, Player: st.PlayerID, PushSeq: st.PushSeq, Acked: st.Acked}
	for _, p := range st.Replay {
		h.Replay = append(h.Replay, &bus.Pushed{Seq: p.Seq, MsgId: uint32(p.MsgID), Payload: p.Payload})
	}
	b, _ := proto.Marshal(h)
	c.answer(m, e, b, nil)
}

// moved is where a session handed over from this proxy went.
type moved struct{ proxy string }

// answer responds to a request received on m.
func (c *Cluster) answer(m *nats.Msg, e *bus.Envelope, payload []byte, err *protocol.CodeError) {
	if m.Reply == "" {
		return
	}
	ans := &bus.Envelope{Kind: bus.Kind_KIND_ANSWER, Source: c.cfg.Node, Player: e.Player, Session: e.Session, Payload: payload}
	ans.SetError(err)
	_ = m.Respond(bus.Encode(ans))
}

// deliver hands a push for a player that has no session here to where it went: the proxy this
// one handed the session to, or the takeover in progress here (held until the session is
// installed). False if neither.
func (c *Cluster) deliver(player string, msgID uint16, payload []byte) bool {
	if v, ok := c.adopting.Load(player); ok {
		a := v.(*adoption)
		a.mu.Lock()
		if !a.done {
			a.held = append(a.held, session.Pushed{MsgID: msgID, Payload: payload})
			a.mu.Unlock()
			return true
		}
		a.mu.Unlock()
		if c.deps.Push(player, msgID, payload) {
			return true
		}
	}
	if v, ok := c.moved.Load(player); ok {
		return c.Push(v.(*moved).proxy, player, msgID, payload) == nil
	}
	return false
}

// pushTo sends a push for player to the proxy the session directory names. When that proxy is
// not the one this node last pushed to for the player (the session moved), the push goes through
// the previous proxy, which forwards it after every earlier push of this node, and this node
// waits for its answer (up to a second, on the caller's goroutine) so that no later push sent
// straight to the new proxy overtakes them. A previous proxy that is gone or no longer knows the
// player (a login elsewhere replaced its session) lets the push go straight.
func (c *Cluster) pushTo(to registry.Session, player string, msgID uint16, payload []byte) bool {
	proxy := to.Proxy
	if prev, had := c.lastProxy.Swap(player, proxy); had && prev.(string) != proxy {
		v, _ := c.pushSeq.LoadOrStore(prev, new(atomic.Uint32))
		e := &bus.Envelope{Kind: bus.Kind_KIND_PUSH, Source: c.cfg.Node, Target: prev.(string), Player: player, Session: to.Session,
			MsgId: uint32(msgID), Payload: payload, Seq: v.(*atomic.Uint32).Add(1)}
		m, err := c.nc.Request(bus.ProxySubject(prev.(string)), bus.Encode(e), time.Second)
		switch {
		case err == nil:
			if ans, err := bus.Decode(m.Data); err == nil && ans.Code == 0 {
				return true
			}
		case !errors.Is(err, nats.ErrNoResponders):
			return false // it may still arrive that way: never sent twice
		}
	}
	return c.Push(proxy, player, msgID, payload) == nil
}

// sweepPushTargets forgets, every period until ctx ends, the last proxies of players that no
// longer have a session.
func (c *Cluster) sweepPushTargets(ctx context.Context, period time.Duration) {
	t := time.NewTicker(period)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		c.lastProxy.Range(func(k, _ any) bool {
			if _, ok := c.sessions.Of(k.(string)); !ok {
				c.lastProxy.Delete(k)
			}
			return true
		})
	}
}

// handoverState decodes the session a proxy handed over (bus.Handover) and checks it against the
// session asked for: the ids match, the acknowledged push is not beyond the last one, and the
// replayed pushes are in strictly increasing seq order up to the last push.
func handoverState(b []byte, sessionID, player string) (session.State, error) {
	var h bus.Handover
	if err := proto.Unmarshal(b, &h); err != nil {
		return session.State{}, err
	}
	if h.Session != sessionID || h.Player != player {
		return session.State{}, fmt.Errorf("session %q of player %q, want %q of %q", h.Session, h.Player, sessionID, player)
	}
	if h.Acked > h.PushSeq {
		return session.State{}, fmt.Errorf("acknowledged push %d beyond the last push %d", h.Acked, h.PushSeq)
	}
	st := session.State{ID: h.Session, PlayerID: h.Player, PushSeq: h.PushSeq, Acked: h.Acked}
	var prev uint32
	for _, p := range h.Replay {
		if p.Seq <= prev || p.Seq > h.PushSeq || p.MsgId > 0xffff {
			return session.State{}, fmt.Errorf("replayed push %d (msg %d) out of order or range", p.Seq, p.MsgId)
		}
		prev = p.Seq
		st.Replay = append(st.Replay, session.Pushed{Seq: p.Seq, MsgID: uint16(p.MsgId), Payload: p.Payload})
	}
	return st, nil
}
