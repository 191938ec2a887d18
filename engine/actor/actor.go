// Package actor runs Lua VMs as actors: one goroutine owns each script.VM and takes work from a
// bounded mailbox, applies a new script version between two tasks (or ticks), runs the VM's
// timers, and, for rooms, ticks at a fixed rate. A System tracks every actor and interrupts any
// call that overruns its deadline.
package actor

import (
	"fmt"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/moonforge/moonforge/engine/call"
	"github.com/moonforge/moonforge/engine/script"
)

// Task is work for an actor. It runs on the actor's goroutine with exclusive use of the VM.
type Task func(vm *script.VM)

// Config describes one actor.
type Config struct {
	Name        string // for logs, e.g. "lobby/3" or "room/r12"
	Role        string // which role's scripts the VM runs
	MailboxSize int    // default: config.Default
	// Tick, if set, calls OnTick every Tick with the time since the previous tick and how late
	// this tick runs.
	Tick   time.Duration
	OnTick func(vm *script.VM, dt, late time.Duration)
	// OnStop runs on the actor's goroutine after the last task, before the VM closes.
	OnStop func(vm *script.VM)
	// AfterRun, if set, runs after the actor's timers ran or a waiting handler resumed: work
	// that no task of the actor's owner wraps (a room applies what its script asked for).
	AfterRun func(vm *script.VM)
}

// Actor is one goroutine with one VM and a mailbox.
type Actor struct {
	cfg     Config
	sys     *System
	vm      *script.VM
	mailbox chan queued
	stopped atomic.Bool
	done    chan struct{}
	queued  atomic.Int64    // bytes of the tasks sent with SendBytes and not yet run
	version atomic.Value    // string: the version the VM runs
	changed <-chan struct{} // closed when the version the VM was loaded with is replaced

	box     call.Address // where the answers of the VM's calls arrive
	mu      sync.Mutex
	answers []call.Answer // arrived, not yet given to the VM
	wake    chan struct{} // signalled when answers arrive, a version is published, or Stop is called
}

// queued is a task in the mailbox (run, or handle with req) and the bytes it holds.
type queued struct {
	run    Task
	handle RequestTask
	req    *call.Request
	bytes  int
}

// Deliver takes the answer of a call the actor's VM made (call.Inbox): it is queued outside the
// mailbox, so it is never refused, and given to the VM (VM.Resume) on the actor's goroutine.
func (a *Actor) Deliver(ans call.Answer) {
	a.mu.Lock()
	a.answers = append(a.answers, ans)
	a.mu.Unlock()
	a.poke()
}

// poke wakes the actor's goroutine to look at its answers, the version in force and Stop.
func (a *Actor) poke() {
	select {
	case a.wake <- struct{}{}:
	default:
	}
}

func (a *Actor) takeAnswers() []call.Answer {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := a.answers
	a.answers = nil
	return out
}

// Name returns the actor's name.
func (a *Actor) Name() string { return a.cfg.Name }

// Role returns the role of the actor's scripts.
func (a *Actor) Role() string { return a.cfg.Role }

// Send queues a task. It never blocks: false means the mailbox is full or the actor stopped, and
// the caller answers UNAVAILABLE. Safe for concurrent use.
func (a *Actor) Send(t Task) bool { return a.send(queued{run: t}) }

func (a *Actor) send(q queued) bool {
	if a.stopped.Load() {
		return false
	}
	select {
	case a.mailbox <- q:
		return true
	default:
		return false
	}
}

// SendBytes is Send for a task that holds n bytes (a request's payload): it is also refused
// while the mailbox's queued bytes would pass the system's MailboxBytes, so that clients cannot
// park unbounded memory in a queue. Safe for concurrent use.
func (a *Actor) SendBytes(t Task, n int) bool { return a.sendSized(queued{run: t, bytes: n}) }

// RequestTask handles a client request on the actor's goroutine. SendRequest takes it with the
// request apart, so that a plain function queues a request without allocating a closure.
type RequestTask func(vm *script.VM, req *call.Request)

// SendRequest queues handle(vm, req) like SendBytes, for the bytes of req's payload.
func (a *Actor) SendRequest(handle RequestTask, req *call.Request) bool {
	return a.sendSized(queued{handle: handle, req: req, bytes: len(req.Payload)})
}

func (a *Actor) sendSized(q queued) bool {
	n := int64(q.bytes)
	if a.queued.Add(n) > a.sys.maxBytes && n > 0 {
		a.queued.Add(-n)
		return false
	}
	if !a.send(q) {
		a.queued.Add(-n)
		return false
	}
	return true
}

// QueuedBytes returns the bytes of the queued tasks sent with SendBytes.
func (a *Actor) QueuedBytes() int64 { return a.queued.Load() }

// Depth returns the number of queued tasks.
func (a *Actor) Depth() int { return len(a.mailbox) }

// Version returns the script version the actor runs.
func (a *Actor) Version() string {
	v, _ := a.version.Load().(string)
	return v
}

// Stop asks the actor to finish the tasks already queued and exit; it does not wait (see Done).
func (a *Actor) Stop() {
	if a.stopped.CompareAndSwap(false, true) {
		a.poke()
	}
}

// Done is closed when the actor's goroutine has exited.
func (a *Actor) Done() <-chan struct{} { return a.done }

func (a *Actor) run() {
	defer close(a.done)
	defer a.sys.forget(a)
	defer a.vm.Close()
	if a.sys.svc != nil && a.sys.svc.Boxes != nil {
		boxes := a.sys.svc.Boxes
		defer boxes.Close(a.box)
	}

	changed := a.maybeApply(a.changed)
	var tick <-chan time.Time
	last := time.Now()
	if a.cfg.Tick > 0 {
		ticker := time.NewTicker(a.cfg.Tick)
		defer ticker.Stop()
		tick = ticker.C
	}
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	var armed time.Time // when timer fires; zero: stopped
	// The wait watches as few channels as it can (each costs a lock when the actor parks): the
	// mailbox and wake always, the timer when armed, the ticker in rooms. A new version and Stop
	// come through wake.
	for {
		armed = a.armTimer(timer, armed)
		var fire <-chan time.Time
		if !armed.IsZero() {
			fire = timer.C
		}
		select {
		case q := <-a.mailbox:
			changed = a.maybeApply(changed)
			a.runTask(q)
			a.drain(changed)
		case <-a.wake:
			changed = a.maybeApply(changed)
			if answers := a.takeAnswers(); len(answers) > 0 {
				for _, ans := range answers {
					a.safely("answer", func() { a.vm.Resume(ans) })
				}
				a.afterRun()
			}
			if a.stopped.Load() {
				a.finish()
				return
			}
		case now := <-fire:
			armed = time.Time{}
			changed = a.maybeApply(changed)
			a.safely("timers", func() { a.vm.RunTimers(now) })
			a.afterRun()
		case at := <-tick:
			changed = a.maybeApply(changed)
			now := time.Now()
			dt, late := now.Sub(last), now.Sub(at)
			last = now
			a.safely("tick", func() { a.cfg.OnTick(a.vm, dt, late) })
		}
	}
}

// runTask runs one task from the mailbox.
func (a *Actor) runTask(q queued) {
	if q.bytes != 0 {
		a.queued.Add(-int64(q.bytes))
	}
	a.safely("task", func() {
		if q.handle != nil {
			q.handle(a.vm, q.req)
			return
		}
		q.run(a.vm)
	})
}

// finish runs the tasks still in the mailbox, then OnStop; after Stop.
func (a *Actor) finish() {
	for {
		select {
		case q := <-a.mailbox:
			a.runTask(q)
			continue
		default:
		}
		break
	}
	if a.cfg.OnStop != nil {
		a.safely("stop", func() { a.cfg.OnStop(a.vm) })
	}
}

func (a *Actor) afterRun() {
	if a.cfg.AfterRun != nil {
		a.safely("after run", func() { a.cfg.AfterRun(a.vm) })
	}
}

// drainBatch bounds the tasks an actor runs in a row before it looks at answers, timers, ticks and
// a new version again.
const drainBatch = 32

// drain runs the tasks already in the mailbox, up to drainBatch, without a new version (one that
// arrives meanwhile is applied after them): each costs a channel receive, not a wait in the
// actor's full select and a timer re-arm.
func (a *Actor) drain(changed <-chan struct{}) {
	for range drainBatch {
		select {
		case <-changed:
			return
		default:
		}
		select {
		case q := <-a.mailbox:
			a.runTask(q)
		default:
			return
		}
	}
}

// armTimer sets t to fire at the VM's next timer or wait deadline, unless it is set for that
// already (armed), and returns when it fires (zero: stopped).
func (a *Actor) armTimer(t *time.Timer, armed time.Time) time.Time {
	at, _ := a.vm.NextTimer()
	if at.Equal(armed) {
		return armed
	}
	if at.IsZero() {
		t.Stop()
	} else {
		t.Reset(time.Until(at))
	}
	return at
}

// maybeApply applies a newer version if changed has fired and returns the channel to watch next.
func (a *Actor) maybeApply(changed <-chan struct{}) <-chan struct{} {
	select {
	case <-changed:
	default:
		return changed
	}
	return a.applyLatest()
}

func (a *Actor) applyLatest() <-chan struct{} {
	bundle, changed := a.sys.versions.Current()
	if bundle == nil || bundle == a.vm.Bundle() {
		return changed
	}
	start := time.Now()
	if err := a.vm.Apply(bundle); err != nil {
		a.sys.log.Error("actor could not apply script version, keeps the previous one",
			"actor", a.cfg.Name, "version", bundle.Version, "error", err)
		a.sys.observer.Applied(a.cfg.Role, false, time.Since(start))
		return changed
	}
	a.version.Store(bundle.Version)
	a.sys.observer.Applied(a.cfg.Role, true, time.Since(start))
	return changed
}

// safely runs f, turning a panic (a bug in Go code under the task) into a logged error so the
// actor goes on with its next task.
func (a *Actor) safely(what string, f func()) {
	defer func() {
		if r := recover(); r != nil {
			a.sys.log.Error("actor recovered from a panic", "actor", a.cfg.Name, "in", what,
				"panic", fmt.Sprint(r), "stack", string(debug.Stack()))
			a.vm.L.SetTop(0)
		}
	}()
	f()
}
