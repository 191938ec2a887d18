// Package node assembles a Moonforge node from its parts: store, accounts and tokens, scripts and
// schema (with hot reload), actors, sessions, rooms, router, gateway, admin endpoint and metrics.
// `moonforge run` runs one node with every role in one process.
package node

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/moonforge/moonforge/engine/actor"
	"github.com/moonforge/moonforge/engine/admin"
	"github.com/moonforge/moonforge/engine/auth"
	"github.com/moonforge/moonforge/engine/bus"
	"github.com/moonforge/moonforge/engine/call"
	"github.com/moonforge/moonforge/engine/cert"
	"github.com/moonforge/moonforge/engine/cluster"
	"github.com/moonforge/moonforge/engine/config"
	"github.com/moonforge/moonforge/engine/gate"
	"github.com/moonforge/moonforge/engine/ident"
	"github.com/moonforge/moonforge/engine/login"
	"github.com/moonforge/moonforge/engine/metrics"
	"github.com/moonforge/moonforge/engine/playerdata"
	"github.com/moonforge/moonforge/engine/presence"
	"github.com/moonforge/moonforge/engine/protocol"
	"github.com/moonforge/moonforge/engine/registry"
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

	id          string
	all         bool // runs every role (moonforge run)
	fabric      *bus.Fabric
	registry    *registry.Registry
	cluster     *cluster.Cluster
	store       store.Store
	players     *playerdata.Manager  // nil unless the node runs cfg.Player.Role
	orphans     map[string]time.Time // loaded players seen without a session, since; upkeep only
	online      *presence.Directory  // this process's sessions
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
	local       *router.Local
	clusterDeps cluster.Deps
	gate        *gate.Gateway
	admin       *admin.Server
	watcher     *watch.Watcher
	drain       chan struct{} // closed by the drain command
	drainOne    sync.Once
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
	n := &Node{cfg: cfg, started: time.Now(), stopBg: make(chan struct{}), mem: newMemoryGuard(cfg.MemoryLimit, cfg.MemoryHighWater), drain: make(chan struct{}), all: len(cfg.Cluster.Roles) == 0, id: cfg.Cluster.NodeID}
	if n.id == "" {
		first := "node"
		if !n.all {
			first = cfg.Cluster.Roles[0]
		}
		n.id = ident.New(first+"-", 6)
	}
	if !bus.ValidName(n.id) {
		return nil, fmt.Errorf("cluster.node_id %q: use 1 to 64 letters, digits, '-' or '_'", n.id)
	}
	for _, r := range cfg.Cluster.Roles {
		if !bus.ValidName(r) {
			return nil, fmt.Errorf("role %q: use 1 to 64 letters, digits, '-' or '_'", r)
		}
	}
	n.log = log.With("node", n.id)
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
	storeCfg := cfg.Store
	storeCfg.MySQL.Log = log
	db, err := store.Open(ctx, storeCfg, cfg.DataDir)
	if err != nil {
		if cfg.Store.Backend == "bolt" {
			return fmt.Errorf("data directory %q: %w", filepath.ToSlash(cfg.DataDir), err)
		}
		return fmt.Errorf("store (%s): %w", cfg.Store.Backend, err)
	}
	n.store = db
	if n.runs(cfg.Player.Role) {
		n.players, err = playerdata.Open(playerdata.Config{
			Store:      db,
			Dir:        filepath.Join(cfg.DataDir, "playerdata"),
			FlushEvery: cfg.Player.FlushEvery,
			LeaseTTL:   cfg.Player.LeaseTTL,
			Log:        log.With("part", "playerdata"),
		})
		if err != nil {
			return fmt.Errorf("player data: %w", err)
		}
	}
	if err := n.join(); err != nil {
		return err
	}
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

	n.boxes = call.NewBoxes(n.id, n.cluster)
	n.metrics = metrics.New(metrics.Gauges{
		Undelivered: n.boxes.Dropped,
		Sessions:    func() int { return n.sessions.Count() },
		Rooms:       func() int { return n.rooms.Count() },
		Mailboxes:   n.mailboxes,
		Traffic:     n.traffic,
	})
	n.reloader, err = reload.Start(reload.Config{
		LuaDir:   cfg.LuaDir,
		ProtoDir: cfg.ProtoDir,
		Dev:      cfg.Dev,
		Ext:      ext,
		Log:      log.With("part", "reload"),
		OnResult: func(r reload.Result) {
			n.metrics.Reloaded(r.Outcome, r.Version, r.Previous)
			n.cluster.Announce() // the handlers of the new version, at once
		},
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
	n.online = online
	svc := &script.Services{
		Players:        n.cluster.Players(n.sessions),
		Presence:       clusterPresence{online, n.cluster},
		Store:          n.store,
		Log:            log.With("part", "lua"),
		Dev:            cfg.Dev,
		HandlerTimeout: cfg.Lua.HandlerTimeout,
		Observer:       n.metrics,
		Boxes:          n.boxes,
		Calls:          n.cluster,
		PlayerData:     n.players,
		PlayerRole:     cfg.Player.Role,
		PlayerMessage:  cfg.Player.Message,
		Node:           n.id,
	}
	n.system = actor.NewSystem(actor.SystemConfig{Services: svc, Versions: versions, Log: log.With("part", "actor"), Observer: n.metrics, MailboxBytes: cfg.Lua.MailboxBytes})
	n.rooms = room.NewManager(room.Config{
		System:      n.system,
		Versions:    versions,
		Players:     n.cluster.Players(n.sessions),
		Presence:    clusterPresence{online, n.cluster},
		Log:         log.With("part", "room"),
		Observer:    n.metrics,
		MailboxSize: cfg.Session.RoomMailboxes,
		MaxRooms:    cfg.Session.MaxRooms,
		Directory:   n.directory(),
	})
	svc.Rooms = newGuardedRooms(n.rooms, n.mem, cfg.Session.MaxRoomsPerPlayer)
	if n.clustered() {
		n.sessions.OnOpen(n.claim)
	}
	local := router.NewLocal(router.LocalConfig{
		System:      n.system,
		Rooms:       n.rooms,
		Tables:      versions,
		Log:         log.With("part", "router"),
		PoolSize:    cfg.Lua.PoolSize,
		MailboxSize: cfg.Lua.MailboxSize,
	})
	if err := local.Warm(n.cluster.Runs); err != nil {
		return fmt.Errorf("scripts: %w", err)
	}
	n.local = local
	n.router = router.New(versions, n.cluster, n.cluster).PlayerRole(cfg.Player.Role)
	// The directory first: a room or a hook that reacts to a presence message reads it updated.
	n.sessions.Follow(call.Notifiers{online, sessionFollower{n.rooms, n}, n.router})
	inbox := router.New(versions, n.rooms, local)
	n.clusterDeps = cluster.Deps{Boxes: n.boxes, Local: local, Rooms: n.rooms, Seats: n.rooms, Inbox: inbox, Schema: versions, Record: n.record,
		Push: n.sessions.Push, PushAll: n.sessions.PushAll, Kick: n.kick, Command: n.command,
		Handover: n.sessions.Handover, Adopt: func(st session.State) { n.sessions.Adopt(st) },
		Tables: versions, Call: local.Call}
	if !n.runs("proxy") {
		cfg.Gate.TCP, cfg.Gate.WS, cfg.Gate.KCP.Addr = "-", "-", "-"
		n.cfg.Gate = cfg.Gate
	}
	logins := login.NewLocal(login.Config{
		Accounts:       accounts,
		Tokens:         tokens,
		Revocations:    n.revocations,
		MayCreateGuest: func(address string) bool { return n.gate.MayCreateGuest(address) },
		Custom:         n.router,
		Boxes:          n.boxes,
		Disabled:       cfg.Gate.DisabledMethods,
		Log:            log.With("part", "login"),
	})
	n.clusterDeps.Login = logins
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
		Sessions:      n.sessions,
		Tokens:        tokens,
		Revocations:   n.revocations,
		LoginFailures: n.store,
		Login:         n.cluster.Logins(logins),
		TLS:           tlsCfg,
		Shedding:      n.mem.Shedding,
		Router:        n.router,
		Boxes:         n.boxes,
		Schema:        versions,
		Log:           log.With("part", "gate"),
		Observer:      n.metrics,
		Takeover:      n.takeover(),
	})
	return nil
}

// Start opens the gateway, joins the cluster, opens the admin endpoint and the file watcher.
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
			Cluster:  n.clusterNodes(),
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
	if err := n.cluster.Start(n.clusterDeps, n.cfg.Cluster.Heartbeat); err != nil {
		return fmt.Errorf("cluster: %w", err)
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
	select {
	case <-ctx.Done():
	case <-n.drain:
		n.log.Info("draining on the cluster's command")
	}
	limit := n.cfg.Shutdown
	if !n.all {
		limit += n.cfg.Cluster.DrainTimeout // the rooms' time to end
	}
	stopCtx, cancel := context.WithTimeout(context.Background(), limit)
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
	n.cluster.Drain()
	if !n.all {
		// Proxies learn of the drain from the registry's watchers within milliseconds; requests
		// they sent meanwhile still find this node's subscriptions.
		select {
		case <-time.After(n.cfg.Cluster.Heartbeat):
		case <-ctx.Done():
		}
		// Rooms take no new players once draining; their players finish, up to drain_timeout.
		roomsCtx, cancel := context.WithTimeout(ctx, n.cfg.Cluster.DrainTimeout)
		if left := n.rooms.Drain(roomsCtx); left > 0 {
			n.log.Warn("closing the rooms that did not end within the drain timeout", "rooms", left)
		}
		cancel()
	}
	n.gate.Shutdown(ctx)
	n.cluster.Stop(time.Until(deadlineOr(ctx, 5*time.Second)))
	n.rooms.Stop()
	n.system.Stop()
	n.fabric.Drain(time.Until(deadlineOr(ctx, 5*time.Second)))
	if n.admin != nil {
		_ = n.admin.Shutdown(ctx)
	}
	var err error
	if n.players != nil {
		// Every player's last changes, then the leases released; what the store does not take
		// by the deadline stays in the journal for the next start.
		if err = n.players.Close(ctx); err != nil {
			n.log.Error("player data not all saved at stop; the journal keeps the rest", "error", err)
		}
	}
	err = errors.Join(err, n.store.Close())
	n.log.Info("stopped")
	return err
}

// close releases what New opened when New fails.
func (n *Node) close() {
	if n.system != nil {
		n.system.Stop()
	}
	if n.players != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_ = n.players.Close(ctx)
		cancel()
	}
	if n.store != nil {
		_ = n.store.Close()
	}
	if n.fabric != nil {
		n.fabric.Close()
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

// traffic is the gateway's byte counts, for metrics (none before the gateway exists).
func (n *Node) traffic() (in, out uint64) {
	if n.gate == nil {
		return 0, 0
	}
	return n.gate.Traffic()
}

// Status is the node summary shown at admin /status.
type Status struct {
	Version     string         `json:"version"`
	UptimeS     float64        `json:"uptime_s"`
	Connections int            `json:"connections"`
	Sessions    int            `json:"sessions"`
	Rooms       int            `json:"rooms"`
	Players     int            `json:"players_loaded"` // players whose data this node holds
	Actors      map[string]int `json:"actors_by_version"`
	LastReload  reload.Result  `json:"last_reload"`
	Bus         cluster.Stats  `json:"bus"` // messages this node sent and refused on the bus, pushes lost on it
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
		Bus:         n.cluster.Stats(),
	}
	n.system.Each(func(a *actor.Actor) { s.Actors[a.Version()]++ })
	if n.players != nil {
		s.Players = len(n.players.Players())
	}
	return s
}

// join opens the bus (an embedded server, or the configured NATS cluster) and the registry.
func (n *Node) join() error {
	var err error
	n.fabric, err = bus.Open(bus.Options{
		NATS:       n.cfg.Cluster.NATS,
		DataDir:    n.cfg.DataDir,
		MaxPayload: n.cfg.Gate.MaxFrame + bus.EnvelopeOverhead,
		Name:       n.id,
		Log:        n.log.With("part", "bus"),
		Role:       n.oneRole(),
	})
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	n.registry, err = registry.Open(ctx, n.fabric.JS, registry.Config{Replicas: n.cfg.Cluster.NATS.Replicas, NodeTTL: n.cfg.Cluster.NodeTTL})
	if err != nil {
		return err
	}
	n.cluster, err = cluster.New(cluster.Config{
		Node:     n.id,
		Roles:    n.cfg.Cluster.Roles,
		All:      n.all,
		Fabric:   n.fabric,
		Registry: n.registry,
		Balance:  n.cfg.Cluster.Balance,
		Log:      n.log.With("part", "cluster"),
	})
	return err
}

// runs reports whether this node runs role.
func (n *Node) runs(role string) bool { return n.all || slices.Contains(n.cfg.Cluster.Roles, role) }

// record is this node's registry record, announced every heartbeat.
func (n *Node) record() registry.Record {
	b := n.reloader.Versions().Load()
	rec := registry.Record{
		Address: n.TCPAddr(),
		Admin:   n.AdminAddr(),
		Weight:  n.cfg.Cluster.Weight,
		Version: b.Version,
		Started: n.started,
	}
	if n.cfg.Cluster.Address != "" {
		rec.Address = n.cfg.Cluster.Address
	}
	if n.all {
		rec.Roles = b.Roles
	}
	for id, rt := range b.Routes.Messages {
		if n.runs(rt.Role) {
			rec.Handles = append(rec.Handles, id)
		}
	}
	slices.Sort(rec.Handles)
	for name, role := range b.Routes.Calls {
		if n.runs(role) {
			rec.Calls = append(rec.Calls, name)
		}
	}
	slices.Sort(rec.Calls)
	for _, p := range n.reloader.Last().Problems {
		rec.Problems = append(rec.Problems, p.String())
	}
	total, _ := n.mailboxes()
	rec.Load = registry.Load{Sessions: n.sessions.Count(), Rooms: n.rooms.Count(), Mailbox: total, Connections: n.gate.Count()}
	return rec
}

// kick ends a player's session held here because another node asked (a duplicate login
// elsewhere, mf.kick).
func (n *Node) kick(player, sessionID string, code protocol.Code, reason string) bool {
	return n.sessions.Kick(player, sessionID, code, reason)
}

// clusterNodes is the admin endpoint's GET /cluster on a master: the live node records, sorted
// by id, from the registry watcher (nil on other nodes).
func (n *Node) clusterNodes() func() any {
	if !n.runs("master") {
		return nil
	}
	return func() any {
		v := n.cluster.View()
		if v == nil {
			return []registry.Record{}
		}
		return v.Select(func(registry.Record) bool { return true })
	}
}

// takeover is the gateway's Takeover in a cluster whose proxies are processes of their own (nil
// otherwise: one process holds every session).
func (n *Node) takeover() func(ctx context.Context, playerID, sessionID string) error {
	if !n.clustered() || !n.runs("proxy") {
		return nil
	}
	return n.cluster.Takeover
}

// deadlineOr returns ctx's deadline, or now + d.
func deadlineOr(ctx context.Context, d time.Duration) time.Time {
	if t, ok := ctx.Deadline(); ok {
		return t
	}
	return time.Now().Add(d)
}

// claim records a new session in the cluster's session directory; the session it replaces on
// another proxy is kicked there (KICKED_DUPLICATE_LOGIN). Compare-and-set: of two racing logins
// of one player each kicks exactly the session it replaced, so one survives. It runs on the
// login's reader goroutine, before the LoginAck is queued.
func (n *Node) claim(s *session.Session) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	prev, ok, err := n.registry.ClaimSession(ctx, s.PlayerID, registry.Session{Proxy: n.id, Session: s.ID})
	if err != nil {
		n.log.Warn("cannot record the session in the directory", "player", s.PlayerID, "error", err)
		return
	}
	if ok && prev.Proxy != n.id {
		if err := n.cluster.KickAt(prev.Proxy, s.PlayerID, prev.Session, protocol.KickedDuplicateLogin, "the player logged in on another proxy"); err != nil {
			n.log.Warn("cannot kick the previous session", "player", s.PlayerID, "proxy", prev.Proxy, "error", err)
		}
	}
}

// sessionFollower follows this process's sessions for the rooms and the cluster's directories.
type sessionFollower struct {
	rooms *room.Manager
	n     *Node
}

func (p sessionFollower) Notify(ev call.Presence) {
	p.rooms.Notify(ev)
	if ev.Event == call.SessionStarted {
		p.n.preload(ev.PlayerID)
	}
	p.n.cluster.Seated(ev)
	p.n.cluster.Attached(ev)
	if ev.Event != call.SessionEnded {
		return
	}
	// A replaced session's entries are its successor's; a node that stops leaves its entries to be
	// overwritten by the players' next logins.
	released := ev.Reason != "replaced" && ev.Reason != "shutdown"
	p.n.cluster.Forget(ev.PlayerID, released)
	if p.n.clustered() && released {
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			_ = p.n.registry.ReleaseSession(ctx, ev.PlayerID, registry.Session{Proxy: p.n.id, Session: ev.SessionID})
		}()
	}
}

// preload loads a player's data when the player's session starts here and this node holds the
// player role's data (moonforge run), on a goroutine of its own, so that the first
// mf.player.data does not wait. A node of another role learns of no session start: its first
// mf.player.data loads the data. The session's end unloads it (script.VM.PlayerEnded).
func (n *Node) preload(player string) {
	if n.players == nil || !n.reloader.Versions().Load().Routes.Roles()[n.cfg.Player.Role] {
		return
	}
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), n.cfg.Player.LeaseTTL)
		defer cancel()
		if _, err := n.players.Load(ctx, player); err != nil {
			n.log.Debug("player data not loaded at session start; the first mf.player.data loads it", "player", player, "error", err)
			return
		}
		// The session may have ended before the load began: then its end unloaded nothing.
		if on, _ := n.online.Online(player); !on {
			_ = n.players.Unload(ctx, player)
		}
	}()
}

// command runs a cluster command: "reload" (the scripts; the answer names the version now
// running or the problems) or "drain" (stop gracefully, as on SIGTERM).
func (n *Node) command(name string) ([]byte, error) {
	switch name {
	case "reload":
		r := n.reloader.Reload("cluster")
		out := struct {
			Outcome  string   `json:"result"`
			Version  string   `json:"version"`
			Problems []string `json:"problems,omitempty"`
		}{Outcome: r.Outcome, Version: r.Version}
		for _, p := range r.Problems {
			out.Problems = append(out.Problems, p.String())
		}
		return json.Marshal(out)
	case "drain":
		n.drainOne.Do(func() { close(n.drain) })
		return json.Marshal(map[string]string{"result": "draining"})
	}
	return nil, protocol.Errorf(protocol.BadRequest, "unknown command %q", name)
}

// oneRole is the node's role when it runs exactly one ("" otherwise).
func (n *Node) oneRole() string {
	if len(n.cfg.Cluster.Roles) == 1 {
		return n.cfg.Cluster.Roles[0]
	}
	return ""
}

// clustered reports whether other nodes may share this node's bus: a node of some roles, or a
// node with an external bus or a listening server. `moonforge run` alone on its in-process bus
// keeps no session or seat directory (there is no other proxy or node to read them).
func (n *Node) clustered() bool {
	nc := n.cfg.Cluster.NATS
	return !n.all || len(nc.URLs) > 0 || nc.Listen != ""
}

// directory is where the rooms report seats: the cluster's room directory when clustered.
func (n *Node) directory() room.Directory {
	if n.clustered() {
		return n.cluster
	}
	return nil
}

// clusterPresence answers mf.player.online and room joins: from this process's sessions, else
// from the cluster's session directory, whose entry of a session on another proxy says whether its
// connection dropped (marked by that proxy a few milliseconds after the drop or the resume).
type clusterPresence struct {
	local *presence.Directory
	c     *cluster.Cluster
}

func (p clusterPresence) Online(player string) (online, connected bool) {
	if online, connected = p.local.Online(player); online {
		return online, connected
	}
	s, on := p.c.SessionOf(player)
	return on, on && !s.Detached
}
