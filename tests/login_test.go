package tests

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/moonforge/moonforge/engine/client"
	"github.com/moonforge/moonforge/engine/protocol"
)

// TestLoginAndRequests covers every login method, a request/reply and chat pushes, over TCP and
// over WebSocket.
func TestLoginAndRequests(t *testing.T) {
	t.Parallel()
	for _, transport := range []string{"tcp", "ws"} {
		t.Run(transport, func(t *testing.T) {
			t.Parallel()
			s := startServer(t, options{})
			t.Run("guest", func(t *testing.T) {
				c1 := s.dial(t, transport)
				first := guest(t, c1, "device-"+transport)
				if !first.Created {
					t.Errorf("first guest login: created=false, want true")
				}
				if first.ExpiresAtMs <= time.Now().UnixMilli() {
					t.Errorf("token expires at %d, already past", first.ExpiresAtMs)
				}
				_ = c1.Close()
				c2 := s.dial(t, transport)
				again := guest(t, c2, "device-"+transport)
				if again.Created {
					t.Errorf("second guest login: created=true, want false")
				}
				if again.PlayerId != first.PlayerId {
					t.Errorf("same device, different players: %q then %q", first.PlayerId, again.PlayerId)
				}
				if again.SessionId == first.SessionId {
					t.Errorf("a new login reused session %q", first.SessionId)
				}
				other := guest(t, s.dial(t, transport), "other-device-"+transport)
				if other.PlayerId == first.PlayerId {
					t.Errorf("two devices got the same player %q", first.PlayerId)
				}
			})
			t.Run("password", func(t *testing.T) {
				ctx := timeout(t, 10*time.Second)
				account := "pat-" + transport
				reg, err := s.dial(t, transport).Login(ctx, "password", account, "correct horse", map[string]string{"register": "1"})
				if err != nil {
					t.Fatalf("register: %v", err)
				}
				if !reg.Created || reg.PlayerId == "" {
					t.Errorf("register: %+v, want created with a player id", reg)
				}
				ack, err := s.dial(t, transport).Login(ctx, "password", account, "correct horse", nil)
				if err != nil {
					t.Fatalf("login: %v", err)
				}
				if ack.PlayerId != reg.PlayerId || ack.Created {
					t.Errorf("login: player %q created=%v, want %q created=false", ack.PlayerId, ack.Created, reg.PlayerId)
				}
				c := s.dial(t, transport)
				_, err = c.Login(ctx, "password", account, "wrong horse!", nil)
				expectCode(t, "wrong password", err, protocol.Unauthenticated)
				// The connection stays, and a correct login on it works.
				if ack, err := c.Login(ctx, "password", account, "correct horse", nil); err != nil || ack.PlayerId != reg.PlayerId {
					t.Errorf("login after a wrong password on the same connection: %v %v", ack, err)
				}
				_, err = s.dial(t, transport).Login(ctx, "password", "nobody-"+transport, "correct horse", nil)
				expectCode(t, "unknown account", err, protocol.Unauthenticated)
			})
			t.Run("token", func(t *testing.T) {
				ctx := timeout(t, 10*time.Second)
				first := guest(t, s.dial(t, transport), "token-device-"+transport)
				ack, err := s.dial(t, transport).Login(ctx, "token", "", first.Token, nil)
				if err != nil {
					t.Fatalf("token login: %v", err)
				}
				if ack.PlayerId != first.PlayerId {
					t.Errorf("token login: player %q, want %q", ack.PlayerId, first.PlayerId)
				}
				if ack.SessionId == first.SessionId {
					t.Errorf("token login reused session %q; docs/protocol.md: a new session", ack.SessionId)
				}
				_, err = s.dial(t, transport).Login(ctx, "token", "", first.Token+"x", nil)
				expectCode(t, "tampered token", err, protocol.Unauthenticated)
			})
			t.Run("custom", func(t *testing.T) {
				ctx := timeout(t, 10*time.Second)
				alice, err := s.dial(t, transport).Login(ctx, "dev_ticket", "", "dev:alice-"+transport, nil)
				if err != nil {
					t.Fatalf("dev_ticket: %v", err)
				}
				if alice.PlayerId == "" || !alice.Created {
					t.Errorf("dev_ticket: %+v, want a new player", alice)
				}
				again, err := s.dial(t, transport).Login(ctx, "dev_ticket", "", "dev:alice-"+transport, nil)
				if err != nil {
					t.Fatalf("dev_ticket again: %v", err)
				}
				if again.PlayerId != alice.PlayerId || again.Created {
					t.Errorf("dev_ticket again: %+v, want player %q not created", again, alice.PlayerId)
				}
				_, err = s.dial(t, transport).Login(ctx, "dev_ticket", "", "forged", nil)
				expectCode(t, "bad ticket", err, protocol.Unauthenticated)
				_, err = s.dial(t, transport).Login(ctx, "carrier_pigeon", "x", "y", nil)
				expectCode(t, "unknown method", err, protocol.BadRequest)
			})
			t.Run("echo", func(t *testing.T) {
				c := s.dial(t, transport)
				guest(t, c, "echo-"+transport)
				for _, n := range []int64{0, 1, -7, 1 << 40} {
					got, err := s.echo(timeout(t, 5*time.Second), c, n)
					if err != nil || got != n {
						t.Fatalf("echo %d: got %d, %v", n, got, err)
					}
				}
				big := strings.Repeat("x", 100<<10)
				m := s.mustCall(t, c, "EchoReq", fmt.Sprintf(`{"body": %q}`, b64(big)), "EchoAck")
				if !bytes.Equal(field(m, "body").Bytes(), []byte(big)) {
					t.Errorf("a 100 KiB body did not come back unchanged")
				}
			})
		})
	}
}

// TestChatPushes checks that a chat message reaches another client as a push, and that each
// session numbers its pushes 1, 2, 3...
func TestChatPushes(t *testing.T) {
	t.Parallel()
	for _, transport := range []string{"tcp", "ws"} {
		t.Run(transport, func(t *testing.T) {
			t.Parallel()
			s := startServer(t, options{prepare: busyChat})
			sender := s.dial(t, "tcp")
			senderAck := guest(t, sender, "sender")
			listener := s.dial(t, transport)
			guest(t, listener, "listener")
			const n = 5
			for i := range n {
				text := fmt.Sprintf("hello %d", i)
				ack := s.mustCall(t, sender, "ChatSendReq", fmt.Sprintf(`{"text": %q}`, text), "ChatSendAck")
				if got := field(ack, "index").Uint(); got != uint64(i+1) {
					t.Errorf("ChatSendAck.index = %d, want %d", got, i+1)
				}
			}
			for _, c := range []*client.Client{listener, sender} {
				for i := range n {
					p := nextPush(t, c, 5*time.Second)
					if p.Seq != uint32(i+1) {
						t.Errorf("push %d has seq %d, want %d", i, p.Seq, i+1)
					}
					m, err := s.msgs.Message(p.MsgID, p.Payload)
					if err != nil {
						t.Fatalf("push %d: %v", i, err)
					}
					if name := m.Descriptor().Name(); name != "ChatMessage" {
						t.Fatalf("push %d is %s, want ChatMessage", i, name)
					}
					if got, want := field(m, "text").String(), fmt.Sprintf("hello %d", i); got != want {
						t.Errorf("push %d text %q, want %q", i, got, want)
					}
					if got := field(m, "from").String(); got != senderAck.PlayerId {
						t.Errorf("push %d from %q, want %q", i, got, senderAck.PlayerId)
					}
					if field(m, "index").Uint() != uint64(i+1) || field(m, "sent_at_ms").Int() == 0 {
						t.Errorf("push %d: index %d sent_at_ms %d", i, field(m, "index").Uint(), field(m, "sent_at_ms").Int())
					}
				}
			}
			// A new session of the same player counts its pushes from 1 again.
			relogged := s.dial(t, transport)
			if _, err := relogged.Login(timeout(t, 5*time.Second), "token", "", senderAck.Token, nil); err != nil {
				t.Fatal(err)
			}
			s.mustCall(t, relogged, "ChatSendReq", `{"text": "again"}`, "ChatSendAck")
			if p := nextPush(t, relogged, 5*time.Second); p.Seq != 1 {
				t.Errorf("first push of a new session: seq %d, want 1", p.Seq)
			}
			if p := nextPush(t, listener, 5*time.Second); p.Seq != n+1 {
				t.Errorf("push after %d: seq %d", n, p.Seq)
			}
			_, err := s.call(timeout(t, 5*time.Second), relogged, "ChatSendReq", `{"text": ""}`)
			expectCode(t, "empty chat", err, 1001)
			_, err = s.call(timeout(t, 5*time.Second), relogged, "ChatSendReq", fmt.Sprintf(`{"text": %q}`, strings.Repeat("y", 201)))
			expectCode(t, "long chat", err, 1002)
		})
	}
}

// workedExample returns the frames of docs/protocol.md's worked example, from the hex bytes that
// start each line of the section's code blocks: the guest login, the EchoReq and its EchoAck.
func workedExample(t testing.TB) (login, echo, echoReply []byte) {
	t.Helper()
	doc, err := os.ReadFile(filepath.Join(built.root, "docs", "protocol.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(doc), "\n## Worked example\n")
	if !ok {
		t.Fatal("docs/protocol.md has no Worked example section")
	}
	section, _, _ = strings.Cut(section, "\n## ")
	var blocks [][]byte
	for i, part := range strings.Split(section, "```") {
		if i%2 == 0 {
			continue // text between code blocks
		}
		var b []byte
		for _, line := range strings.Split(part, "\n") {
			for _, tok := range strings.Fields(line) {
				v, err := hex.DecodeString(tok)
				if err != nil || len(tok) != 2 {
					break
				}
				b = append(b, v...)
			}
		}
		blocks = append(blocks, b)
	}
	if len(blocks) != 3 {
		t.Fatalf("the Worked example has %d code blocks, want 3 (login, EchoReq, EchoAck)", len(blocks))
	}
	for _, b := range blocks {
		if len(b) < 12 || int(binary.BigEndian.Uint32(b)) != len(b)-4 {
			t.Fatalf("example frame % x: its length field does not count the bytes after it", b)
		}
	}
	return blocks[0], blocks[1], blocks[2]
}

// TestWorkedExample writes docs/protocol.md's worked example on a raw TCP connection (with the
// length field) and as WebSocket messages (without), and checks the LoginAck's header and the
// EchoAck byte for byte.
func TestWorkedExample(t *testing.T) {
	t.Parallel()
	s := startServer(t, options{})
	login, echo, echoReply := workedExample(t)
	if len(login) != 4+34 {
		t.Fatalf("the login example is %d bytes, want 4+34", len(login))
	}

	t.Run("tcp", func(t *testing.T) {
		nc, err := net.DialTimeout("tcp", s.tcp, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
		_ = nc.SetDeadline(time.Now().Add(10 * time.Second))
		read := func() []byte {
			var head [12]byte
			if _, err := io.ReadFull(nc, head[:]); err != nil {
				t.Fatalf("reading a reply header: %v", err)
			}
			length := binary.BigEndian.Uint32(head[:4])
			if length < 8 || length > 1<<20 {
				t.Fatalf("reply length %d", length)
			}
			frame := make([]byte, 4+length)
			copy(frame, head[:])
			if _, err := io.ReadFull(nc, frame[12:]); err != nil {
				t.Fatal(err)
			}
			return frame
		}
		if _, err := nc.Write(login); err != nil {
			t.Fatal(err)
		}
		reply := read()
		if want := []byte{0x00, 0x0b, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01}; !bytes.Equal(reply[4:12], want) {
			t.Fatalf("reply header % x, want % x (msg_id 11, flags 0x0001, seq 1)", reply[4:12], want)
		}
		checkExampleAck(t, reply[12:])
		if _, err := nc.Write(echo); err != nil {
			t.Fatal(err)
		}
		if got := read(); !bytes.Equal(got, echoReply) {
			t.Fatalf("EchoAck % x, want % x", got, echoReply)
		}
	})
	t.Run("ws", func(t *testing.T) {
		r := dialRaw(t, s, "ws")
		if err := r.writeBytes(login[4:]); err != nil {
			t.Fatal(err)
		}
		f := r.nextFrame(10 * time.Second)
		if f.id != protocol.MsgLoginAck || f.flags != flagReply || f.seq != 1 {
			t.Fatalf("reply %v, want msg_id 11, flags 0x0001, seq 1", f)
		}
		checkExampleAck(t, f.payload)
		if err := r.writeBytes(echo[4:]); err != nil {
			t.Fatal(err)
		}
		f = r.nextFrame(10 * time.Second)
		if got := f.stream(); !bytes.Equal(got, echoReply) {
			t.Fatalf("EchoAck % x, want % x", got, echoReply)
		}
	})
}

func checkExampleAck(t *testing.T, payload []byte) {
	t.Helper()
	var ack protocol.LoginAck
	if err := proto.Unmarshal(payload, &ack); err != nil {
		t.Fatalf("LoginAck: %v", err)
	}
	if ack.PlayerId == "" || ack.Token == "" || ack.SessionId == "" {
		t.Errorf("LoginAck incomplete: %v", &ack)
	}
}

// TestLoginRules checks the login options of the configuration and the refusals of bad accounts.
func TestLoginRules(t *testing.T) {
	t.Parallel()
	s := startServer(t, options{config: "gate:\n  disabled_login_methods: [dev_ticket]\n  max_unauthenticated: 1\nauth:\n  min_password_len: 10\n"})
	ctx := timeout(t, 30*time.Second)

	_, err := s.dial(t, "tcp").Login(ctx, "dev_ticket", "", "dev:bob", nil)
	expectCode(t, "disabled method", err, protocol.BadRequest)

	c := s.dial(t, "tcp")
	_, err = c.Login(ctx, "password", "shorty", "123456789", map[string]string{"register": "1"})
	expectCode(t, "password below min_password_len", err, protocol.BadRequest)
	if _, err := c.Login(ctx, "password", "shorty", "1234567890", map[string]string{"register": "1"}); err != nil {
		t.Fatalf("register with min_password_len characters: %v", err)
	}
	_, err = c.Login(ctx, "password", "shorty", "1234567890", nil)
	expectCode(t, "a second login on the same connection", err, protocol.BadRequest)
	s.mustEcho(t, c, 1, 1)
	_, err = s.dial(t, "tcp").Login(ctx, "password", "shorty", "0987654321", map[string]string{"register": "1"})
	expectCode(t, "register an existing account", err, protocol.BadRequest)
	_, err = s.dial(t, "tcp").Login(ctx, "guest", "", "", nil)
	expectCode(t, "guest without a device id", err, protocol.BadRequest)

	// Failed logins are not requests before login: even with max_unauthenticated 1 the client
	// may try again.
	c = s.dial(t, "tcp")
	for range 3 {
		_, err = c.Login(ctx, "password", "shorty", "wrong password", nil)
		expectCode(t, "wrong password", err, protocol.Unauthenticated)
	}
	if _, err := c.Login(ctx, "password", "shorty", "1234567890", nil); err != nil {
		t.Errorf("login after three wrong passwords: %v", err)
	}

	r := dialRaw(t, s, "tcp")
	r.send(frame{id: s.msgs.Schema.ByName("EchoReq").ID, seq: 1})
	r.expectError(1, protocol.Unauthenticated)
	r.expectKickAndClose(protocol.Unauthenticated, 5*time.Second)
}

// TestOneWayFrameworkMessages sends Ping, LoginReq and ResumeReq with seq 0: docs/protocol.md says a
// one-way message gets no reply.
func TestOneWayFrameworkMessages(t *testing.T) {
	t.Parallel()
	s := startServer(t, options{})
	for _, transport := range []string{"tcp", "ws"} {
		t.Run(transport, func(t *testing.T) {
			r := dialRaw(t, s, transport)
			r.sendMsg(protocol.MsgPing, 0, &protocol.Ping{ClientTimeMs: 1})
			r.sendMsg(protocol.MsgResumeReq, 0, &protocol.ResumeReq{Token: "bad"})
			r.sendMsg(protocol.MsgLoginReq, 0, &protocol.LoginReq{Method: "guest", Account: deviceID("one-way-" + transport)})
			r.sendMsg(protocol.MsgPing, 7, &protocol.Ping{ClientTimeMs: 2})
			if f := r.nextFrame(5 * time.Second); f.seq != 7 || f.id != protocol.MsgPong {
				t.Errorf("first frame after three one-way messages: %v, want the Pong to seq 7", f)
			}
		})
	}
}

// TestConcurrentLogins logs the same new guest device, and registers the same new password
// account, from many connections at once: one player results, created exactly once.
func TestConcurrentLogins(t *testing.T) {
	t.Parallel()
	s := startServer(t, options{})
	const n = 12
	type result struct {
		ack *protocol.LoginAck
		err error
	}
	for _, tc := range []struct {
		method, account, secret string
		extra                   map[string]string
	}{
		{"guest", deviceID("stampede"), "", nil},
		{"password", "stampede", "a good password", map[string]string{"register": "1"}},
		{"dev_ticket", "", "dev:stampede", nil},
	} {
		t.Run(tc.method, func(t *testing.T) {
			conns := make([]*client.Client, n)
			for i := range conns {
				conns[i] = s.dial(t, []string{"tcp", "ws"}[i%2])
			}
			results := make(chan result, n)
			start := make(chan struct{})
			for _, c := range conns {
				go func() {
					<-start
					ack, err := c.Login(timeout(t, 10*time.Second), tc.method, tc.account, tc.secret, tc.extra)
					results <- result{ack, err}
				}()
			}
			close(start)
			players := map[string]int{}
			created := 0
			for range n {
				r := <-results
				switch {
				case r.err == nil:
					players[r.ack.PlayerId]++
					if r.ack.Created {
						created++
					}
				case tc.method == "password" && codeOf(r.err) == protocol.BadRequest:
					// The account already exists: every registration but one is refused.
				default:
					t.Errorf("login: %v", r.err)
				}
			}
			if len(players) != 1 || created != 1 {
				t.Errorf("%d concurrent logins: players %v, %d created; want one player created once", n, players, created)
			}
		})
	}
}

// TestHalfClosedConnection sends requests and then closes only its sending side (TCP FIN, as
// `nc -N` does): docs/protocol.md promises exactly one reply to each request, so the replies must still
// arrive before the server closes.
func TestHalfClosedConnection(t *testing.T) {
	t.Parallel()
	s := startServer(t, options{})
	example, _, _ := workedExample(t)
	echo := frame{id: s.msgs.Schema.ByName("EchoReq").ID, seq: 2, payload: []byte{0x10, 0x07}}.stream()
	for i := range 10 {
		nc, err := net.DialTimeout("tcp", s.tcp, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		_ = nc.SetDeadline(time.Now().Add(10 * time.Second))
		if _, err := nc.Write(append(append([]byte{}, example...), echo...)); err != nil {
			t.Fatal(err)
		}
		_ = nc.(*net.TCPConn).CloseWrite()
		got, err := io.ReadAll(nc)
		_ = nc.Close()
		if err != nil {
			t.Fatalf("attempt %d: reading: %v", i, err)
		}
		var seqs []uint32
		for len(got) >= 12 {
			n := int(uint32(got[0])<<24 | uint32(got[1])<<16 | uint32(got[2])<<8 | uint32(got[3]))
			if n < 8 || len(got) < 4+n {
				break
			}
			if got[7]&1 != 0 { // flags REPLY: a reply
				seqs = append(seqs, uint32(got[8])<<24|uint32(got[9])<<16|uint32(got[10])<<8|uint32(got[11]))
			}
			got = got[4+n:]
		}
		if len(seqs) != 2 || seqs[0] != 1 || seqs[1] != 2 {
			t.Fatalf("attempt %d: replies to seqs %v before the server closed, want the LoginAck (1) and the EchoAck (2)", i, seqs)
		}
	}
}
