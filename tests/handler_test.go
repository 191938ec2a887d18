package tests

import (
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/moonforge/moonforge/engine/client"
	"github.com/moonforge/moonforge/engine/protocol"
)

// crashAt is where CrashReq's handler in testdata/lua/lobby/zz_test.lua fails.
const crashAt = "lua/lobby/zz_test.lua:14"

// who sends WhoReq and returns the answering actor's id, its WhoReq count and its note.
func (s *server) who(t testing.TB, c *client.Client) (actor string, calls uint64, note string) {
	t.Helper()
	m := s.mustCall(t, c, "WhoReq", ``, "WhoAck")
	return field(m, "actor").String(), field(m, "calls").Uint(), field(m, "note").String()
}

// TestHandlerErrors runs the test fixtures' failing handlers: raised errors keep their code, a
// runtime error and an endless loop become INTERNAL, the actor goes on, one-way messages get no
// reply.
func TestHandlerErrors(t *testing.T) {
	t.Parallel()
	s := startServer(t, options{fixtures: true, config: "lua:\n  handler_timeout: 300ms\n"})
	c := s.dial(t, "tcp")
	guest(t, c, "handler-errors")
	ctx := timeout(t, 30*time.Second)

	t.Run("mf.error", func(t *testing.T) {
		_, err := s.call(ctx, c, "FailReq", `{"code": 1234, "message": "nope"}`)
		if ce := expectCode(t, "FailReq 1234", err, 1234); ce.Message != "nope" {
			t.Errorf("message %q, want %q", ce.Message, "nope")
		}
		_, err = s.call(ctx, c, "FailReq", `{"code": 15, "message": "bad"}`)
		expectCode(t, "FailReq BAD_REQUEST", err, protocol.BadRequest)
		// A code that only a Kick may carry cannot be raised: INTERNAL, and the connection stays.
		_, err = s.call(ctx, c, "FailReq", `{"code": 12, "message": "kick me"}`)
		expectCode(t, "FailReq KICKED_DUPLICATE_LOGIN", err, protocol.Internal)
		s.mustEcho(t, c, 3, 3)
		if k := c.Kicked(); k != nil {
			t.Errorf("kicked: %v", k)
		}
	})
	t.Run("runtime error", func(t *testing.T) {
		_, err := s.call(ctx, c, "CrashReq", ``)
		ce := expectCode(t, "CrashReq", err, protocol.Internal)
		if !strings.Contains(ce.Message, crashAt) {
			t.Errorf("INTERNAL message %q does not name %s (dev mode)", ce.Message, crashAt)
		}
		if !s.log.waitFor(5*time.Second, "script error", crashAt) {
			t.Errorf("the server log has no script error at %s", crashAt)
		}
		s.mustEcho(t, c, 4, 4)
	})
	t.Run("reply that cannot be encoded", func(t *testing.T) {
		_, err := s.call(ctx, c, "NoteReq", `{"text": "bad reply"}`)
		ce := expectCode(t, "NoteReq", err, protocol.Internal)
		for _, want := range []string{"handler at lua/lobby/zz_test.lua:27", "test.WhoAck.calls"} {
			if !strings.Contains(ce.Message, want) {
				t.Errorf("INTERNAL message %q lacks %q (dev mode)", ce.Message, want)
			}
		}
		s.mustEcho(t, c, 5, 5)
	})
	t.Run("endless loop", func(t *testing.T) {
		actor, calls, _ := s.who(t, c)
		start := time.Now()
		_, err := s.call(ctx, c, "LoopReq", ``)
		took := time.Since(start)
		ce := expectCode(t, "LoopReq", err, protocol.Internal)
		t.Logf("LoopReq answered %s after %s: %q", protocol.Internal, took, ce.Message)
		if took < 300*time.Millisecond {
			t.Errorf("LoopReq answered after %s, before the handler timeout of 300ms", took)
		}
		again, calls2, _ := s.who(t, c)
		if again != actor || calls2 != calls+1 {
			t.Errorf("after the loop: actor %s with %d calls, want the same actor %s with %d", again, calls2, actor, calls+1)
		}
		s.mustEcho(t, c, 5, 5)
	})
	t.Run("one-way", func(t *testing.T) {
		r := dialRaw(t, s, "tcp")
		r.login("one-way", 1)
		noteReq := s.msgs.Schema.ByName("NoteReq").ID
		failReq := s.msgs.Schema.ByName("FailReq").ID
		r.send(frame{id: noteReq, payload: append([]byte{0x0a, 5}, "quiet"...)})                  // NoteReq{text: "quiet"}, seq 0
		r.send(frame{id: failReq, payload: append([]byte{0x08, 0xd2, 0x09, 0x12, 4}, "nope"...)}) // FailReq{1234, "nope"}, seq 0
		r.send(frame{id: s.msgs.Schema.ByName("WhoReq").ID, seq: 2})
		f := r.nextNonPush(5 * time.Second)
		if f.seq != 2 || f.id != s.msgs.Schema.ByName("WhoAck").ID {
			t.Fatalf("after two one-way messages, want the reply to seq 2 first, got %v %s", f, describeError(f))
		}
		m, err := s.msgs.Message(f.id, f.payload)
		if err != nil {
			t.Fatal(err)
		}
		if got := field(m, "note").String(); got != "quiet" {
			t.Errorf("the one-way NoteReq was not handled: note %q", got)
		}
		if !s.log.waitFor(5*time.Second, "one-way message failed", "test.FailReq") {
			t.Errorf("the failed one-way message was not logged")
		}
	})
}

// TestHandlerErrorsProduction checks that without -dev an INTERNAL reply does not reveal the
// script's file and line.
func TestHandlerErrorsProduction(t *testing.T) {
	t.Parallel()
	s := startServer(t, options{fixtures: true, production: true})
	c := s.dial(t, "tcp")
	guest(t, c, "production")
	_, err := s.call(timeout(t, 10*time.Second), c, "CrashReq", ``)
	ce := expectCode(t, "CrashReq", err, protocol.Internal)
	if strings.Contains(ce.Message, "zz_test.lua") || strings.Contains(ce.Message, "stack") {
		t.Errorf("INTERNAL message without -dev reveals the script: %q", ce.Message)
	}
	if !s.log.waitFor(5*time.Second, "script error", crashAt) {
		t.Errorf("the server log has no script error at %s", crashAt)
	}
}

// TestBusyActor fills the only lobby actor: an endless handler runs into the request deadline
// (TIMEOUT), requests queued behind it are answered after it, and those over the mailbox size are
// refused at once with UNAVAILABLE, before the running handler ends.
func TestBusyActor(t *testing.T) {
	t.Parallel()
	s := startServer(t, options{fixtures: true, config: "lua:\n  pool_size: 1\n  mailbox_size: 2\n  handler_timeout: 5s\ngate:\n  request_timeout: 600ms\n"})
	r := dialRaw(t, s, "tcp")
	r.login("busy", 1)
	who := s.msgs.Schema.ByName("WhoReq").ID
	r.send(frame{id: s.msgs.Schema.ByName("LoopReq").ID, seq: 2})
	time.Sleep(100 * time.Millisecond) // the actor takes LoopReq out of its mailbox
	for seq := uint32(3); seq <= 8; seq++ {
		r.send(frame{id: who, seq: seq})
	}
	// Replies in arrival order.
	type answer struct {
		seq   uint32
		code  protocol.Code // 0 for WhoAck
		retry uint32
	}
	var answers []answer
	for range 7 {
		f := r.nextNonPush(10 * time.Second)
		a := answer{seq: f.seq}
		if f.id == protocol.MsgError {
			var e protocol.Error
			if err := proto.Unmarshal(f.payload, &e); err != nil {
				t.Fatal(err)
			}
			a.code, a.retry = protocol.Code(e.Code), e.RetryAfterMs
		} else if f.id != s.msgs.Schema.ByName("WhoAck").ID {
			t.Fatalf("unexpected %v", f)
		}
		answers = append(answers, a)
	}
	t.Logf("answers in arrival order: %+v", answers)
	loopAt := slices.IndexFunc(answers, func(a answer) bool { return a.seq == 2 })
	if loopAt < 0 || answers[loopAt].code != protocol.Timeout {
		t.Fatalf("LoopReq past the 600ms request deadline: want TIMEOUT")
	}
	queued, refused := 0, 0
	for i, a := range answers {
		switch {
		case a.seq == 2:
		case a.code == protocol.Unavailable:
			refused++
			if i > loopAt {
				t.Errorf("seq %d: UNAVAILABLE after the running handler ended, want it at once", a.seq)
			}
			if a.retry == 0 {
				t.Errorf("seq %d: UNAVAILABLE without retry_after_ms", a.seq)
			}
		case a.code == 0 || a.code == protocol.Timeout:
			// Queued behind the loop: answered after it, or expired if its deadline passed first.
			queued++
			if i < loopAt {
				t.Errorf("seq %d answered before the handler running ahead of it in the same actor", a.seq)
			}
		default:
			t.Errorf("WhoReq seq %d: %s", a.seq, a.code)
		}
	}
	if queued != 2 || refused != 4 {
		t.Errorf("%d WhoReq queued and %d refused; want 2 and 4 with a mailbox of 2", queued, refused)
	}
	r.send(frame{id: who, seq: 9})
	if f := r.reply(9, 5*time.Second); f.id != s.msgs.Schema.ByName("WhoAck").ID {
		t.Errorf("WhoReq after the loop: %v %s", f, describeError(f))
	}
}
