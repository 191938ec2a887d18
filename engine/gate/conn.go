package gate

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"
	"google.golang.org/protobuf/proto"

	"github.com/moonforge/moonforge/engine/call"
	"github.com/moonforge/moonforge/engine/protocol"
	"github.com/moonforge/moonforge/engine/session"
	"github.com/moonforge/moonforge/engine/wire"
)

// UnknownMessage is the message name reported for ids the schema does not declare, so that
// garbage input cannot create unbounded metric labels.
const UnknownMessage = "unknown"

// conn is one client connection. The reader goroutine (serve) owns the fields marked so; the
// writer goroutine runs the queue; the rest is safe for concurrent use.
type conn struct {
	g         *Gateway
	id        uint64
	transport string
	remote    string
	t         transport
	queue     *wire.Queue
	sess      atomic.Pointer[session.Session]

	unauth       int           // reader only: requests refused before login
	refusedInRow int           // reader only: frames refused by the limits since the last accepted one
	idleUntil    time.Time     // reader only: the read deadline extendIdle set last
	limiter      *rate.Limiter // reader only
	loginTimer   *time.Timer   // kicks the connection if it has not logged in in time
	preLogin     *rate.Limiter // reader only: frames before login

	box         call.Address     // where the answers of this connection's requests go
	pending     pending          // requests in flight
	loginAnswer chan call.Answer // the answer of the LoginReq in flight, for the reader
	closeOnce   sync.Once
	kicked      atomic.Bool
	graceful    atomic.Bool  // the client half-closed: answer what is pending, then close
	reason      atomic.Value // string: why the connection closed, for the log
	written     chan struct{}
	bytesIn     atomic.Uint64 // frame bytes received; added by the reader
	bytesOut    atomic.Uint64 // frame bytes written
}

func newConn(g *Gateway, transport, remote string, t transport) *conn {
	c := &conn{
		g:         g,
		id:        g.nextID.Add(1),
		transport: transport,
		remote:    remote,
		t:         t,
		queue:     wire.NewQueue(g.cfg.SendQueueBytes),
		written:   make(chan struct{}),

		loginAnswer: make(chan call.Answer, 1),
	}
	if g.cfg.RateLimit > 0 {
		c.limiter = rate.NewLimiter(rate.Limit(g.cfg.RateLimit), g.cfg.RateBurst)
	}
	c.preLogin = rate.NewLimiter(preLoginRate, 2*preLoginRate)
	return c
}

// serve runs the connection until it closes; it is the connection's reader goroutine.
func (c *conn) serve() {
	defer c.g.untrack(c)
	c.box = c.g.boxes.Open(c)
	c.g.obs.Connections(c.transport, 1)
	defer c.g.obs.Connections(c.transport, -1)
	go c.writeLoop()
	c.loginTimer = time.AfterFunc(c.g.cfg.LoginTimeout, c.loginExpired)
	defer c.loginTimer.Stop()
	defer func() {
		if r := recover(); r != nil {
			c.g.log.Error("connection recovered from a panic", "conn", c.id, "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
			c.abort("internal error")
		}
		c.finish()
	}()
	c.readLoop()
}

// readLoop reads and handles frames until a read fails; the reader goroutine. It is apart from
// serve so that the frame it runs in, touched on every request, holds no more than the loop's own
// variables.
func (c *conn) readLoop() {
	last := time.Now() // when the last frame arrived
	for {
		if c.t.buffered() == 0 {
			c.extendIdle(last) // the next read may wait on the socket
		}
		f, n, err := c.t.next()
		if err != nil {
			c.readFailed(err)
			return
		}
		last = time.Now()
		c.bytesIn.Add(uint64(n))
		if c.kicked.Load() {
			continue // draining until the peer closes or the linger ends
		}
		c.handle(f, last)
		if f.MsgID < protocol.FirstAppMsgID {
			last = time.Now() // a login waits for its answer: the wait is not the peer's silence
		}
	}
}

// idleTimeout is how long a connection may stay without a frame: three heartbeats.
func (c *conn) idleTimeout() time.Duration { return 3 * c.g.cfg.Heartbeat }

// extendIdle makes the socket's read deadline at least the idle timeout after now (the last
// frame's arrival, or the end of a wait of the reader's own); reader only. The deadline is moved only when it falls short, and then an eighth of the timeout further, so
// that a busy connection resets its timer once in a while instead of before every read: a silent
// connection is kicked between one and 1.125 idle timeouts after its last frame.
func (c *conn) extendIdle(now time.Time) {
	if c.kicked.Load() {
		return // the kick set the deadline of the drain
	}
	idle := c.idleTimeout()
	if want := now.Add(idle); c.idleUntil.Before(want) {
		c.idleUntil = c.t.setReadDeadline(want.Add(idle / 8)) // KCP sets an earlier one until its first frame
	}
}

// readFailed decides how a connection ends after a read error.
func (c *conn) readFailed(err error) {
	if c.kicked.Load() {
		return
	}
	if v, ok := wire.AsViolation(err); ok {
		code := protocol.MalformedFrame
		if v.Kind == wire.TooLarge {
			code = protocol.FrameTooLarge
		}
		c.g.warn("bad_frame", c.remote, "protocol violation", "conn", c.id, "code", code.String(), "detail", v.Detail)
		c.Kick(code, v.Detail)
		c.drain()
		return
	}
	var ne net.Error
	switch {
	case errors.As(err, &ne) && ne.Timeout(), errors.Is(err, os.ErrDeadlineExceeded):
		c.Kick(protocol.IdleTimeout, fmt.Sprintf("no frame for %s", c.idleTimeout()))
		c.drain()
	case errors.Is(err, io.EOF):
		// The client sent everything it will send (it may have only half-closed): its requests
		// in flight still get their one reply each before the connection closes.
		c.awaitPending()
		c.reason.Store("closed by the client")
		c.graceful.Store(true)
	default:
		c.abort("read error: " + err.Error())
	}
}

// drain discards input until the peer closes or the linger ends, so that the Kick frame is not
// lost to a reset caused by unread input.
func (c *conn) drain() { c.t.discard() }

// awaitPending waits until every request in flight is answered: by its deadline at the latest,
// when the table answers TIMEOUT.
func (c *conn) awaitPending() {
	limit := time.Now().Add(c.g.cfg.RequestTimeout + time.Second)
	for c.inFlight() > 0 && time.Now().Before(limit) {
		time.Sleep(2 * time.Millisecond)
	}
}

// finish runs once the reader is done: the writer stops, the socket closes, the session waits
// for a resume.
func (c *conn) finish() {
	if c.graceful.Load() {
		c.queue.Close(nil) // the writer sends what is queued, then stops
	}
	if c.kicked.Load() || c.graceful.Load() {
		select {
		case <-c.written:
		case <-time.After(c.g.cfg.WriteTimeout):
		}
	}
	c.queue.Close(errors.New("connection closed"))
	_ = c.t.close()
	<-c.written
	c.g.boxes.Close(c.box)
	c.stopTimer()
	if s := c.sess.Load(); s != nil {
		s.Detach(c)
	}
	reason, _ := c.reason.Load().(string)
	player := ""
	if s := c.sess.Load(); s != nil {
		player = s.PlayerID
	}
	c.g.log.Debug("connection closed", "conn", c.id, "transport", c.transport, "remote", c.remote, "player", player, "reason", reason)
}

// writeLoop is the writer goroutine: one write per batch of queued frames.
func (c *conn) writeLoop() {
	defer close(c.written)
	if t, ok := c.t.(trier); ok {
		c.queue.SetTry(t.try())
	}
	err := c.queue.Run(func(batch []byte) error {
		c.t.setWriteDeadline(time.Now().Add(c.g.cfg.WriteTimeout))
		if err := c.t.write(batch); err != nil {
			return err
		}
		c.bytesOut.Add(uint64(len(batch)))
		return nil
	})
	if err == nil && c.kicked.Load() {
		// Everything up to the Kick is written: tell the peer, and stop the reader after the linger.
		c.t.closeWrite()
		c.t.setReadDeadline(time.Now().Add(c.g.cfg.Linger))
		return
	}
	if err != nil {
		c.abort("write error: " + err.Error())
	}
}

// Send queues a frame (session.Conn). A client too slow to take its frames is disconnected.
func (c *conn) Send(f wire.Frame) error {
	err := c.queue.Push(f)
	if errors.Is(err, wire.ErrQueueFull) {
		c.abort(fmt.Sprintf("send queue over %d bytes: the client does not read", c.g.cfg.SendQueueBytes))
	}
	return err
}

// sendNow is Send through the queue's PushNow: written by this goroutine if the writer is idle.
func (c *conn) sendNow(f wire.Frame) {
	n, err := c.queue.PushNow(f)
	if n > 0 {
		c.bytesOut.Add(uint64(n))
	}
	if errors.Is(err, wire.ErrQueueFull) {
		c.abort(fmt.Sprintf("send queue over %d bytes: the client does not read", c.g.cfg.SendQueueBytes))
	}
}

// Kick queues Kick{code, reason} and closes the connection once it is written (session.Conn).
func (c *conn) Kick(code protocol.Code, reason string) {
	if !c.kicked.CompareAndSwap(false, true) {
		return
	}
	c.reason.Store(fmt.Sprintf("kicked: %s: %s", code, reason))
	payload, _ := proto.Marshal(&protocol.Kick{Code: uint32(code), Reason: reason})
	_ = c.queue.Push(wire.Frame{MsgID: protocol.MsgKick, Payload: payload})
	c.queue.Close(nil)
	// Unblock a reader waiting for input: it drains until the peer closes or the linger ends.
	c.t.setReadDeadline(time.Now().Add(c.g.cfg.WriteTimeout + c.g.cfg.Linger))
}

// abort closes the connection at once, dropping what is queued.
func (c *conn) abort(reason string) {
	c.closeOnce.Do(func() {
		if c.reason.Load() == nil {
			c.reason.Store(reason)
		}
		c.queue.Close(errors.New(reason))
		_ = c.t.close()
	})
}

func (c *conn) sendError(seq uint32, err *protocol.CodeError) {
	payload, _ := proto.Marshal(&protocol.Error{Code: uint32(err.Code), Message: err.Message, RetryAfterMs: err.RetryAfterMs})
	_ = c.Send(wireReply(protocol.MsgError, seq, payload))
}

func wireReply(msgID uint16, seq uint32, payload []byte) wire.Frame {
	return wire.Frame{MsgID: msgID, Flags: wire.FlagReply, Seq: seq, Payload: payload}
}

// reply answers a framework request handled by the gateway itself.
func (c *conn) reply(seq uint32, msgID uint16, m proto.Message) {
	if seq == 0 {
		return
	}
	payload, err := proto.Marshal(m)
	if err != nil {
		c.sendError(seq, protocol.Errorf(protocol.Internal, "encode reply: %v", err))
		return
	}
	_ = c.Send(wire.Frame{MsgID: msgID, Flags: wire.FlagReply, Seq: seq, Payload: payload})
}

// handle processes one frame from the client, which arrived at now; on the reader goroutine. An
// application request of a logged-in player takes the short path; every other frame, and every
// refusal, is handled out of line (handleOther, refuse), so that the reader's stack frames on the
// request path stay small: with many connections they are out of the CPU's caches by the time a
// connection's next request arrives.
func (c *conn) handle(f wire.Frame, now time.Time) {
	s := c.sess.Load()
	if s == nil || f.MsgID < protocol.FirstAppMsgID || f.IsReply() {
		c.handleOther(f, s)
		return
	}
	name, declared := c.g.deps.Schema.MsgName(f.MsgID)
	if !declared {
		c.undeclared(f)
		return
	}
	if err := c.overLimit(now, len(f.Payload)); err != nil {
		c.refuse(f, name, s, err)
		return
	}
	c.accepted()
	deadline := now.Add(c.g.cfg.RequestTimeout)
	id := c.add(inflight{seq: f.Seq, msg: name, received: now, deadline: deadline})
	c.g.deps.Router.Route(&call.Request{
		ID:         id,
		MsgID:      f.MsgID,
		Msg:        name,
		Seq:        f.Seq,
		Payload:    f.Payload,
		PlayerID:   s.PlayerID,
		SessionID:  s.ID,
		PlayerHash: s.PlayerHash,
		Received:   now,
		Deadline:   deadline,
		ReplyTo:    c.box,
		Post:       c.g.boxes,
	})
}

// handleOther processes a frame that is not an application request of a logged-in player (s is
// the session, nil before login): replies from the client, the framework's messages, and
// anything before login.
func (c *conn) handleOther(f wire.Frame, s *session.Session) {
	if f.IsReply() {
		c.g.warn("reply_from_client", c.remote, "dropped a REPLY frame from a client: clients answer nothing", "conn", c.id, "msg_id", f.MsgID)
		return
	}
	if s == nil && !c.preLogin.Allow() {
		err := protocol.Errorf(protocol.RateLimited, "more than %d frames per second before login", preLoginRate)
		err.RetryAfterMs = 1000 / preLoginRate
		c.g.warn("rate_limited", c.remote, "frame refused before login", "conn", c.id)
		c.failFrame(f, "", err)
		c.throttle(err)
		return
	}
	switch f.MsgID {
	case protocol.MsgPing:
		c.ping(f)
		return
	case protocol.MsgLoginReq:
		c.login(f)
		return
	case protocol.MsgResumeReq:
		c.resume(f)
		return
	case protocol.MsgRefreshReq:
		c.refresh(f)
		return
	}
	if s == nil {
		c.unauthenticated(f)
		return
	}
	if f.MsgID == protocol.MsgLogoutReq {
		c.logout(f, s)
		return
	}
	name, declared := c.g.deps.Schema.MsgName(f.MsgID)
	if !declared {
		c.undeclared(f)
		return
	}
	c.failFrame(f, name, protocol.Errorf(protocol.Forbidden, "%s is sent by the server only", name))
}

// undeclared answers a frame whose message id the schema does not declare.
func (c *conn) undeclared(f wire.Frame) {
	c.failFrame(f, "", protocol.Errorf(protocol.UnknownMessage, "message id %d is not declared in the schema", f.MsgID))
}

// refuse answers a request the connection's limits refused.
func (c *conn) refuse(f wire.Frame, name string, s *session.Session, err *protocol.CodeError) {
	c.g.warn("rate_limited", c.remote, "request refused", "conn", c.id, "player", s.PlayerID, "error", err.Message)
	c.failFrame(f, name, err)
	c.throttle(err)
}

// failFrame answers a frame the gateway refuses itself; msg "" stands for a message id the schema
// does not declare.
func (c *conn) failFrame(f wire.Frame, msg string, err *protocol.CodeError) {
	if msg == "" {
		msg = UnknownMessage
	}
	c.answer(inflight{seq: f.Seq, msg: msg, received: time.Now()}, call.Answer{Err: err}, false)
}

// unauthenticated refuses a request sent before login and kicks after too many.
func (c *conn) unauthenticated(f wire.Frame) {
	c.unauth++
	name, _ := c.g.deps.Schema.MsgName(f.MsgID)
	c.failFrame(f, name, protocol.Errorf(protocol.Unauthenticated, "log in first: only Ping, LoginReq, ResumeReq and RefreshReq are accepted before login"))
	if c.unauth >= c.g.cfg.MaxUnauthenticated {
		c.Kick(protocol.Unauthenticated, fmt.Sprintf("%d requests before login", c.unauth))
	}
}

func (c *conn) ping(f wire.Frame) {
	var p protocol.Ping
	if err := proto.Unmarshal(f.Payload, &p); err != nil {
		c.failFrame(f, "moonforge.Ping", protocol.Errorf(protocol.DecodeFailed, "Ping: %v", err))
		return
	}
	if s := c.sess.Load(); s != nil && p.AckPushSeq > 0 {
		s.Ack(p.AckPushSeq)
	}
	c.reply(f.Seq, protocol.MsgPong, &protocol.Pong{ClientTimeMs: p.ClientTimeMs, ServerTimeMs: time.Now().UnixMilli()})
}
