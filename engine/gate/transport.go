package gate

import (
	"io"
	"net"
	"time"

	"github.com/gorilla/websocket"

	"github.com/moonforge/moonforge/engine/wire"
)

// transport is the framing of one connection: TCP carries length-prefixed frames back to back, a
// WebSocket carries one frame per binary message.
type transport interface {
	// next blocks for the next frame; the payload belongs to the caller. Protocol violations are
	// *wire.Violation.
	next() (wire.Frame, int, error)
	// write sends a batch of frames in stream format.
	write(batch []byte) error
	// buffered reports bytes already read from the socket but not yet decoded.
	buffered() int
	// discard reads and drops input until an error (end of stream, deadline).
	discard()
	// closeWrite tells the peer nothing more comes (TCP FIN, WebSocket close message).
	closeWrite()
	// setMaxFrame changes the largest frame accepted from the next one on; reader goroutine only.
	setMaxFrame(n int)
	// setPace makes next call pace with a frame's payload size before it returns the frame:
	// before it reads the payload where the stream allows (wire.Reader.SetPace), else once the
	// whole message is read (WebSocket). nil: no pacing.
	setPace(pace func(payload int))
	// setReadDeadline sets the read deadline, or an earlier one (KCP before its first frame), and
	// returns the one it set.
	setReadDeadline(t time.Time) time.Time
	setWriteDeadline(t time.Time)
	close() error
}

// trier is a transport that can write without blocking (wire.Queue.SetTry); try may return nil.
type trier interface {
	try() func(batch []byte) (int, error)
}

type tcpTransport struct {
	nc     net.Conn
	reader *wire.Reader
}

func (t *tcpTransport) next() (wire.Frame, int, error) {
	f, err := t.reader.Next()
	return f, wire.LengthSize + wire.HeaderSize + len(f.Payload), err
}

func (t *tcpTransport) buffered() int { return t.reader.Buffered() }

func (t *tcpTransport) setMaxFrame(n int) { t.reader.SetMaxLength(n) }

func (t *tcpTransport) setPace(pace func(int)) { t.reader.SetPace(pace) }

func (t *tcpTransport) write(batch []byte) error {
	_, err := t.nc.Write(batch)
	return err
}

func (t *tcpTransport) discard() { _, _ = io.Copy(io.Discard, t.nc) }

func (t *tcpTransport) closeWrite() {
	if cw, ok := t.nc.(interface{ CloseWrite() error }); ok { // *net.TCPConn, *tls.Conn
		_ = cw.CloseWrite()
	}
}

func (t *tcpTransport) setReadDeadline(d time.Time) time.Time { _ = t.nc.SetReadDeadline(d); return d }
func (t *tcpTransport) setWriteDeadline(d time.Time)          { _ = t.nc.SetWriteDeadline(d) }
func (t *tcpTransport) close() error                          { return t.nc.Close() }

type wsTransport struct {
	ws       *websocket.Conn
	maxFrame int
	pace     func(payload int)
}

func (t *wsTransport) next() (wire.Frame, int, error) {
	kind, r, err := t.ws.NextReader()
	if err != nil {
		if websocket.IsCloseError(err, websocket.CloseNormalClosure, websocket.CloseGoingAway, websocket.CloseNoStatusReceived) {
			return wire.Frame{}, 0, io.EOF
		}
		return wire.Frame{}, 0, err
	}
	if kind != websocket.BinaryMessage {
		return wire.Frame{}, 0, &wire.Violation{Kind: wire.Malformed, Detail: "text WebSocket message"}
	}
	// Read at most one byte past the limit: enough to know the message is too large.
	b, err := io.ReadAll(io.LimitReader(r, int64(t.maxFrame)+1))
	if err != nil {
		return wire.Frame{}, 0, err
	}
	f, err := wire.ParseBare(b, t.maxFrame)
	if err == nil && t.pace != nil && len(f.Payload) > 0 {
		// A message's length is known only once it is read, so the wait comes after the read:
		// the next message stays in the socket meanwhile.
		t.pace(len(f.Payload))
	}
	return f, len(b), err
}

func (t *wsTransport) buffered() int { return 0 }

func (t *wsTransport) setMaxFrame(n int) { t.maxFrame = n }

func (t *wsTransport) setPace(pace func(int)) { t.pace = pace }

func (t *wsTransport) write(batch []byte) error {
	return wire.Frames(batch, func(bare []byte) error {
		return t.ws.WriteMessage(websocket.BinaryMessage, bare)
	})
}

func (t *wsTransport) discard() {
	for {
		if _, _, err := t.ws.NextReader(); err != nil {
			return
		}
	}
}

func (t *wsTransport) closeWrite() {
	_ = t.ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(time.Second))
}

func (t *wsTransport) setReadDeadline(d time.Time) time.Time { _ = t.ws.SetReadDeadline(d); return d }
func (t *wsTransport) setWriteDeadline(d time.Time)          { _ = t.ws.SetWriteDeadline(d) }
func (t *wsTransport) close() error                          { return t.ws.Close() }
