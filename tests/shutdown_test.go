package tests

import (
	"testing"
	"time"

	"github.com/moonforge/moonforge/engine/protocol"
)

// TestGracefulStop sends SIGINT with clients connected: each gets Kick SERVER_SHUTDOWN and is
// closed, and the process exits with status 0.
func TestGracefulStop(t *testing.T) {
	t.Parallel()
	s := startServer(t, options{})
	conns := map[string]*rawConn{}
	for _, transport := range []string{"tcp", "ws"} {
		r := dialRaw(t, s, transport)
		r.login("leaving-"+transport, 1)
		conns["logged in/"+transport] = r
		conns["not logged in/"+transport] = dialRaw(t, s, transport)
	}
	arena := dialRaw(t, s, "tcp")
	arena.login("in-arena", 1)
	arena.send(frame{id: s.msgs.Schema.ByName("ArenaJoinReq").ID, seq: 2})
	arena.reply(2, 5*time.Second)
	conns["in an arena"] = arena

	done := make(chan int, 1)
	go func() { done <- s.stop() }()
	for name, r := range conns {
		t.Run(name, func(t *testing.T) {
			r.t = t
			r.expectKickAndClose(protocol.ServerShutdown, 15*time.Second)
		})
	}
	if code := <-done; code != 0 {
		t.Errorf("exit status %d after SIGINT, want 0", code)
	}
	if !s.log.contains(`msg=stopped`) {
		t.Errorf("the log does not say the server stopped")
	}
}
