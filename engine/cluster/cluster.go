// Package cluster joins a node to the others over the bus: it announces the node in the registry,
// watches every other node's record, sends client requests and logins whose role runs elsewhere
// to a node picked by the role's balancing policy (router.Dispatcher), serves the requests other
// nodes send to this one, and carries answers between nodes (call.Poster for call.Boxes).
//
// Delivery: a request is published once and never retried on another node (at most once); its
// caller's deadline makes a lost one a TIMEOUT, and a request that finds no subscriber (a node
// that just died) is answered UNAVAILABLE at once from NATS's no-responders status.
package cluster

import (
	"context"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/moonforge/moonforge/engine/balance"
	"github.com/moonforge/moonforge/engine/bus"
	"github.com/moonforge/moonforge/engine/call"
	"github.com/moonforge/moonforge/engine/login"
	"github.com/moonforge/moonforge/engine/protocol"
	"github.com/moonforge/moonforge/engine/registry"
	"github.com/moonforge/moonforge/engine/router"
	"github.com/moonforge/moonforge/engine/session"
)

// Config configures a Cluster.
type Config struct {
	Node     string   // this node's id
	Roles    []string // the roles this process runs; work for them never leaves the process
	All      bool     // this process runs every role (moonforge run)
	Fabric   *bus.Fabric
	Registry *registry.Registry
	Balance  map[string]string // role -> policy name (balance.New); default round robin, lobby: hash
	Log      *slog.Logger
}

// Deps are the node's parts the cluster hands work to; set before Start.
type Deps struct {
	Boxes   *call.Boxes                                                          // answers arriving from the bus are posted here
	Local   router.Dispatcher                                                    // this process's actors and rooms
	Rooms   router.Rooms                                                         // this process's rooms
	Seats   call.Notifier                                                        // this process's rooms, for the presence of their players whose sessions live elsewhere
	Login   login.Service                                                        // this node's login service: the logins proxies forward to a login node
	Inbox   *router.Router                                                       // decides requests arriving from the bus, delivering them locally
	Schema  Schema                                                               // the schema in force: msg ids a request from the bus may name
	Record  func() registry.Record                                               // this node's record, announced every heartbeat
	Kick    func(player, session string, code protocol.Code, reason string) bool // a proxy's sessions
	Tables  router.Tables                                                        // the routing table in force (mf.serve names)
	Call    func(role, key string, c *call.Call)                                 // runs an mf.call on this process's actors
	Push    func(player string, msgID uint16, payload []byte) bool
	PushAll func(msgID uint16, payload []byte) int
	// Handover removes a session held here for another proxy (session.Manager.Handover); Adopt
	// installs one handed over to this proxy (session.Manager.Adopt). Proxies only.
	Handover func(player, sessionID string) (session.State, error)
	Adopt    func(st session.State)
	// Command runs a cluster command (reload, drain) and returns its result as JSON.
	Command func(name string) ([]byte, error)
}

// Schema names the messages of the schema in force (script.Versions implements it).
type Schema interface {
	MsgName(id uint16) (string, bool)
}

// Cluster is a node's membership. Safe for concurrent use.
type Cluster struct {
	cfg        Config
	deps       Deps
	log        *slog.Logger
	nc         *nats.Conn
	view       *registry.View
	policies   map[string]balance.Policy
	sticky     sync.Map                           // role + "/" + key -> node id: where a policy placed a key (affinity)
	unseen     sync.Map                           // role + "/" + key -> node id: placements made here that the watcher has not shown yet
	placements *registry.Live[registry.Placement] // the placements of every node, by role + "/" + key
	pushSeq    sync.Map                           // proxy id -> *atomic.Uint32: this node's push sequence per proxy
	pushSeen   sync.Map                           // sender id -> *atomic.Uint32: the last push sequence received per sender
	pushLost   atomic.Uint64
	moved      sync.Map // player -> *moved: sessions this proxy handed over (pushes forwarded)
	adopting   sync.Map // player -> *adoption: takeovers in progress on this proxy
	lastProxy  sync.Map // player -> proxy id: where this node last pushed to the player (pushTo)
	seats      *registry.Live[registry.Seat]
	sessions   *registry.Live[registry.Session]
	writes     chan write // directory writes (seats, rooms, placements), in order
	subs       []*nats.Subscription
	cancel     context.CancelFunc
	kept       chan struct{}
	draining   atomic.Bool
	started    atomic.Bool // set once Start has set deps and the view

	logged sync.Map // problem kind -> struct{}: each bad input kind is logged once
	bad    atomic.Uint64
	sent   atomic.Uint64
	nores  atomic.Uint64
	fwd    atomic.Uint64 // calls forwarded as the master
}

// New returns a cluster member; nothing runs before Start.
func New(cfg Config) (*Cluster, error) {
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	c := &Cluster{cfg: cfg, log: cfg.Log, nc: cfg.Fabric.Conn, policies: map[string]balance.Policy{}, writes: make(chan write, 8192)}
	for role, name := range cfg.Balance {
		p, err := balance.New(name)
		if err != nil {
			return nil, err
		}
		c.policies[role] = p
	}
	return c, nil
}

// Start watches the registry, subscribes to this node's subjects and begins announcing it every
// period.
func (c *Cluster) Start(deps Deps, period time.Duration) error {
	c.deps = deps
	ctx, cancel := context.WithCancel(context.Background())
	c.cancel = cancel
	var err error
	if c.view, err = c.cfg.Registry.Watch(ctx, nil); err != nil {
		cancel()
		return err
	}
	if c.seats, err = c.cfg.Registry.WatchSeats(ctx); err != nil {
		cancel()
		return err
	}
	if c.sessions, err = c.cfg.Registry.WatchSessions(ctx); err != nil {
		cancel()
		return err
	}
	if c.placements, err = c.cfg.Registry.WatchPlacements(ctx); err != nil {
		cancel()
		return err
	}
	go c.writeLoop(ctx)
	go c.sweepPushTargets(ctx, time.Minute)
	subscribe := func(subject, queue string, h nats.MsgHandler) {
		if err != nil {
			return
		}
		var s *nats.Subscription
		if queue != "" {
			s, err = c.nc.QueueSubscribe(subject, queue, h)
		} else {
			s, err = c.nc.Subscribe(subject, h)
		}
		if err == nil {
			_ = s.SetPendingLimits(-1, 256<<20)
			c.subs = append(c.subs, s)
		}
	}
	subscribe(bus.ReplyPrefix(c.cfg.Node)+">", "", c.onReply)
	subscribe(bus.NodeSubject(c.cfg.Node), "", c.onMessage)
	if c.Runs("proxy") {
		subscribe(bus.ProxySubject(c.cfg.Node), "", c.onMessage)
	}
	subscribe(bus.CommandSubject(c.cfg.Node), "", c.onMessage)
	subscribe(bus.CommandsAll, "", c.onMessage)
	if c.Runs("master") {
		subscribe(bus.MasterSubject, "master", c.onMessage)
	}
	for _, role := range c.cfg.Roles {
		subscribe(bus.RoleSubject(role), role, c.onMessage)
		subscribe(bus.BroadcastSubject(role), "", c.onMessage)
	}
	if err == nil {
		err = c.nc.Flush()
	}
	if err != nil {
		cancel()
		return err
	}
	c.started.Store(true)
	c.kept = make(chan struct{})
	go func() {
		defer close(c.kept)
		c.cfg.Registry.Keep(ctx, period, c.record, func(err error) { c.logOnce("announce", "cannot announce this node", err) })
	}()
	return nil
}

func (c *Cluster) record() registry.Record {
	r := c.deps.Record()
	r.ID, r.Roles = c.cfg.Node, c.cfg.Roles
	if c.draining.Load() {
		r.State = registry.StateDraining
	} else if r.State == "" {
		r.State = registry.StateUp
	}
	return r
}

// Announce writes this node's record now (after a reload: its handlers changed), on a goroutine
// of its own; before Start it does nothing.
func (c *Cluster) Announce() {
	if !c.started.Load() {
		return
	}
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		if err := c.cfg.Registry.Announce(ctx, c.record()); err != nil {
			c.logOnce("announce", "cannot announce this node", err)
		}
	}()
}

// View returns the live node records.
func (c *Cluster) View() *registry.View { return c.view }

// Drain marks the node draining in the registry (proxies stop sending it new players).
func (c *Cluster) Drain() {
	c.draining.Store(true)
	if c.cancel == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	_ = c.cfg.Registry.Announce(ctx, c.record())
}

// Stop removes the node's record, drains its subscriptions (messages received are handled) and
// stops watching. The connection stays open for the answers still to send.
func (c *Cluster) Stop(timeout time.Duration) {
	if c.cancel == nil {
		return
	}
	c.cancel()
	<-c.kept
	for _, s := range c.subs {
		_ = s.Drain()
	}
	deadline := time.Now().Add(timeout)
	for _, s := range c.subs {
		for s.IsValid() && time.Now().Before(deadline) {
			time.Sleep(5 * time.Millisecond)
		}
	}
}

// Runs reports whether this process runs role.
func (c *Cluster) Runs(role string) bool { return c.cfg.All || slices.Contains(c.cfg.Roles, role) }

// logOnce logs the first problem of each kind and counts every one.
func (c *Cluster) logOnce(kind, msg string, err error) {
	c.bad.Add(1)
	if _, seen := c.logged.LoadOrStore(kind, struct{}{}); !seen {
		c.log.Warn(msg+" (logged once per kind; later ones are counted)", "kind", kind, "error", err)
	}
}

// Stats are the cluster's counters.
type Stats struct {
	Sent         uint64 `json:"sent"`
	NoResponders uint64 `json:"no_responders"`
	Forwarded    uint64 `json:"forwarded"` // calls forwarded as the master
	BadInput     uint64 `json:"bad_input"`
	PushesLost   uint64 `json:"pushes_lost"`
}

// Stats returns the counters.
func (c *Cluster) Stats() Stats {
	return Stats{Forwarded: c.fwd.Load(), Sent: c.sent.Load(), NoResponders: c.nores.Load(), BadInput: c.bad.Load(), PushesLost: c.pushLost.Load()}
}
