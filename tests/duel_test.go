package tests

import (
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/moonforge/moonforge/engine/client"
	"github.com/moonforge/moonforge/engine/protocol"
)

// startDuel starts a server with the duel example (examples/duel) beside the demo.
func startDuel(t *testing.T) *server {
	t.Helper()
	return startServer(t, options{config: "session:\n  resume_window: 2s\n", prepare: func(t testing.TB, dir string) {
		example := filepath.Join(built.root, "examples", "duel")
		copyTree(t, filepath.Join(example, "lua"), filepath.Join(dir, "lua"))
		copyTree(t, filepath.Join(example, "proto"), filepath.Join(dir, "proto"))
	}})
}

// waitPush waits for a push of the named message on c, skipping others, and returns its JSON.
func (s *server) waitPush(t *testing.T, c *client.Client, name string) string {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		select {
		case p := <-c.Pushes():
			got, text, err := s.msgs.Decode(p.MsgID, p.Payload)
			if err != nil {
				t.Fatalf("push %d: %v", p.MsgID, err)
			}
			if got == name {
				return text
			}
		case <-deadline:
			t.Fatalf("no %s push within 10s", name)
		}
	}
}

// sessions returns the live sessions that admin /status counts.
func (s *server) sessions(t *testing.T) int {
	t.Helper()
	_, body := s.httpGet(t, "/status")
	var st struct{ Sessions int }
	if err := json.Unmarshal(body, &st); err != nil {
		t.Fatalf("/status: %v", err)
	}
	return st.Sessions
}

func appCode(t *testing.T, s *server, c *client.Client, name, body string, want protocol.Code) {
	t.Helper()
	_, err := s.call(timeout(t, 10*time.Second), c, name, body)
	expectCode(t, name+" "+body, err, want)
}

// The duel example played by two clients: room messages reach only the rooms that declare them
// (and the lobby's handler answers the others), a player whose session expired in the queue is
// not matched, the room hears of a dropped connection and its resume, the lobby asks the room
// with mf.room.call, and the wins are saved.
func TestDuelGame(t *testing.T) {
	s := startDuel(t)
	a, b, gone := s.dial(t, "tcp"), s.dial(t, "tcp"), s.dial(t, "tcp")
	loginA := guest(t, a, "duel-a")
	idB := guest(t, b, "duel-b").PlayerId
	guest(t, gone, "duel-gone")
	idA := loginA.PlayerId

	// A room message from a player in no duel goes to the lobby's handler, also from inside a
	// room of another type (the demo's arena, whose on_message used to get it).
	appCode(t, s, a, "duel.PickReq", `{"pick": "rock"}`, 1404)
	s.mustCall(t, a, "ArenaJoinReq", `{"new_room": true}`, "ArenaJoinAck")
	appCode(t, s, a, "duel.PickReq", `{"pick": "rock"}`, 1404)
	s.mustCall(t, a, "ArenaLeaveReq", ``, "ArenaLeaveAck")

	// A player whose session expires while queued is not matched.
	if m := s.mustCall(t, gone, "duel.QueueReq", ``, "QueueAck"); field(m, "matched").Bool() {
		t.Fatal("matched with nobody queued")
	}
	_ = gone.Close()
	for deadline := time.Now().Add(15 * time.Second); s.sessions(t) != 2; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the closed client's session did not expire: %d sessions", s.sessions(t))
		}
	}
	if m := s.mustCall(t, a, "duel.QueueReq", ``, "QueueAck"); field(m, "matched").Bool() {
		t.Fatal("matched with a player whose session expired")
	}

	// b is paired with a. b's Matched push was queued before b's reply, so it has arrived when
	// the reply has (docs/lua-api.md: pushes before the reply).
	m := s.mustCall(t, b, "duel.QueueReq", ``, "QueueAck")
	roomID := field(m, "room_id").String()
	if !field(m, "matched").Bool() || roomID == "" {
		t.Fatalf("b was not matched: %v", m)
	}
	select {
	case p := <-b.Pushes():
		if name, text, _ := s.msgs.Decode(p.MsgID, p.Payload); name != "Matched" || !strings.Contains(text, idA) {
			t.Fatalf("b's first push: %s %s", name, text)
		}
	default:
		t.Fatal("b's Matched push did not come before its QueueAck")
	}
	if got := s.waitPush(t, a, "Matched"); !strings.Contains(got, idB) || !strings.Contains(got, roomID) {
		t.Fatalf("a's Matched: %s", got)
	}
	// A message only the arena takes is refused in a duel.
	appCode(t, s, a, "ArenaMoveReq", `{"dir": {"x": 1}}`, protocol.BadRequest)

	// The lobby asks the room (mf.room.call).
	st := s.mustCall(t, b, "duel.StatusReq", ``, "StatusAck")
	if field(st, "room_id").String() != roomID || field(st, "round").Uint() != 1 || field(st, "opponent").String() != idA || !field(st, "opponent_connected").Bool() {
		t.Fatalf("status: %v", st)
	}

	// a's connection drops; the room tells b, and again when a resumes.
	last := a.LastPushSeq()
	_ = a.Close()
	if got := s.waitPush(t, b, "OpponentState"); got != fmt.Sprintf(`{"opponent":%q}`, idA) {
		t.Fatalf("after a's drop: %s", got)
	}
	if st := s.mustCall(t, b, "duel.StatusReq", ``, "StatusAck"); field(st, "opponent_connected").Bool() {
		t.Fatal("status shows a connected while a's connection is closed")
	}
	a = s.dial(t, "tcp")
	if _, err := a.Resume(timeout(t, 10*time.Second), loginA.Token, last); err != nil {
		t.Fatalf("resume: %v", err)
	}
	if got := s.waitPush(t, b, "OpponentState"); got != fmt.Sprintf(`{"opponent":%q,"connected":true}`, idA) {
		t.Fatalf("after a's resume: %s", got)
	}

	// Two rounds, with the application's errors on the way.
	appCode(t, s, a, "duel.PickReq", `{"pick": "lizard"}`, protocol.BadRequest)
	s.mustCall(t, a, "duel.PickReq", `{"pick": "rock"}`, "PickAck")
	appCode(t, s, a, "duel.PickReq", `{"pick": "paper"}`, 1412)
	s.mustCall(t, b, "duel.PickReq", `{"pick": "scissors"}`, "PickAck")
	if got := s.waitPush(t, a, "RoundResult"); !strings.Contains(got, `"round":1,"winner":"`+idA+`"`) {
		t.Fatalf("round 1: %s", got)
	}
	s.mustCall(t, a, "duel.PickReq", `{"pick": "paper"}`, "PickAck")
	s.mustCall(t, b, "duel.PickReq", `{"pick": "rock"}`, "PickAck")
	if got := s.waitPush(t, b, "Over"); got != fmt.Sprintf(`{"winner":%q,"reason":"won"}`, idA) {
		t.Fatalf("over: %s", got)
	}
	if rec := s.mustCall(t, a, "duel.RecordReq", ``, "RecordAck"); field(rec, "wins").Uint() != 1 || field(rec, "losses").Uint() != 0 {
		t.Fatalf("a's record: %v", rec)
	}
	if rec := s.mustCall(t, b, "duel.RecordReq", ``, "RecordAck"); field(rec, "wins").Uint() != 0 || field(rec, "losses").Uint() != 1 {
		t.Fatalf("b's record: %v", rec)
	}
	// The room closed with the duel: its players are in no duel any more.
	appCode(t, s, b, "duel.StatusReq", ``, 1404)
}

// A player who drops out of a running duel and does not come back within the resume window
// loses it by forfeit (on_leave with "offline").
func TestDuelForfeitWhenASessionExpires(t *testing.T) {
	s := startDuel(t)
	a, b := s.dial(t, "tcp"), s.dial(t, "tcp")
	idA := guest(t, a, "forfeit-a").PlayerId
	guest(t, b, "forfeit-b")
	s.mustCall(t, a, "duel.QueueReq", ``, "QueueAck")
	s.mustCall(t, b, "duel.QueueReq", ``, "QueueAck")
	s.waitPush(t, a, "Matched")
	_ = b.Close()
	if got := s.waitPush(t, a, "Over"); got != fmt.Sprintf(`{"winner":%q,"reason":"forfeit"}`, idA) {
		t.Fatalf("over: %s", got)
	}
	if rec := s.mustCall(t, a, "duel.RecordReq", ``, "RecordAck"); field(rec, "wins").Uint() != 1 {
		t.Fatalf("a's record: %v", rec)
	}
}

// Two tools/bot processes play the duel example against each other.
func TestBotsPlayADuel(t *testing.T) {
	s := startDuel(t)
	type result struct {
		out []byte
		err error
	}
	play := func(device, picks string, done chan<- result) {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		out, err := exec.CommandContext(ctx, built.bot, "-addr", s.tcp, "-proto", s.path("proto"),
			"-device", device, "-duel", "-picks", picks).CombinedOutput()
		done <- result{out, err}
	}
	rock, scissors := make(chan result, 1), make(chan result, 1)
	go play("duel-bot-rock-0001", "rock", rock)
	go play("duel-bot-scissors-01", "scissors", scissors)
	for _, c := range []struct {
		ch   chan result
		want string
	}{{rock, `won the duel (won), record {"wins":1}`}, {scissors, `lost the duel (won), record {"losses":1}`}} {
		r := <-c.ch
		if r.err != nil || !strings.Contains(string(r.out), c.want) {
			t.Errorf("bot: %v, want %q in:\n%s", r.err, c.want, r.out)
		}
	}
}
