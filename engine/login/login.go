// Package login is the login service: it checks a LoginReq by its method — guest, password and
// token against the accounts of package auth, any other method with the Lua function a script
// registered with mf.login — and answers with the player id. The gateway passes LoginReqs on and
// opens the session with the answer; it does not know the methods.
package login

import "github.com/moonforge/moonforge/engine/call"

// Service checks logins. Login never blocks the caller: the answer, exactly once, is posted to
// l.ReplyTo — a protocol.LoginAck payload with player_id and created set, or an error with its
// protocol code. A service on another node implements the same interface over the bus.
type Service interface {
	Login(l *call.Login)
}

// Custom runs the Lua login methods (router.Router implements it). Login delivers l to the role
// that registered l.Method; its answer's Value is the account id the method vouches for. False if
// no script registered the method (nothing is answered then).
type Custom interface {
	Login(l *call.Login) bool
}
