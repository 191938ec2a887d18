package tests

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/moonforge/moonforge/engine/client"
	"github.com/moonforge/moonforge/engine/protocol"
)

// pushLog checks a session's pushes as they arrive, across connections: seq goes up by one with
// no gap and no duplicate, each arena's ArenaState.tick goes up by one, and ChatMessage.index
// goes up by one (every chat is pushed to every session).
type pushLog struct {
	t      testing.TB
	s      *server
	seq    uint32
	ticks  map[string]uint64
	chat   uint64
	byName map[string]int
}

func newPushLog(t testing.TB, s *server) *pushLog {
	return &pushLog{t: t, s: s, ticks: map[string]uint64{}, byName: map[string]int{}}
}

func (l *pushLog) add(seq uint32, id uint16, payload []byte) {
	l.t.Helper()
	if seq != l.seq+1 {
		l.t.Errorf("push seq %d after %d: a gap or a duplicate", seq, l.seq)
	}
	l.seq = seq
	m, err := l.s.msgs.Message(id, payload)
	if err != nil {
		l.t.Errorf("push %d: %v", seq, err)
		return
	}
	name := string(m.Descriptor().Name())
	l.byName[name]++
	switch name {
	case "ArenaState":
		room, tick := field(m, "room_id").String(), field(m, "tick").Uint()
		if prev, ok := l.ticks[room]; ok && tick != prev+1 {
			l.t.Errorf("push %d: ArenaState of %s tick %d after tick %d", seq, room, tick, prev)
		}
		l.ticks[room] = tick
	case "ChatMessage":
		index := field(m, "index").Uint()
		if l.chat != 0 && index != l.chat+1 {
			l.t.Errorf("push %d: ChatMessage index %d after %d", seq, index, l.chat)
		}
		l.chat = index
	}
}

// collect adds the pushes a client receives during d.
func (l *pushLog) collect(c *client.Client, d time.Duration) {
	l.t.Helper()
	deadline := time.After(d)
	for {
		select {
		case p := <-c.Pushes():
			if p.MsgID == protocol.MsgKick {
				l.t.Fatalf("kicked: %v", c.Kicked())
			}
			l.add(p.Seq, p.MsgID, p.Payload)
		case <-deadline:
			return
		}
	}
}

// collectRaw adds the pushes a raw connection receives during d; a reply or Kick fails the test.
func (l *pushLog) collectRaw(r *rawConn, d time.Duration) {
	l.t.Helper()
	deadline := time.After(d)
	for {
		select {
		case f, ok := <-r.frames:
			if !ok {
				l.t.Fatalf("the connection ended: %v", r.err)
			}
			if f.flags != 0 || f.id == protocol.MsgKick {
				l.t.Fatalf("want only pushes, got %v %s", f, describeError(f))
			}
			l.add(f.seq, f.id, f.payload)
		case <-deadline:
			return
		}
	}
}

// chatter keeps a client sending chat messages until stopped, 40 a second: its server needs
// busyChat.
func chatter(t testing.TB, s *server, device string) (stop func()) {
	c := s.dial(t, "tcp")
	guest(t, c, device)
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-done:
				return
			case <-time.After(25 * time.Millisecond):
			}
			if _, err := s.call(timeout(t, 5*time.Second), c, "ChatSendReq", fmt.Sprintf(`{"text": "chatter %d"}`, i)); err != nil {
				t.Errorf("chatter: %v", err)
				return
			}
		}
	}()
	var once sync.Once
	stop = func() { once.Do(func() { close(done); wg.Wait() }) }
	t.Cleanup(stop)
	return stop
}

// resumeRaw sends ResumeReq on a raw connection and checks that ResumeAck is the first frame.
func resumeRaw(t testing.TB, r *rawConn, token string, last uint32) *protocol.ResumeAck {
	t.Helper()
	r.sendMsg(protocol.MsgResumeReq, 1, &protocol.ResumeReq{Token: token, LastPushSeq: last})
	f := r.nextFrame(10 * time.Second)
	if f.id != protocol.MsgResumeAck || f.flags != flagReply || f.seq != 1 {
		t.Fatalf("first frame after ResumeReq: %v %s, want the ResumeAck reply to seq 1", f, describeError(f))
	}
	var ack protocol.ResumeAck
	if err := proto.Unmarshal(f.payload, &ack); err != nil {
		t.Fatal(err)
	}
	return &ack
}

// TestResumeNoLostPush drops a connection that receives arena state and chat pushes, resumes the
// session on a new connection (TCP and WebSocket), and checks that the pushes continue without a
// gap or a duplicate, the missed ones replayed with their original seq.
func TestResumeNoLostPush(t *testing.T) {
	t.Parallel()
	for _, transport := range []string{"tcp", "ws"} {
		t.Run(transport, func(t *testing.T) {
			t.Parallel()
			s := startServer(t, options{prepare: busyChat})
			stopChat := chatter(t, s, "chatter")
			a := s.dial(t, "tcp")
			login := guest(t, a, "resumer")
			join := s.mustCall(t, a, "ArenaJoinReq", `{}`, "ArenaJoinAck")
			room := field(join, "room_id").String()
			log := newPushLog(t, s)
			log.collect(a, 400*time.Millisecond)
			if log.byName["ArenaState"] < 3 || log.byName["ChatMessage"] < 3 {
				t.Fatalf("before the drop: %v pushes, want arena state and chat", log.byName)
			}

			// Drop: close the socket, nothing else. Pushes already read count as received.
			_ = a.Close()
			for p := range drained(a) {
				log.add(p.Seq, p.MsgID, p.Payload)
			}
			last := log.seq
			time.Sleep(300 * time.Millisecond)

			r := dialRaw(t, s, transport)
			ack := resumeRaw(t, r, login.Token, last)
			if ack.PlayerId != login.PlayerId {
				t.Errorf("ResumeAck.player_id %q, want %q", ack.PlayerId, login.PlayerId)
			}
			if ack.Token == "" {
				t.Errorf("ResumeAck without a token")
			}
			if ack.Replayed < 3 {
				t.Errorf("ResumeAck.replayed = %d after 300 ms away from a 20 Hz arena, want several", ack.Replayed)
			}
			for range ack.Replayed {
				f := r.nextFrame(5 * time.Second)
				if f.flags != 0 {
					t.Fatalf("a replayed push expected, got %v", f)
				}
				log.add(f.seq, f.id, f.payload)
			}
			if log.seq != last+ack.Replayed {
				t.Errorf("replayed pushes end at seq %d, want %d", log.seq, last+ack.Replayed)
			}
			log.collectRaw(r, 300*time.Millisecond)
			t.Logf("first connection up to seq %d, %d replayed, now at seq %d; %v", last, ack.Replayed, log.seq, log.byName)

			// Drop again and resume with the token of ResumeAck on the other transport.
			r.close()
			for f := range r.frames {
				if f.flags != 0 {
					t.Fatalf("unexpected %v", f)
				}
				log.add(f.seq, f.id, f.payload)
			}
			other := map[string]string{"tcp": "ws", "ws": "tcp"}[transport]
			time.Sleep(100 * time.Millisecond)
			r2 := dialRaw(t, s, other)
			ack2 := resumeRaw(t, r2, ack.Token, log.seq)
			if ack2.PlayerId != login.PlayerId {
				t.Errorf("second ResumeAck.player_id %q, want %q", ack2.PlayerId, login.PlayerId)
			}
			log.collectRaw(r2, 300*time.Millisecond)
			stopChat()

			// The session is still in its arena.
			r2.send(frame{id: s.msgs.Schema.ByName("ArenaLeaveReq").ID, seq: 2})
			f := r2.reply(2, 5*time.Second)
			if name := s.msgs.Schema.ByID(f.id); name == nil || name.Name != "ArenaLeaveAck" {
				t.Errorf("ArenaLeaveReq after two resumes: %v %s", f, describeError(f))
			}
			if _, ok := log.ticks[room]; !ok {
				t.Errorf("no ArenaState of the joined room %s", room)
			}
		})
	}
}

// drained returns the pushes a closed client had already received.
func drained(c *client.Client) <-chan client.Push {
	out := make(chan client.Push, cap(c.Pushes()))
	<-c.Done()
	for {
		select {
		case p := <-c.Pushes():
			out <- p
		default:
			close(out)
			return out
		}
	}
}

// TestResumeRefused checks the cases docs/protocol.md answers with RESUME_FAILED: pushes no longer
// held, a seq beyond the last push, a session past its resume window or replaced by a new login,
// and bad tokens.
func TestResumeRefused(t *testing.T) {
	t.Parallel()
	s := startServer(t, options{config: "session:\n  replay_pushes: 8\n  resume_window: 1s\n", prepare: busyChat})
	ctx := timeout(t, 30*time.Second)

	t.Run("overflow", func(t *testing.T) {
		a := s.dial(t, "tcp")
		login := guest(t, a, "overflow")
		b := s.dial(t, "tcp")
		guest(t, b, "overflow-chatter")
		for i := range 12 {
			s.mustCall(t, b, "ChatSendReq", fmt.Sprintf(`{"text": "m%d"}`, i), "ChatSendAck")
		}
		log := newPushLog(t, s)
		for range 12 {
			p := nextPush(t, a, 5*time.Second)
			log.add(p.Seq, p.MsgID, p.Payload)
		}
		_ = a.Close()
		// The buffer keeps the last 8 pushes (5 to 12): resuming after 1 misses 2 to 4.
		c := s.dial(t, "tcp")
		_, err := c.Resume(ctx, login.Token, 1)
		expectCode(t, "resume after seq 1 with pushes 2-4 dropped", err, protocol.ResumeFailed)
		_, err = c.Resume(ctx, login.Token, 13)
		expectCode(t, "resume after seq 13, beyond the last push", err, protocol.ResumeFailed)
		ack, err := c.Resume(ctx, login.Token, 4)
		if err != nil {
			t.Fatalf("resume after seq 4 (pushes 5-12 held): %v", err)
		}
		if ack.Replayed != 8 {
			t.Errorf("replayed %d, want 8", ack.Replayed)
		}
		for want := uint32(5); want <= 12; want++ {
			if p := nextPush(t, c, 5*time.Second); p.Seq != want {
				t.Errorf("replayed seq %d, want %d", p.Seq, want)
			}
		}
	})
	t.Run("window", func(t *testing.T) {
		a := s.dial(t, "tcp")
		login := guest(t, a, "late")
		_ = a.Close()
		time.Sleep(2500 * time.Millisecond) // 2.5 × resume_window
		_, err := s.dial(t, "tcp").Resume(ctx, login.Token, 0)
		expectCode(t, "resume after the resume window", err, protocol.ResumeFailed)
		// Within the window it works (the same steps, without the wait).
		b := s.dial(t, "tcp")
		login = guest(t, b, "early")
		_ = b.Close()
		<-b.Done()
		if _, err := s.dial(t, "tcp").Resume(ctx, login.Token, 0); err != nil {
			t.Errorf("resume within the window: %v", err)
		}
	})
	t.Run("expired session leaves its room", func(t *testing.T) {
		a := s.dial(t, "tcp")
		gone := guest(t, a, "wanderer").PlayerId
		room := field(s.mustCall(t, a, "ArenaJoinReq", `{}`, "ArenaJoinAck"), "room_id").String()
		b := s.dial(t, "tcp")
		guest(t, b, "witness")
		s.mustCall(t, b, "ArenaJoinReq", fmt.Sprintf(`{"room_id": %q}`, room), "ArenaJoinAck")
		_ = a.Close()
		deadline := time.Now().Add(5 * time.Second) // resume_window is 1s
		for left := false; !left; {
			if time.Now().After(deadline) {
				t.Fatalf("no ArenaEvent LEFT for %s within 5s of its connection closing", gone)
			}
			p := nextPush(t, b, 5*time.Second)
			m, err := s.msgs.Message(p.MsgID, p.Payload)
			if err != nil {
				t.Fatal(err)
			}
			if m.Descriptor().Name() == "ArenaEvent" && field(m, "player_id").String() == gone && field(m, "kind").Enum() == 2 {
				left = true
			}
		}
	})
	t.Run("replaced", func(t *testing.T) {
		a := s.dial(t, "tcp")
		first := guest(t, a, "replaced")
		_ = a.Close()
		guest(t, s.dial(t, "tcp"), "replaced")
		_, err := s.dial(t, "tcp").Resume(ctx, first.Token, 0)
		expectCode(t, "resume of a session replaced by a new login", err, protocol.ResumeFailed)
	})
	t.Run("bad token", func(t *testing.T) {
		valid := guest(t, s.dial(t, "tcp"), "token-owner").Token
		c := s.dial(t, "ws")
		for _, token := range []string{"", "garbage", valid + "A", valid[:len(valid)/2]} {
			_, err := c.Resume(ctx, token, 0)
			expectCode(t, fmt.Sprintf("resume with token %q", token), err, protocol.ResumeFailed)
		}
	})
}
