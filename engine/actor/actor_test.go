package actor_test

import (
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/moonforge/moonforge/engine/actor"
	"github.com/moonforge/moonforge/engine/call"
	"github.com/moonforge/moonforge/engine/protocol"
	"github.com/moonforge/moonforge/engine/schema"
	"github.com/moonforge/moonforge/engine/script"
)

func bundle(t *testing.T, src string) *script.Bundle {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "lua", "lobby")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "h.lua"), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	sch, err := schema.Load("../../proto")
	if err != nil {
		t.Fatal(err)
	}
	b, err := script.Compile(filepath.Dir(dir), sch, nil)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func withDelta(delta string) string {
	return "local d = " + delta + "\n" + `mf.handle("EchoReq", function(ctx, req)
  if req.n < 0 then while true do end end
  return "EchoAck", { n = req.n + d }
end)`
}

type result struct {
	id   uint16
	n    int64
	code protocol.Code
}

type replier struct{ out chan result }

func (r replier) Post(a call.Answer) {
	if a.Err != nil {
		r.out <- result{code: a.Err.Code}
		return
	}
	id, p := a.MsgID, a.Payload
	var ack struct{ n int64 }
	// EchoAck{n} is field 2, a varint: decode it by hand to keep the test independent.
	for i := 0; i < len(p); {
		key := p[i]
		i++
		v, shift := int64(0), 0
		for i < len(p) {
			b := p[i]
			i++
			v |= int64(b&0x7f) << shift
			shift += 7
			if b < 0x80 {
				break
			}
		}
		if key == 0x10 {
			ack.n = v
		}
	}
	r.out <- result{id: id, n: ack.n}
}

func echo(t *testing.T, a *actor.Actor, b *script.Bundle, n int64, deadline time.Duration) result {
	t.Helper()
	m := b.Schema.ByName("EchoReq")
	payload := []byte{0x10}
	for u := uint64(n); ; u >>= 7 {
		if u < 0x80 {
			payload = append(payload, byte(u))
			break
		}
		payload = append(payload, byte(u)|0x80)
	}
	r := replier{out: make(chan result, 1)}
	req := &call.Request{MsgID: m.ID, Seq: 1, Payload: payload, Deadline: time.Now().Add(deadline), Post: r}
	if !a.Send(func(vm *script.VM) { vm.CallHandler(req) }) {
		t.Fatal("mailbox refused a task")
	}
	select {
	case res := <-r.out:
		return res
	case <-time.After(10 * time.Second):
		t.Fatal("no answer")
		return result{}
	}
}

func newSystem(t *testing.T, b *script.Bundle, svc *script.Services) (*actor.System, *script.Versions) {
	t.Helper()
	versions := script.NewVersions(b)
	sys := actor.NewSystem(actor.SystemConfig{Services: svc, Versions: versions, WatchInterval: 5 * time.Millisecond})
	t.Cleanup(sys.Stop)
	return sys, versions
}

func TestActorRunsTasksAndSurvivesEndlessLoop(t *testing.T) {
	b := bundle(t, withDelta("1"))
	sys, _ := newSystem(t, b, &script.Services{HandlerTimeout: 50 * time.Millisecond})
	a, err := sys.Spawn(actor.Config{Name: "a", Role: "lobby"})
	if err != nil {
		t.Fatal(err)
	}
	if r := echo(t, a, b, 1, time.Second); r.n != 2 {
		t.Fatalf("reply %+v", r)
	}
	if r := echo(t, a, b, -1, 10*time.Second); r.code != protocol.Internal {
		t.Fatalf("endless loop: %+v", r)
	}
	if r := echo(t, a, b, 5, time.Second); r.n != 6 {
		t.Fatalf("after the loop: %+v", r)
	}
}

// busyActor returns an actor with a mailbox of size whose goroutine is in a task that runs until
// release is closed.
func busyActor(t *testing.T, size int) (a *actor.Actor, release chan struct{}) {
	t.Helper()
	b := bundle(t, withDelta("1"))
	sys, _ := newSystem(t, b, &script.Services{})
	a, err := sys.Spawn(actor.Config{Name: "a", Role: "lobby", MailboxSize: size})
	if err != nil {
		t.Fatal(err)
	}
	started, release := make(chan struct{}), make(chan struct{})
	a.Send(func(*script.VM) { close(started); <-release })
	<-started
	return a, release
}

func TestMailboxFullRefuses(t *testing.T) {
	a, release := busyActor(t, 2)
	accepted := 0
	for i := 0; i < 10; i++ {
		if a.Send(func(*script.VM) {}) {
			accepted++
		}
	}
	close(release)
	if accepted != 2 {
		t.Fatalf("a mailbox of 2 accepted %d tasks while busy", accepted)
	}
}

func TestMailboxBytesRefuses(t *testing.T) {
	b := bundle(t, withDelta("1"))
	versions := script.NewVersions(b)
	sys := actor.NewSystem(actor.SystemConfig{Services: &script.Services{}, Versions: versions, MailboxBytes: 1000})
	t.Cleanup(sys.Stop)
	a, err := sys.Spawn(actor.Config{Name: "a", Role: "lobby", MailboxSize: 100})
	if err != nil {
		t.Fatal(err)
	}
	started, release := make(chan struct{}), make(chan struct{})
	a.Send(func(*script.VM) { close(started); <-release })
	<-started
	accepted := 0
	for i := 0; i < 10; i++ {
		if a.SendBytes(func(*script.VM) {}, 300) {
			accepted++
		}
	}
	if accepted != 3 || a.QueuedBytes() != 900 {
		t.Fatalf("1000 bytes of mailbox accepted %d tasks of 300 bytes (%d queued)", accepted, a.QueuedBytes())
	}
	if !a.SendBytes(func(*script.VM) {}, 0) {
		t.Fatal("a task without bytes was refused while the task count allows it")
	}
	done := make(chan struct{})
	a.Send(func(*script.VM) { close(done) })
	close(release)
	<-done
	if q := a.QueuedBytes(); q != 0 {
		t.Fatalf("%d bytes still counted after the tasks ran", q)
	}
}

func TestNewVersionAppliedBetweenTasksAndWhenIdle(t *testing.T) {
	v1 := bundle(t, withDelta("1"))
	v2 := bundle(t, withDelta("100"))
	sys, versions := newSystem(t, v1, &script.Services{})
	busy, err := sys.Spawn(actor.Config{Name: "busy", Role: "lobby"})
	if err != nil {
		t.Fatal(err)
	}
	idle, err := sys.Spawn(actor.Config{Name: "idle", Role: "lobby"})
	if err != nil {
		t.Fatal(err)
	}
	// A task that is running when the version changes finishes on the old version.
	started, release := make(chan struct{}), make(chan struct{})
	var during atomic.Value
	busy.Send(func(vm *script.VM) { close(started); <-release; during.Store(vm.Version()) })
	<-started
	versions.Set(v2)
	close(release)
	if r := echo(t, busy, v2, 1, time.Second); r.n != 101 {
		t.Fatalf("next task after the change ran old code: %+v", r)
	}
	if during.Load() != v1.Version {
		t.Fatalf("the running task switched version mid-way")
	}
	// An idle actor applies the version without waiting for a task.
	deadline := time.Now().Add(5 * time.Second)
	for idle.Version() != v2.Version {
		if time.Now().After(deadline) {
			t.Fatal("idle actor did not apply the new version")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestPoolHasItsActors(t *testing.T) {
	b := bundle(t, withDelta("1"))
	sys, _ := newSystem(t, b, &script.Services{})
	p, err := sys.NewPool("lobby", 8, 16)
	if err != nil {
		t.Fatal(err)
	}
	if p.Size() != 8 || p.Role() != "lobby" {
		t.Fatalf("pool of %d %s actors", p.Size(), p.Role())
	}
	seen := map[*actor.Actor]bool{}
	for i := range p.Size() {
		seen[p.Actor(i)] = true
	}
	if len(seen) != 8 {
		t.Fatalf("%d distinct actors of 8", len(seen))
	}
}

func TestStopFinishesQueuedTasks(t *testing.T) {
	b := bundle(t, withDelta("1"))
	versions := script.NewVersions(b)
	sys := actor.NewSystem(actor.SystemConfig{Services: &script.Services{}, Versions: versions})
	a, err := sys.Spawn(actor.Config{Name: "a", Role: "lobby"})
	if err != nil {
		t.Fatal(err)
	}
	var ran atomic.Int32
	for i := 0; i < 50; i++ {
		a.Send(func(*script.VM) { ran.Add(1) })
	}
	sys.Stop()
	if ran.Load() != 50 {
		t.Fatalf("%d of 50 queued tasks ran before stop", ran.Load())
	}
	if a.Send(func(*script.VM) {}) {
		t.Fatal("a stopped actor took a task")
	}
}

func TestTimersRunOnTheActor(t *testing.T) {
	b := bundle(t, `
local m = mf.module("m")
m.ticks = 0
mf.timer.every(0.005, function() m.ticks = m.ticks + 1 end)
mf.handle("EchoReq", function(ctx, req) return "EchoAck", { n = m.ticks } end)`)
	sys, _ := newSystem(t, b, &script.Services{})
	a, err := sys.Spawn(actor.Config{Name: "a", Role: "lobby"})
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for echo(t, a, b, 0, time.Second).n < 3 {
		if time.Now().After(deadline) {
			t.Fatal("the timer did not run")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// An answer or Stop that arrives while the actor is busy takes no task's place in its mailbox, and
// is seen after the tasks queued before it.
func TestEventsReachABusyActor(t *testing.T) {
	a, release := busyActor(t, 2)
	a.Deliver(call.Answer{ID: 12345}) // an answer no handler waits for: the VM drops it
	var ran atomic.Int32
	accepted := 0
	for range 10 {
		if a.Send(func(*script.VM) { ran.Add(1) }) {
			accepted++
		}
	}
	if accepted != 2 {
		t.Fatalf("a mailbox of 2 with an answer waiting accepted %d tasks", accepted)
	}
	a.Stop()
	close(release)
	select {
	case <-a.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("the actor did not stop")
	}
	if ran.Load() != 2 {
		t.Fatalf("%d of the 2 queued tasks ran before the actor stopped", ran.Load())
	}
}
