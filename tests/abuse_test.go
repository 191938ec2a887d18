package tests

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/moonforge/moonforge/engine/protocol"
	"github.com/moonforge/moonforge/engine/store/storetest"
)

// TestGuestDeviceIDs: PROTOCOL.md's 16 to 128 bytes; anything else is BAD_REQUEST.
func TestGuestDeviceIDs(t *testing.T) {
	t.Parallel()
	s := startServer(t, options{})
	ctx := timeout(t, 20*time.Second)
	for n, ok := range map[int]bool{15: false, 16: true, 128: true, 129: false} {
		_, err := s.dial(t, "tcp").Login(ctx, "guest", strings.Repeat("g", n), "", nil)
		if ok && err != nil {
			t.Errorf("device id of %d bytes: %v", n, err)
		}
		if !ok {
			expectCode(t, "device id out of range", err, protocol.BadRequest)
		}
	}
	// The worked example's id.
	if _, err := s.dial(t, "ws").Login(ctx, "guest", "device-7f3a9c21e5", "", nil); err != nil {
		t.Fatalf("the worked example's device id: %v", err)
	}
}

// TestDevTicketOnlyInDev: the demo's forgeable dev_ticket method does not exist in production.
func TestDevTicketOnlyInDev(t *testing.T) {
	t.Parallel()
	s := startServer(t, options{production: true})
	_, err := s.dial(t, "tcp").Login(timeout(t, 10*time.Second), "dev_ticket", "", "dev:mallory", nil)
	expectCode(t, "dev_ticket in production", err, protocol.BadRequest)
}

// TestLoginThrottle: failed password logins of one account are free 3 times, then delayed with
// a doubling wait (RATE_LIMITED with retry_after_ms, even for the right password), and locked
// after auth.lockout_failures; another account from the same address is not affected.
func TestLoginThrottle(t *testing.T) {
	t.Parallel()
	s := startServer(t, options{config: "auth:\n  failure_delay: 300ms\n  lockout_failures: 6\n  lockout: 3s\n"})
	ctx := timeout(t, 60*time.Second)
	for _, account := range []string{"victim", "bystander"} {
		if _, err := s.dial(t, "tcp").Login(ctx, "password", account, "right password", map[string]string{"register": "1"}); err != nil {
			t.Fatal(err)
		}
	}
	// Each attempt on a new connection: a connection that keeps trying during a wait is kicked.
	attempt := func(secret string) error {
		_, err := s.dial(t, "tcp").Login(ctx, "password", "victim", secret, nil)
		return err
	}
	for range 4 {
		expectCode(t, "a wrong password", attempt("wrong"), protocol.Unauthenticated)
	}
	ce := expectCode(t, "right after the 4th failure", attempt("right password"), protocol.RateLimited)
	if ce.RetryAfterMs == 0 || ce.RetryAfterMs > 301 {
		t.Fatalf("retry_after_ms %d, want up to 300", ce.RetryAfterMs)
	}
	retry := func(ce *protocol.CodeError) { time.Sleep(time.Duration(ce.RetryAfterMs) * time.Millisecond) }
	retry(ce)
	expectCode(t, "5th failure", attempt("wrong"), protocol.Unauthenticated)
	ce = expectCode(t, "right after the 5th failure", attempt("wrong"), protocol.RateLimited)
	if ce.RetryAfterMs <= 300 {
		t.Fatalf("retry_after_ms %d after the 5th failure, want it doubled", ce.RetryAfterMs)
	}
	if _, err := s.dial(t, "ws").Login(ctx, "password", "bystander", "right password", nil); err != nil {
		t.Fatalf("another account from the same address: %v", err)
	}
	retry(ce)
	expectCode(t, "6th failure", attempt("wrong"), protocol.Unauthenticated)
	ce = expectCode(t, "locked out", attempt("right password"), protocol.RateLimited)
	if ce.RetryAfterMs < 2000 {
		t.Fatalf("lockout retry_after_ms %d, want about 3000", ce.RetryAfterMs)
	}
	retry(ce)
	if err := attempt("right password"); err != nil {
		t.Fatalf("after the lockout: %v", err)
	}
	if !s.log.waitFor(5*time.Second, "failed logins delayed") {
		t.Fatal("the throttle left no log line")
	}

	// A connection that ignores the retry hint is kicked after gate.max_unauthenticated tries.
	for range 3 {
		_ = attempt("wrong")
	}
	r := dialRaw(t, s, "tcp")
	for seq := uint32(1); seq <= 6; seq++ {
		r.sendMsg(protocol.MsgLoginReq, seq, &protocol.LoginReq{Method: "password", Account: "victim", Secret: "wrong"})
	}
	r.expectKickAndCloseAfterReplies(protocol.Unauthenticated, 10*time.Second)
}

// TestGuestCreationLimit: auth.guests_per_ip_minute new guests per address and minute; an
// existing guest still logs in.
func TestGuestCreationLimit(t *testing.T) {
	t.Parallel()
	s := startServer(t, options{config: "auth:\n  guests_per_ip_minute: 3\n"})
	ctx := timeout(t, 20*time.Second)
	for i := range 3 {
		guest(t, s.dial(t, "tcp"), "creation-"+string(rune('a'+i)))
	}
	_, err := s.dial(t, "tcp").Login(ctx, "guest", deviceID("creation-d"), "", nil)
	ce := expectCode(t, "the 4th new guest in a minute", err, protocol.RateLimited)
	if ce.RetryAfterMs == 0 {
		t.Fatal("no retry hint")
	}
	if ack := guest(t, s.dial(t, "ws"), "creation-a"); ack.Created {
		t.Fatal("an existing guest was created again")
	}
}

// TestMemoryShedding: above memory_high_water of memory_limit (here at once), new logins get
// UNAVAILABLE with a retry hint; the connection stays and is served.
func TestMemoryShedding(t *testing.T) {
	t.Parallel()
	s := startServer(t, options{config: "memory_limit: 67108864\nmemory_high_water: 0.001\n"})
	if !s.log.waitFor(10*time.Second, "memory above the high-water mark") {
		t.Fatal("the node did not report shedding")
	}
	c := s.dial(t, "ws")
	_, err := c.Login(timeout(t, 10*time.Second), "guest", deviceID("during-shedding"), "", nil)
	ce := expectCode(t, "a login while shedding", err, protocol.Unavailable)
	if ce.RetryAfterMs == 0 {
		t.Fatal("no retry hint")
	}
	if _, err := c.Ping(timeout(t, 5*time.Second)); err != nil {
		t.Fatalf("the connection after a shed login: %v", err)
	}
}

// expectKickAndCloseAfterReplies reads until the connection ends and checks that it ended with
// Kick{code}; replies may come before the Kick.
func (r *rawConn) expectKickAndCloseAfterReplies(code protocol.Code, timeout time.Duration) {
	r.t.Helper()
	deadline := time.After(timeout)
	var kick *protocol.Kick
	for {
		select {
		case f, ok := <-r.frames:
			if !ok {
				if kick == nil || protocol.Code(kick.Code) != code {
					r.t.Fatalf("the connection ended (%v) with Kick %v, want %s", r.err, kick, code)
				}
				return
			}
			if f.id == protocol.MsgKick {
				kick = decodeKick(r.t, f)
			}
		case <-deadline:
			r.t.Fatalf("the connection did not end within %s", timeout)
		}
	}
}

// TestRoomsPerPlayer: a room whose creator's join fails is closed; one player making rooms that
// stay open when empty holds at most session.max_rooms_per_player of them; another player is not
// affected.
func TestRoomsPerPlayer(t *testing.T) {
	t.Parallel()
	s := startServer(t, options{fixtures: true, config: "session:\n  max_rooms_per_player: 3\n"})
	rooms := func(want string) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			_, body := s.httpGet(t, "/status")
			if strings.Contains(string(body), `"rooms": `+want+`,`) {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("status: %s, want %s rooms", body, want)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	c := s.dial(t, "tcp")
	guest(t, c, "room-hoarder")
	_, err := s.call(timeout(t, 10*time.Second), c, "HallReq", `{"refuse": true}`)
	expectCode(t, "a hall its creator cannot join", err, 1700)
	rooms("0")
	for range 3 {
		s.mustCall(t, c, "HallReq", `{}`, "HallAck")
	}
	_, err = s.call(timeout(t, 10*time.Second), c, "HallReq", `{}`)
	expectCode(t, "a 4th hall", err, protocol.Unavailable)
	rooms("3")
	other := s.dial(t, "ws")
	guest(t, other, "room-maker")
	s.mustCall(t, other, "HallReq", `{}`, "HallAck")
	rooms("4")
}

// TestLoginThrottleAcrossServers: two servers on one Redis store count an account's failed
// logins together, so a guesser spreading attempts over both is locked out as through one.
func TestLoginThrottleAcrossServers(t *testing.T) {
	t.Parallel()
	redis := storetest.StartRedis(t)
	config := "store:\n  backend: redis\n  redis:\n    addrs: [" + redis.Addr + "]\n    prefix: \"throttle-test:\"\n" +
		"auth:\n  lockout_failures: 3\n  lockout: 1m\n"
	servers := []*server{startServer(t, options{config: config}), startServer(t, options{config: config})}
	ctx := timeout(t, 60*time.Second)
	if _, err := servers[0].dial(t, "tcp").Login(ctx, "password", "victim", "right password", map[string]string{"register": "1"}); err != nil {
		t.Fatal(err)
	}
	for i, via := range []int{0, 1, 0} { // the third failure locks the account
		_, err := servers[via].dial(t, "tcp").Login(ctx, "password", "victim", "wrong", nil)
		expectCode(t, fmt.Sprintf("failure %d, through server %d", i+1, via), err, protocol.Unauthenticated)
	}
	_, err := servers[1].dial(t, "tcp").Login(ctx, "password", "victim", "right password", nil)
	ce := expectCode(t, "the right password through the server that saw one failure", err, protocol.RateLimited)
	if ce.RetryAfterMs < 50_000 {
		t.Fatalf("retry_after_ms %d, want the lockout's minute", ce.RetryAfterMs)
	}
}
