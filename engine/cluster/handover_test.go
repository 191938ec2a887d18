package cluster

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/moonforge/moonforge/engine/bus"
	"github.com/moonforge/moonforge/engine/protocol"
	"github.com/moonforge/moonforge/engine/registry"
	"github.com/moonforge/moonforge/engine/session"
	"github.com/moonforge/moonforge/engine/wire"
)

// A push a sender made while the session directory named the old proxy, still on its way through
// it when the session moves, reaches the client before a push the sender makes afterwards: the
// sender's first push after the move goes through the old proxy (pushTo), which forwards it behind
// the earlier one.
func TestPushAfterAMoveKeepsTheSendersOrder(t *testing.T) {
	ctx := context.Background()
	reg, start := fabric(t, nil)
	// The old proxy no longer holds the session: it forwards, slowly.
	old := start("proxy-a", "proxy", func(string, uint16, []byte) bool { time.Sleep(200 * time.Millisecond); return false })
	old.moved.Store("p1", &moved{proxy: "proxy-b"})
	var mu sync.Mutex
	var got []string
	start("proxy-b", "proxy", func(_ string, _ uint16, payload []byte) bool {
		mu.Lock()
		got = append(got, string(payload))
		mu.Unlock()
		return true
	})
	sender := start("lobby-1", "lobby", nil)
	players := sender.Players(noPlayers{})
	waitEntry := func(proxy string) { waitSession(t, sender, proxy) }
	a, b := registry.Session{Proxy: "proxy-a", Session: "s1"}, registry.Session{Proxy: "proxy-b", Session: "s1"}
	if _, _, err := reg.ClaimSession(ctx, "p1", a); err != nil {
		t.Fatal(err)
	}
	waitEntry("proxy-a")
	if !players.Push("p1", 1, []byte("first")) {
		t.Fatal("first push refused")
	}
	if err := reg.MoveSession(ctx, "p1", a, b); err != nil {
		t.Fatal(err)
	}
	waitEntry("proxy-b")
	if !players.Push("p1", 1, []byte("second")) || !players.Push("p1", 1, []byte("third")) {
		t.Fatal("push refused after the move")
	}
	waitGot(t, &mu, &got, "[first second third]")
}

// A push a sender makes after a login on another proxy replaced the player's session goes to the
// new session, not to the old one still on the first proxy.
func TestPushAfterAReplacingLoginGoesToTheNewSession(t *testing.T) {
	ctx := context.Background()
	reg, start := fabric(t, nil)
	var mu sync.Mutex
	var got []string
	record := func(proxy string) func(string, uint16, []byte) bool {
		return func(_ string, _ uint16, payload []byte) bool {
			mu.Lock()
			got = append(got, proxy+":"+string(payload))
			mu.Unlock()
			return true
		}
	}
	start("proxy-a", "proxy", record("a"))
	start("proxy-b", "proxy", record("b"))
	sender := start("lobby-1", "lobby", nil)
	players := sender.Players(noPlayers{})
	if _, _, err := reg.ClaimSession(ctx, "p1", registry.Session{Proxy: "proxy-a", Session: "s1"}); err != nil {
		t.Fatal(err)
	}
	waitSession(t, sender, "proxy-a")
	players.Push("p1", 1, []byte("first"))
	if _, _, err := reg.ClaimSession(ctx, "p1", registry.Session{Proxy: "proxy-b", Session: "s2"}); err != nil {
		t.Fatal(err)
	}
	waitSession(t, sender, "proxy-b")
	players.Push("p1", 1, []byte("second"))
	waitGot(t, &mu, &got, "[a:first b:second]")
}

// fabric starts an embedded bus and registry; start adds a member with a Push of its own and the
// balancing policies of balance.
func fabric(t testing.TB, balance map[string]string) (*registry.Registry, func(id, role string, push func(string, uint16, []byte) bool) *Cluster) {
	f, err := bus.Open(bus.Options{DataDir: t.TempDir(), MaxPayload: 1 << 20, Name: "test"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(f.Close)
	reg, err := registry.Open(context.Background(), f.JS, registry.Config{Replicas: 1, NodeTTL: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return reg, func(id, role string, push func(string, uint16, []byte) bool) *Cluster {
		c, err := New(Config{Node: id, Roles: []string{role}, Fabric: f, Registry: reg, Balance: balance})
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Start(Deps{Record: func() registry.Record { return registry.Record{} }, Push: push}, 200*time.Millisecond); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Stop(time.Second) })
		return c
	}
}

// waitSession waits until c's view of the session directory puts p1 on proxy.
func waitSession(t *testing.T, c *Cluster, proxy string) {
	t.Helper()
	end := time.Now().Add(5 * time.Second)
	for s, _ := c.sessions.Of("p1"); s.Proxy != proxy; s, _ = c.sessions.Of("p1") {
		if time.Now().After(end) {
			t.Fatalf("%s never saw p1 on %s", c.cfg.Node, proxy)
		}
		time.Sleep(time.Millisecond)
	}
}

// waitGot waits until *got, under mu, prints as want.
func waitGot(t *testing.T, mu *sync.Mutex, got *[]string, want string) {
	t.Helper()
	end := time.Now().Add(5 * time.Second)
	for {
		mu.Lock()
		s := fmt.Sprint(*got)
		mu.Unlock()
		if s == want {
			return
		}
		if time.Now().After(end) {
			t.Fatalf("pushes went to %s, want %s", s, want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

type noPlayers struct{}

func (noPlayers) Push(string, uint16, []byte) bool { return false }
func (noPlayers) PushAll(uint16, []byte) int       { return 0 }

// FuzzHandoverState: whatever another proxy hands over, the state accepted is consistent (ids as
// asked, acknowledged and replayed pushes within the last push, replay in increasing order), and
// a manager adopts and resumes it without failing.
func FuzzHandoverState(f *testing.F) {
	good, _ := proto.Marshal(&bus.Handover{Session: "s1", Player: "p1", PushSeq: 3, Acked: 1,
		Replay: []*bus.Pushed{{Seq: 2, MsgId: 2003, Payload: []byte("a")}, {Seq: 3, MsgId: 2003}}})
	f.Add(good)
	f.Add([]byte{})
	f.Add([]byte{0x0a, 0x02, 's', '1', 0x12, 0x02, 'p', '1', 0x18, 0x01, 0x20, 0x05})
	f.Fuzz(func(t *testing.T, b []byte) {
		st, err := handoverState(b, "s1", "p1")
		if err != nil {
			return
		}
		if st.ID != "s1" || st.PlayerID != "p1" || st.Acked > st.PushSeq {
			t.Fatalf("accepted %+v", st)
		}
		var prev uint32
		for _, p := range st.Replay {
			if p.Seq <= prev || p.Seq > st.PushSeq {
				t.Fatalf("accepted replay %+v", st.Replay)
			}
			prev = p.Seq
		}
		m := session.NewManager(session.Config{ResumeWindow: time.Minute})
		s := m.Adopt(st)
		if err := s.Resume(st.PushSeq, discard{}, nil); err != nil {
			t.Fatalf("resuming an adopted session: %v", err)
		}
		m.Shutdown()
	})
}

// discard is a connection that drops what it is sent.
type discard struct{}

func (discard) Send(wire.Frame) error      { return nil }
func (discard) Kick(protocol.Code, string) {}
