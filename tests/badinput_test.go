package tests

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"google.golang.org/protobuf/proto"

	"github.com/moonforge/moonforge/engine/protocol"
)

// TestBadInput sends every kind of bad input docs/protocol.md names and checks the code it answers
// with and whether the connection stays, while a background client keeps being served.
func TestBadInput(t *testing.T) {
	t.Parallel()
	s := startServer(t, options{})
	load := startEchoLoad(t, s, "tcp", "bystander")
	echoID := s.msgs.Schema.ByName("EchoReq").ID
	chatID := s.msgs.Schema.ByName("ChatSendReq").ID
	echoOK := func(t *testing.T, r *rawConn, seq uint32) {
		t.Helper()
		r.send(frame{id: echoID, seq: seq, payload: []byte{0x10, 0x2a}}) // n = 42
		if f := r.reply(seq, 5*time.Second); f.id != s.msgs.Schema.ByName("EchoAck").ID || !bytes.Equal(f.payload, []byte{0x10, 0x2a}) {
			t.Fatalf("echo after bad input: %v %s", f, describeError(f))
		}
	}
	run := func(name string, f func(t *testing.T)) {
		t.Run(name, func(t *testing.T) {
			f(t)
			load.progressed(t)
		})
	}

	for _, transport := range []string{"tcp", "ws"} {
		run("short frame/"+transport, func(t *testing.T) {
			for _, n := range []int{0, 1, 7} {
				r := dialRaw(t, s, transport)
				if transport == "tcp" {
					b := binary.BigEndian.AppendUint32(nil, uint32(n))
					if err := r.writeBytes(append(b, make([]byte, n)...)); err != nil {
						t.Fatal(err)
					}
				} else if err := r.writeBytes(make([]byte, n)); err != nil {
					t.Fatal(err)
				}
				r.expectKickAndClose(protocol.MalformedFrame, 5*time.Second)
			}
		})
		run("frame too large before login/"+transport, func(t *testing.T) {
			r := dialRaw(t, s, transport)
			over := frame{id: protocol.MsgLoginReq, seq: 1, payload: make([]byte, 4096-8+1)}
			if transport == "tcp" {
				if err := r.writeBytes(over.stream()[:12]); err != nil {
					t.Fatal(err)
				}
			} else {
				r.send(over)
			}
			r.expectKickAndClose(protocol.FrameTooLarge, 5*time.Second)
		})
		run("frame too large/"+transport, func(t *testing.T) {
			r := dialRaw(t, s, transport)
			r.login("too-large-"+transport, 1)
			over := frame{id: echoID, seq: 1, payload: make([]byte, 1<<20-8+1)}
			if transport == "tcp" {
				// The length field alone must be refused: send it with a header and nothing more.
				if err := r.writeBytes(over.stream()[:12]); err != nil {
					t.Fatal(err)
				}
			} else {
				r.send(over)
			}
			r.expectKickAndClose(protocol.FrameTooLarge, 5*time.Second)
		})
		run("largest frame accepted/"+transport, func(t *testing.T) {
			r := dialRaw(t, s, transport)
			r.login("largest-"+transport, 1)
			// EchoReq{body} of exactly 1 MiB - 8 bytes: tag, 3-byte length, body.
			body := bytes.Repeat([]byte{'z'}, 1<<20-8-4)
			payload := append([]byte{0x0a}, binary.AppendUvarint(nil, uint64(len(body)))...)
			payload = append(payload, body...)
			if len(payload) != 1<<20-8 {
				t.Fatalf("payload %d bytes", len(payload))
			}
			r.send(frame{id: echoID, seq: 2, payload: payload})
			f := r.reply(2, 10*time.Second)
			if f.id != s.msgs.Schema.ByName("EchoAck").ID || !bytes.Equal(f.payload, payload) {
				t.Fatalf("a frame of the maximum size: %v %s", f, describeError(f))
			}
		})
		run("unknown flag bit/"+transport, func(t *testing.T) {
			for _, flags := range []uint16{0x0002, 0x8000, 0x0003} {
				r := dialRaw(t, s, transport)
				ack := r.login(fmt.Sprintf("flags-%s-%x", transport, flags), 1)
				r.send(frame{id: echoID, flags: flags, seq: 2})
				r.expectKickAndClose(protocol.MalformedFrame, 5*time.Second)
				// docs/protocol.md: after a protocol violation the session stays resumable.
				r2 := dialRaw(t, s, transport)
				if got := resumeRaw(t, r2, ack.Token, 0); got.PlayerId != ack.PlayerId {
					t.Errorf("resume after a violation: player %q, want %q", got.PlayerId, ack.PlayerId)
				}
			}
			r := dialRaw(t, s, transport) // before login too
			r.send(frame{id: protocol.MsgPing, flags: 0x0010, seq: 1})
			r.expectKickAndClose(protocol.MalformedFrame, 5*time.Second)
		})
		run("unknown message/"+transport, func(t *testing.T) {
			r := dialRaw(t, s, transport)
			r.login("unknown-"+transport, 1)
			seq := uint32(2)
			for _, id := range []uint16{0, 5, 999, 1000, 1003, 8999, 65535} {
				r.send(frame{id: id, seq: seq, payload: []byte{0x08, 0x01}})
				r.expectError(seq, protocol.UnknownMessage)
				seq++
			}
			echoOK(t, r, seq)
		})
		run("undecodable payload/"+transport, func(t *testing.T) {
			r := dialRaw(t, s, transport)
			// Before login the gateway decodes LoginReq and Ping itself.
			r.send(frame{id: protocol.MsgLoginReq, seq: 1, payload: []byte{0x0a, 0x10, 'x'}})
			r.expectError(1, protocol.DecodeFailed)
			r.send(frame{id: protocol.MsgPing, seq: 2, payload: []byte{0x08}})
			r.expectError(2, protocol.DecodeFailed)
			r.send(frame{id: protocol.MsgResumeReq, seq: 3, payload: []byte{0x12, 0x80}})
			r.expectError(3, protocol.DecodeFailed)
			r.login("garbage-"+transport, 4)
			cases := []struct {
				id      uint16
				payload []byte
			}{
				{echoID, []byte{0xff, 0xff, 0xff, 0xff}}, // field 0 / bad varint
				{echoID, []byte{0x0a, 0x05, 'a'}},        // bytes field longer than the payload
				{echoID, []byte{0x10, 0x80, 0x80}},       // truncated varint
				{chatID, []byte{0x0a, 0x02, 0xff, 0xfe}}, // a string that is not UTF-8
			}
			seq := uint32(5)
			// In a room, the room decodes ArenaMoveReq: a truncated float in a sub-message.
			r.send(frame{id: s.msgs.Schema.ByName("ArenaJoinReq").ID, seq: seq})
			if f := r.reply(seq, 5*time.Second); f.id != s.msgs.Schema.ByName("ArenaJoinAck").ID {
				t.Fatalf("ArenaJoinReq: %v %s", f, describeError(f))
			}
			seq++
			cases = append(cases, struct {
				id      uint16
				payload []byte
			}{s.msgs.Schema.ByName("ArenaMoveReq").ID, []byte{0x0a, 0x03, 0x0d, 0x00, 0x00}})
			for _, c := range cases {
				r.send(frame{id: c.id, seq: seq, payload: c.payload})
				r.expectError(seq, protocol.DecodeFailed)
				seq++
			}
			echoOK(t, r, seq)
		})
		run("server-only message/"+transport, func(t *testing.T) {
			r := dialRaw(t, s, transport)
			r.login("forbidden-"+transport, 1)
			seq := uint32(2)
			for _, id := range []uint16{protocol.MsgPong, protocol.MsgError, protocol.MsgKick, protocol.MsgLoginAck, protocol.MsgResumeAck} {
				r.send(frame{id: id, seq: seq})
				r.expectError(seq, protocol.Forbidden)
				seq++
			}
			echoOK(t, r, seq)
		})
		run("before login/"+transport, func(t *testing.T) {
			r := dialRaw(t, s, transport)
			r.sendMsg(protocol.MsgPing, 1, &protocol.Ping{ClientTimeMs: 12345})
			f := r.reply(1, 5*time.Second)
			var pong protocol.Pong
			if f.id != protocol.MsgPong || proto.Unmarshal(f.payload, &pong) != nil || pong.ClientTimeMs != 12345 || pong.ServerTimeMs < time.Now().Add(-time.Minute).UnixMilli() {
				t.Fatalf("Ping before login: %v %s %v", f, describeError(f), &pong)
			}
			for i, id := range []uint16{echoID, 60000, chatID} {
				seq := uint32(10 + i)
				r.send(frame{id: id, seq: seq})
				r.expectError(seq, protocol.Unauthenticated)
				if i == 1 { // a Ping between them does not count and is answered
					r.sendMsg(protocol.MsgPing, 2, &protocol.Ping{})
					if f := r.reply(2, 5*time.Second); f.id != protocol.MsgPong {
						t.Fatalf("Ping: %v", f)
					}
				}
			}
			r.expectKickAndClose(protocol.Unauthenticated, 5*time.Second)
		})
	}
	run("text message", func(t *testing.T) {
		r := dialRaw(t, s, "ws")
		if err := r.ws.WriteMessage(websocket.TextMessage, []byte("hello")); err != nil {
			t.Fatal(err)
		}
		r.expectKickAndClose(protocol.MalformedFrame, 5*time.Second)
		r = dialRaw(t, s, "ws")
		r.login("texter", 1)
		if err := r.ws.WriteMessage(websocket.TextMessage, frame{id: echoID, seq: 2}.bare()); err != nil {
			t.Fatal(err)
		}
		r.expectKickAndClose(protocol.MalformedFrame, 5*time.Second)
	})
	run("random frames", func(t *testing.T) { randomFrames(t, s) })

	if code, body := s.httpGet(t, "/healthz"); code != http.StatusOK {
		t.Errorf("/healthz after the bad input: %d %s", code, body)
	}
	if errs := load.stop(); len(errs) > 0 {
		t.Errorf("the background client failed: %v", errs)
	}
}

// randomFrames sends thousands of seeded random frames from several connections, some logged in,
// plus random byte streams, and checks that each request is answered exactly once with a reply
// or an Error of a code docs/protocol.md allows, and that violations end in Kick.
func randomFrames(t *testing.T, s *server) {
	// 14 (LogoutReq) is left out: it ends the connection. 18 is unassigned.
	ids := []uint16{0, 1, 2, 3, 4, 10, 11, 12, 13, 15, 16, 17, 18, 999, 1001, 1002, 2004, 2101, 2102, 3001, 3003, 3005, 3010, 9999, 65535}
	var wg sync.WaitGroup
	for i, transport := range []string{"tcp", "tcp", "tcp", "ws", "ws"} {
		r := dialRaw(t, s, transport)
		r.login(fmt.Sprintf("fuzz-%d", i), 1)
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(i), 42))
			want := map[uint32]bool{} // seq → must be answered (false: may be answered)
			seq := uint32(1)
			for range 800 {
				f := frame{id: ids[rng.IntN(len(ids))]}
				if rng.IntN(10) == 0 {
					f.id = uint16(rng.Uint32())
				}
				if n := rng.IntN(40); n > 20 {
					f.payload = make([]byte, n-20)
					for j := range f.payload {
						f.payload[j] = byte(rng.Uint32())
					}
				}
				switch rng.IntN(20) {
				case 0: // one-way: no reply
				case 1: // a REPLY from the client: docs/protocol.md defines no answer
					seq++
					f.seq, f.flags = seq, flagReply
					want[seq] = false
				default:
					seq++
					f.seq = seq
					want[seq] = true
				}
				b := f.stream()
				if transport == "ws" {
					b = f.bare()
				}
				if err := r.writeBytes(b); err != nil {
					t.Errorf("connection %d: writing %v: %v", i, f, err)
					return
				}
			}
			checkAnswers(t, s, r, want)
		}()
	}
	// Random bytes on TCP, random messages on WebSocket: each connection ends with a Kick.
	for i := range 4 {
		transport := []string{"tcp", "ws"}[i%2]
		r := dialRaw(t, s, transport)
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(i), 7))
			for range 200 {
				b := make([]byte, rng.IntN(64))
				for j := range b {
					b[j] = byte(rng.Uint32())
				}
				if r.writeBytes(b) != nil {
					break // closed by the server
				}
			}
			var kick *protocol.Kick
			for f := range r.frames {
				if f.id == protocol.MsgKick {
					kick = decodeKick(t, f)
				}
			}
			if kick == nil || (protocol.Code(kick.Code) != protocol.MalformedFrame && protocol.Code(kick.Code) != protocol.FrameTooLarge) {
				t.Errorf("random bytes on %s: the connection ended (%v) with Kick %v, want MALFORMED_FRAME or FRAME_TOO_LARGE", transport, r.err, kick)
			}
		}()
	}
	wg.Wait()
}

// allowedCodes are the Error codes a logged-in client's well-framed request may get without rate
// limits: everything but the codes that only come in Kick. RATE_LIMITED is allowed: a client
// firing requests without waiting meets gate.max_in_flight.
var allowedCodes = []protocol.Code{
	protocol.UnknownMessage, protocol.DecodeFailed, protocol.Unauthenticated, protocol.Forbidden, protocol.RateLimited,
	protocol.Unavailable, protocol.Timeout, protocol.Internal, protocol.ResumeFailed, protocol.BadRequest,
}

// checkAnswers reads replies until every seq that must be answered is, and checks them. It runs
// on its own goroutine: it reports with t.Errorf.
func checkAnswers(t *testing.T, s *server, r *rawConn, want map[uint32]bool) {
	pending := 0
	for _, must := range want {
		if must {
			pending++
		}
	}
	codes := map[string]int{}
	deadline := time.After(30 * time.Second)
	for pending > 0 {
		var f frame
		var ok bool
		select {
		case f, ok = <-r.frames:
		case <-deadline:
			t.Errorf("%d requests unanswered after 30s", pending)
			return
		}
		if !ok {
			t.Errorf("the connection ended (%v) with %d requests unanswered", r.err, pending)
			return
		}
		if f.flags == 0 {
			if f.id == protocol.MsgKick {
				t.Errorf("kicked: %v", decodeKick(t, f))
				return
			}
			continue // a push
		}
		must, expected := want[f.seq]
		if f.flags != flagReply || !expected {
			t.Errorf("unexpected %v %s", f, describeError(f))
			continue
		}
		delete(want, f.seq)
		if must {
			pending--
		}
		if f.id == protocol.MsgError {
			var e protocol.Error
			if err := proto.Unmarshal(f.payload, &e); err != nil {
				t.Errorf("undecodable Error: %v", err)
				continue
			}
			code := protocol.Code(e.Code)
			codes[code.String()]++
			if !slices.Contains(allowedCodes, code) && code < protocol.FirstAppCode {
				t.Errorf("reply to seq %d: Error %s %q", f.seq, code, e.Message)
			}
			continue
		}
		codes["OK"]++
		if m := s.msgs.Schema.ByID(f.id); m == nil {
			t.Errorf("reply to seq %d with undeclared msg_id %d", f.seq, f.id)
		}
	}
	t.Logf("answers: %v", codes)
}

// TestMaxFrameConfig sets gate.max_frame to 1 KiB: a frame of exactly that length is served, one
// byte more is FRAME_TOO_LARGE, on both transports.
func TestMaxFrameConfig(t *testing.T) {
	t.Parallel()
	s := startServer(t, options{config: "gate:\n  max_frame: 1024\n"})
	echoID := s.msgs.Schema.ByName("EchoReq").ID
	for _, transport := range []string{"tcp", "ws"} {
		t.Run(transport, func(t *testing.T) {
			r := dialRaw(t, s, transport)
			r.login("max-frame-"+transport, 1)
			// EchoReq{body} with length 1024: 8 header bytes, tag, 2-byte length, body.
			body := bytes.Repeat([]byte{'m'}, 1024-8-3)
			payload := append([]byte{0x0a}, binary.AppendUvarint(nil, uint64(len(body)))...)
			payload = append(payload, body...)
			r.send(frame{id: echoID, seq: 2, payload: payload})
			if f := r.reply(2, 5*time.Second); !bytes.Equal(f.payload, payload) {
				t.Fatalf("a frame of gate.max_frame bytes: %v %s", f, describeError(f))
			}
			r.send(frame{id: echoID, seq: 3, payload: append(payload, 0)})
			r.expectKickAndClose(protocol.FrameTooLarge, 5*time.Second)
		})
	}
}
