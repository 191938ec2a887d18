package tests

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/dynamicpb"

	"github.com/moonforge/moonforge/engine/client"
	"github.com/moonforge/moonforge/engine/protocol"
)

// timeout returns a context that ends after d or with the test.
func timeout(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// call sends the application message name, built from its protojson text, and returns the reply
// decoded with the server's schema. An Error reply is a *protocol.CodeError.
func (s *server) call(ctx context.Context, c *client.Client, name, json string) (*dynamicpb.Message, error) {
	return callWith(ctx, s.msgs, c, name, json)
}

func callWith(ctx context.Context, msgs client.Messages, c *client.Client, name, json string) (*dynamicpb.Message, error) {
	id, payload, err := msgs.Encode(name, json)
	if err != nil {
		return nil, err
	}
	f, err := c.Request(ctx, id, payload)
	if err != nil {
		return nil, err
	}
	return msgs.Message(f.MsgID, f.Payload)
}

// mustCall is call for a request that must succeed with a reply named want.
func (s *server) mustCall(t testing.TB, c *client.Client, name, json, want string) *dynamicpb.Message {
	t.Helper()
	m, err := s.call(timeout(t, 10*time.Second), c, name, json)
	if err != nil {
		t.Fatalf("%s %s: %v", name, json, err)
	}
	if got := string(m.Descriptor().Name()); got != want {
		t.Fatalf("%s: want reply %s, got %s", name, want, got)
	}
	return m
}

// field returns a field of a decoded message by name.
func field(m *dynamicpb.Message, name string) protoreflect.Value {
	fd := m.Descriptor().Fields().ByName(protoreflect.Name(name))
	if fd == nil {
		panic(fmt.Sprintf("%s has no field %s", m.Descriptor().FullName(), name))
	}
	return m.Get(fd)
}

// codeOf returns the protocol code of an Error reply, 0 for any other error.
func codeOf(err error) protocol.Code {
	var ce *protocol.CodeError
	if errors.As(err, &ce) {
		return ce.Code
	}
	return 0
}

// expectCode checks that err is an Error reply with code.
func expectCode(t testing.TB, what string, err error, code protocol.Code) *protocol.CodeError {
	t.Helper()
	var ce *protocol.CodeError
	if !errors.As(err, &ce) {
		t.Fatalf("%s: want Error %s, got %v", what, code, err)
	}
	if ce.Code != code {
		t.Fatalf("%s: want Error %s, got %s %q", what, code, ce.Code, ce.Message)
	}
	return ce
}

// echo sends EchoReq{n} and returns EchoAck.n.
func (s *server) echo(ctx context.Context, c *client.Client, n int64) (int64, error) {
	m, err := s.call(ctx, c, "EchoReq", fmt.Sprintf(`{"n": "%d", "body": "ZWNobw=="}`, n))
	if err != nil {
		return 0, err
	}
	if name := m.Descriptor().Name(); name != "EchoAck" {
		return 0, fmt.Errorf("EchoReq answered with %s", name)
	}
	if body := string(field(m, "body").Bytes()); body != "echo" {
		return 0, fmt.Errorf("EchoAck.body is %q, want %q", body, "echo")
	}
	return field(m, "n").Int(), nil
}

// guest logs in as a guest with a device id.
func guest(t testing.TB, c *client.Client, device string) *protocol.LoginAck {
	t.Helper()
	ack, err := c.Login(timeout(t, 10*time.Second), "guest", deviceID(device), "", nil)
	if err != nil {
		t.Fatalf("guest login %q: %v", device, err)
	}
	if ack.PlayerId == "" || ack.Token == "" || ack.SessionId == "" {
		t.Fatalf("guest login %q: incomplete LoginAck %v", device, ack)
	}
	return ack
}

// push waits for the next push on c (Kick included).
func nextPush(t testing.TB, c *client.Client, d time.Duration) client.Push {
	t.Helper()
	select {
	case p := <-c.Pushes():
		return p
	case <-time.After(d):
		t.Fatalf("no push within %s", d)
		return client.Push{}
	}
}

// waitKick waits until c ends and returns the Kick it received (nil if none).
func waitKick(t testing.TB, c *client.Client, d time.Duration) *protocol.Kick {
	t.Helper()
	select {
	case <-c.Done():
		return c.Kicked()
	case <-time.After(d):
		t.Fatalf("the connection was not closed within %s", d)
		return nil
	}
}

// echoLoad keeps a client sending EchoReq until stopped and counts answers and failures, to show
// that other clients keep being served while a test misbehaves.
type echoLoad struct {
	s      *server
	c      *client.Client
	stopCh chan struct{}
	done   chan struct{}
	ok     chan int64 // progress: the count after each answer, latest wins
	errs   []error
}

// startEchoLoad logs in a client and starts its request loop; stop it with stop.
func startEchoLoad(t testing.TB, s *server, transport, device string) *echoLoad {
	t.Helper()
	c := s.dial(t, transport)
	guest(t, c, device)
	l := &echoLoad{s: s, c: c, stopCh: make(chan struct{}), done: make(chan struct{}), ok: make(chan int64, 1)}
	go l.run()
	t.Cleanup(func() { l.stop() })
	return l
}

func (l *echoLoad) run() {
	defer close(l.done)
	var n int64
	for {
		select {
		case <-l.stopCh:
			return
		default:
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		got, err := l.s.echo(ctx, l.c, n)
		cancel()
		if err == nil && got != n {
			err = fmt.Errorf("EchoReq n=%d answered with n=%d", n, got)
		}
		if err != nil {
			l.errs = append(l.errs, err)
			if len(l.errs) > 10 || errors.Is(err, client.ErrClosed) {
				return
			}
		}
		n++
		select {
		case <-l.ok:
		default:
		}
		l.ok <- n
		time.Sleep(2 * time.Millisecond) // an honest client: well below gate.rate_limit
	}
}

// stop ends the loop and returns its errors.
func (l *echoLoad) stop() []error {
	select {
	case <-l.stopCh:
	default:
		close(l.stopCh)
	}
	<-l.done
	return l.errs
}

// progressed waits until the loop has completed more requests than it had when called.
func (l *echoLoad) progressed(t testing.TB) {
	t.Helper()
	first := true
	var base int64
	deadline := time.After(10 * time.Second)
	for {
		select {
		case n := <-l.ok:
			if first {
				base, first = n, false
				continue
			}
			if n > base {
				return
			}
		case <-l.done:
			t.Fatalf("the background client stopped: %v", l.errs)
		case <-deadline:
			t.Fatalf("the background client made no progress in 10s")
		}
	}
}

// deviceID turns a test's short device name into a guest device id of the 16 to 128 bytes that
// PROTOCOL.md requires.
func deviceID(name string) string {
	id := "device-" + name
	if len(id) < 16 {
		id += strings.Repeat("0", 16-len(id))
	}
	return id
}

// b64 is the protojson form of a bytes field.
func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
