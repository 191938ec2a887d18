package cluster

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/moonforge/moonforge/engine/bus"
	"github.com/moonforge/moonforge/engine/registry"
)

// A push a sender made while the session directory named the old proxy, still on its way through
// it when the session moves, reaches the client before a push the sender makes afterwards: the
// sender's first push after the move goes through the old proxy (pushTo), which forwards it behind
// the earlier one.
func TestPushAfterAMoveKeepsTheSendersOrder(t *testing.T) {
	f, err := bus.Open(bus.Options{DataDir: t.TempDir(), MaxPayload: 1 << 20, Name: "test"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(f.Close)
	ctx := context.Background()
	reg, err := registry.Open(ctx, f.JS, registry.Config{Replicas: 1, NodeTTL: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	start := func(id, role string, push func(player string, msgID uint16, payload []byte) bool) *Cluster {
		c, err := New(Config{Node: id, Roles: []string{role}, Fabric: f, Registry: reg})
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Start(Deps{Record: func() registry.Record { return registry.Record{} }, Push: push}, 200*time.Millisecond); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Stop(time.Second) })
		return c
	}
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
	waitEntry := func(proxy string) {
		end := time.Now().Add(5 * time.Second)
		for s, _ := sender.sessions.Of("p1"); s.Proxy != proxy; s, _ = sender.sessions.Of("p1") {
			if time.Now().After(end) {
				t.Fatalf("the sender never saw p1 on %s", proxy)
			}
			time.Sleep(time.Millisecond)
		}
	}
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
	end := time.Now().Add(5 * time.Second)
	for {
		mu.Lock()
		s := fmt.Sprint(got)
		mu.Unlock()
		if s == "[first second third]" {
			return
		}
		if time.Now().After(end) {
			t.Fatalf("the new proxy got %s", s)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

type noPlayers struct{}

func (noPlayers) Push(string, uint16, []byte) bool { return false }
func (noPlayers) PushAll(uint16, []byte) int       { return 0 }
