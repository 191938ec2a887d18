package gate

import (
	"context"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/moonforge/moonforge/engine/call"
	"github.com/moonforge/moonforge/engine/protocol"
	"github.com/moonforge/moonforge/engine/session"
	"github.com/moonforge/moonforge/engine/wire"
)

// login handles LoginReq on the reader goroutine: the login service checks it, and the reader
// waits for that answer (or TIMEOUT from the table of requests in flight), so that no request of
// the client is read before its session exists. Then it opens the session (kicking an older
// connection of the same player) and replies LoginAck before any push of the session.
func (c *conn) login(f wire.Frame) {
	const name = "moonforge.LoginReq"
	start := time.Now()
	answer := func(err *protocol.CodeError) { c.failFrame(f, name, err) }
	if c.sess.Load() != nil {
		answer(protocol.Errorf(protocol.BadRequest, "already logged in on this connection"))
		return
	}
	var req protocol.LoginReq
	if err := proto.Unmarshal(f.Payload, &req); err != nil {
		answer(protocol.Errorf(protocol.DecodeFailed, "LoginReq: %v", err))
		return
	}
	cerr, onRecord := c.loginAllowed(req.Method, req.Account)
	if cerr != nil {
		answer(cerr)
		c.ignoredRetryHint()
		return
	}
	if cerr := c.g.shedding(); cerr != nil {
		answer(cerr)
		return
	}
	// A login is a request: it has the request deadline, within the connection's login timeout.
	deadline := start.Add(min(c.g.cfg.LoginTimeout, c.g.cfg.RequestTimeout))
	id := c.add(inflight{seq: f.Seq, msg: name, received: start, deadline: deadline, login: true})
	c.g.deps.Login.Login(&call.Login{
		ID:       id,
		Method:   req.Method,
		Account:  req.Account,
		Secret:   req.Secret,
		Extra:    req.Extra,
		Address:  hostOf(c.remote),
		Deadline: deadline,
		ReplyTo:  c.box,
		Post:     c.g.boxes,
	})
	var a call.Answer
	select {
	case a = <-c.loginAnswer:
	case <-c.written: // the connection was closed meanwhile (shutdown)
		return
	}
	var ack protocol.LoginAck
	if a.Err == nil && (a.MsgID != protocol.MsgLoginAck || proto.Unmarshal(a.Payload, &ack) != nil || ack.PlayerId == "") {
		a.Err = protocol.Errorf(protocol.Internal, "the login service answered no player")
	}
	c.loginDone(req.Method, req.Account, a.Err, onRecord)
	if a.Err != nil {
		c.g.warn("login_refused", c.remote, "login refused", "conn", c.id, "method", req.Method, "code", a.Err.Code.String(), "error", a.Err.Message)
		answer(a.Err)
		return
	}
	playerID, created := ack.PlayerId, ack.Created
	var ackFrame func(s *session.Session) wire.Frame // nil for a one-way LoginReq: no reply
	if f.Seq != 0 {
		ackFrame = func(s *session.Session) wire.Frame {
			token, expires, refresh, refreshExpires := c.issueTokens(playerID, s.ID)
			payload, _ := proto.Marshal(&protocol.LoginAck{
				PlayerId:           playerID,
				Token:              token,
				ExpiresAtMs:        expires.UnixMilli(),
				SessionId:          s.ID,
				Created:            created,
				RefreshToken:       refresh,
				RefreshExpiresAtMs: refreshExpires.UnixMilli(),
			})
			return wireReply(protocol.MsgLoginAck, f.Seq, payload)
		}
	}
	s := c.g.deps.Sessions.Open(playerID, c, ackFrame)
	c.sess.Store(s)
	c.loggedIn()
	c.g.obs.Answered(name, 0, time.Since(start))
	c.g.log.Debug("logged in", "conn", c.id, "player", playerID, "session", s.ID, "method", req.Method, "created", created)
}

// takeoverTimeout bounds how long a resume waits for another proxy to hand its session over.
const takeoverTimeout = 5 * time.Second

// resume handles ResumeReq: it rebinds a held session to this connection and replays the pushes
// the client missed (session.Session.Resume), or answers RESUME_FAILED.
func (c *conn) resume(f wire.Frame) {
	const name = "moonforge.ResumeReq"
	start := time.Now()
	fail := func(code protocol.Code, msg string) {
		c.failFrame(f, name, &protocol.CodeError{Code: code, Message: msg})
	}
	if c.sess.Load() != nil {
		fail(protocol.BadRequest, "already logged in on this connection")
		return
	}
	var req protocol.ResumeReq
	if err := proto.Unmarshal(f.Payload, &req); err != nil {
		fail(protocol.DecodeFailed, "ResumeReq: "+err.Error())
		return
	}
	claims, err := c.verifyAccess(req.Token)
	if err != nil {
		fail(protocol.ResumeFailed, err.Error())
		return
	}
	s := c.g.deps.Sessions.Get(claims.SessionID)
	if s == nil && c.g.deps.Takeover != nil {
		// Held by another proxy: it hands the session over (on this reader: the client waits).
		ctx, cancel := context.WithTimeout(context.Background(), min(c.g.cfg.RequestTimeout, takeoverTimeout))
		err := c.g.deps.Takeover(ctx, claims.PlayerID, claims.SessionID)
		cancel()
		if err != nil {
			ce := protocol.AsCodeError(err)
			fail(ce.Code, ce.Message)
			return
		}
		s = c.g.deps.Sessions.Get(claims.SessionID)
	}
	if s == nil || s.PlayerID != claims.PlayerID {
		fail(protocol.ResumeFailed, "the session is no longer held: log in again")
		return
	}
	token, _ := c.g.deps.Tokens.Issue(s.PlayerID, s.ID)
	// Bound before Resume so that the first push after the replay already finds this connection.
	c.sess.Store(s)
	var ack func(replayed uint32) wire.Frame // nil for a one-way ResumeReq: no reply
	if f.Seq != 0 {
		ack = func(replayed uint32) wire.Frame {
			payload, _ := proto.Marshal(&protocol.ResumeAck{PlayerId: s.PlayerID, Replayed: replayed, Token: token})
			return wire.Frame{MsgID: protocol.MsgResumeAck, Flags: wire.FlagReply, Seq: f.Seq, Payload: payload}
		}
	}
	err = s.Resume(req.LastPushSeq, c, ack)
	if err != nil {
		c.sess.Store(nil)
		fail(protocol.ResumeFailed, err.Error())
		return
	}
	c.loggedIn()
	c.g.obs.Answered(name, 0, time.Since(start))
	c.g.log.Debug("session resumed", "conn", c.id, "player", s.PlayerID, "session", s.ID, "last_push_seq", req.LastPushSeq)
}
