package presence

import (
	"testing"

	"github.com/moonforge/moonforge/engine/call"
)

func TestDirectoryFollowsSessions(t *testing.T) {
	d := NewDirectory()
	check := func(step string, online, connected bool) {
		t.Helper()
		if on, conn := d.Online("p1"); on != online || conn != connected {
			t.Fatalf("%s: Online = %v, %v; want %v, %v", step, on, conn, online, connected)
		}
	}
	check("never seen", false, false)
	d.Notify(call.Presence{PlayerID: "p1", SessionID: "s1", Event: call.SessionStarted})
	check("started", true, true)
	d.Notify(call.Presence{PlayerID: "p1", SessionID: "s1", Event: call.SessionDetached})
	check("disconnected", true, false)
	d.Notify(call.Presence{PlayerID: "p1", SessionID: "s1", Event: call.SessionResumed})
	check("resumed", true, true)
	// A new login: s2 starts, then s1's end ("replaced") arrives and must not take s2 offline.
	d.Notify(call.Presence{PlayerID: "p1", SessionID: "s2", Event: call.SessionStarted})
	d.Notify(call.Presence{PlayerID: "p1", SessionID: "s1", Event: call.SessionEnded, Reason: "replaced"})
	d.Notify(call.Presence{PlayerID: "p1", SessionID: "s1", Event: call.SessionDetached})
	check("replaced", true, true)
	d.Notify(call.Presence{PlayerID: "p1", SessionID: "s2", Event: call.SessionEnded, Reason: "expired"})
	check("ended", false, false)
	d.Notify(call.Presence{PlayerID: "p1", SessionID: "s2", Event: call.SessionResumed})
	check("a stale resume", false, false)
}
