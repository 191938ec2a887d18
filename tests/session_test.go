package tests

import (
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/moonforge/moonforge/engine/client"
	"github.com/moonforge/moonforge/engine/protocol"
)

// TestDuplicateLogin logs the same player in on a second connection: the first is kicked with
// KICKED_DUPLICATE_LOGIN and closed; the second is served.
func TestDuplicateLogin(t *testing.T) {
	t.Parallel()
	s := startServer(t, options{})
	for _, transport := range []string{"tcp", "ws"} {
		t.Run(transport, func(t *testing.T) {
			device := "twin-" + transport
			r := dialRaw(t, s, transport)
			first := r.login(device, 1)
			c := s.dial(t, transport)
			second := guest(t, c, device)
			if second.PlayerId != first.PlayerId {
				t.Fatalf("same device, players %q and %q", first.PlayerId, second.PlayerId)
			}
			r.expectKickAndClose(protocol.KickedDuplicateLogin, 5*time.Second)
			s.mustEcho(t, c, 1, 1)

			// A token login of the same player is a second login too.
			c2 := s.dial(t, "tcp")
			third, err := c2.Login(timeout(t, 5*time.Second), "token", "", second.Token, nil)
			if err != nil {
				t.Fatalf("token login: %v", err)
			}
			if k := waitKick(t, c, 5*time.Second); k == nil || protocol.Code(k.Code) != protocol.KickedDuplicateLogin {
				t.Errorf("the older connection ended with Kick %v, want KICKED_DUPLICATE_LOGIN", k)
			}
			s.mustEcho(t, c2, 2, 2)

			// A resume of the session bound to c2 moves it and kicks c2.
			r3 := dialRaw(t, s, transport)
			ack := resumeRaw(t, r3, third.Token, 0)
			if ack.PlayerId != second.PlayerId {
				t.Errorf("resume: player %q", ack.PlayerId)
			}
			if k := waitKick(t, c2, 5*time.Second); k == nil || protocol.Code(k.Code) != protocol.KickedDuplicateLogin {
				t.Errorf("resuming elsewhere ended the bound connection with Kick %v, want KICKED_DUPLICATE_LOGIN", k)
			}
		})
	}
}

// TestHeartbeat sets a 200 ms heartbeat: silent connections are kicked with IDLE_TIMEOUT after
// 3 intervals, a client that pings every 1.5 intervals stays, and the idle-kicked session can be
// resumed.
func TestHeartbeat(t *testing.T) {
	t.Parallel()
	s := startServer(t, options{config: "gate:\n  heartbeat: 200ms\n"})
	pinger := s.dialConfig(t, client.Config{Transport: "tcp", Heartbeat: 300 * time.Millisecond})
	guest(t, pinger, "pinger")

	for _, transport := range []string{"tcp", "ws"} {
		t.Run("silent/"+transport, func(t *testing.T) {
			r := dialRaw(t, s, transport)
			ack := r.login("silent-"+transport, 1)
			start := time.Now()
			r.expectKickAndClose(protocol.IdleTimeout, 5*time.Second)
			idle := time.Since(start)
			t.Logf("kicked %s after the last frame", idle)
			if idle < 400*time.Millisecond {
				t.Errorf("kicked after %s of silence, before 3 heartbeat intervals (600ms)", idle)
			}
			r2 := dialRaw(t, s, transport)
			if got := resumeRaw(t, r2, ack.Token, 0); got.PlayerId != ack.PlayerId {
				t.Errorf("resume after IDLE_TIMEOUT: player %q, want %q", got.PlayerId, ack.PlayerId)
			}
			// The resumed connection stays while it pings.
			for i := range 8 {
				time.Sleep(100 * time.Millisecond)
				r2.sendMsg(protocol.MsgPing, uint32(10+i), &protocol.Ping{})
				if f := r2.reply(uint32(10+i), 5*time.Second); f.id != protocol.MsgPong {
					t.Fatalf("Ping: %v", f)
				}
			}
		})
	}
	t.Run("silent before login", func(t *testing.T) {
		r := dialRaw(t, s, "tcp")
		r.expectKickAndClose(protocol.IdleTimeout, 5*time.Second)
	})
	select {
	case <-pinger.Done():
		t.Fatalf("the client that pings every 300ms was closed: %v %v", pinger.Kicked(), pinger.Err())
	default:
	}
	s.mustEcho(t, pinger, 7, 7)
}

// TestRateLimit sends a burst over the configured rate: the excess gets RATE_LIMITED with
// retry_after_ms, and after that wait requests are served again.
func TestRateLimit(t *testing.T) {
	t.Parallel()
	s := startServer(t, options{config: "gate:\n  rate_limit: 10\n  rate_burst: 5\n"})
	r := dialRaw(t, s, "tcp")
	r.login("hasty", 1)
	echoID := s.msgs.Schema.ByName("EchoReq").ID
	const n = 30
	for seq := uint32(2); seq < 2+n; seq++ {
		r.send(frame{id: echoID, seq: seq})
	}
	ok, limited := 0, 0
	var retry uint32
	for range n {
		f := r.nextNonPush(5 * time.Second)
		switch f.id {
		case protocol.MsgError:
			var e protocol.Error
			if err := proto.Unmarshal(f.payload, &e); err != nil || protocol.Code(e.Code) != protocol.RateLimited {
				t.Fatalf("seq %d: %s", f.seq, describeError(f))
			}
			if e.RetryAfterMs == 0 {
				t.Errorf("seq %d: RATE_LIMITED with retry_after_ms 0", f.seq)
			}
			retry = max(retry, e.RetryAfterMs)
			limited++
		case s.msgs.Schema.ByName("EchoAck").ID:
			ok++
		default:
			t.Fatalf("unexpected %v", f)
		}
	}
	t.Logf("%d answered, %d RATE_LIMITED, retry after up to %d ms", ok, limited, retry)
	if ok < 5 || limited < n-10 {
		t.Errorf("%d of %d requests answered with a rate of 10/s and a burst of 5", ok, n)
	}
	time.Sleep(time.Duration(retry) * time.Millisecond)
	r.send(frame{id: echoID, seq: 100})
	if f := r.reply(100, 5*time.Second); f.id == protocol.MsgError {
		t.Errorf("after retry_after_ms: %s", describeError(f))
	}
}

// TestRateLimitBySize: a request counts against gate.rate_limit as 1 plus 1 per KiB of its
// payload, and a large one the rate cannot take yet waits until it can, instead of being refused
// (over TCP in the socket, over WebSocket read, with the next message in the socket): at 10/s with
// a burst of 20, two 16 KiB requests (17 each) are both served, the second about 1.4 s after the
// first, and a small one right behind them finds the bucket empty.
func TestRateLimitBySize(t *testing.T) {
	t.Parallel()
	s := startServer(t, options{config: "gate:\n  rate_limit: 10\n  rate_burst: 20\n"})
	for _, transport := range []string{"tcp", "ws"} {
		t.Run(transport, func(t *testing.T) {
			t.Parallel()
			rateLimitBySize(t, s, transport)
		})
	}
}

func rateLimitBySize(t *testing.T, s *server, transport string) {
	r := dialRaw(t, s, transport)
	r.login("bulky-"+transport, 1)
	echoID := s.msgs.Schema.ByName("EchoReq").ID
	big := protowire.AppendBytes(protowire.AppendTag(nil, 1, protowire.BytesType), make([]byte, 16<<10))
	r.send(frame{id: echoID, seq: 2, payload: big})
	r.send(frame{id: echoID, seq: 3, payload: big})
	r.send(frame{id: echoID, seq: 4})
	got := map[uint32]frame{}
	at := map[uint32]time.Time{}
	for range 3 {
		f := r.nextNonPush(5 * time.Second)
		got[f.seq], at[f.seq] = f, time.Now()
	}
	for _, seq := range []uint32{2, 3} {
		if f := got[seq]; f.id == protocol.MsgError {
			t.Errorf("16 KiB request %d: %s", seq, describeError(f))
		}
	}
	if wait := at[3].Sub(at[2]); wait < time.Second {
		t.Errorf("the second 16 KiB request was answered %s after the first, want it held until the rate takes it (about 1.4 s)", wait)
	}
	if f := got[4]; f.id != protocol.MsgError {
		t.Errorf("small request right after the bucket was spent: %v, want RATE_LIMITED", f)
	}
}

// TestRefusalsPauseReading: a client that ignores RATE_LIMITED's retry hint is read more slowly.
// From the 4th refusal in a row the server waits for the hint before it reads the next frame, so
// nine requests at 1/s with a burst of 1 take over a second to be answered, and the pauses let a
// second one through.
func TestRefusalsPauseReading(t *testing.T) {
	t.Parallel()
	s := startServer(t, options{config: "gate:\n  rate_limit: 1\n  rate_burst: 1\n"})
	r := dialRaw(t, s, "tcp")
	r.login("ignores-hints", 1)
	echoID := s.msgs.Schema.ByName("EchoReq").ID
	start := time.Now()
	const n = 9
	for seq := uint32(2); seq < 2+n; seq++ {
		r.send(frame{id: echoID, seq: seq})
	}
	answered := 0
	for range n {
		if f := r.nextNonPush(10 * time.Second); f.id != protocol.MsgError {
			answered++
		}
	}
	if took := time.Since(start); took < 900*time.Millisecond || answered < 2 {
		t.Errorf("%d requests over the rate answered in %s, %d served: want the reader paused (over 0.9 s, at least 2 served)", n, took, answered)
	}
}
