package login

import (
	"context"
	"errors"
	"log/slog"
	"slices"

	"google.golang.org/protobuf/proto"

	"github.com/moonforge/moonforge/engine/auth"
	"github.com/moonforge/moonforge/engine/call"
	"github.com/moonforge/moonforge/engine/protocol"
)

// Config configures a Local service.
type Config struct {
	Accounts    *auth.Accounts
	Tokens      *auth.Tokens
	Revocations *auth.Revocations // revoked tokens are refused by the token method
	// MayCreateGuest, if set, is asked before a new guest account is made for a client address.
	MayCreateGuest func(address string) bool
	Custom         Custom
	Boxes          *call.Boxes // where the answers of Lua methods come back
	Disabled       []string    // methods refused with BAD_REQUEST
	Log            *slog.Logger
}

// Local is the login service of this process. Each login runs on a goroutine of its own (the
// account store and password hashing block), so Login returns at once.
type Local struct{ cfg Config }

// NewLocal returns the service.
func NewLocal(cfg Config) *Local {
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	return &Local{cfg: cfg}
}

// Login checks l and posts the answer (Service).
func (s *Local) Login(l *call.Login) {
	if slices.Contains(s.cfg.Disabled, l.Method) {
		l.Fail(protocol.Errorf(protocol.BadRequest, "login method %q is disabled", l.Method))
		return
	}
	go s.check(l)
}

func (s *Local) check(l *call.Login) {
	ctx, cancel := context.WithDeadline(context.Background(), l.Deadline)
	defer cancel()
	playerID, created, err := s.authenticate(ctx, l)
	if err != nil {
		ce := authError(err)
		if ce.Code == protocol.Internal {
			s.cfg.Log.Error("login failed", "method", l.Method, "error", err)
		}
		l.Fail(ce)
		return
	}
	payload, err := proto.Marshal(&protocol.LoginAck{PlayerId: playerID, Created: created})
	if err != nil {
		l.Fail(err)
		return
	}
	l.Answer(call.Answer{MsgID: protocol.MsgLoginAck, Payload: payload})
}

func (s *Local) authenticate(ctx context.Context, l *call.Login) (string, bool, error) {
	accounts := s.cfg.Accounts
	switch l.Method {
	case "guest":
		var mayCreate func() bool
		if s.cfg.MayCreateGuest != nil {
			mayCreate = func() bool { return s.cfg.MayCreateGuest(l.Address) }
		}
		return accounts.Guest(ctx, l.Account, mayCreate)
	case "password":
		return accounts.Password(ctx, l.Account, l.Secret, l.Extra["register"] == "1")
	case "token":
		claims, err := s.cfg.Tokens.Verify(l.Secret)
		if err == nil && s.cfg.Revocations != nil {
			err = s.cfg.Revocations.Check(ctx, claims)
		}
		return claims.PlayerID, false, err
	}
	accountID, err := s.custom(ctx, l)
	if err != nil {
		return "", false, err
	}
	return accounts.External(ctx, l.Method, accountID)
}

// custom asks the script that registered the method and waits for its answer until the deadline.
func (s *Local) custom(ctx context.Context, l *call.Login) (string, error) {
	in := make(answerBox, 1)
	addr := s.cfg.Boxes.Open(in)
	defer s.cfg.Boxes.Close(addr)
	q := *l
	q.ID, q.ReplyTo, q.Post = 1, addr, s.cfg.Boxes
	if !s.cfg.Custom.Login(&q) {
		return "", protocol.Errorf(protocol.BadRequest, "unknown login method %q", l.Method)
	}
	select {
	case a := <-in:
		if a.Err != nil {
			return "", a.Err
		}
		id, ok := a.Value.(string)
		if !ok || id == "" {
			return "", protocol.Errorf(protocol.Internal, "login method %q answered no account id", l.Method)
		}
		return id, nil
	case <-ctx.Done():
		return "", protocol.Errorf(protocol.Timeout, "login method %q did not answer in time", l.Method)
	}
}

// answerBox is a one-answer inbox.
type answerBox chan call.Answer

func (b answerBox) Deliver(a call.Answer) {
	select {
	case b <- a:
	default:
	}
}

// authError maps the auth package's errors to protocol codes.
func authError(err error) *protocol.CodeError {
	switch {
	case errors.Is(err, auth.ErrBadCredentials), errors.Is(err, auth.ErrBadToken), errors.Is(err, auth.ErrExpiredToken), errors.Is(err, auth.ErrRevokedToken):
		return &protocol.CodeError{Code: protocol.Unauthenticated, Message: err.Error()}
	case errors.Is(err, auth.ErrCreationLimited):
		return &protocol.CodeError{Code: protocol.RateLimited, Message: err.Error(), RetryAfterMs: 2000}
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
