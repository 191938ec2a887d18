package bus

import (
	"errors"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/moonforge/moonforge/engine/config"
	"github.com/moonforge/moonforge/engine/protocol"
)

func TestEnvelopeRoundTrip(t *testing.T) {
	dl := time.Now().Add(time.Second).Truncate(time.Millisecond)
	in := &Envelope{Kind: Kind_KIND_ANSWER, Source: "lobby-1", RequestId: 7, ReplyBox: 3, MsgId: 1001, Payload: []byte{1, 2}}
	in.SetDeadline(dl)
	in.SetError(&protocol.CodeError{Code: protocol.Unavailable, Message: "x", RetryAfterMs: 5})
	out, err := Decode(Encode(in))
	if err != nil {
		t.Fatal(err)
	}
	if !out.Deadline().Equal(dl) || out.RequestId != 7 || out.Err().Code != protocol.Unavailable || out.Err().RetryAfterMs != 5 {
		t.Fatalf("round trip: %+v", out)
	}
	if out.Expired(dl) || !out.Expired(dl.Add(2*time.Millisecond)) {
		t.Fatal("Expired is wrong around the deadline")
	}
}

func TestDecodeRefuses(t *testing.T) {
	cases := []struct {
		b    []byte
		want error
	}{
		{[]byte{0xff, 0xff}, ErrDecode},
		{Encode(&Envelope{Kind: Kind_KIND_REQUEST})[2:], ErrFormat}, // format field cut off
		{mustMarshal(&Envelope{Format: 2, Kind: Kind_KIND_REQUEST}), ErrFormat},
		{mustMarshal(&Envelope{Format: 1, Kind: 99}), ErrKind},
		{mustMarshal(&Envelope{Format: 1}), ErrKind},
	}
	for i, c := range cases {
		if _, err := Decode(c.b); !errors.Is(err, c.want) {
			t.Errorf("case %d: %v, want %v", i, err, c.want)
		}
	}
}

func mustMarshal(e *Envelope) []byte {
	f := e.Format
	b := Encode(e)
	e.Format = f
	if f != Format { // Encode sets Format; rewrite the first field by hand
		b[1] = byte(f)
	}
	return b
}

func FuzzDecode(f *testing.F) {
	f.Add(Encode(&Envelope{Kind: Kind_KIND_REQUEST, Source: "p1", MsgId: 1001, Payload: []byte("x"), Extra: map[string]string{"a": "b"}}))
	f.Add([]byte{})
	f.Add([]byte{8, 1, 16, 2})
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := Decode(b)
		if err != nil {
			return
		}
		if e.Format != Format || e.Kind == Kind_KIND_UNSPECIFIED {
			t.Fatalf("accepted %+v", e)
		}
		_ = e.Deadline()
		_ = e.Err()
		if _, err := Decode(Encode(e)); err != nil {
			t.Fatalf("re-encoding a decoded envelope: %v", err)
		}
	})
}

func TestSubjects(t *testing.T) {
	s := ReplySubject("proxy-1", 12, 34)
	box, id, ok := ParseReply("proxy-1", s)
	if !ok || box != 12 || id != 34 {
		t.Fatalf("ParseReply(%s) = %d %d %v", s, box, id, ok)
	}
	for _, bad := range []string{"mf.reply.proxy-1.12", "mf.reply.proxy-2.1.2", "mf.reply.proxy-1.x.2"} {
		if _, _, ok := ParseReply("proxy-1", bad); ok {
			t.Errorf("ParseReply accepted %s", bad)
		}
	}
	if !ValidName("lobby-1_a") || ValidName("a.b") || ValidName("") || ValidName("a*") {
		t.Fatal("ValidName")
	}
}

func TestVersionCheck(t *testing.T) {
	for _, c := range []struct {
		v  string
		ok bool
	}{{"2.9.10", false}, {"2.10.99", false}, {"2.11.0", true}, {"2.15.2", true}, {"3.0.0", true}, {"garbage", false}, {"2.12.0-beta", true}} {
		if got := versionAtLeast(c.v, MinServerVersion); got != c.ok {
			t.Errorf("%s: %v", c.v, got)
		}
	}
	if err := Check("2.15.2", 1<<20, 2<<20); err == nil || !strings.Contains(err.Error(), "max_payload") {
		t.Fatalf("small max_payload: %v", err)
	}
}

func TestEmbeddedRaisesMaxPayload(t *testing.T) {
	need := 4<<20 + EnvelopeOverhead
	f, err := Open(Options{DataDir: t.TempDir(), MaxPayload: need, Name: "t1"})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if f.Conn.MaxPayload() < int64(need) {
		t.Fatalf("max_payload %d < %d", f.Conn.MaxPayload(), need)
	}
	msg := make([]byte, need-100)
	sub, err := f.Conn.SubscribeSync("x")
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Conn.Publish("x", msg); err != nil {
		t.Fatal(err)
	}
	if m, err := sub.NextMsg(5 * time.Second); err != nil || len(m.Data) != len(msg) {
		t.Fatalf("big message: %v", err)
	}
}

// listeningServer starts a nats-server of the module on a free port with max_payload mp.
func listeningServer(t *testing.T, mp int32, user, pass string) *server.Server {
	t.Helper()
	s, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, MaxPayload: mp, NoSigs: true, NoLog: true, JetStream: true, StoreDir: t.TempDir(), Username: user, Password: pass})
	if err != nil {
		t.Fatal(err)
	}
	go s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		t.Fatal("server not ready")
	}
	t.Cleanup(s.Shutdown)
	return s
}

func TestExternalTooSmallPayloadRefused(t *testing.T) {
	s := listeningServer(t, 64<<10, "", "")
	_, err := Open(Options{NATS: config.NATS{URLs: []string{s.ClientURL()}}, MaxPayload: 1<<20 + EnvelopeOverhead, Name: "t"})
	if err == nil || !strings.Contains(err.Error(), "max_payload") {
		t.Fatalf("want a max_payload error, got %v", err)
	}
}

func TestWrongCredentialsRefused(t *testing.T) {
	s := listeningServer(t, 2<<20, "mf", "right")
	_, err := Open(Options{NATS: config.NATS{URLs: []string{s.ClientURL()}, User: "mf", Password: "wrong"}, MaxPayload: 1 << 20, Name: "t"})
	if err == nil || !strings.Contains(strings.ToLower(err.Error()), "authorization") {
		t.Fatalf("want an authorization error, got %v", err)
	}
	f, err := Open(Options{NATS: config.NATS{URLs: []string{s.ClientURL()}, User: "mf", Password: "right"}, MaxPayload: 1 << 20, Name: "t"})
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
}

// TestOldServerRefused uses the machine's Debian nats-server (2.9.10) on 127.0.0.1:4222: too old
// for per-key TTLs. It is the one test that talks to a fixed port.
func TestOldServerRefused(t *testing.T) {
	c, err := net.DialTimeout("tcp", "127.0.0.1:4222", time.Second)
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("CI needs Debian's nats-server on 127.0.0.1:4222: %v", err)
		}
		t.Skip("no nats-server on 127.0.0.1:4222 (Debian's nats-server package)")
	}
	c.Close()
	_, err = Open(Options{NATS: config.NATS{URLs: []string{"nats://127.0.0.1:4222"}}, MaxPayload: 1024, Name: "t"})
	if err == nil || !strings.Contains(err.Error(), "too old") {
		t.Fatalf("want a too-old error, got %v", err)
	}
}

// An embedded server with authentication refuses wrong credentials and keeps each role to its
// subjects: a lobby may send requests but not cluster commands.
func TestEmbeddedAuthAndPermissions(t *testing.T) {
	port := freeAddr(t)
	master, err := Open(Options{NATS: config.NATS{Listen: port, User: "mf", Password: "s3cret"}, DataDir: t.TempDir(), MaxPayload: 1 << 20, Name: "master-1", Role: "master"})
	if err != nil {
		t.Fatal(err)
	}
	defer master.Close()
	url := []string{master.ClientURL()}
	if _, err := Open(Options{NATS: config.NATS{URLs: url, User: "mf", Password: "wrong"}, MaxPayload: 1 << 20, Name: "x", Role: "lobby"}); err == nil {
		t.Fatal("wrong password accepted")
	}
	if _, err := Open(Options{NATS: config.NATS{URLs: url}, MaxPayload: 1 << 20, Name: "x"}); err == nil {
		t.Fatal("no credentials accepted")
	}
	lobby, err := Open(Options{NATS: config.NATS{URLs: url, User: "mf", Password: "s3cret"}, MaxPayload: 1 << 20, Name: "lobby-1", Role: "lobby"})
	if err != nil {
		t.Fatal(err)
	}
	defer lobby.Close()
	errs := make(chan error, 4)
	lobby.Conn.SetErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) { errs <- err })
	cmds, _ := master.Conn.SubscribeSync(CommandsAll)
	nodes, _ := master.Conn.SubscribeSync(NodeSubject("game-1"))
	_ = master.Conn.Flush()
	_ = lobby.Conn.Publish(CommandsAll, []byte("drain"))
	_ = lobby.Conn.Publish(NodeSubject("game-1"), []byte("req"))
	_ = lobby.Conn.Flush()
	if _, err := nodes.NextMsg(5 * time.Second); err != nil {
		t.Fatalf("a lobby's request to a node did not arrive: %v", err)
	}
	if _, err := cmds.NextMsg(300 * time.Millisecond); err == nil {
		t.Fatal("a lobby sent a cluster command")
	}
	select {
	case err := <-errs:
		if !strings.Contains(strings.ToLower(err.Error()), "permissions violation") {
			t.Fatalf("error %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the server did not refuse the lobby's command")
	}
	if _, err := lobby.Conn.SubscribeSync(ProxySubject("proxy-1")); err == nil {
		_ = lobby.Conn.Flush()
		select {
		case err := <-errs:
			if !strings.Contains(strings.ToLower(err.Error()), "permissions violation") {
				t.Fatalf("error %v", err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("a lobby subscribed to a proxy's pushes")
		}
	}
}

func freeAddr(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}
