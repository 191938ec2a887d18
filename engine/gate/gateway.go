// Package gate is the gateway: it accepts client connections over TCP, WebSocket and KCP, speaks
// protocol v1 (docs/protocol.md), handles Ping, login and resume itself, and hands every other
// request to a Router. Each connection has one reader goroutine and one writer goroutine that
// writes whatever is queued in one batch per wake-up.
package gate

import (
	"context"
	"crypto/tls"
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
	"github.com/moonforge/moonforge/engine/store"
	"github.com/moonforge/moonforge/engine/wire"
)

// Config configures the gateway. Zero values of the fields that the node's configuration has take
// config.Default's values (those of docs/protocol.md); the others' defaults are given here.
type Config struct {
	TCPAddr              string        // default ":7001"; "-" disables TCP
	WSAddr               string        // default ":7002"; "-" disables WebSocket
	WSPath               string        // default "/ws"
	MaxFrame             int           // largest length field accepted; default 1 MiB
	Heartbeat            time.Duration // idle kick after 3 of these without a frame; default 10s
	RequestTimeout       time.Duration // default 10s
	MaxUnauthenticated   int           // requests before login that get UNAUTHENTICATED before a kick; default 3
	SendQueueBytes       int           // bytes waiting for a slow client before it is dropped; default 4 MiB
	WriteTimeout         time.Duration // one batch write; default 10s
	ReadBufferSize       int           // default 4 KiB
	RateLimit            float64       // requests per second per connection, each 1 + 1 per KiB of payload; 0: no limit
	RateBurst            int           // default 2 × RateLimit
	LoginTimeout         time.Duration // a connection not logged in by then is kicked; default 10s
	MaxFrameBeforeLogin  int           // largest length field accepted before login; default 4 KiB
	MaxConnections       int           // open connections over which a new one is closed at once; 0: no limit
	MaxConnectionsPerIP  int           // the same per client IP; 0: no limit
	MaxInFlight          int           // requests of one connection waiting for their reply; default 64
	LoginFailureDelay    time.Duration // wait after a failed login, doubling per failure; default 1s
	LoginLockoutFailures int           // failures that lock an account (an IP: 5 times as many); default 10
	LoginLockout         time.Duration // default 15m
	GuestsPerIPMinute    int           // new guest accounts per IP per minute; 0: no limit
	DisabledMethods      []string      // login methods refused with BAD_REQUEST
	TLSTCPAddr           string        // TCP over TLS, default ":7443"; "-" disables it; without Deps.TLS it stays closed
	TLSWSAddr            string        // WebSocket over TLS; the same
	Linger               time.Duration // how long a kicked connection waits for the peer to close; default 1s
	KCP                  KCPConfig     // KCP over UDP (kcp_transport.go)
}

func (c Config) withDefaults() Config {
	d := config.Default().Gate
	if c.TCPAddr == "" {
		c.TCPAddr = d.TCP
	}
	if c.WSAddr == "" {
		c.WSAddr = d.WS
	}
	if c.TLSTCPAddr == "" {
		c.TLSTCPAddr = ":7443"
	}
	if c.TLSWSAddr == "" {
		c.TLSWSAddr = ":7444"
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
	if c.MaxFrameBeforeLogin <= 0 {
		c.MaxFrameBeforeLogin = 4096
	}
	c.MaxFrameBeforeLogin = min(c.MaxFrameBeforeLogin, c.MaxFrame)
	if c.MaxInFlight <= 0 {
		c.MaxInFlight = 64
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
	// Warned counts a per-connection warning of a kind (conn_limit, bad_frame, login_refused,
	// rate_limited, ...); logged is false when sampling dropped it from the log.
	Warned(kind string, logged bool)
	// Late counts an answer that came after its request was answered TIMEOUT.
	Late()
}

type noObserver struct{}

func (noObserver) Connections(string, int)                       {}
func (noObserver) Answered(string, protocol.Code, time.Duration) {}
func (noObserver) Warned(string, bool)                           {}
func (noObserver) Late()                                         {}

// Deps are the gateway's collaborators.
type Deps struct {
	Sessions    *session.Manager
	Tokens      *auth.Tokens      // for resume, refresh, and the tokens of a LoginAck
	Revocations *auth.Revocations // revoked tokens (logout)
	// LoginFailures, optional, is the store in which the failed logins that name an account are
	// counted, per account and per IP, for every node sharing it; nil: each node counts its own.
	LoginFailures store.Store
	Login         login.Service // checks LoginReqs
	Router        Router
	Boxes         *call.Boxes // the connections' reply addresses
	Schema        Schema      // the schema in force
	Log           *slog.Logger
	Observer      Observer    // optional
	TLS           *tls.Config // serves the TLS listeners; nil: they stay closed
	Shedding      func() bool // optional: true while new logins are refused (memory)
	// Takeover, optional, brings a session this process does not hold from the proxy that holds
	// it (a cluster), for a resume; blocks up to ctx's deadline; a *protocol.CodeError if not.
	Takeover func(ctx context.Context, playerID, sessionID string) error
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
	limits   *connLimits
	guard    *loginGuard
	sampler  logSampler

	mu        sync.Mutex
	listeners []net.Listener
	names     []string // of the listeners: tcp, ws, tls, wss, kcp
	httpSrvs  []*http.Server
	kcp       *kcpListener
	conns     map[*conn]struct{}
	closed    traffic // the bytes of the connections no longer in conns
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
	g.limits = newConnLimits(cfg.MaxConnections, cfg.MaxConnectionsPerIP)
	g.guard = newLoginGuard(cfg, deps.LoginFailures)
	g.upgrader = websocket.Upgrader{
		HandshakeTimeout: 10 * time.Second,
		ReadBufferSize:   cfg.ReadBufferSize,
		WriteBufferSize:  cfg.ReadBufferSize,
		// Game clients are not browsers sharing cookies with a web origin: any origin may connect.
		CheckOrigin: func(*http.Request) bool { return true },
	}
	return g
}

// Start listens on the configured addresses and serves in the background.
func (g *Gateway) Start() error {
	err := g.listenTCP("tcp", g.cfg.TCPAddr, nil)
	if err == nil {
		err = g.listenWS("ws", g.cfg.WSAddr, nil)
	}
	if err == nil {
		err = g.startTLS()
	}
	if err == nil {
		err = g.startKCP()
	}
	if err != nil {
		g.closeListeners()
	}
	return err
}

// listen opens a listener named name on addr; nil for "-" (the listener is disabled).
func (g *Gateway) listen(name, addr string) (net.Listener, error) {
	if addr == "-" {
		return nil, nil
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("gate: %s listen: %w", name, err)
	}
	g.addListener(name, ln)
	return ln, nil
}

// listenTCP serves framed TCP on addr ("-": not at all), inside TLS when tlsCfg is set.
func (g *Gateway) listenTCP(name, addr string, tlsCfg *tls.Config) error {
	ln, err := g.listen(name, addr)
	if ln == nil {
		return err
	}
	g.wg.Add(1)
	go g.acceptTCP(ln, name, tlsCfg)
	return nil
}

// listenWS serves WebSocket on addr ("-": not at all), over TLS when tlsCfg is set.
func (g *Gateway) listenWS(name, addr string, tlsCfg *tls.Config) error {
	ln, err := g.listen(name, addr)
	if ln == nil {
		return err
	}
	mux := http.NewServeMux()
	mux.HandleFunc(g.cfg.WSPath, func(w http.ResponseWriter, r *http.Request) { g.serveWS(w, r, name) })
	srv := g.newHTTPServer(mux)
	g.mu.Lock()
	g.httpSrvs = append(g.httpSrvs, srv)
	g.mu.Unlock()
	if tlsCfg != nil {
		ln = tls.NewListener(ln, tlsCfg)
	}
	g.wg.Add(1)
	go func() {
		defer g.wg.Done()
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) && !errors.Is(err, net.ErrClosed) {
			g.log.Error("websocket server stopped", "listener", name, "error", err)
		}
	}()
	return nil
}

// Addrs returns the bound addresses in the order the listeners opened (tcp, ws, tls, wss, kcp),
// useful with port 0.
func (g *Gateway) Addrs() []net.Addr {
	g.mu.Lock()
	defer g.mu.Unlock()
	out := make([]net.Addr, len(g.listeners))
	for i, ln := range g.listeners {
		out[i] = ln.Addr()
	}
	return out
}

// Addr returns the bound address of a listener ("tcp", "ws", "tls", "wss", "kcp"); "" if it is
// not open.
func (g *Gateway) Addr(name string) string {
	g.mu.Lock()
	defer g.mu.Unlock()
	for i, ln := range g.listeners {
		if g.names[i] == name {
			return ln.Addr().String()
		}
	}
	return ""
}

// Count returns the number of open connections.
func (g *Gateway) Count() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.conns)
}

func (g *Gateway) addListener(name string, ln net.Listener) {
	g.mu.Lock()
	g.listeners = append(g.listeners, ln)
	g.names = append(g.names, name)
	g.mu.Unlock()
}

func (g *Gateway) closeListeners() {
	g.mu.Lock()
	lns := g.listeners
	srvs := g.httpSrvs
	g.mu.Unlock()
	for _, srv := range srvs {
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

// traffic is a count of frame bytes received from and sent to clients.
type traffic struct{ in, out uint64 }

// Traffic returns the frame bytes received from and sent to clients since the gateway started.
// Each connection counts its own bytes, so the request path touches no counter that other
// connections share; the sum is made here, when metrics are read.
func (g *Gateway) Traffic() (in, out uint64) {
	g.mu.Lock()
	defer g.mu.Unlock()
	in, out = g.closed.in, g.closed.out
	for c := range g.conns {
		in += c.bytesIn.Load()
		out += c.bytesOut.Load()
	}
	return in, out
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
	g.closed.in += c.bytesIn.Load()
	g.closed.out += c.bytesOut.Load()
	delete(g.conns, c)
	g.mu.Unlock()
	g.limits.release(c.remote)
	g.wg.Done()
}

func (g *Gateway) acceptTCP(ln net.Listener, name string, tlsCfg *tls.Config) {
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
		remote := nc.RemoteAddr().String()
		if ok, limit := g.limits.acquire(remote); !ok {
			_ = nc.Close()
			g.refused(limit, remote)
			continue
		}
		if tc, ok := nc.(*net.TCPConn); ok {
			_ = tc.SetNoDelay(true)
		}
		if tlsCfg != nil {
			go g.serveTLS(tls.Server(nc, tlsCfg), name, remote)
			continue
		}
		c := newConn(g, name, remote, &tcpTransport{nc: nc, reader: wire.NewReader(nc, g.cfg.ReadBufferSize, g.cfg.MaxFrameBeforeLogin)})
		if !g.track(c) {
			g.limits.release(remote)
			_ = nc.Close()
			return
		}
		go c.serve()
	}
}

func (g *Gateway) serveWS(w http.ResponseWriter, r *http.Request, name string) {
	if ok, limit := g.limits.acquire(r.RemoteAddr); !ok {
		g.refused(limit, r.RemoteAddr)
		http.Error(w, "too many connections", http.StatusServiceUnavailable)
		return
	}
	ws, err := g.upgrader.Upgrade(w, r, nil)
	if err != nil {
		g.limits.release(r.RemoteAddr)
		return // the upgrader has answered with an HTTP error
	}
	c := newConn(g, name, r.RemoteAddr, &wsTransport{ws: ws, maxFrame: g.cfg.MaxFrameBeforeLogin})
	if !g.track(c) {
		g.limits.release(r.RemoteAddr)
		_ = ws.Close()
		return
	}
	c.serve()
}
