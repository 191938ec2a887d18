package tests

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/url"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"google.golang.org/protobuf/proto"

	"github.com/moonforge/moonforge/engine/protocol"
)

// frame is one protocol frame as the tests see it, decoded here independently of engine/wire.
type frame struct {
	id      uint16
	flags   uint16
	seq     uint32
	payload []byte
}

func (f frame) String() string {
	return fmt.Sprintf("frame{id %d, flags %#04x, seq %d, %d payload bytes}", f.id, f.flags, f.seq, len(f.payload))
}

// bare encodes f without the length prefix (one WebSocket message).
func (f frame) bare() []byte {
	b := binary.BigEndian.AppendUint16(nil, f.id)
	b = binary.BigEndian.AppendUint16(b, f.flags)
	b = binary.BigEndian.AppendUint32(b, f.seq)
	return append(b, f.payload...)
}

// stream encodes f with its length prefix (TCP).
func (f frame) stream() []byte {
	b := binary.BigEndian.AppendUint32(nil, uint32(8+len(f.payload)))
	return append(b, f.bare()...)
}

const flagReply = 0x0001

// rawConn is a connection that writes exactly the bytes a test gives it and delivers every frame
// the server sends, in arrival order, on frames. One test goroutine uses it.
type rawConn struct {
	t      testing.TB
	nc     net.Conn        // TCP
	ws     *websocket.Conn // WebSocket
	frames chan frame
	done   chan struct{} // closed when the server's side has ended (after frames is drained)
	err    error         // why reading ended, set before done closes
}

// dialRaw connects to a server's gateway; the connection is closed when the test ends.
func dialRaw(t testing.TB, s *server, transport string) *rawConn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	r := &rawConn{t: t, frames: make(chan frame, 1<<16), done: make(chan struct{})}
	switch transport {
	case "tcp":
		var d net.Dialer
		nc, err := d.DialContext(ctx, "tcp", s.tcp)
		if err != nil {
			t.Fatalf("dial tcp: %v", err)
		}
		r.nc = nc
	case "ws":
		u := url.URL{Scheme: "ws", Host: s.ws, Path: "/ws"}
		ws, _, err := websocket.DefaultDialer.DialContext(ctx, u.String(), nil)
		if err != nil {
			t.Fatalf("dial ws: %v", err)
		}
		r.ws = ws
	default:
		t.Fatalf("unknown transport %q", transport)
	}
	t.Cleanup(func() { r.close() })
	go r.readLoop()
	return r
}

func (r *rawConn) close() {
	if r.ws != nil {
		_ = r.ws.Close()
	} else {
		_ = r.nc.Close()
	}
}

func (r *rawConn) readLoop() {
	defer close(r.done)
	defer close(r.frames)
	for {
		f, err := r.readFrame()
		if err != nil {
			r.err = err
			return
		}
		r.frames <- f
	}
}

func (r *rawConn) readFrame() (frame, error) {
	var b []byte
	if r.ws != nil {
		kind, msg, err := r.ws.ReadMessage()
		if err != nil {
			if websocket.IsCloseError(err, websocket.CloseNormalClosure, websocket.CloseGoingAway, websocket.CloseNoStatusReceived) {
				return frame{}, io.EOF
			}
			return frame{}, err
		}
		if kind != websocket.BinaryMessage {
			return frame{}, fmt.Errorf("server sent a WebSocket message of type %d", kind)
		}
		b = msg
	} else {
		var prefix [4]byte
		if _, err := io.ReadFull(r.nc, prefix[:]); err != nil {
			return frame{}, err
		}
		n := binary.BigEndian.Uint32(prefix[:])
		if n < 8 || n > 1<<20 {
			return frame{}, fmt.Errorf("server sent a frame with length %d", n)
		}
		b = make([]byte, n)
		if _, err := io.ReadFull(r.nc, b); err != nil {
			return frame{}, err
		}
	}
	if len(b) < 8 {
		return frame{}, fmt.Errorf("server sent a %d-byte WebSocket message", len(b))
	}
	return frame{
		id:      binary.BigEndian.Uint16(b[0:]),
		flags:   binary.BigEndian.Uint16(b[2:]),
		seq:     binary.BigEndian.Uint32(b[4:]),
		payload: b[8:],
	}, nil
}

// writeBytes writes b as it is: on TCP into the stream, on WebSocket as one binary message.
func (r *rawConn) writeBytes(b []byte) error {
	if r.ws != nil {
		_ = r.ws.SetWriteDeadline(time.Now().Add(5 * time.Second))
		return r.ws.WriteMessage(websocket.BinaryMessage, b)
	}
	_ = r.nc.SetWriteDeadline(time.Now().Add(5 * time.Second))
	_, err := r.nc.Write(b)
	return err
}

// send writes a frame in the transport's framing; failing to write fails the test.
func (r *rawConn) send(f frame) {
	r.t.Helper()
	b := f.stream()
	if r.ws != nil {
		b = f.bare()
	}
	if err := r.writeBytes(b); err != nil {
		r.t.Fatalf("writing %v: %v", f, err)
	}
}

// sendMsg sends a request (or a one-way message with seq 0) carrying m.
func (r *rawConn) sendMsg(id uint16, seq uint32, m proto.Message) {
	r.t.Helper()
	payload, err := proto.Marshal(m)
	if err != nil {
		r.t.Fatal(err)
	}
	r.send(frame{id: id, seq: seq, payload: payload})
}

// next returns the next frame from the server; ok is false if the connection ended first. The
// test fails if nothing comes within timeout.
func (r *rawConn) next(timeout time.Duration) (f frame, ok bool) {
	r.t.Helper()
	select {
	case f, ok := <-r.frames:
		return f, ok
	case <-time.After(timeout):
		r.t.Fatalf("no frame from the server within %s", timeout)
		return frame{}, false
	}
}

// nextFrame is next for a frame that must come.
func (r *rawConn) nextFrame(timeout time.Duration) frame {
	r.t.Helper()
	f, ok := r.next(timeout)
	if !ok {
		r.t.Fatalf("the server closed the connection (%v) while a frame was expected", r.err)
	}
	return f
}

// nextNonPush returns the next frame that is not a push (pushes such as chat messages of other
// tests may arrive at any time once logged in); Kick counts as not a push.
func (r *rawConn) nextNonPush(timeout time.Duration) frame {
	r.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		f := r.nextFrame(time.Until(deadline))
		if f.flags&flagReply != 0 || f.id == protocol.MsgKick {
			return f
		}
	}
}

// reply waits for the reply to seq, skipping pushes; any other reply fails the test.
func (r *rawConn) reply(seq uint32, timeout time.Duration) frame {
	r.t.Helper()
	f := r.nextNonPush(timeout)
	if f.id == protocol.MsgKick {
		r.t.Fatalf("kicked while waiting for the reply to seq %d: %v", seq, decodeKick(r.t, f))
	}
	if f.seq != seq {
		r.t.Fatalf("waiting for the reply to seq %d, got %v", seq, f)
	}
	return f
}

// expectError waits for the reply to seq and checks that it is Error with code.
func (r *rawConn) expectError(seq uint32, code protocol.Code) *protocol.Error {
	r.t.Helper()
	f := r.reply(seq, 5*time.Second)
	if f.id != protocol.MsgError {
		r.t.Fatalf("reply to seq %d: want Error %s, got %v", seq, code, f)
	}
	var e protocol.Error
	if err := proto.Unmarshal(f.payload, &e); err != nil {
		r.t.Fatalf("undecodable Error: %v", err)
	}
	if protocol.Code(e.Code) != code {
		r.t.Fatalf("reply to seq %d: want Error %s, got Error %s %q", seq, code, protocol.Code(e.Code), e.Message)
	}
	return &e
}

// expectKickAndClose reads until the connection ends and checks that the last frame was Kick
// with code and that nothing but pushes came before it.
func (r *rawConn) expectKickAndClose(code protocol.Code, timeout time.Duration) *protocol.Kick {
	r.t.Helper()
	deadline := time.Now().Add(timeout)
	var kick *protocol.Kick
	for {
		f, ok := r.next(time.Until(deadline))
		if !ok {
			break
		}
		switch {
		case kick != nil:
			r.t.Fatalf("a frame after Kick: %v", f)
		case f.id == protocol.MsgKick:
			if f.flags != 0 {
				r.t.Errorf("Kick must be a push: %v", f)
			}
			kick = decodeKick(r.t, f)
		case f.flags&flagReply != 0:
			r.t.Fatalf("unexpected reply while waiting for Kick %s: %v %s", code, f, describeError(f))
		}
	}
	if kick == nil {
		r.t.Fatalf("the connection ended (%v) without Kick %s", r.err, code)
	}
	if protocol.Code(kick.Code) != code {
		r.t.Fatalf("want Kick %s, got Kick %s %q", code, protocol.Code(kick.Code), kick.Reason)
	}
	return kick
}

// login logs in as a guest on a raw connection with request seq and returns LoginAck.
func (r *rawConn) login(device string, seq uint32) *protocol.LoginAck {
	r.t.Helper()
	r.sendMsg(protocol.MsgLoginReq, seq, &protocol.LoginReq{Method: "guest", Account: deviceID(device)})
	f := r.reply(seq, 10*time.Second)
	if f.id != protocol.MsgLoginAck {
		r.t.Fatalf("login: want LoginAck, got %v %s", f, describeError(f))
	}
	var ack protocol.LoginAck
	if err := proto.Unmarshal(f.payload, &ack); err != nil {
		r.t.Fatal(err)
	}
	return &ack
}

func decodeKick(t testing.TB, f frame) *protocol.Kick {
	t.Helper()
	var k protocol.Kick
	if err := proto.Unmarshal(f.payload, &k); err != nil {
		t.Fatalf("undecodable Kick: %v", err)
	}
	return &k
}

// describeError renders an Error frame for failure messages ("" for other frames).
func describeError(f frame) string {
	if f.id != protocol.MsgError {
		return ""
	}
	var e protocol.Error
	if err := proto.Unmarshal(f.payload, &e); err != nil {
		return "(undecodable Error)"
	}
	return fmt.Sprintf("Error %s %q", protocol.Code(e.Code), e.Message)
}
