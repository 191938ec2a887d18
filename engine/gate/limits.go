package gate

import (
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/moonforge/moonforge/engine/protocol"
)

// connLimits counts open connections, in total and per client IP, against the configured
// maximums. It is safe for concurrent use.
type connLimits struct {
	max, perIP int // 0: no limit

	mu    sync.Mutex
	total int
	byIP  map[string]int
}

func newConnLimits(max, perIP int) *connLimits {
	return &connLimits{max: max, perIP: perIP, byIP: map[string]int{}}
}

// acquire counts a new connection from remote ("host:port"); false when a limit is reached, in
// which case nothing is counted and the caller closes the connection at once.
func (l *connLimits) acquire(remote string) (ok bool, reason string) {
	ip := hostOf(remote)
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.max > 0 && l.total >= l.max {
		return false, "gate.max_connections"
	}
	if l.perIP > 0 && l.byIP[ip] >= l.perIP {
		return false, "gate.max_connections_per_ip"
	}
	l.total++
	if l.perIP > 0 {
		l.byIP[ip]++
	}
	return true, ""
}

// release uncounts a connection that acquire accepted.
func (l *connLimits) release(remote string) {
	ip := hostOf(remote)
	l.mu.Lock()
	defer l.mu.Unlock()
	l.total--
	if l.perIP > 0 {
		if l.byIP[ip]--; l.byIP[ip] <= 0 {
			delete(l.byIP, ip)
		}
	}
}

// hostOf returns the host part of a "host:port" address, or the address itself.
func hostOf(remote string) string {
	if host, _, err := net.SplitHostPort(remote); err == nil {
		return host
	}
	return remote
}

// newHTTPServer returns the WebSocket gateway's HTTP server, with limits on the upgrade request:
// its headers, its reading, and idle keep-alive connections.
func (g *Gateway) newHTTPServer(h http.Handler) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		IdleTimeout:       30 * time.Second,
		MaxHeaderBytes:    16 << 10,
		ErrorLog:          slog.NewLogLogger(g.log.Handler(), slog.LevelWarn),
	}
}

// refused logs a connection closed by a connection limit.
func (g *Gateway) refused(limit, remote string) {
	g.warn("conn_limit", remote, "connection refused", "limit", limit)
}

// overLimit refuses a request over the connection's in-flight cap or its rate, with a retry hint;
// reader goroutine only. A request counts against the rate as 1 plus 1 per KiB of its payload
// (at most the burst), so large frames cannot buy many times the work of small ones.
func (c *conn) overLimit(now time.Time, payload int) *protocol.CodeError {
	if n := c.inFlight(); n >= c.g.cfg.MaxInFlight {
		return tooManyInFlight(n)
	}
	if c.limiter == nil {
		return nil
	}
	if cost := c.cost(payload); !c.limiter.AllowN(now, cost) {
		return c.overRate(now, cost)
	}
	return nil
}

func tooManyInFlight(n int) *protocol.CodeError {
	err := protocol.Errorf(protocol.RateLimited, "%d requests already wait for their reply", n)
	err.RetryAfterMs = inFlightRetryMs
	return err
}

// overRate returns the refusal of a request of cost over the connection's rate at now, with the
// wait until the rate would take it.
func (c *conn) overRate(now time.Time, cost int) *protocol.CodeError {
	r := c.limiter.ReserveN(now, cost)
	delay := r.DelayFrom(now)
	r.CancelAt(now)
	err := protocol.Errorf(protocol.RateLimited, "more than %g requests per second", c.g.cfg.RateLimit)
	err.RetryAfterMs = uint32(delay.Milliseconds()) + 1
	return err
}

// throttle is called on the reader after each frame the connection's limits refused, and
// accepted after one they let through. From the refusedBeforePause-th refusal in a row on, the
// reader waits for the refusal's retry hint (at most maxRefusalPause) before it reads the next
// frame: a client that ignores the hint gets TCP's backpressure, not a stream of refusals that
// costs the server as much as serving it would.
func (c *conn) throttle(err *protocol.CodeError) {
	c.refusedInRow++
	if c.refusedInRow < refusedBeforePause {
		return
	}
	c.g.warn("reader_paused", c.remote, "reading paused: the client ignores refusals", "conn", c.id, "in_a_row", c.refusedInRow)
	time.Sleep(min(time.Duration(err.RetryAfterMs)*time.Millisecond, maxRefusalPause))
	c.extendIdle(time.Now()) // the pause is not the peer's silence
}

// accepted resets the count of refusals in a row; reader goroutine only.
func (c *conn) accepted() { c.refusedInRow = 0 }

const (
	refusedBeforePause = 4
	maxRefusalPause    = 500 * time.Millisecond
)

// inFlightRetryMs is the retry hint of a request refused by the in-flight cap: about one handler
// round trip under load.
const inFlightRetryMs = 50

// loginExpired kicks a connection that has not logged in within the login timeout; it runs on
// the timer's goroutine.
func (c *conn) loginExpired() {
	if c.sess.Load() == nil {
		c.g.warn("login_timeout", c.remote, "no login in time", "conn", c.id)
		c.Kick(protocol.Unauthenticated, fmt.Sprintf("no login within %s", c.g.cfg.LoginTimeout))
	}
}

// loggedIn lifts the pre-login limits once the connection has a session; reader goroutine only.
func (c *conn) loggedIn() {
	c.loginTimer.Stop()
	c.t.setMaxFrame(c.g.cfg.MaxFrame)
	if c.limiter != nil {
		c.t.setPace(c.pace)
	}
}

// Pacing of large frames (conn.pace).
const (
	paceFrom = 1024            // payload bytes from which a frame costs more than one request
	maxPace  = 2 * time.Second // the longest a frame's payload waits in the socket
)

// pace holds a large frame's payload in the socket until the connection's rate can take it;
// reader goroutine only, after login. Over WebSocket, whose message length is known only once
// the message is read, the frame waits read and the next one stays in the socket. A client that
// sends large frames faster than gate.rate_limit is slowed by backpressure instead of having them
// read and then refused: reading a refused megabyte costs the server (and, on loopback, the
// machine) about what serving it would. Small frames are not paced: over the rate they are
// refused, which is cheaper than holding the reader.
func (c *conn) pace(payload int) {
	if payload < paceFrom {
		return
	}
	now := time.Now()
	r := c.limiter.ReserveN(now, c.cost(payload))
	delay := r.DelayFrom(now)
	r.CancelAt(now)
	if delay <= 0 {
		return
	}
	time.Sleep(min(delay+time.Millisecond, maxPace))
	c.extendIdle(time.Now()) // the wait is not the peer's silence
}

// cost is what a request of payload bytes takes from the connection's rate: 1, plus 1 per KiB,
// at most the burst.
func (c *conn) cost(payload int) int {
	if payload < 1024 {
		return 1 // most requests: no call to the limiter's Burst, which takes its lock
	}
	return min(1+payload/1024, c.g.cfg.RateBurst)
}

// shedding refuses a new login while the node sheds load (memory above its high-water mark).
func (g *Gateway) shedding() *protocol.CodeError {
	if g.deps.Shedding == nil || !g.deps.Shedding() {
		return nil
	}
	return &protocol.CodeError{Code: protocol.Unavailable, Message: "the server is short of memory: try again shortly", RetryAfterMs: 1000}
}

// preLoginRate bounds the frames a connection may send before login, per second (bursts of
// twice as many): a client needs a few (Ping, RefreshReq, LoginReq or ResumeReq), a flood gets
// RATE_LIMITED and soon the kick of gate.max_unauthenticated or of the login timeout.
const preLoginRate = 20
