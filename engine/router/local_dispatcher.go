package router

import (
	"log/slog"
	"sync"
	"sync/atomic"

	"github.com/moonforge/moonforge/engine/actor"
	"github.com/moonforge/moonforge/engine/call"
	"github.com/moonforge/moonforge/engine/config"
	"github.com/moonforge/moonforge/engine/protocol"
	"github.com/moonforge/moonforge/engine/route"
	"github.com/moonforge/moonforge/engine/script"
)

// RoomDelivery delivers a request to a room of this process (room.Manager implements it).
type RoomDelivery interface {
	// Deliver puts req in the room's mailbox, or answers it at once (no such room, full mailbox).
	Deliver(roomID string, req *call.Request)
}

// LocalConfig configures a Local dispatcher.
type LocalConfig struct {
	System      *actor.System
	Rooms       RoomDelivery
	Tables      Tables // for Warm
	Log         *slog.Logger
	PoolSize    int // actors per role; default: config.Default
	MailboxSize int // per actor; default: config.Default
}

// Local delivers to the actors and rooms of this process: a role's actor pool starts on first
// use, and a key picks the actor by route.Pick. Safe for concurrent use.
type Local struct {
	cfg   LocalConfig
	mu    sync.Mutex                             // serialises the start of pools
	pools atomic.Pointer[map[string]*actor.Pool] // copied on write: read without a lock per request
}

// NewLocal returns a local dispatcher.
func NewLocal(cfg LocalConfig) *Local {
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	d := config.Default().Lua
	if cfg.PoolSize <= 0 {
		cfg.PoolSize = d.PoolSize
	}
	if cfg.MailboxSize <= 0 {
		cfg.MailboxSize = d.MailboxSize
	}
	l := &Local{cfg: cfg}
	l.pools.Store(&map[string]*actor.Pool{})
	return l
}

// Warm starts the pools of every role that has handlers or login methods in the table in force
// and that runs here (runs(role); nil: every role).
func (l *Local) Warm(runs func(role string) bool) error {
	for role := range l.cfg.Tables.Table().Roles() {
		if runs != nil && !runs(role) {
			continue
		}
		if _, err := l.pool(role); err != nil {
			return err
		}
	}
	return nil
}

func (l *Local) pool(role string) (*actor.Pool, error) {
	if p, ok := (*l.pools.Load())[role]; ok {
		return p, nil
	}
	return l.newPool(role)
}

// newPool starts the pool of role, unless another goroutine did meanwhile.
func (l *Local) newPool(role string) (*actor.Pool, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	pools := *l.pools.Load()
	if p, ok := pools[role]; ok {
		return p, nil
	}
	p, err := l.cfg.System.NewPool(role, l.cfg.PoolSize, l.cfg.MailboxSize)
	if err != nil {
		return nil, err
	}
	next := make(map[string]*actor.Pool, len(pools)+1)
	for k, v := range pools {
		next[k] = v
	}
	next[role] = p
	l.pools.Store(&next)
	return p, nil
}

// actor returns the actor of dst's role and key, or answers fail and returns nil.
func (l *Local) actor(dst Destination, fail func(error)) *actor.Actor {
	if dst.Node != "" {
		fail(unreachable(dst.Node))
		return nil
	}
	p, err := l.pool(dst.Role)
	if err != nil {
		fail(l.cannotRun(dst.Role, err))
		return nil
	}
	h := dst.KeyHash
	if h == 0 {
		h = route.Hash(dst.Key)
	}
	return p.Actor(route.PickHash(h, p.Size()))
}

func unreachable(node string) error {
	return protocol.Errorf(protocol.Unavailable, "node %s is not reachable from this process", node)
}

// cannotRun logs why role's actors cannot start and returns the caller's answer.
func (l *Local) cannotRun(role string, err error) error {
	l.cfg.Log.Error("cannot start actors", "role", role, "error", err)
	return protocol.Errorf(protocol.Unavailable, "role %s cannot run", role)
}

// Dispatch puts req in its actor's mailbox (or its room's). A full mailbox answers UNAVAILABLE at
// once; the actor answers TIMEOUT for a request that waited past its deadline.
func (l *Local) Dispatch(dst Destination, req *call.Request) {
	if dst.Room != "" && dst.Node == "" {
		l.cfg.Rooms.Deliver(dst.Room, req)
		return
	}
	a := l.actor(dst, req.Fail)
	if a == nil {
		return
	}
	// The request's deadline is checked on the actor, before its handler runs (VM.CallHandler).
	if !a.SendRequest((*script.VM).CallHandler, req) {
		req.Fail(&protocol.CodeError{Code: protocol.Unavailable, Message: "the handler's mailbox is full", RetryAfterMs: 100})
	}
}

// Call runs an mf.call (or a one-way mf.send) on the actor of role that key picks.
func (l *Local) Call(role, key string, c *call.Call) {
	a := l.actor(Destination{Role: role, Key: key}, c.Fail)
	if a == nil {
		return
	}
	if !a.Send(func(vm *script.VM) { vm.CallServe(c) }) {
		c.Fail(&protocol.CodeError{Code: protocol.Unavailable, Message: "the called role's mailbox is full", RetryAfterMs: 100})
	}
}

// Login runs a custom login method on its role's actor.
func (l *Local) Login(dst Destination, lg *call.Login) {
	a := l.actor(dst, func(err error) { lg.Fail(err) })
	if a == nil {
		return
	}
	if !a.Send(func(vm *script.VM) { vm.CallLogin(lg) }) {
		lg.Fail(&protocol.CodeError{Code: protocol.Unavailable, Message: "the login mailbox is full", RetryAfterMs: 100})
	}
}

// Orphaned unloads the data of a player that has no session anywhere from the player's actor of
// role (script.VM.PlayerEnded, reason "orphaned"), when its session's end never reached it. It
// reports false when the actor's mailbox is full.
func (l *Local) Orphaned(role, player string) bool {
	a := l.actor(Destination{Role: role, Key: player}, func(err error) {
		l.cfg.Log.Warn("orphaned player data not unloaded", "role", role, "player", player, "error", err)
	})
	p := call.Presence{PlayerID: player, Event: call.SessionEnded, Reason: "orphaned"}
	return a != nil && a.Send(func(vm *script.VM) { vm.PlayerEnded(p) })
}

// Notify delivers the end of p's session to the role's actor of dst.Key: its mf.on_session_end
// hook, and the unload of the player's data on the player's actor (script.VM.SessionEnded).
func (l *Local) Notify(dst Destination, p call.Presence) {
	a := l.actor(dst, func(err error) {
		l.cfg.Log.Warn("session end not delivered", "role", dst.Role, "player", p.PlayerID, "error", err)
	})
	if a == nil {
		return
	}
	if !a.Send(func(vm *script.VM) { vm.SessionEnded(p, dst.Key) }) {
		l.cfg.Log.Warn("session end not delivered: the mailbox is full", "role", dst.Role, "player", p.PlayerID)
	}
}
