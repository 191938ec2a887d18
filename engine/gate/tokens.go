package gate

import (
	"context"
	"errors"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/moonforge/moonforge/engine/auth"
	"github.com/moonforge/moonforge/engine/protocol"
	"github.com/moonforge/moonforge/engine/session"
	"github.com/moonforge/moonforge/engine/wire"
)

// storeTimeout bounds one look-up or write of the revocation list.
const storeTimeout = 5 * time.Second

// verifyAccess checks an access token: signature, expiry and the revocation list.
func (c *conn) verifyAccess(token string) (auth.Claims, error) {
	claims, err := c.g.deps.Tokens.Verify(token)
	if err != nil {
		return claims, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), storeTimeout)
	defer cancel()
	return claims, c.g.deps.Revocations.Check(ctx, claims)
}

// issueTokens returns a LoginAck's or RefreshAck's tokens for the session.
func (c *conn) issueTokens(playerID, sessionID string) (access string, expires time.Time, refresh string, refreshExpires time.Time) {
	access, expires = c.g.deps.Tokens.Issue(playerID, sessionID)
	refresh, refreshExpires = c.g.deps.Tokens.IssueRefresh(playerID, sessionID)
	return
}

// refresh handles RefreshReq, before or after login: a refresh token, good once, buys a new
// access token and the next refresh token. It does not log the connection in.
func (c *conn) refresh(f wire.Frame) {
	const name = "moonforge.RefreshReq"
	start := time.Now()
	var req protocol.RefreshReq
	if err := proto.Unmarshal(f.Payload, &req); err != nil {
		c.failFrame(f, name, protocol.Errorf(protocol.DecodeFailed, "RefreshReq: %v", err))
		return
	}
	claims, err := c.g.deps.Tokens.VerifyRefresh(req.RefreshToken)
	if err == nil {
		ctx, cancel := context.WithTimeout(context.Background(), storeTimeout)
		err = c.g.deps.Revocations.UseRefresh(ctx, claims)
		cancel()
	}
	if err != nil {
		c.g.warn("refresh_refused", c.remote, "refresh refused", "conn", c.id, "error", err)
		c.failFrame(f, name, tokenError(err))
		return
	}
	access, expires, refresh, refreshExpires := c.issueTokens(claims.PlayerID, claims.SessionID)
	c.reply(f.Seq, protocol.MsgRefreshAck, &protocol.RefreshAck{
		Token:              access,
		ExpiresAtMs:        expires.UnixMilli(),
		RefreshToken:       refresh,
		RefreshExpiresAtMs: refreshExpires.UnixMilli(),
	})
	c.g.obs.Answered(name, 0, time.Since(start))
}

// logout handles LogoutReq: it revokes the session's tokens (or every session's of the player),
// ends the session, replies LogoutAck and closes the connection normally.
func (c *conn) logout(f wire.Frame, s *session.Session) {
	const name = "moonforge.LogoutReq"
	start := time.Now()
	var req protocol.LogoutReq
	if err := proto.Unmarshal(f.Payload, &req); err != nil {
		c.failFrame(f, name, protocol.Errorf(protocol.DecodeFailed, "LogoutReq: %v", err))
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), storeTimeout)
	defer cancel()
	revocations := c.g.deps.Revocations
	err := revocations.RevokeSession(ctx, s.ID)
	if err == nil && req.AllSessions {
		err = revocations.RevokePlayer(ctx, s.PlayerID)
	}
	if err != nil {
		c.g.log.Error("logout: revoking tokens failed", "conn", c.id, "player", s.PlayerID, "error", err)
		c.failFrame(f, name, protocol.Errorf(protocol.Internal, "logout failed"))
		return
	}
	c.reply(f.Seq, protocol.MsgLogoutAck, &protocol.LogoutAck{})
	c.g.obs.Answered(name, 0, time.Since(start))
	c.g.deps.Sessions.End(s, "logout")
	c.closeGracefully("logged out")
}

// closeGracefully closes the connection once what is queued is written, without a Kick.
func (c *conn) closeGracefully(reason string) {
	if !c.kicked.CompareAndSwap(false, true) {
		return
	}
	c.reason.Store(reason)
	c.queue.Close(nil)
	c.t.setReadDeadline(time.Now().Add(c.g.cfg.WriteTimeout + c.g.cfg.Linger))
}

// isRevoked reports whether err says the token was revoked.
func isRevoked(err error) bool { return errors.Is(err, auth.ErrRevokedToken) }

// tokenError maps a refused token to UNAUTHENTICATED, and a failure of the store to INTERNAL.
func tokenError(err error) *protocol.CodeError {
	if errors.Is(err, auth.ErrBadToken) || errors.Is(err, auth.ErrExpiredToken) || isRevoked(err) {
		return &protocol.CodeError{Code: protocol.Unauthenticated, Message: err.Error()}
	}
	return protocol.Errorf(protocol.Internal, "refresh failed")
}
