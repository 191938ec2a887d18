package gate

import (
	"context"
	"errors"
	"slices"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/moonforge/moonforge/engine/auth"
	"github.com/moonforge/moonforge/engine/call"
	"github.com/moonforge/moonforge/engine/protocol"
	"github.com/moonforge/moonforge/engine/session"
	"github.com/moonforge/moonforge/engine/wire"
)

// login handles LoginReq on the reader goroutine: it authenticates, opens a session (kicking an
// older connection of the same player) and replies LoginAck before any push of the session.
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
	if slices.Contains(c.g.cfg.DisabledMethods, req.Method) {
		answer(protocol.Errorf(protocol.BadRequest, "login method %q is disabled", req.Method))
		return
	}
	if cerr := c.loginAllowed(req.Method, req.Account); cerr != nil {
		answer(cerr)
		c.ignoredRetryHint()
		return
	}
	if cerr := c.g.shedding(); cerr != nil {
		answer(cerr)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), c.g.cfg.LoginTimeout)
	defer cancel()
	playerID, created, cerr := c.authenticate(ctx, &req)
	c.loginDone(req.Method, req.Account, cerr)
	if cerr != nil {
		c.g.warn("login_refused", c.remote, "login refused", "conn", c.id, "method", req.Method, "code", cerr.Code.String(), "error", cerr.Message)
		answer(cerr)
		return
	}
	var ack func(s *session.Session) wire.Frame // nil for a one-way LoginReq: no reply
	if f.Seq != 0 {
		ack = func(s *session.Session) wire.Frame {
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
			return wire.Frame{MsgID: protocol.MsgLoginAck, Flags: wire.FlagReply, Seq: f.Seq, Payload: payload}
		}
	}
	s := c.g.deps.Sessions.Open(playerID, c, ack)
	c.sess.Store(s)
	c.loggedIn()
	c.g.obs.Answered(name, 0, time.Since(start))
	c.g.log.Debug("logged in", "conn", c.id, "player", playerID, "session", s.ID, "method", req.Method, "created", created)
}

// authenticate runs the login method and returns the player id.
func (c *conn) authenticate(ctx context.Context, req *protocol.LoginReq) (string, bool, *protocol.CodeError) {
	accounts := c.g.deps.Accounts
	var (
		playerID string
		created  bool
		err      error
	)
	switch req.Method {
	case "guest":
		playerID, created, err = accounts.Guest(ctx, req.Account, c.mayCreateGuest)
	case "password":
		playerID, created, err = accounts.Password(ctx, req.Account, req.Secret, req.Extra["register"] == "1")
	case "token":
		var claims auth.Claims
		claims, err = c.verifyAccess(req.Secret)
		playerID = claims.PlayerID
	default:
		accountID, cerr := c.customLogin(req)
		if cerr != nil {
			return "", false, cerr
		}
		playerID, created, err = accounts.External(ctx, req.Method, accountID)
	}
	if errors.Is(err, auth.ErrCreationLimited) {
		return "", false, creationRefused(c.g.cfg.GuestsPerIPMinute)
	}
	if err != nil {
		return "", false, authError(err)
	}
	return playerID, created, nil
}

// customLogin asks the script that registered the method, and waits for its answer.
func (c *conn) customLogin(req *protocol.LoginReq) (string, *protocol.CodeError) {
	type answer struct {
		id  string
		err *protocol.CodeError
	}
	done := make(chan answer, 1)
	deadline := time.Now().Add(c.g.cfg.LoginTimeout)
	l := &call.Login{
		Method:   req.Method,
		Account:  req.Account,
		Secret:   req.Secret,
		Extra:    req.Extra,
		Deadline: deadline,
		Done:     func(id string, err *protocol.CodeError) { done <- answer{id, err} },
	}
	if !c.g.deps.Router.Login(l) {
		return "", protocol.Errorf(protocol.BadRequest, "unknown login method %q", req.Method)
	}
	t := time.NewTimer(time.Until(deadline) + 100*time.Millisecond)
	defer t.Stop()
	select {
	case a := <-done:
		return a.id, a.err
	case <-t.C:
		return "", protocol.Errorf(protocol.Timeout, "login method %q did not answer in time", req.Method)
	}
}

// authError maps the auth package's errors to protocol codes.
func authError(err error) *protocol.CodeError {
	switch {
	case errors.Is(err, auth.ErrBadCredentials), errors.Is(err, auth.ErrBadToken), errors.Is(err, auth.ErrExpiredToken), isRevoked(err):
		return &protocol.CodeError{Code: protocol.Unauthenticated, Message: err.Error()}
	case errors.Is(err, auth.ErrInvalidAccount), errors.Is(err, auth.ErrAccountExists):
		return &protocol.CodeError{Code: protocol.BadRequest, Message: err.Error()}
	case errors.Is(err, context.DeadlineExceeded):
		return protocol.Errorf(protocol.Timeout, "login took too long")
	}
	var ce *protocol.CodeError
	if errors.As(err, &ce) {
		return ce
	}
	return protocol.Errorf(protocol.Internal, "login failed")
}

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
