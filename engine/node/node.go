// Package node assembles a Moonforge node from its parts: store, accounts and tokens, scripts and
// schema (with hot reload), actors, sessions, rooms, router, gateway, admin endpoint and metrics.
// `moonforge run` runs one node with every role in one process.
package node

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/moonforge/moonforge/engine/actor"
	"github.com/moonforge/moonforge/engine/admin"
	"github.com/moonforge/moonforge/engine/auth"
	"github.com/moonforge/moonforge/engine/call"
	"github.com/moonforge/moonforge/engine/cert"
	"github.com/moonforge/moonforge/engine/config"
	"github.com/moonforge/moonforge/engine/gate"
	"github.com/moonforge/moonforge/engine/login"
	"github.com/moonforge/moonforge/engine/metrics"
	"github.com/moonforge/moonforge/engine/presence"
	"github.com/moonforge/moonforge/engine/reload"
	"github.com/moonforge/moonforge/engine/room"
	"github.com/moonforge/moonforge/engine/router"
	"github.com/moonforge/moonforge/engine/script"
	"github.com/moonforge/moonforge/engine/session"
	"github.com/moonforge/moonforge/engine/store"
	"github.com/moonforge/moonforge/engine/watch"
)

// Node is one running Moonforge process.
type Node struct {
	cfg     config.Config
	log     *slog.Logger
	started time.Time

	store       store.Store
	boxes       *call.Boxes
	tokens      *auth.Tokens
	revocations *auth.Revocations
	keysFile    string
	certs       *cert.Reloader // nil: no TLS
	mem         *memoryGuard
	stopBg      chan struct{} // closed by Stop: ends the background upkeep
	metrics     *metrics.Metrics
	reloader    *reload.Reloader
	system      *actor.System
	sessions    *session.Manager
	rooms       *room.Manager
	router      *router.Router
	gate        *gate.Gateway
	admin       *admin.Server
	watcher     *watch.Watcher
}

// New builds a node: it opens the store, compiles the scripts and starts the actors, but accepts
// no connection before Start. A script or schema error stops it here.
func New(cfg config.Config, log *slog.Logger, ext script.Extensions) (*Node, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if err := script.CheckExtensions(ext); err != nil {
		return nil, err
	}
	n := &Node{cfg: cfg, log: log, started: time.Now(), stopBg: make(chan struct{}), mem: newMemoryGuard(cfg.MemoryLimit, cfg.MemoryHighWater)}
	if err := n.build(ext); err != nil {
		n.close()
		return nil, err
	}
	return n, nil
}

// build opens and wires the parts of New; on an error, what it opened is left for close.
func (n *Node) build(ext script.Extensions) (err error) {
	cfg, log := n.cfg, n.log
	for _, d := range []struct{ option, flag, path string }{{"lua_dir", "-lua", cfg.LuaDir}, {"proto_dir", "-proto", cfg.ProtoDir}} {
		if info, err := os.Stat(d.path); err != nil || !info.IsDir() {
			return fmt.Errorf("%s %q is not a directory: start moonforge in the project directory, or pass %s DIR", d.option, filepath.ToSlash(d.path), d.flag)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	db, err := store.Open(ctx, cfg.Store, cfg.DataDir)
	if err != nil {
		if cfg.Store.Backend == "bolt" {
			return fmt.Errorf("data directory %q: %w", filepath.ToSlash(cfg.DataDir), err)
		}
		return fmt.Errorf("store (%s): %w", cfg.Store.Backend, err)
	}
	n.store = db
	tokens, err := n.loadTokens()
	if err != nil {
		return err
	}
	n.revocations = auth.NewRevocations(n.store, cfg.Auth.RefreshTTL)
	tlsCfg, err := n.tlsConfig()
	if err != nil {
		return err
	}
	accounts := auth.NewAccounts(n.store, auth.Config{MinPasswordLen: cfg.Auth.MinPasswordLen, HashConcurrency: cfg.Auth.HashConcurrency})

	n.boxes = call.NewBoxes("", nil)
	n.metrics = metrics.New(metrics.Gauges{
		Undelivered: n.boxes.Dropped,
		Sessions:    func() int { return n.sessions.Count() },
		Rooms:       func() int { return n.rooms.Count() },
		Mailboxes:   n.mailboxes,
	})
	n.reloader, err = reload.Start(reload.Config{
		LuaDir:   cfg.LuaDir,
		ProtoDir: cfg.ProtoDir,
		Dev:      cfg.Dev,
		Ext:      ext,
		Log:      log.With("part", "reload"),
		OnResult: func(r reload.Result) { n.metrics.Reloaded(r.Outcome, r.Version, r.Previous) },
	})
	if err != nil {
		return fmt.Errorf("scripts: %w", err)
	}
	versions := n.reloader.Versions()
	n.sessions = session.NewManager(session.Config{
		ResumeWindow:    cfg.Session.ResumeWindow,
		ReplayMaxPushes: cfg.Session.ReplayPushes,
		ReplayMaxBytes:  cfg.Session.ReplayBytes,
	})
	online := presence.NewDirectory()
	svc := &script.Services{
		Players:        n.sessions,
		Presence:       online,
		Store:          n.store,
		Log:            log.With("part", "lua"),
		Dev:            cfg.Dev,
		HandlerTimeout: cfg.Lua.HandlerTimeout,
		Observer:       n.metrics,
		Boxes:          n.boxes,
	}
	n.system = actor.NewSystem(actor.SystemConfig{Services: svc, Versions: versions, Log: log.With("part", "actor"), Observer: n.metrics, MailboxBytes: cfg.Lua.MailboxBytes})
	n.rooms = room.NewManager(room.Config{
		System:      n.system,
		Versions:    versions,
		Players:     n.sessions,
		Presence:    online,
		Log:         log.With("part", "room"),
		Observer:    n.metrics,
		MailboxSize: cfg.Session.RoomMailboxes,
		MaxRooms:    cfg.Session.MaxRooms,
	})
	svc.Rooms = newGuardedRooms(n.rooms, n.mem, cfg.Session.MaxRoomsPerPlayer)
	local := router.NewLocal(router.LocalConfig{
		System:      n.system,
		Rooms:       n.rooms,
		Tables:      versions,
		Log:         log.With("part", "router"),
		PoolSize:    cfg.Lua.PoolSize,
		MailboxSize: cfg.Lua.MailboxSize,
	})
	if err := local.Warm(); err != nil {
		return fmt.Errorf("scripts: %w", err)
	}
	n.router = router.New(versions, n.rooms, local)
	// The directory first: a room or a hook that reacts to a presence message reads it updated.
	n.sessions.Follow(call.Notifiers{online, n.rooms, n.router})
	n.gate = gate.New(gate.Config{
		TCPAddr:              cfg.Gate.TCP,
		WSAddr:               cfg.Gate.WS,
		WSPath:               cfg.Gate.WSPath,
		MaxFrame:             cfg.Gate.MaxFrame,
		Heartbeat:            cfg.Gate.Heartbeat,
		RequestTimeout:       cfg.Gate.RequestTimeout,
		MaxUnauthenticated:   cfg.Gate.MaxUnauthenticated,
		SendQueueBytes:       cfg.Gate.SendQueueBytes,
		RateLimit:            cfg.Gate.RateLimit,
		RateBurst:            cfg.Gate.RateBurst,
		LoginTimeout:         cfg.Gate.LoginTimeout,
		MaxFrameBeforeLogin:  cfg.Gate.MaxFrameBeforeLogin,
		MaxConnections:       cfg.Gate.MaxConnections,
		MaxConnectionsPerIP:  cfg.Gate.MaxConnectionsPerIP,
		MaxInFlight:          cfg.Gate.MaxInFlight,
		TLSTCPAddr:           cfg.Gate.TLSTCP,
		TLSWSAddr:            cfg.Gate.TLSWS,
		LoginFailureDelay:    cfg.Auth.FailureDelay,
		LoginLockoutFailures: cfg.Auth.LockoutFailures,
		LoginLockout:         cfg.Auth.Lockout,
		GuestsPerIPMinute:    cfg.Auth.GuestsPerIPMinute,
		KCP:                  kcpConfig(cfg.Gate.KCP),
	}, gate.Deps{
		Sessions:    n.sessions,
		Tokens:      tokens,
		Revocations: n.revocations,
		Login: login.NewLocal(login.Config{
			Accounts:       accounts,
			Tokens:         tokens,
			Revocations:    n.revocations,
			MayCreateGuest: func(address string) bool { return n.gate.MayCreateGuest(address) },
			Custom:         n.router,
			Boxes:          n.boxes,
			Disabled:       cfg.Gate.DisabledMethods,
			Log:            log.With("part", "login"),
		}),
		TLS:      tlsCfg,
		Shedding: n.mem.Shedding,
		Router:   n.router,
		Boxes:    n.boxes,
		Schema:   versions,
		Log:      log.With("part", "gate"),
		Observer: n.metrics,
	})
	return nil
}

// Start opens the gateway, the admin endpoint and the file watcher.
func (n *Node) Start() error {
	if err := n.gate.Start(); err != nil {
		return err
	}
	if n.cfg.Admin.Addr != "-" {
		var err error
		token, err := adminToken(n.cfg.Admin.TokenFile)
		if err != nil {
			return fmt.Errorf("admin: %w", err)
		}
		var tlsCfg *tls.Config // HTTPS with a configured certificate, not the development one
		if n.cfg.TLS.CertFile != "" {
			tlsCfg = n.certs.ServerConfig()
		}
		n.admin, err = admin.Start(n.cfg.Admin.Addr, admin.Deps{
			Registry: n.metrics.Registry,
			Reloader: n.reloader,
			Status:   func() any { return n.Status() },
			Log:      n.log.With("part", "admin"),
			Token:    token,
			Pprof:    n.cfg.Admin.Pprof,
			TLS:      tlsCfg,
		})
		if err != nil {
			return fmt.Errorf("admin: %w", err)
		}
	}
	if n.cfg.Lua.Watch {
		var err error
		n.watcher, err = watch.New(watch.Config{
			Dirs:     []string{n.cfg.LuaDir, n.cfg.ProtoDir},
			Debounce: n.cfg.Lua.Debounce,
			Logger:   n.log.With("part", "watch"),
		}, func([]string) { n.reloader.Reload("watch") })
		if err != nil {
			return fmt.Errorf("watch: %w", err)
		}
	}
	go n.upkeep()
	current := n.reloader.Versions().Load()
	n.log.Info("moonforge is running", "tcp", n.TCPAddr(), "ws", n.WSAddr(), "tls", n.TLSAddr(), "wss", n.WSSAddr(), "kcp", n.KCPAddr(), "admin", n.AdminAddr(),
		"version", current.Version, "data", n.cfg.DataDir, "dev", n.cfg.Dev)
	return nil
}

// Run starts the node and serves until ctx ends, then stops gracefully.
func (n *Node) Run(ctx context.Context) error {
	if err := n.Start(); err != nil {
		n.close()
		return err
	}
	<-ctx.Done()
	stopCtx, cancel := context.WithTimeout(context.Background(), n.cfg.Shutdown)
	defer cancel()
	return n.Stop(stopCtx)
}

// Stop stops accepting, kicks every client with SERVER_SHUTDOWN, lets actors finish their queued
// work (rooms close), and closes the store.
func (n *Node) Stop(ctx context.Context) error {
	n.log.Info("stopping")
	select {
	case <-n.stopBg:
	default:
		close(n.stopBg)
	}
	if n.watcher != nil {
		_ = n.watcher.Close()
	}
	n.gate.Shutdown(ctx)
	n.rooms.Stop()
	n.system.Stop()
	if n.admin != nil {
		_ = n.admin.Shutdown(ctx)
	}
	err := n.store.Close()
	n.log.Info("stopped")
	return err
}

// close releases what New opened when New fails.
func (n *Node) close() {
	if n.system != nil {
		n.system.Stop()
	}
	if n.store != nil {
		_ = n.store.Close()
	}
}

// TCPAddr returns the gateway's TCP address ("" if disabled).
func (n *Node) TCPAddr() string { return n.gate.Addr("tcp") }

// WSAddr returns the gateway's WebSocket address ("" if disabled).
func (n *Node) WSAddr() string { return n.gate.Addr("ws") }

// TLSAddr returns the gateway's TCP over TLS address ("" if closed).
func (n *Node) TLSAddr() string { return n.gate.Addr("tls") }

// WSSAddr returns the gateway's WebSocket over TLS address ("" if closed).
func (n *Node) WSSAddr() string { return n.gate.Addr("wss") }

// KCPAddr returns the gateway's KCP (UDP) address ("" if disabled).
func (n *Node) KCPAddr() string { return n.gate.Addr("kcp") }

// kcpConfig maps the file's KCP options to the gateway's.
func kcpConfig(k config.KCP) gate.KCPConfig {
	resend := k.Resend
	if resend == 0 {
		resend = -1 // off
	}
	return gate.KCPConfig{
		Addr:              k.Addr,
		MTU:               k.MTU,
		SendWindow:        k.SendWindow,
		RecvWindow:        k.RecvWindow,
		Interval:          k.Interval,
		Resend:            resend,
		Delay:             !k.NoDelay,
		CongestionControl: k.CongestionControl,
		MaxSessions:       k.MaxSessions,
		SocketBuffer:      k.SocketBuffer,
	}
}

// AdminAddr returns the admin endpoint's address ("" if disabled).
func (n *Node) AdminAddr() string {
	if n.admin == nil {
		return ""
	}
	return n.admin.Addr().String()
}

func (n *Node) mailboxes() (total, deepest int) {
	n.system.Each(func(a *actor.Actor) {
		d := a.Depth()
		total += d
		deepest = max(deepest, d)
	})
	return total, deepest
}

// Status is the node summary shown at admin /status.
type Status struct {
	Version     string         `json:"version"`
	UptimeS     float64        `json:"uptime_s"`
	Connections int            `json:"connections"`
	Sessions    int            `json:"sessions"`
	Rooms       int            `json:"rooms"`
	Actors      map[string]int `json:"actors_by_version"`
	LastReload  reload.Result  `json:"last_reload"`
}

// Status summarises the node.
func (n *Node) Status() Status {
	current := n.reloader.Versions().Load()
	s := Status{
		Version:     current.Version,
		UptimeS:     time.Since(n.started).Seconds(),
		Connections: n.gate.Count(),
		Sessions:    n.sessions.Count(),
		Rooms:       n.rooms.Count(),
		Actors:      map[string]int{},
		LastReload:  n.reloader.Last(),
	}
	n.system.Each(func(a *actor.Actor) { s.Actors[a.Version()]++ })
	return s
}
