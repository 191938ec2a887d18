package gate

import (
	"crypto/tls"
	"time"

	"github.com/moonforge/moonforge/engine/wire"
)

// handshakeTimeout bounds a TLS handshake, so that a client opening connections and sending
// nothing holds them only briefly.
const handshakeTimeout = 10 * time.Second

// startTLS opens TCP over TLS and WebSocket over TLS when the gateway has a TLS configuration.
func (g *Gateway) startTLS() error {
	if g.deps.TLS == nil {
		return nil
	}
	if err := g.listenTCP("tls", g.cfg.TLSTCPAddr, g.deps.TLS); err != nil {
		return err
	}
	return g.listenWS("wss", g.cfg.TLSWSAddr, g.deps.TLS)
}

// serveTLS completes the handshake of an accepted TLS connection, then serves it like TCP. The
// connection is counted in the limits already.
func (g *Gateway) serveTLS(tc *tls.Conn, name, remote string) {
	_ = tc.SetDeadline(time.Now().Add(handshakeTimeout))
	if err := tc.Handshake(); err != nil {
		g.limits.release(remote)
		_ = tc.Close()
		g.warn("tls_handshake", remote, "tls handshake failed", "error", err)
		return
	}
	_ = tc.SetDeadline(time.Time{})
	c := newConn(g, name, remote, &tcpTransport{nc: tc, reader: wire.NewReader(tc, g.cfg.ReadBufferSize, g.cfg.MaxFrameBeforeLogin)})
	if !g.track(c) {
		g.limits.release(remote)
		_ = tc.Close()
		return
	}
	c.serve()
}
