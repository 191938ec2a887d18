package tests

import (
	"syscall"
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
	if !s.log.waitFor(5*time.Second, `msg=stopped`) {
		t.Errorf("the log does not say the server stopped")
	}
}

// TestGracefulStopBusy sends SIGTERM while a handler loops and requests are queued: the process
// still exits with status 0, the client gets Kick SERVER_SHUTDOWN, and a restart finds the store
// intact.
func TestGracefulStopBusy(t *testing.T) {
	t.Parallel()
	s := startServer(t, options{fixtures: true, config: "lua:\n  handler_timeout: 3s\n"})
	r := dialRaw(t, s, "tcp")
	r.login("busy-at-stop", 1)
	r.send(frame{id: s.msgs.Schema.ByName("LoopReq").ID, seq: 2})
	for seq := uint32(3); seq < 10; seq++ {
		r.send(frame{id: s.msgs.Schema.ByName("WhoReq").ID, seq: seq})
	}
	time.Sleep(100 * time.Millisecond)
	_ = s.proc.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.proc.done:
	case <-time.After(stopTimeout):
		t.Fatalf("no exit within %s of SIGTERM", stopTimeout)
	}
	if code := s.proc.cmd.ProcessState.ExitCode(); code != 0 {
		t.Errorf("exit status %d after SIGTERM, want 0", code)
	}
	var kick *protocol.Kick
	for f := range r.frames {
		if f.id == protocol.MsgKick {
			kick = decodeKick(t, f)
		}
	}
	if kick == nil || protocol.Code(kick.Code) != protocol.ServerShutdown {
		t.Errorf("the busy client ended with Kick %v, want SERVER_SHUTDOWN", kick)
	}
	s.restart()
	c := s.dial(t, "tcp")
	guest(t, c, "busy-at-stop")
	s.mustEcho(t, c, 1, 1)
}
