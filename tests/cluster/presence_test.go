package cluster

import (
	"context"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/moonforge/moonforge/engine/client"
	"github.com/moonforge/moonforge/engine/protocol"
)

// ask sends the request name with the fields of js and returns the reply's string field.
func (e *env) ask(c *client.Client, name, js, field string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	id, payload, err := e.msgs.Encode(name, js)
	if err != nil {
		return "", err
	}
	f, err := c.Request(ctx, id, payload)
	if err != nil {
		return "", err
	}
	m, err := e.msgs.Message(f.MsgID, f.Payload)
	if err != nil {
		return "", err
	}
	return m.Get(m.Descriptor().Fields().ByName(protoreflect.Name(field))).String(), nil
}

// A room on a game node follows a player whose session lives on a proxy: the connection drops
// (on_disconnect), the client resumes through another proxy (on_reconnect), it logs out (on_leave
// with "offline"). The proxies forward their presence messages to the node of the player's seat.
func TestRoomPresenceOnAnotherNode(t *testing.T) {
	e := newEnv(t)
	e.start("proxy-1", "proxy")
	e.start("proxy-2", "proxy")
	e.start("game-1", "game")
	e.waitNodes("proxy-1", "proxy-2", "game-1")

	a, ack := e.dial("proxy-1", "room-player")
	watcher, _ := e.dial("proxy-2", "room-watcher")
	room, err := e.ask(a, "RoomJoinReq", `{}`, "room_id")
	if err != nil {
		t.Fatal(err)
	}
	if node, err := e.ask(watcher, "RoomJoinReq", `{}`, "node"); node != "game-1" {
		t.Fatalf("the probe room is on %q (%v), want game-1", node, err)
	}
	events := func() string {
		out, err := e.ask(watcher, "RoomEventsReq", `{"room_id": "`+room+`"}`, "events")
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	waitEvents := func(want string) {
		t.Helper()
		for end := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
			got := events()
			if got == want {
				return
			}
			if time.Now().After(end) {
				t.Fatalf("the room saw %q, want %q", got, want)
			}
		}
	}
	if got := events(); got != "" {
		t.Fatalf("events before any drop: %q", got)
	}

	_ = a.Close() // the connection drops; proxy-1 keeps the session
	p := ack.PlayerId
	waitEvents(p + ":disconnect")

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	b := e.connect("proxy-2")
	if _, err := b.Resume(ctx, ack.Token, a.LastPushSeq()); err != nil {
		t.Fatalf("resume on proxy-2: %v", err)
	}
	waitEvents(p + ":disconnect," + p + ":reconnect")

	if _, err := b.Request(ctx, protocol.MsgLogoutReq, nil); err != nil {
		t.Fatalf("logout: %v", err)
	}
	waitEvents(p + ":disconnect," + p + ":reconnect," + p + ":leave-offline")
	if strings.Contains(e.nodes["game-1"].logText(), "refused a message from the bus") {
		t.Fatalf("game-1 refused a bus message:\n%s", e.nodes["game-1"].logText())
	}
}

// mf.player.online on a game node follows a player whose session lives on a proxy and who holds
// no seat there: the connection drops (online, not connected), the client resumes through another
// proxy (connected), it drops and resumes at once on the first proxy, it logs out (offline).
func TestPlayerOnlineOnAnotherNode(t *testing.T) {
	e := newEnv(t)
	e.start("proxy-1", "proxy")
	e.start("proxy-2", "proxy")
	e.start("game-1", "game")
	e.waitNodes("proxy-1", "proxy-2", "game-1")

	a, ack := e.dial("proxy-1", "online-player")
	watcher, _ := e.dial("proxy-2", "online-watcher")
	p := ack.PlayerId
	waitState := func(want string) {
		t.Helper()
		for end := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
			got, err := e.ask(watcher, "OnlineReq", `{"player": "`+p+`"}`, "state")
			if err != nil {
				t.Fatal(err)
			}
			if got == want {
				return
			}
			if time.Now().After(end) {
				t.Fatalf("game-1 sees the player %q, want %q", got, want)
			}
		}
	}
	waitState("online,connected")

	_ = a.Close() // the connection drops; proxy-1 keeps the session
	waitState("online")

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	b := e.connect("proxy-2")
	if _, err := b.Resume(ctx, ack.Token, a.LastPushSeq()); err != nil {
		t.Fatalf("resume on proxy-2: %v", err)
	}
	waitState("online,connected")

	_ = b.Close() // dropped again, now on proxy-2
	waitState("online")
	c := e.connect("proxy-2")
	if _, err := c.Resume(ctx, ack.Token, b.LastPushSeq()); err != nil {
		t.Fatalf("resume on proxy-2 again: %v", err)
	}
	waitState("online,connected")

	// Dropped and resumed on proxy-1 at once: proxy-2's mark of the drop races the move.
	_ = c.Close()
	d := e.connect("proxy-1")
	if _, err := d.Resume(ctx, ack.Token, c.LastPushSeq()); err != nil {
		t.Fatalf("resume on proxy-1 right after the drop: %v", err)
	}
	waitState("online,connected")

	if _, err := d.Request(ctx, protocol.MsgLogoutReq, nil); err != nil {
		t.Fatalf("logout: %v", err)
	}
	waitState("offline")
}
