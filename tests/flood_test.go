package tests

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/moonforge/moonforge/engine/protocol"
)

// TestChatFlood: one client floods the chat (every chat request goes to one actor) with requests
// it does not wait for, while 100 players chat normally. The flooder meets gate.max_in_flight
// (RATE_LIMITED), so its share of the chat actor's mailbox stays bounded, and every normal request
// is answered with ChatSendAck.
func TestChatFlood(t *testing.T) {
	t.Parallel()
	s := startServer(t, options{config: "auth:\n  guests_per_ip_minute: 0\n"})
	chatID := s.msgs.Schema.ByName("ChatSendReq").ID
	_, flood, err := s.msgs.Encode("ChatSendReq", `{"text": "flood"}`)
	if err != nil {
		t.Fatal(err)
	}

	flooder := dialRaw(t, s, "tcp")
	flooder.login("flooder", 1)
	var limited, answered atomic.Int64
	floodDone := make(chan struct{})
	go func() {
		defer close(floodDone)
		for f := range flooder.frames {
			if f.flags&flagReply == 0 {
				continue // chat pushes
			}
			if f.id == protocol.MsgError {
				limited.Add(1)
			} else {
				answered.Add(1)
			}
		}
	}()
	const floodN = 3000
	go func() {
		for seq := uint32(2); seq < 2+floodN; seq++ {
			if err := flooder.writeBytes(frame{id: chatID, seq: seq, payload: flood}.stream()); err != nil {
				return
			}
		}
	}()

	const players, each = 100, 3
	var wg sync.WaitGroup
	errs := make(chan error, players*each)
	for i := range players {
		c := s.dial(t, "tcp")
		guest(t, c, fmt.Sprintf("normal-player-%03d", i))
		go func() { // a player reads its pushes, as a game does
			for range c.Pushes() {
			}
		}()
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := range each {
				ctx := timeout(t, 20*time.Second)
				if _, err := s.call(ctx, c, "ChatSendReq", fmt.Sprintf(`{"text": "hello %d"}`, n)); err != nil {
					errs <- fmt.Errorf("player %d, message %d: %w", i, n, err)
				}
				time.Sleep(20 * time.Millisecond)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for limited.Load()+answered.Load() < floodN && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if got := limited.Load() + answered.Load(); got != floodN {
		t.Fatalf("the flooder got %d answers to %d requests", got, floodN)
	}
	if limited.Load() == 0 {
		t.Fatal("the flooder was never limited")
	}
	t.Logf("flooder: %d answered, %d RATE_LIMITED; %d normal requests all answered", answered.Load(), limited.Load(), players*each)
}

// TestChatLimit: the demo's chat takes a burst of 5 messages from a player, then refuses the next
// with APP_1003 and a wait, while another player still chats; after the wait the first may again.
func TestChatLimit(t *testing.T) {
	t.Parallel()
	s := startServer(t, options{})
	hasty, calm := s.dial(t, "tcp"), s.dial(t, "tcp")
	guest(t, hasty, "hasty-chatter-0001")
	guest(t, calm, "calm-chatter-00001")
	for i := range 5 {
		s.mustCall(t, hasty, "ChatSendReq", fmt.Sprintf(`{"text": "burst %d"}`, i), "ChatSendAck")
	}
	_, err := s.call(timeout(t, 5*time.Second), hasty, "ChatSendReq", `{"text": "one too many"}`)
	if err == nil || !strings.Contains(err.Error(), "APP_1003") || !strings.Contains(err.Error(), "slow down: wait") {
		t.Fatalf("6th message in a burst: %v, want APP_1003 slow down", err)
	}
	s.mustCall(t, calm, "ChatSendReq", `{"text": "still heard"}`, "ChatSendAck")
	time.Sleep(1100 * time.Millisecond) // one message's worth of the limit
	s.mustCall(t, hasty, "ChatSendReq", `{"text": "after the wait"}`, "ChatSendAck")
}

// busyChat is a prepare option for tests whose players chat faster than the demo's per-player
// limit (lua/lobby/chat.lua: a burst of 5, then 1 per second): it raises the limit in the server's
// copy of the script, as a game tunes its own.
func busyChat(t testing.TB, dir string) {
	path := filepath.Join(dir, "lua", "lobby", "chat.lua")
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	src := string(b)
	for _, limit := range []string{"local PER_SECOND = 1 ", "local BURST = 5 "} {
		if !strings.Contains(src, limit) {
			t.Fatalf("%s: no %q to raise", path, limit)
		}
		src = strings.Replace(src, limit, strings.Fields(limit)[0]+" "+strings.Fields(limit)[1]+" = 1000 ", 1)
	}
	if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
}
