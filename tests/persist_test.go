package tests

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/moonforge/moonforge/engine/protocol"
)

// history returns the texts of ChatHistoryAck, oldest first.
func (s *server) history(t testing.TB, device string) []string {
	t.Helper()
	c := s.dial(t, "tcp")
	guest(t, c, device)
	m := s.mustCall(t, c, "ChatHistoryReq", `{"limit": 50}`, "ChatHistoryAck")
	list := field(m, "messages").List()
	out := make([]string, list.Len())
	for i := range list.Len() {
		msg := list.Get(i).Message()
		out[i] = msg.Get(msg.Descriptor().Fields().ByName("text")).String()
	}
	_ = c.Close()
	return out
}

// stats returns StatsAck.stats as chats_sent, arena_joins, arena_moves.
func (s *server) stats(t testing.TB, device string) (chats, joins, moves uint64) {
	t.Helper()
	c := s.dial(t, "tcp")
	guest(t, c, device)
	m := s.mustCall(t, c, "StatsReq", ``, "StatsAck")
	st := field(m, "stats").Message()
	chats = st.Get(st.Descriptor().Fields().ByName("chats_sent")).Uint()
	joins = st.Get(st.Descriptor().Fields().ByName("arena_joins")).Uint()
	moves = st.Get(st.Descriptor().Fields().ByName("arena_moves")).Uint()
	_ = c.Close()
	return chats, joins, moves
}

// TestPersistence checks that chat history and statistics survive a graceful restart and a
// SIGKILL sent right after the server acknowledged them.
func TestPersistence(t *testing.T) {
	t.Parallel()
	s := startServer(t, options{prepare: busyChat})
	const device = "keeper"

	c := s.dial(t, "tcp")
	login := guest(t, c, device)
	s.mustCall(t, c, "ChatSendReq", `{"text": "before the graceful stop"}`, "ChatSendAck")
	// The demo saves arena moves when the player leaves the room: a graceful stop closes rooms.
	s.mustCall(t, c, "ArenaJoinReq", `{}`, "ArenaJoinAck")
	for range 3 {
		s.mustCall(t, c, "ArenaMoveReq", `{"dir": {"x": 1}}`, "ArenaMoveAck")
	}
	if code := s.stop(); code != 0 {
		t.Fatalf("graceful stop: exit code %d", code)
	}
	s.restart()
	// Tokens outlive the process; sessions do not.
	ctx := timeout(t, 10*time.Second)
	if ack, err := s.dial(t, "tcp").Login(ctx, "token", "", login.Token, nil); err != nil || ack.PlayerId != login.PlayerId {
		t.Errorf("token login after a restart: %v %v, want player %s", ack, err, login.PlayerId)
	}
	_, err := s.dial(t, "tcp").Resume(ctx, login.Token, 0)
	expectCode(t, "resume after a restart", err, protocol.ResumeFailed)
	if got := s.history(t, device); len(got) != 1 || got[0] != "before the graceful stop" {
		t.Errorf("history after a graceful restart: %q", got)
	}
	if chats, joins, moves := s.stats(t, device); chats != 1 || joins != 1 || moves != 3 {
		t.Errorf("stats after a graceful restart: chats_sent %d arena_joins %d arena_moves %d, want 1, 1, 3", chats, joins, moves)
	}

	c = s.dial(t, "tcp")
	guest(t, c, device)
	s.mustCall(t, c, "ChatSendReq", `{"text": "before the kill"}`, "ChatSendAck")
	s.mustCall(t, c, "ArenaJoinReq", `{}`, "ArenaJoinAck")
	s.kill() // at once: nothing may be lost that was acknowledged
	s.restart()
	if got := s.history(t, device); len(got) != 2 || got[0] != "before the graceful stop" || got[1] != "before the kill" {
		t.Errorf("history after kill -9: %q", got)
	}
	if chats, joins, _ := s.stats(t, device); chats != 2 || joins != 2 {
		t.Errorf("stats after kill -9: chats_sent %d arena_joins %d, want 2 and 2", chats, joins)
	}

	// Many acknowledged writes in a burst, then kill -9.
	c = s.dial(t, "ws")
	guest(t, c, device)
	for range 20 {
		s.mustCall(t, c, "ChatSendReq", `{"text": "burst"}`, "ChatSendAck")
	}
	s.kill()
	s.restart()
	if got := s.history(t, device); len(got) != 22 || got[21] != "burst" {
		t.Errorf("history after a burst and kill -9: %d messages, want 22", len(got))
	}
	if chats, _, _ := s.stats(t, device); chats != 22 {
		t.Errorf("chats_sent after a burst and kill -9: %d, want 22", chats)
	}
}

// TestPersistChatOrderUnderKill: players chat at once on the one chat actor and the server is
// killed with SIGKILL while they do; after the restart the stored history holds every message
// that was acknowledged, in index order without gaps: the handlers' commits reached the store in
// the order the actor made them.
func TestPersistChatOrderUnderKill(t *testing.T) {
	t.Parallel()
	s := startServer(t, options{prepare: busyChat})
	const players, killAfter = 6, 60 // the demo keeps the last 100 messages
	var acked sync.Map               // index -> true
	var total atomic.Int64
	enough := make(chan struct{})
	var once sync.Once
	var wg sync.WaitGroup
	for p := range players {
		c := s.dial(t, "tcp")
		guest(t, c, fmt.Sprintf("order-%d", p))
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				m, err := s.call(context.Background(), c, "ChatSendReq", fmt.Sprintf(`{"text": "p%d m%d"}`, p, i))
				if err != nil {
					return // the kill
				}
				acked.Store(field(m, "index").Uint(), true)
				if total.Add(1) >= killAfter {
					once.Do(func() { close(enough) })
				}
			}
		}()
	}
	select {
	case <-enough:
	case <-time.After(30 * time.Second):
		t.Fatalf("only %d messages acknowledged in 30 s", total.Load())
	}
	s.kill()
	wg.Wait()
	s.restart()

	c := s.dial(t, "tcp")
	guest(t, c, "order-reader")
	m := s.mustCall(t, c, "ChatHistoryReq", `{"limit": 100}`, "ChatHistoryAck")
	list := field(m, "messages").List()
	stored := map[uint64]bool{}
	for i := range list.Len() {
		msg := list.Get(i).Message()
		index := msg.Get(msg.Descriptor().Fields().ByName("index")).Uint()
		if want := uint64(i + 1); index != want {
			t.Fatalf("stored history: message %d has index %d; want %d (in order, no gaps)", i, index, want)
		}
		stored[index] = true
	}
	acked.Range(func(k, _ any) bool {
		if !stored[k.(uint64)] {
			t.Errorf("message %d was acknowledged but is not in the stored history (%d messages)", k, list.Len())
		}
		return true
	})
	t.Logf("%d acknowledged, %d stored", total.Load(), list.Len())
}
