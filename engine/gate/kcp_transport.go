package gate

import (
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/xtaci/kcp-go/v5"

	"github.com/moonforge/moonforge/engine/wire"
)

// KCPConfig configures the KCP listener. Zero values take the defaults that docs/protocol.md
// ("KCP") pins: MTU 1400, windows of 256 segments, no-delay mode with a 10 ms interval, fast
// resend after 2 later acks, no congestion window. The session settings are this side's; a
// client that follows the protocol uses the same.
type KCPConfig struct {
	Addr              string        // UDP listen address; default ":7003"; "-" disables KCP
	MTU               int           // largest datagram, KCP header included; default 1400
	SendWindow        int           // segments in flight; default 256
	RecvWindow        int           // segments buffered for reordering; default 256
	Interval          time.Duration // KCP's internal update interval; default 10ms
	Resend            int           // fast resend after this many later acks; default 2, negative: off
	Delay             bool          // true turns no-delay mode off (slower RTO backoff, minimum RTO 100 ms)
	CongestionControl bool          // true turns KCP's congestion window on
	MaxSessions       int           // KCP sessions at once, logged in or not; default 10000
	SocketBuffer      int           // UDP socket receive and send buffer; default 4 MiB
}

func (c KCPConfig) withDefaults() KCPConfig {
	if c.Addr == "" {
		c.Addr = ":7003"
	}
	if c.MTU <= 0 {
		c.MTU = 1400
	}
	if c.SendWindow <= 0 {
		c.SendWindow = 256
	}
	if c.RecvWindow <= 0 {
		c.RecvWindow = 256
	}
	if c.Interval <= 0 {
		c.Interval = 10 * time.Millisecond
	}
	if c.Resend == 0 {
		c.Resend = 2
	}
	if c.MaxSessions <= 0 {
		c.MaxSessions = 10000
	}
	if c.SocketBuffer <= 0 {
		c.SocketBuffer = 4 << 20
	}
	return c
}

// apply sets the session's KCP parameters.
func (c KCPConfig) apply(s *kcp.UDPSession) {
	nodelay, nc := 1, 1
	if c.Delay {
		nodelay = 0
	}
	if c.CongestionControl {
		nc = 0
	}
	s.SetStreamMode(false)
	s.SetMtu(c.MTU)
	s.SetWindowSize(c.SendWindow, c.RecvWindow)
	s.SetNoDelay(nodelay, int(c.Interval/time.Millisecond), max(c.Resend, 0), nc)
}

// DatagramObserver is an optional part of an Observer: it counts the UDP datagrams the KCP
// listener drops, by reason (malformed, oversized, forged, stray, limit). Called from the
// listener's read goroutine.
type DatagramObserver interface {
	DatagramDropped(reason string)
}

// kcpListener is the KCP listener of a gateway. Closing it stops new conversations; the UDP
// socket stays open until the last KCP connection has closed, so kicks still reach clients.
type kcpListener struct {
	*kcp.Listener
	pc    *net.UDPConn
	guard *kcpGuard

	mu     sync.Mutex
	held   int // KCP connections not yet closed
	closed bool
}

// startKCP opens the KCP listener, if configured, and accepts in the background.
func (g *Gateway) startKCP() error {
	cfg := g.cfg.KCP
	if cfg.Addr == "-" {
		return nil
	}
	addr, err := net.ResolveUDPAddr("udp", cfg.Addr)
	if err != nil {
		return fmt.Errorf("gate: kcp listen: %w", err)
	}
	udp, err := net.ListenUDP("udp", addr)
	if err != nil {
		return fmt.Errorf("gate: kcp listen: %w", err)
	}
	_ = udp.SetReadBuffer(cfg.SocketBuffer)
	_ = udp.SetWriteBuffer(cfg.SocketBuffer)
	onDrop := func(string) {}
	if o, ok := g.obs.(DatagramObserver); ok {
		onDrop = o.DatagramDropped
	}
	guard := newKCPGuard(udp, cfg.MTU, cfg.MaxSessions, onDrop)
	kl, err := kcp.ServeConn(nil, 0, 0, guard)
	if err != nil {
		_ = udp.Close()
		return fmt.Errorf("gate: kcp listen: %w", err)
	}
	ln := &kcpListener{Listener: kl, pc: udp, guard: guard}
	g.mu.Lock()
	g.kcp = ln
	g.mu.Unlock()
	g.addListener("kcp", ln)
	g.wg.Add(1)
	go g.acceptKCP(ln)
	return nil
}

func (g *Gateway) acceptKCP(ln *kcpListener) {
	defer g.wg.Done()
	for {
		s, err := ln.AcceptKCP()
		if err != nil {
			if !ln.isClosed() {
				g.log.Error("kcp listener stopped", "error", err)
			}
			return
		}
		ln.guard.accepted(s.RemoteAddr())
		remote := s.RemoteAddr().String()
		if ok, limit := g.limits.acquire(remote); !ok {
			ln.guard.forget(s.RemoteAddr())
			_ = s.Close()
			g.refused(limit, remote)
			continue
		}
		if !ln.hold() {
			g.limits.release(remote)
			ln.guard.forget(s.RemoteAddr())
			_ = s.Close()
			return
		}
		g.cfg.KCP.apply(s)
		t := &kcpTransport{s: s, ln: ln, reader: wire.NewReader(s, g.cfg.ReadBufferSize, g.cfg.MaxFrameBeforeLogin), openBy: time.Now().Add(g.cfg.LoginTimeout)}
		c := newConn(g, "kcp", remote, t)
		if !g.track(c) {
			g.limits.release(remote)
			_ = t.close()
			return
		}
		go c.serve()
	}
}

func (l *kcpListener) hold() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return false
	}
	l.held++
	return true
}

func (l *kcpListener) release() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.held--
	if l.closed && l.held == 0 {
		_ = l.pc.Close()
	}
}

func (l *kcpListener) isClosed() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.closed
}

// Close stops accepting new conversations (net.Listener).
func (l *kcpListener) Close() error {
	err := l.Listener.Close()
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.closed {
		l.closed = true
		if l.held == 0 {
			_ = l.pc.Close()
		}
	}
	return err
}

// KCPDropped returns the datagrams the KCP listener dropped so far, by reason, and the number of
// conversations it holds; nil and 0 when KCP is off.
func (g *Gateway) KCPDropped() (map[string]uint64, int) {
	g.mu.Lock()
	ln := g.kcp
	g.mu.Unlock()
	if ln == nil {
		return nil, 0
	}
	return ln.guard.stats(), ln.guard.count()
}

// errKCPSilent ends a conversation that sent no valid frame within the login timeout: the
// server forgets it without a Kick.
var errKCPSilent = errors.New("kcp: no frame within the login timeout")

// kcpTransport carries the TCP byte stream in a KCP session.
type kcpTransport struct {
	s      *kcp.UDPSession
	ln     *kcpListener
	reader *wire.Reader
	openBy time.Time   // the first frame is due by then
	opened atomic.Bool // a frame has arrived
	once   sync.Once
}

func (t *kcpTransport) next() (wire.Frame, int, error) {
	f, err := t.reader.Next()
	if err != nil {
		var ne net.Error
		if !t.opened.Load() && errors.As(err, &ne) && ne.Timeout() {
			return f, 0, errKCPSilent
		}
		return f, 0, err
	}
	t.opened.Store(true)
	return f, wire.LengthSize + wire.HeaderSize + len(f.Payload), nil
}

func (t *kcpTransport) buffered() int { return t.reader.Buffered() }

func (t *kcpTransport) setMaxFrame(n int) { t.reader.SetMaxLength(n) }

func (t *kcpTransport) setPace(pace func(int)) { t.reader.SetPace(pace) }

func (t *kcpTransport) write(batch []byte) error {
	_, err := t.s.Write(batch)
	return err
}

func (t *kcpTransport) discard() { _, _ = io.Copy(io.Discard, t.s) }

// closeWrite does nothing: KCP has no close. The session keeps resending what is unacknowledged
// (the Kick) until the reader's linger ends.
func (t *kcpTransport) closeWrite() {}

func (t *kcpTransport) setReadDeadline(d time.Time) time.Time {
	if !t.opened.Load() && d.After(t.openBy) {
		d = t.openBy
	}
	_ = t.s.SetReadDeadline(d)
	return d
}

func (t *kcpTransport) setWriteDeadline(d time.Time) { _ = t.s.SetWriteDeadline(d) }

// close ends the session and forgets its conversation id.
func (t *kcpTransport) close() error {
	t.once.Do(func() {
		_ = t.s.Close()
		t.ln.guard.forget(t.s.RemoteAddr())
		t.ln.release()
	})
	return nil
}
