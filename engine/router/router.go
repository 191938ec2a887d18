// Package router decides where a client request is handled: it looks up the message's route in
// the script version in force and delivers the request to the actor that runs its handler — a
// role's actor pool (hashed by player, or by the handler's partition key) or the player's room.
// Today every destination is in this process; a bus transport slots in behind the same Route.
package router

import (
	"log/slog"
	"sync"
	"time"

	"github.com/moonforge/moonforge/engine/actor"
	"github.com/moonforge/moonforge/engine/call"
	"github.com/moonforge/moonforge/engine/protocol"
	"github.com/moonforge/moonforge/engine/room"
	"github.com/moonforge/moonforge/engine/script"
)

// Config configures a Router.
type Config struct {
	System      *actor.System
	Versions    *script.Versions
	Rooms       *room.Manager
	Log         *slog.Logger
	PoolSize    int // actors per role; default 16
	MailboxSize int // per actor; default 1024
}

// Router routes requests to local actors. Safe for concurrent use.
type Router struct {
	cfg   Config
	mu    sync.Mutex
	pools map[string]*actor.Pool
}

// New returns a router; pools start on first use (Warm starts them ahead).
func New(cfg Config) *Router {
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	if cfg.PoolSize <= 0 {
		cfg.PoolSize = 16
	}
	if cfg.MailboxSize <= 0 {
		cfg.MailboxSize = 1024
	}
	return &Router{cfg: cfg, pools: map[string]*actor.Pool{}}
}

// Warm starts the pools of every role that has handlers or login methods in the version in force.
func (r *Router) Warm() error {
	b := r.cfg.Versions.Load()
	roles := map[string]bool{}
	for _, route := range b.Routes {
		if !route.Room {
			roles[route.Role] = true
		}
	}
	for _, role := range b.Logins {
		roles[role] = true
	}
	for role := range roles {
		if _, err := r.pool(role); err != nil {
			return err
		}
	}
	return nil
}

func (r *Router) pool(role string) (*actor.Pool, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if p, ok := r.pools[role]; ok {
		return p, nil
	}
	p, err := r.cfg.System.NewPool(role, r.cfg.PoolSize, r.cfg.MailboxSize)
	if err != nil {
		return nil, err
	}
	r.pools[role] = p
	return p, nil
}

// Route delivers a request to its handler's actor, or answers it at once: UNAVAILABLE when no
// handler is declared or the actor's mailbox is full. The actor answers TIMEOUT for a request
// that waited past its deadline.
func (r *Router) Route(req *call.Request) {
	b := r.cfg.Versions.Load()
	route, ok := b.Routes[req.MsgID]
	if !ok {
		req.Fail(protocol.Errorf(protocol.Unavailable, "no handler for %s", req.Msg))
		return
	}
	if route.Room {
		r.cfg.Rooms.Dispatch(req)
		return
	}
	p, err := r.pool(route.Role)
	if err != nil {
		r.cfg.Log.Error("cannot start actors", "role", route.Role, "error", err)
		req.Fail(protocol.Errorf(protocol.Unavailable, "role %s cannot run", route.Role))
		return
	}
	key := req.PlayerID
	if route.Key != "" {
		key = route.Key
	}
	a := p.Pick(key)
	if !a.SendBytes(func(vm *script.VM) {
		if req.Expired(time.Now()) {
			req.Fail(protocol.Errorf(protocol.Timeout, "no reply within the request deadline"))
			return
		}
		vm.CallHandler(req)
	}, len(req.Payload)) {
		req.Fail(&protocol.CodeError{Code: protocol.Unavailable, Message: "the handler's mailbox is full", RetryAfterMs: 100})
	}
}

// Login runs a custom login method in the role that registered it, on the actor its account
// hashes to. False if no script registered the method.
func (r *Router) Login(l *call.Login) bool {
	b := r.cfg.Versions.Load()
	role, ok := b.Logins[l.Method]
	if !ok {
		return false
	}
	p, err := r.pool(role)
	if err != nil {
		l.Done("", protocol.Errorf(protocol.Unavailable, "role %s cannot run", role))
		return true
	}
	if !p.Pick(l.Account).Send(func(vm *script.VM) { vm.CallLogin(l) }) {
		l.Done("", &protocol.CodeError{Code: protocol.Unavailable, Message: "the login mailbox is full", RetryAfterMs: 100})
	}
	return true
}
