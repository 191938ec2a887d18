package client

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"

	"github.com/gorilla/websocket"
	"github.com/xtaci/kcp-go/v5"

	"github.com/moonforge/moonforge/engine/protocol"

	"github.com/moonforge/moonforge/engine/wire"
)

// Link is the framing of one client connection: length-prefixed frames on TCP and KCP, one frame
// per binary message on WebSocket. One goroutine reads (Next) and one writes (Write).
type Link struct {
	nc     net.Conn        // TCP, or the KCP session
	ws     *websocket.Conn // WebSocket
	kcp    bool
	kicked bool // reader only: KCP has no close, so a Kick ends the stream
	reader *wire.Reader
	max    int
}

// LinkOptions say how to reach a gateway.
type LinkOptions struct {
	Addr      string // host:port
	Transport string // "tcp" (default), "ws", "kcp", "tls" (TCP over TLS) or "wss"
	WSPath    string // default "/ws"
	MaxFrame  int    // default 1 MiB
	LocalAddr net.Addr
	TLS       *tls.Config // for "tls" and "wss"; nil: the system's roots
}

// DialLink connects to a gateway.
func DialLink(ctx context.Context, o LinkOptions) (*Link, error) {
	if o.WSPath == "" {
		o.WSPath = "/ws"
	}
	if o.MaxFrame <= 0 {
		o.MaxFrame = wire.DefaultMaxLength
	}
	d := net.Dialer{LocalAddr: o.LocalAddr}
	l := &Link{max: o.MaxFrame}
	switch o.Transport {
	case "", "tcp", "tls":
		var nc net.Conn
		var err error
		if o.Transport == "tls" {
			td := tls.Dialer{NetDialer: &d, Config: o.TLS}
			nc, err = td.DialContext(ctx, "tcp", o.Addr)
		} else {
			nc, err = d.DialContext(ctx, "tcp", o.Addr)
		}
		if err != nil {
			return nil, err
		}
		l.nc = nc
		l.reader = wire.NewReader(nc, 32<<10, o.MaxFrame)
	case "ws", "wss":
		wd := websocket.Dialer{NetDialContext: d.DialContext, TLSClientConfig: o.TLS}
		u := url.URL{Scheme: o.Transport, Host: o.Addr, Path: o.WSPath}
		ws, _, err := wd.DialContext(ctx, u.String(), nil)
		if err != nil {
			return nil, err
		}
		l.ws = ws
	case "kcp":
		s, err := dialKCP(o.Addr, o.LocalAddr)
		if err != nil {
			return nil, err
		}
		l.nc, l.kcp = s, true
		l.reader = wire.NewReader(s, 32<<10, o.MaxFrame)
	default:
		return nil, fmt.Errorf("client: unknown transport %q", o.Transport)
	}
	return l, nil
}

// dialKCP opens a KCP session with the parameters of docs/protocol.md ("KCP"): a random non-zero
// conversation id, MTU 1400, windows of 256, no-delay mode (interval 10 ms, fast resend 2, no
// congestion window), stream mode off, no FEC, no encryption. KCP has no handshake: this only
// opens the UDP socket.
func dialKCP(addr string, local net.Addr) (*kcp.UDPSession, error) {
	raddr, err := net.ResolveUDPAddr("udp", addr)
	if err != nil {
		return nil, err
	}
	var laddr *net.UDPAddr
	if u, ok := local.(*net.UDPAddr); ok {
		laddr = u
	} else if t, ok := local.(*net.TCPAddr); ok {
		laddr = &net.UDPAddr{IP: t.IP, Zone: t.Zone}
	}
	udp, err := net.ListenUDP("udp", laddr)
	if err != nil {
		return nil, err
	}
	s, err := kcp.NewConn4(newConv(), raddr, nil, 0, 0, true, udp)
	if err != nil {
		_ = udp.Close()
		return nil, err
	}
	s.SetStreamMode(false)
	s.SetMtu(1400)
	s.SetWindowSize(256, 256)
	s.SetNoDelay(1, 10, 2, 1)
	return s, nil
}

// newConv returns a random non-zero conversation id.
func newConv() uint32 {
	var b [4]byte
	for {
		_, _ = rand.Read(b[:])
		if v := binary.LittleEndian.Uint32(b[:]); v != 0 {
			return v
		}
	}
}

// Next blocks for the next frame from the server; io.EOF when the server closed (over KCP: after
// a Kick).
func (l *Link) Next() (wire.Frame, error) {
	if l.kcp {
		if l.kicked {
			return wire.Frame{}, io.EOF
		}
		f, err := l.reader.Next()
		l.kicked = err == nil && f.MsgID == protocol.MsgKick && !f.IsReply()
		return f, err
	}
	if l.ws == nil {
		return l.reader.Next()
	}
	kind, b, err := l.ws.ReadMessage()
	if err != nil {
		if websocket.IsCloseError(err, websocket.CloseNormalClosure, websocket.CloseGoingAway, websocket.CloseNoStatusReceived) {
			return wire.Frame{}, io.EOF
		}
		return wire.Frame{}, err
	}
	if kind != websocket.BinaryMessage {
		return wire.Frame{}, errors.New("client: text message from the server")
	}
	return wire.ParseBare(b, l.max)
}

// Write sends a batch of frames in stream format (as wire.Queue hands them out).
func (l *Link) Write(batch []byte) error {
	if l.ws != nil {
		return wire.Frames(batch, func(bare []byte) error { return l.ws.WriteMessage(websocket.BinaryMessage, bare) })
	}
	_, err := l.nc.Write(batch)
	return err
}

// WriteRaw writes bytes as they are (TCP: into the stream; WebSocket: as one binary message).
func (l *Link) WriteRaw(b []byte) error {
	if l.ws != nil {
		return l.ws.WriteMessage(websocket.BinaryMessage, b)
	}
	_, err := l.nc.Write(b)
	return err
}

// WriteText sends a text WebSocket message (a protocol violation, for tests).
func (l *Link) WriteText(s string) error {
	if l.ws == nil {
		return errors.New("client: not a WebSocket connection")
	}
	return l.ws.WriteMessage(websocket.TextMessage, []byte(s))
}

// Close closes the connection.
func (l *Link) Close() error {
	if l.ws != nil {
		return l.ws.Close()
	}
	return l.nc.Close()
}
