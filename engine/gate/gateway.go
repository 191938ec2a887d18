// Package gate is the gateway: it accepts client connections over TCP, WebSocket and KCP, speaks
// protocol v1 (docs/protocol.md), handles Ping, login and resume itself, and hands every other
// request to a Router. Each connection has one reader goroutine and one writer goroutine that
// writes whatever is queued in one batch per wake-up.
package gate

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"

	"github.com/moonforge/moonforge/engine/auth"
	"github.com/moonforge/moonforge/engine/call"
	"github.com/moonforge/moonforge/engine/config"
	"github.com/moonforge/moonforge/engine/login"
	"github.com/moonforge/moonforge/engine/protocol"
	"github.com/moonforge/moonforge/engine/session"
	"github.com/moonforge/moonforge/engine/wire"
)

// Config configures the gateway. Zero values of the fields that the node's configuration has take
// config.Default's values (those of docs/protocol.md); the others' defaults are given here.
type Config struct {
	TCPAddr            string // "-" disables TCP
	WSAddr             string // "-" disables WebSocket
	WSPath             string
	MaxFrame           int           // largest length field accepted
	Heartbeat          time.Duration // idle kick after 3 of these without a frame
	RequestTimeout     time.Duration
	MaxUnauthenticated int           // requests before login that get UNAUTHENTICATED before a kick
	SendQueueBytes     int           // bytes waiting for a slow client before it is dropped
	WriteTimeout       time.Duration // one batch write; default 10s
	ReadBufferSize     int           // default 4 KiB
	RateLimit          float64       // requests per second per connection; 0: no limit
	RateBurst          int           // default 2 × RateLimit
	LoginTimeout       time.Duration // default 10s
	Linger             time.Duration // how long a kicked connection waits for the peer to close; default 1s
	KCP                KCPConfig     // KCP over UDP (kcp_transport.go)
}

func (c Config) withDefaults() Config {
	d := config.Default().Gate
	if c.TCPAddr == "" {
		c.TCPAddr = d.TCP
	}
	if c.WSAddr == "" {
		c.WSAddr = d.WS
	}
	if c.WSPath == "" {
		c.WSPath = d.WSPath
	}
	if c.MaxFrame <= 0 {
		c.MaxFrame = d.MaxFrame
	}
	if c.Heartbeat <= 0 {
		c.Heartbeat = d.Heartbeat
	}
	if c.RequestTimeout <= 0 {
		c.RequestTimeout = d.RequestTimeout
	}
	if c.MaxUnauthenticated <= 0 {
		c.MaxUnauthenticated = d.MaxUnauthenticated
	}
	if c.SendQueueBytes <= 0 {
		c.SendQueueBytes = d.SendQueueBytes
	}
	if c.WriteTimeout <= 0 {
		c.WriteTimeout = 10 * time.Second
	}
	if c.ReadBufferSize <= 0 {
		c.ReadBufferSize = 4096
	}
	if c.RateLimit > 0 && c.RateBurst <= 0 {
		c.RateBurst = int(2*c.RateLimit) + 1
	}
	if c.LoginTimeout <= 0 {
		c.LoginTimeout = 10 * time.Second
	}
	if c.Linger <= 0 {
		c.Linger = time.Second
	}
	c.KCP = c.KCP.withDefaults()
	return c
}

// Router delivers requests to the code that handles them (router.Router implements it). Route
// returns at once; the answer is posted to the request's reply address, the connection.
type Router interface {
	Route(req *call.Request)
}

// Schema names the message ids of the schema in force (script.Versions implements it). Safe for
// concurrent use; called on connection reader goroutines for every request.
type Schema interface {
	// MsgName returns the full name of a message id; false if the schema does not declare it.
	MsgName(id uint16) (string, bool)
}

// Observer receives the gateway's events for metrics. Calls come from connection goroutines.
type Observer interface {
	Connections(transport string, delta int)
	// Answered reports a request's outcome: code 0 for a reply.
	Answered(msg string, code protocol.Code, took time.Duration)
	Traffic(in, out int)
	// Late counts an answer that came after its request was answered TIMEOUT.
	Late()
}

type noObserver struct{}

func (noObserver) Connections(string, int)                       {}
func (noObserver) Answered(string, protocol.Code, time.Duration) {}
func (noObserver) Traffic(int, int)                              {}
func (noObserver) Late()                                         {}

// Deps are the gateway's collaborators.
type Deps struct {
	Sessions *session.Manager
	Tokens   *auth.Tokens  // for resume, and the token of a LoginAck
	Login    login.Service // checks LoginReqs
	Router   Router
	Boxes    *call.Boxes // the connections' reply addresses
	Schema   Schema      // the schema in force
	Log      *slog.Logger
	Observer Observer // optional
}

// Gateway accepts and serves client connections. Its methods are safe for concurrent use.
type Gateway struct {
	cfg   Config
	deps  Deps
	log   *slog.Logger
	obs   Observer
	boxes *call.Boxes

	upgrader websocket.Upgrader
	nextID   atomic.Uint64

	mu        sync.Mutex
	listeners []net.Listener
	httpSrv   *http.Server
	kcp       *kcpListener
	conns     map[*conn]struct{}
	closing   bool
	wg        sync.WaitGroup
}

// New returns a gateway; Start opens its listeners.
func New(cfg Config, deps Deps) *Gateway {
	cfg = cfg.withDefaults()
	if deps.Log == nil {
		deps.Log = slog.Default()
	}
	if deps.Observer == nil {
		deps.Observer = noObserver{}
	}
	if deps.Boxes == nil {
		deps.Boxes = call.NewBoxes("", nil)
	}
	g := &Gateway{cfg: cfg, deps: deps, log: deps.Log, obs: deps.Observer, boxes: deps.Boxes, conns: map[*conn]struct{}{}}
	g.upgrader = websocket.Upgrader{
		ReadBufferSize:  cfg.ReadBufferSize,
		WriteBufferSize: cfg.ReadBufferSize,
		// Game clients are not browsers sharing cookies with a web origin: any origin may connect.
		CheckOrigin: func(*http.Request) bool { return true },
	}
	return g
}

// Start listens on the configured addresses and serves in the background.
func (g *Gateway) Start() error {
	if g.cfg.TCPAddr != "-" {
		ln, err := net.Listen("tcp", g.cfg.TCPAddr)
		if err != nil {
			return fmt.Errorf("gate: tcp listen: %w", err)
		}
		g.addListener(ln)
		g.wg.Add(1)
		go g.acceptTCP(ln)
	}
	if g.cfg.WSAddr != "-" {
		ln, err := net.Listen("tcp", g.cfg.WSAddr)
		if err != nil {
			g.closeListeners()
			return fmt.Errorf("gate: websocket listen: %w", err)
		}
		mux := http.NewServeMux()
		mux.HandleFunc(g.cfg.WSPath, g.serveWS)
		srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, ErrorLog: slog.NewLogLogger(g.log.Handler(), slog.LevelWarn)}
		g.mu.Lock()
		g.httpSrv = srv
		g.mu.Unlock()
		g.addListener(ln)
		g.wg.Add(1)
		go func() {
			defer g.wg.Done()
			if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) && !errors.Is(err, net.ErrClosed) {
				g.log.Error("websocket server stopped", "error", err)
			}
		}()
	}
	if err := g.startKCP(); err != nil {
		g.closeListeners()
		return err
	}
	return nil
}

// Addrs returns the bound addresses (TCP first, then WebSocket, then KCP), useful with port 0.
func (g *Gateway) Addrs() []net.Addr {
	g.mu.Lock()
	defer g.mu.Unlock()
	out := make([]net.Addr, len(g.listeners))
	for i, ln := range g.listeners {
		out[i] = ln.Addr()
	}
	return out
}

// Count returns the number of open connections.
func (g *Gateway) Count() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.conns)
}

func (g *Gateway) addListener(ln net.Listener) {
	g.mu.Lock()
	g.listeners = append(g.listeners, ln)
	g.mu.Unlock()
}

func (g *Gateway) closeListeners() {
	g.mu.Lock()
	lns := g.listeners
	srv := g.httpSrv
	g.mu.Unlock()
	if srv != nil {
		_ = srv.Close()
	}
	for _, ln := range lns {
		_ = ln.Close()
	}
}

// Shutdown stops accepting, kicks every connection with SERVER_SHUTDOWN (sessions end), and waits
// until the connections are closed or ctx ends.
func (g *Gateway) Shutdown(ctx context.Context) {
	g.mu.Lock()
	g.closing = true
	g.mu.Unlock()
	g.closeListeners()
	g.deps.Sessions.Shutdown()
	g.mu.Lock()
	conns := make([]*conn, 0, len(g.conns))
	for c := range g.conns {
		conns = append(conns, c)
	}
	g.mu.Unlock()
	for _, c := range conns {
		c.Kick(protocol.ServerShutdown, "the server is stopping")
	}
	done := make(chan struct{})
	go func() { g.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		for _, c := range conns {
			c.abort("shutdown deadline")
		}
		<-done
	}
}

// track registers a new connection; false if the gateway is shutting down.
func (g *Gateway) track(c *conn) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closing {
		return false
	}
	g.conns[c] = struct{}{}
	g.wg.Add(1)
	return true
}

func (g *Gateway) untrack(c *conn) {
	g.mu.Lock()
	delete(g.conns, c)
	g.mu.Unlock()
	g.wg.Done()
}

func (g *Gateway) acceptTCP(ln net.Listener) {
	defer g.wg.Done()
	var backoff time.Duration
	for {
		nc, err := ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			// Out of file descriptors and the like: wait a little and go on.
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			g.log.Warn("accept failed", "error", err, "retry_in", backoff)
			time.Sleep(backoff)
			continue
		}
		backoff = 0
		if tc, ok := nc.(*net.TCPConn); ok {
			_ = tc.SetNoDelay(true)
		}
		c := newConn(g, "tcp", nc.RemoteAddr().String(), &tcpTransport{nc: nc, reader: wire.NewReader(nc, g.cfg.ReadBufferSize, g.cfg.MaxFrame)})
		if !g.track(c) {
			_ = nc.Close()
			return
		}
		go c.serve()
	}
}

func (g *Gateway) serveWS(w http.ResponseWriter, r *http.Request) {
	ws, err := g.upgrader.Upgrade(w, r, nil)
	if err != nil {
		return // the upgrader has answered with an HTTP error
	}
	c := newConn(g, "ws", r.RemoteAddr, &wsTransport{ws: ws, maxFrame: g.cfg.MaxFrame})
	if !g.track(c) {
		_ = ws.Close()
		return
	}
	c.serve()
}
