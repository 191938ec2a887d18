package gate

import (
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
)

// KCP segment layout (kcp-go, little-endian): conv u32, cmd u8, frg u8, wnd u16, ts u32, sn u32,
// una u32, len u32, then len bytes of data. A datagram holds one or more segments back to back.
const (
	kcpHeaderSize = 24
	kcpCmdPush    = 81
	kcpCmdWins    = 84
)

// kcpDatagram is what the guard needs to know of a datagram.
type kcpDatagram struct {
	conv    uint32
	opening bool // it carries the first data segment of a conversation (PUSH, sn 0)
}

// parseKCPDatagram checks that b is a whole number of well-formed KCP segments of one non-zero
// conversation, none carrying more than mtu bytes. It reads b only.
func parseKCPDatagram(b []byte, mtu int) (kcpDatagram, bool) {
	var d kcpDatagram
	if len(b) < kcpHeaderSize {
		return d, false
	}
	d.conv = binary.LittleEndian.Uint32(b)
	if d.conv == 0 {
		return d, false
	}
	for len(b) > 0 {
		if len(b) < kcpHeaderSize || binary.LittleEndian.Uint32(b) != d.conv {
			return d, false
		}
		cmd := b[4]
		sn := binary.LittleEndian.Uint32(b[12:])
		n := binary.LittleEndian.Uint32(b[20:])
		if cmd < kcpCmdPush || cmd > kcpCmdWins || n > uint32(mtu) || int(n) > len(b)-kcpHeaderSize {
			return d, false
		}
		if cmd != kcpCmdPush && n != 0 {
			return d, false // only PUSH segments carry data
		}
		if cmd == kcpCmdPush && sn == 0 {
			d.opening = true
		}
		b = b[kcpHeaderSize+int(n):]
	}
	return d, true
}

// Reasons a datagram is dropped, the label of the gateway's counter.
const (
	dropMalformed = "malformed" // not whole KCP segments of one conversation
	dropOversized = "oversized" // longer than the MTU
	dropForged    = "forged"    // a conversation id that belongs to another address, or not to this one
	dropStray     = "stray"     // from an unknown address, and not the opening of a conversation
	dropLimit     = "limit"     // a new conversation beyond the session limit
)

var dropReasons = [...]string{dropMalformed, dropOversized, dropForged, dropStray, dropLimit}

// kcpPeer is one admitted conversation.
type kcpPeer struct {
	conv     uint32
	admitted time.Time
	accepted bool // the gateway took the session (until then it may be lost in kcp-go's backlog)
}

// kcpGuard is the UDP socket of kcp-go's listener: its read loop reads datagrams in batches and
// hands the listener (kcp.PacketPusher) only datagrams of the conversations it admitted; it admits
// a new one only from an unknown address, with an unused conversation id, within the session
// limit, and counts what it drops. Sessions write through the embedded socket (in batches too).
// The gateway calls accepted and forget from connection goroutines.
type kcpGuard struct {
	*net.UDPConn
	receiver atomic.Pointer[func([]byte, net.Addr, error)]
	reading  atomic.Bool
	batch    bool // read with recvmmsg (Linux)
	mtu      int
	max      int
	backlog  time.Duration // how long an admitted conversation may wait for the gateway's accept
	onDrop   func(reason string)

	mu     sync.Mutex
	byAddr map[netip.AddrPort]*kcpPeer
	byConv map[uint32]netip.AddrPort

	dropped [len(dropReasons)]atomic.Uint64 // by index in dropReasons
}

func newKCPGuard(udp *net.UDPConn, mtu, maxSessions int, onDrop func(string)) *kcpGuard {
	return &kcpGuard{
		UDPConn: udp,
		batch:   runtime.GOOS == "linux",
		mtu:     mtu,
		max:     maxSessions,
		backlog: 5 * time.Second,
		onDrop:  onDrop,
		byAddr:  map[netip.AddrPort]*kcpPeer{},
		byConv:  map[uint32]netip.AddrPort{},
	}
}

// SetPacketReceiver implements kcp.PacketPusher: the first receiver starts the read loop, which
// runs until the socket closes; nil stops the hand-over.
func (g *kcpGuard) SetPacketReceiver(fn func(b []byte, addr net.Addr, err error)) {
	if fn == nil {
		g.receiver.Store(nil)
		return
	}
	g.receiver.Store(&fn)
	if !g.reading.Swap(true) {
		go g.readLoop()
	}
}

// readLoop reads datagrams, in batches on Linux (recvmmsg), and hands the admitted ones to the
// receiver.
func (g *kcpGuard) readLoop() {
	msgs := make([]ipv4.Message, 64)
	for i := range msgs {
		msgs[i].Buffers = [][]byte{make([]byte, 2048)}
	}
	// Elsewhere one datagram at a time, into a buffer no datagram overflows; an error of one
	// datagram (Windows reports an ICMP unreachable as a read error) does not end the loop.
	one := make([]byte, 64<<10)
	read := func(ms []ipv4.Message) (int, error) {
		for {
			n, addr, err := g.ReadFromUDP(one)
			switch {
			case err == nil:
				ms[0].Buffers[0], ms[0].N, ms[0].Addr = one, n, addr
				return 1, nil
			case errors.Is(err, net.ErrClosed):
				return 0, err
			}
			time.Sleep(time.Millisecond)
		}
	}
	if g.batch {
		pc := ipv4.NewPacketConn(g.UDPConn).ReadBatch
		if a, ok := g.LocalAddr().(*net.UDPAddr); ok && a.IP.To4() == nil {
			pc = ipv6.NewPacketConn(g.UDPConn).ReadBatch
		}
		read = func(ms []ipv4.Message) (int, error) { return pc(ms, 0) }
	}
	for {
		n, err := read(msgs)
		fn := g.receiver.Load()
		if err != nil {
			if fn != nil {
				(*fn)(nil, nil, err)
			}
			return
		}
		for _, m := range msgs[:n] {
			b := m.Buffers[0][:m.N]
			if reason := g.admit(b, m.Addr); reason != "" {
				g.drop(reason)
				continue
			}
			if fn != nil {
				(*fn)(b, m.Addr, nil)
			}
		}
	}
}

// admit returns "" to pass the datagram on, or why it is dropped.
func (g *kcpGuard) admit(b []byte, addr net.Addr) string {
	if len(b) > g.mtu {
		return dropOversized
	}
	d, ok := parseKCPDatagram(b, g.mtu)
	if !ok {
		return dropMalformed
	}
	ap := addrPort(addr)
	now := time.Now()
	g.mu.Lock()
	defer g.mu.Unlock()
	if p := g.byAddr[ap]; p != nil {
		if p.conv != d.conv {
			return dropForged
		}
		return ""
	}
	if !d.opening {
		return dropStray
	}
	if _, taken := g.byConv[d.conv]; taken {
		return dropForged
	}
	if len(g.byAddr) >= g.max {
		g.sweepLocked(now)
		if len(g.byAddr) >= g.max {
			return dropLimit
		}
	}
	g.byAddr[ap] = &kcpPeer{conv: d.conv, admitted: now}
	g.byConv[d.conv] = ap
	return ""
}

// sweepLocked forgets admitted conversations that kcp-go never handed to the gateway.
func (g *kcpGuard) sweepLocked(now time.Time) {
	for ap, p := range g.byAddr {
		if !p.accepted && now.Sub(p.admitted) > g.backlog {
			delete(g.byAddr, ap)
			delete(g.byConv, p.conv)
		}
	}
}

func (g *kcpGuard) drop(reason string) {
	for i, r := range dropReasons {
		if r == reason {
			g.dropped[i].Add(1)
		}
	}
	if g.onDrop != nil {
		g.onDrop(reason)
	}
}

// accepted marks the conversation of addr as served by a connection.
func (g *kcpGuard) accepted(addr net.Addr) {
	g.mu.Lock()
	if p := g.byAddr[addrPort(addr)]; p != nil {
		p.accepted = true
	}
	g.mu.Unlock()
}

// forget removes the conversation of addr: later datagrams from it are strays until it opens a
// new conversation.
func (g *kcpGuard) forget(addr net.Addr) {
	ap := addrPort(addr)
	g.mu.Lock()
	if p := g.byAddr[ap]; p != nil {
		delete(g.byAddr, ap)
		delete(g.byConv, p.conv)
	}
	g.mu.Unlock()
}

// count returns the number of admitted conversations.
func (g *kcpGuard) count() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.byAddr)
}

// stats returns the dropped datagrams by reason.
func (g *kcpGuard) stats() map[string]uint64 {
	out := make(map[string]uint64, len(dropReasons))
	for i, r := range dropReasons {
		out[r] = g.dropped[i].Load()
	}
	return out
}

func addrPort(a net.Addr) netip.AddrPort {
	if u, ok := a.(*net.UDPAddr); ok {
		ap := u.AddrPort()
		return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	}
	ap, _ := netip.ParseAddrPort(a.String())
	return ap
}
