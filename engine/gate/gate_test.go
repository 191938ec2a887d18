package gate

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/moonforge/moonforge/engine/auth"
	"github.com/moonforge/moonforge/engine/call"
	"github.com/moonforge/moonforge/engine/client"
	"github.com/moonforge/moonforge/engine/protocol"
	"github.com/moonforge/moonforge/engine/session"
	"github.com/moonforge/moonforge/engine/wire"
)

const echoID = 1001 // the one application message of the fake schema

type fakeSchema struct{}

func (fakeSchema) MsgName(id uint16) (string, bool) {
	switch id {
	case echoID:
		return "test.Echo", true
	case protocol.MsgKick:
		return "moonforge.Kick", true
	}
	return "", false
}

// fakeRouter echoes, drops, or keeps requests to answer them later.
type fakeRouter struct {
	mu   sync.Mutex
	mode string // "echo", "drop" or "keep"
	kept []*call.Request
}

func (r *fakeRouter) Route(req *call.Request) {
	r.mu.Lock()
	defer r.mu.Unlock()
	switch r.mode {
	case "echo":
		req.Reply(req.MsgID, req.Payload)
	case "keep":
		r.kept = append(r.kept, req)
	}
}

// fakeLogin accepts every method but "bad" (refused) and "silent" (never answered); "slow"
// answers after 300 ms.
type fakeLogin struct{}

func (f fakeLogin) Login(l *call.Login) {
	switch l.Method {
	case "bad":
		l.Fail(protocol.Errorf(protocol.Unauthenticated, "refused"))
	case "silent":
	case "slow":
		time.AfterFunc(300*time.Millisecond, func() { l.Method = "guest"; f.Login(l) })
	default:
		payload, _ := proto.Marshal(&protocol.LoginAck{PlayerId: "p-" + l.Account, Created: true})
		l.Answer(call.Answer{MsgID: protocol.MsgLoginAck, Payload: payload})
	}
}

// counts is an Observer that counts answers by code and late answers.
type counts struct {
	mu    sync.Mutex
	codes map[protocol.Code]int
	late  int
}

func (c *counts) Connections(string, int) {}
func (c *counts) Warned(string, bool)     {}
func (c *counts) Answered(_ string, code protocol.Code, _ time.Duration) {
	c.mu.Lock()
	c.codes[code]++
	c.mu.Unlock()
}
func (c *counts) Late() {
	c.mu.Lock()
	c.late++
	c.mu.Unlock()
}
func (c *counts) get(code protocol.Code) (int, int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.codes[code], c.late
}

type fixture struct {
	g      *Gateway
	router *fakeRouter
	obs    *counts
}

func start(t *testing.T, cfg Config) *fixture {
	t.Helper()
	return startWith(t, cfg, func(*Deps) {})
}

// startWith starts a gateway whose dependencies edit may change.
func startWith(t *testing.T, cfg Config, edit func(*Deps)) *fixture {
	t.Helper()
	tokens, err := auth.NewTokens([]auth.Key{{ID: "k1", Secret: make([]byte, 32)}}, time.Hour, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{router: &fakeRouter{mode: "echo"}, obs: &counts{codes: map[protocol.Code]int{}}}
	cfg.TCPAddr, cfg.WSAddr, cfg.KCP.Addr = "127.0.0.1:0", "-", "-"
	deps := Deps{
		Sessions: session.NewManager(session.Config{}),
		Tokens:   tokens,
		Login:    fakeLogin{},
		Router:   f.router,
		Schema:   fakeSchema{},
		Observer: f.obs,
	}
	edit(&deps)
	f.g = New(cfg, deps)
	if err := f.g.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		f.g.Shutdown(ctx)
	})
	return f
}

func (f *fixture) dial(t *testing.T) *client.Client {
	t.Helper()
	c, err := client.Dial(context.Background(), client.Config{Addr: f.g.Addrs()[0].String()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// inFlight sums the requests in flight over the gateway's connections.
// awaitNoneInFlight waits until no request is in flight, failing t after 5 s. An answer (a
// TIMEOUT too) is counted once its write returns, which can be after the client has read it.
func (f *fixture) awaitNoneInFlight(t *testing.T, what string) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); f.inFlight() != 0; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%s: %d requests still in flight 5 s after their answers", what, f.inFlight())
		}
	}
}

func (f *fixture) inFlight() int {
	f.g.mu.Lock()
	defer f.g.mu.Unlock()
	n := 0
	for c := range f.g.conns {
		n += c.inFlight()
	}
	return n
}

func code(err error) protocol.Code {
	var ce *protocol.CodeError
	if errors.As(err, &ce) {
		return ce.Code
	}
	return 0
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	t.Cleanup(cancel)
	return c
}

func TestRequestsBeforeLoginAndUnknownIDs(t *testing.T) {
	f := start(t, Config{MaxUnauthenticated: 5})
	c := f.dial(t)
	if _, err := c.Request(ctx(t), echoID, nil); code(err) != protocol.Unauthenticated {
		t.Fatalf("before login: %v", err)
	}
	if _, err := c.Login(ctx(t), "bad", "x", "", nil); code(err) != protocol.Unauthenticated {
		t.Fatalf("refused login: %v", err)
	}
	ack, err := c.Login(ctx(t), "guest", "dev1", "", nil)
	if err != nil || ack.PlayerId != "p-dev1" || !ack.Created || ack.Token == "" || ack.SessionId == "" {
		t.Fatalf("login: %v %v", ack, err)
	}
	if _, err := c.Login(ctx(t), "guest", "dev1", "", nil); code(err) != protocol.BadRequest {
		t.Fatalf("second login on a connection: %v", err)
	}
	if _, err := c.Request(ctx(t), 4242, nil); code(err) != protocol.UnknownMessage {
		t.Fatalf("undeclared id: %v", err)
	}
	if _, err := c.Request(ctx(t), protocol.MsgKick, nil); code(err) != protocol.Forbidden {
		t.Fatalf("framework id: %v", err)
	}
	reply, err := c.Request(ctx(t), echoID, []byte("hi"))
	if err != nil || string(reply.Payload) != "hi" || reply.MsgID != echoID {
		t.Fatalf("echo: %v %v", reply, err)
	}
}

// A dispatcher that drops requests: the table of requests in flight answers each with TIMEOUT at
// its deadline, the in-flight count returns to zero, and answers that come afterwards are dropped
// and counted, never sent.
func TestDroppedRequestsTimeOutAndLateAnswersAreDropped(t *testing.T) {
	f := start(t, Config{RequestTimeout: 100 * time.Millisecond})
	c := f.dial(t)
	if _, err := c.Login(ctx(t), "guest", "dev1", "", nil); err != nil {
		t.Fatal(err)
	}
	for _, mode := range []string{"drop", "keep"} {
		f.router.mu.Lock()
		f.router.mode = mode
		f.router.mu.Unlock()
		var wg sync.WaitGroup
		errs := make(chan error, 5)
		for range 5 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, err := c.Request(ctx(t), echoID, []byte("x"))
				errs <- err
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if code(err) != protocol.Timeout {
				t.Fatalf("%s: answered %v, want TIMEOUT", mode, err)
			}
		}
		f.awaitNoneInFlight(t, mode)
	}
	if timeouts, _ := f.obs.get(protocol.Timeout); timeouts != 10 {
		t.Fatalf("%d TIMEOUT answers, want 10", timeouts)
	}
	repliesBefore, _ := f.obs.get(0)
	f.router.mu.Lock()
	kept := f.router.kept
	f.router.mode = "echo"
	f.router.mu.Unlock()
	for _, req := range kept {
		req.Reply(req.MsgID, req.Payload)
	}
	if replies, late := f.obs.get(0); late != 5 || replies != repliesBefore {
		t.Fatalf("late answers: %d counted, %d sent; want 5 and 0", late, replies-repliesBefore)
	}
	if reply, err := c.Request(ctx(t), echoID, []byte("after")); err != nil || string(reply.Payload) != "after" {
		t.Fatalf("the connection does not serve after the TIMEOUTs: %v %v", reply, err)
	}
}

func TestLoginServiceThatNeverAnswersTimesOut(t *testing.T) {
	f := start(t, Config{RequestTimeout: 100 * time.Millisecond})
	c := f.dial(t)
	if _, err := c.Login(ctx(t), "silent", "x", "", nil); code(err) != protocol.Timeout {
		t.Fatalf("silent login service: %v", err)
	}
	f.awaitNoneInFlight(t, "login")
	if _, err := c.Login(ctx(t), "guest", "again", "", nil); err != nil {
		t.Fatalf("login after a timed-out one: %v", err)
	}
}

// The answer to a connection's only request in flight is written by the goroutine that delivers
// it (wire.Queue.PushNow). That write must not depend on the write deadline the writer goroutine
// set for its own last write: once the writer has been idle longer than WriteTimeout, answers
// must still arrive (they were lost, reported as written, before).
func TestLoneAnswersArriveAfterTheWriterIdledPastItsDeadline(t *testing.T) {
	f := start(t, Config{WriteTimeout: 50 * time.Millisecond})
	c := f.dial(t)
	if _, err := c.Login(ctx(t), "guest", "dev1", "", nil); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 4; i++ {
		if i == 1 {
			time.Sleep(150 * time.Millisecond) // the deadline of the writer's last write, the LoginAck's, passes
		}
		rctx, cancel := context.WithTimeout(ctx(t), 3*time.Second)
		reply, err := c.Request(rctx, echoID, []byte("hi"))
		cancel()
		if err != nil || string(reply.Payload) != "hi" {
			t.Fatalf("request %d after the writer's deadline: %v %v", i, reply, err)
		}
	}
}

// The idle timeout counts the peer's silence, not the reader's own waits: a login that takes
// longer than the idle timeout does not get its connection kicked as idle right after it, while a
// connection that then stays silent is kicked with IDLE_TIMEOUT, between one and 1.125 idle
// timeouts after its last frame (plus scheduling).
func TestIdleTimeoutCountsOnlyThePeersSilence(t *testing.T) {
	f := start(t, Config{Heartbeat: 40 * time.Millisecond, RequestTimeout: time.Second}) // idle: 120 ms
	c := f.dial(t)
	if _, err := c.Login(ctx(t), "slow", "dev1", "", nil); err != nil {
		t.Fatal(err)
	}
	sent := time.Now()
	if reply, err := c.Request(ctx(t), echoID, []byte("hi")); err != nil || string(reply.Payload) != "hi" {
		t.Fatalf("the first request after a login slower than the idle timeout: %v %v", reply, err)
	}
	select {
	case <-c.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("a silent connection was not kicked")
	}
	if k := c.Kicked(); k == nil || protocol.Code(k.Code) != protocol.IdleTimeout {
		t.Fatalf("kick %v, want IDLE_TIMEOUT", k)
	}
	if took := time.Since(sent); took < 120*time.Millisecond {
		t.Fatalf("kicked %v after the last frame, before the idle timeout", took)
	}
}

// Traffic counts each frame's bytes (length prefix, header, payload) both ways, and keeps the
// bytes of a connection after it closes. A written frame is counted once its write returns, which
// may be after the client has read it: the counts are awaited, not read once.
func TestTrafficCountsFrameBytesPastTheConnectionsClose(t *testing.T) {
	f := start(t, Config{})
	c := f.dial(t)
	if _, err := c.Login(ctx(t), "guest", "dev1", "", nil); err != nil {
		t.Fatal(err)
	}
	in0, out0 := awaitTraffic(t, f.g, func(in, out uint64) bool { return in > 0 && out > 0 })
	if _, err := c.Request(ctx(t), echoID, make([]byte, 100)); err != nil {
		t.Fatal(err)
	}
	const frame = 4 + wire.HeaderSize + 100
	in1, out1 := awaitTraffic(t, f.g, func(in, out uint64) bool { return in-in0 >= frame && out-out0 >= frame })
	if in1-in0 != frame || out1-out0 != frame {
		t.Fatalf("an echo of 100 bytes: %d bytes in, %d out; want %d each", in1-in0, out1-out0, frame)
	}
	_ = c.Close()
	for deadline := time.Now().Add(5 * time.Second); f.g.Count() > 0; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the connection did not close")
		}
	}
	if in2, out2 := f.g.Traffic(); in2 != in1 || out2 != out1 {
		t.Fatalf("after the close: %d bytes in, %d out; want %d and %d", in2, out2, in1, out1)
	}
}

// awaitTraffic returns g's byte counts once done holds for them, failing t after 5 s.
func awaitTraffic(t *testing.T, g *Gateway, done func(in, out uint64) bool) (in, out uint64) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(time.Millisecond) {
		if in, out = g.Traffic(); done(in, out) {
			return in, out
		}
		if time.Now().After(deadline) {
			t.Fatalf("traffic stayed at %d bytes in, %d out", in, out)
		}
	}
}
