// Package relay impairs loopback traffic for tests and benchmarks. UDP relays each client's
// datagrams to a target through its own upstream socket and drops, delays, duplicates and
// reorders them, in both directions, at set rates drawn from a seeded random source. TCP models
// packet loss on a byte stream: each segment lost stalls the stream for a retransmission timeout,
// as a real TCP's head-of-line blocking does; it is a model, not a lossy network.
package relay

import (
	"errors"
	"math/rand"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// Config sets the impairments of a UDP relay, applied to each datagram in each direction.
type Config struct {
	Loss      float64       // probability that a datagram is dropped
	Duplicate float64       // probability that a datagram is sent twice
	Reorder   float64       // probability that a datagram is held back by ReorderBy, so later ones overtake it
	ReorderBy time.Duration // default 20ms
	Delay     time.Duration // added to every datagram (one way)
	Seed      int64         // the random source's seed; runs with the same seed make the same decisions
}

// Stats counts what a relay did.
type Stats struct {
	Forwarded, Dropped, Duplicated, Reordered uint64
}

// UDP is a running UDP relay. Its methods are safe for concurrent use.
type UDP struct {
	cfg    Config
	target *net.UDPAddr
	ln     *net.UDPConn

	mu    sync.Mutex
	rnd   *rand.Rand
	peers map[string]*net.UDPConn // client address → upstream socket
	convs map[uint32]bool

	forwarded, dropped, duplicated, reordered atomic.Uint64
	wg                                        sync.WaitGroup
	closed                                    atomic.Bool
}

// ListenUDP starts a relay on a free loopback port that forwards to target.
func ListenUDP(target string, cfg Config) (*UDP, error) {
	if cfg.ReorderBy <= 0 {
		cfg.ReorderBy = 20 * time.Millisecond
	}
	taddr, err := net.ResolveUDPAddr("udp", target)
	if err != nil {
		return nil, err
	}
	ln, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		return nil, err
	}
	_ = ln.SetReadBuffer(4 << 20)
	r := &UDP{cfg: cfg, target: taddr, ln: ln, rnd: rand.New(rand.NewSource(cfg.Seed)), peers: map[string]*net.UDPConn{}, convs: map[uint32]bool{}}
	r.wg.Add(1)
	go r.fromClients()
	return r, nil
}

// Addr returns the address clients send to.
func (r *UDP) Addr() string { return r.ln.LocalAddr().String() }

// Stats returns the counts so far.
func (r *UDP) Stats() Stats {
	return Stats{r.forwarded.Load(), r.dropped.Load(), r.duplicated.Load(), r.reordered.Load()}
}

// Conversations returns the KCP conversation ids (the first 4 bytes, little-endian, of datagrams
// of at least 24 bytes) that clients sent, for tests that forge them.
func (r *UDP) Conversations() []uint32 {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]uint32, 0, len(r.convs))
	for c := range r.convs {
		out = append(out, c)
	}
	return out
}

// Close stops the relay and waits for its goroutines.
func (r *UDP) Close() {
	if r.closed.Swap(true) {
		return
	}
	_ = r.ln.Close()
	r.mu.Lock()
	for _, up := range r.peers {
		_ = up.Close()
	}
	r.mu.Unlock()
	r.wg.Wait()
}

func (r *UDP) fromClients() {
	defer r.wg.Done()
	buf := make([]byte, 65536)
	for {
		n, from, err := r.ln.ReadFromUDP(buf)
		if err != nil {
			return
		}
		up, err := r.upstream(from, buf[:n])
		if err != nil {
			continue
		}
		r.send(buf[:n], func(b []byte) { _, _ = up.Write(b) })
	}
}

// upstream returns the client's upstream socket, opening it on its first datagram.
func (r *UDP) upstream(from *net.UDPAddr, first []byte) (*net.UDPConn, error) {
	key := from.String()
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(first) >= 24 {
		r.convs[uint32(first[0])|uint32(first[1])<<8|uint32(first[2])<<16|uint32(first[3])<<24] = true
	}
	if up := r.peers[key]; up != nil {
		return up, nil
	}
	if r.closed.Load() {
		return nil, net.ErrClosed
	}
	up, err := net.DialUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)}, r.target)
	if err != nil {
		return nil, err
	}
	_ = up.SetReadBuffer(4 << 20)
	r.peers[key] = up
	r.wg.Add(1)
	go r.fromTarget(up, from)
	return up, nil
}

func (r *UDP) fromTarget(up *net.UDPConn, client *net.UDPAddr) {
	defer r.wg.Done()
	buf := make([]byte, 65536)
	for {
		n, err := up.Read(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue // ICMP port unreachable and the like
		}
		r.send(buf[:n], func(b []byte) { _, _ = r.ln.WriteToUDP(b, client) })
	}
}

// send applies the impairments to one datagram; b is copied when it is sent later.
func (r *UDP) send(b []byte, write func([]byte)) {
	r.mu.Lock()
	lost := r.rnd.Float64() < r.cfg.Loss
	dup := r.rnd.Float64() < r.cfg.Duplicate
	late := r.rnd.Float64() < r.cfg.Reorder
	r.mu.Unlock()
	if lost {
		r.dropped.Add(1)
		return
	}
	r.forwarded.Add(1)
	copies := 1
	if dup {
		r.duplicated.Add(1)
		copies = 2
	}
	delay := r.cfg.Delay
	if late {
		r.reordered.Add(1)
		delay += r.cfg.ReorderBy
	}
	if delay == 0 {
		for range copies {
			write(b)
		}
		return
	}
	c := append([]byte(nil), b...)
	time.AfterFunc(delay, func() {
		if r.closed.Load() {
			return
		}
		for range copies {
			write(c)
		}
	})
}

// StallConfig sets the model of loss on a TCP stream.
type StallConfig struct {
	Loss    float64       // probability that a segment is lost
	Stall   time.Duration // how long a lost segment stalls the stream; default 200ms, TCP's minimum RTO
	Segment int           // bytes per segment; default 1448 (a 1500-byte MTU less IP and TCP headers)
	Seed    int64
}

// TCP is a running TCP relay that models loss as stalls. Its methods are safe for concurrent use.
type TCP struct {
	cfg    StallConfig
	target string
	ln     net.Listener

	mu     sync.Mutex
	rnd    *rand.Rand
	conns  map[net.Conn]struct{}
	stalls atomic.Uint64
	wg     sync.WaitGroup
}

// ListenTCP starts a stalling relay on a free loopback port that forwards to target.
func ListenTCP(target string, cfg StallConfig) (*TCP, error) {
	if cfg.Stall <= 0 {
		cfg.Stall = 200 * time.Millisecond
	}
	if cfg.Segment <= 0 {
		cfg.Segment = 1448
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	r := &TCP{cfg: cfg, target: target, ln: ln, rnd: rand.New(rand.NewSource(cfg.Seed)), conns: map[net.Conn]struct{}{}}
	r.wg.Add(1)
	go r.accept()
	return r, nil
}

// Addr returns the address clients connect to.
func (r *TCP) Addr() string { return r.ln.Addr().String() }

// Stalls returns how many stalls the relay has made.
func (r *TCP) Stalls() uint64 { return r.stalls.Load() }

// Close stops the relay, closes its connections and waits for its goroutines.
func (r *TCP) Close() {
	_ = r.ln.Close()
	r.mu.Lock()
	for c := range r.conns {
		_ = c.Close()
	}
	r.mu.Unlock()
	r.wg.Wait()
}

func (r *TCP) accept() {
	defer r.wg.Done()
	for {
		c, err := r.ln.Accept()
		if err != nil {
			return
		}
		up, err := net.Dial("tcp", r.target)
		if err != nil {
			_ = c.Close()
			continue
		}
		r.mu.Lock()
		r.conns[c], r.conns[up] = struct{}{}, struct{}{}
		r.mu.Unlock()
		r.wg.Add(2)
		go r.pump(up, c)
		go r.pump(c, up)
	}
}

// pump copies src to dst; before each read's bytes go on, every lost segment among them stalls
// the stream for cfg.Stall.
func (r *TCP) pump(dst, src net.Conn) {
	defer r.wg.Done()
	defer func() {
		_ = dst.Close()
		_ = src.Close()
		r.mu.Lock()
		delete(r.conns, dst)
		delete(r.conns, src)
		r.mu.Unlock()
	}()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			lost := 0
			r.mu.Lock()
			for range (n + r.cfg.Segment - 1) / r.cfg.Segment {
				if r.rnd.Float64() < r.cfg.Loss {
					lost++
				}
			}
			r.mu.Unlock()
			if lost > 0 {
				r.stalls.Add(uint64(lost))
				time.Sleep(time.Duration(lost) * r.cfg.Stall)
			}
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return // either side's end ends both: the relay does not model half-closes
		}
	}
}
