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
//
// The actor waits on its mailbox alone (rooms also on their ticker): a receive on one channel
// costs far less than a select over several. Whatever else needs the actor (answers of its calls,
// its timers, a new version, Stop) sets events and, unless one is already queued, puts a wake
// marker in the mailbox; the actor looks at events after every batch of tasks. The mailbox has
// one slot more than MailboxSize for that marker: load counts the tasks, so that they never take
// it.
type Actor struct {
	cfg     Config
	sys     *System
	vm      *script.VM
	mailbox chan queued
	load    atomic.Int64 // tasks queued and not yet taken (times taskUnit), plus the bytes they hold
	stopped atomic.Bool
	done    chan struct{}
	version atomic.Value    // string: the version the VM runs
	changed <-chan struct{} // closed when the version the VM was loaded with is replaced

	box      call.Address // where the answers of the VM's calls arrive
	mu       sync.Mutex
	answers  []call.Answer // arrived, not yet given to the VM
	events   atomic.Bool   // answers arrived, a timer is due, a version was published, or Stop
	marked   atomic.Bool   // a wake marker is in the mailbox
	timerDue atomic.Bool   // the timer of the VM's next timer or wait deadline fired
}

// taskUnit is one task in Actor.load; the bytes of the queued tasks stay below it
// (config.Validate bounds lua.mailbox_bytes at 2^36 and the mailbox sizes at 2^20).
const taskUnit = 1 << 40

// queued is a task in the mailbox (run, or handle with req) and the bytes it holds; one with
// neither is a wake marker.
type queued struct {
	run    Task
	handle RequestTask
	req    *call.Request
	bytes  int
}

func (q queued) isTask() bool { return q.run != nil || q.handle != nil }

// Deliver takes the answer of a call the actor's VM made (call.Inbox): it is queued outside the
// mailbox, so it is never refused, and given to the VM (VM.Resume) on the actor's goroutine.
func (a *Actor) Deliver(ans call.Answer) {
	a.mu.Lock()
	a.answers = append(a.answers, ans)
	a.mu.Unlock()
	a.poke()
}

// poke makes the actor look at its events (answers, its timer, the version in force, Stop) after
// its current tasks, or at once if it waits. Safe for concurrent use; never blocks.
func (a *Actor) poke() {
	a.events.Store(true)
	if !a.marked.CompareAndSwap(false, true) {
		return // the marker in the mailbox will wake it
	}
	select {
	case a.mailbox <- queued{}:
	default:
		a.marked.Store(false) // cannot happen (a slot is kept for it); the actor has tasks anyway
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
	n := taskUnit + int64(q.bytes)
	load := a.load.Add(n)
	if load/taskUnit > int64(cap(a.mailbox)-1) || (q.bytes > 0 && load%taskUnit > a.sys.maxBytes) {
		a.load.Add(-n)
		return false
	}
	select {
	case a.mailbox <- q:
		return true
	default: // cannot happen: load keeps a slot for every counted task
		a.load.Add(-n)
		return false
	}
}

// SendBytes is Send for a task that holds n bytes (a request's payload): it is also refused
// while the mailbox's queued bytes would pass the system's MailboxBytes, so that clients cannot
// park unbounded memory in a queue. Safe for concurrent use.
func (a *Actor) SendBytes(t Task, n int) bool { return a.send(queued{run: t, bytes: n}) }

// RequestTask handles a client request on the actor's goroutine. SendRequest takes it with the
// request apart, so that a plain function queues a request without allocating a closure.
type RequestTask func(vm *script.VM, req *call.Request)

// SendRequest queues handle(vm, req) like SendBytes, for the bytes of req's payload.
func (a *Actor) SendRequest(handle RequestTask, req *call.Request) bool {
	return a.send(queued{handle: handle, req: req, bytes: len(req.Payload)})
}

// QueuedBytes returns the bytes of the queued tasks sent with SendBytes.
func (a *Actor) QueuedBytes() int64 { return a.load.Load() % taskUnit }

// Depth returns the number of queued tasks.
func (a *Actor) Depth() int { return int(a.load.Load() / taskUnit) }

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
	timer := time.AfterFunc(time.Hour, func() {
		a.timerDue.Store(true)
		a.poke()
	})
	timer.Stop()
	defer timer.Stop()
	var armed time.Time // when timer fires; zero: stopped
	for {
		armed = a.armTimer(timer, armed)
		var q queued
		taken := true // q came from the mailbox
		if tick == nil {
			q = <-a.mailbox
		} else {
			select {
			case q = <-a.mailbox:
			case at := <-tick:
				taken = false
				changed = a.maybeApply(changed)
				now := time.Now()
				dt, late := now.Sub(last), now.Sub(at)
				last = now
				a.safely("tick", func() { a.cfg.OnTick(a.vm, dt, late) })
			}
		}
		switch {
		case taken && q.isTask():
			changed = a.maybeApply(changed)
			a.runTask(q)
			a.drain(changed)
		case taken:
			a.marked.Store(false)
		}
		if !a.events.Load() {
			continue
		}
		a.events.Store(false)
		changed = a.maybeApply(changed)
		if answers := a.takeAnswers(); len(answers) > 0 {
			for _, ans := range answers {
				a.safely("answer", func() { a.vm.Resume(ans) })
			}
			a.afterRun()
		}
		if a.timerDue.Swap(false) {
			armed = time.Time{}
			now := time.Now()
			a.safely("timers", func() { a.vm.RunTimers(now) })
			a.afterRun()
		}
		if a.stopped.Load() {
			a.finish()
			return
		}
	}
}

// runTask runs one task taken from the mailbox.
func (a *Actor) runTask(q queued) {
	a.load.Add(-(taskUnit + int64(q.bytes)))
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
			if q.isTask() {
				a.runTask(q)
			}
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

// drainBatch bounds the tasks an actor runs in a row before it looks at its events, its timer and
// a new version again.
const drainBatch = 32

// drain runs the tasks already in the mailbox, up to drainBatch, without a new version (one that
// arrives meanwhile is applied after them) and up to a wake marker: each costs a channel receive,
// not a wait and a timer re-arm.
func (a *Actor) drain(changed <-chan struct{}) {
	for range drainBatch {
		select {
		case <-changed:
			return
		default:
		}
		select {
		case q := <-a.mailbox:
			if !q.isTask() {
				a.marked.Store(false)
				return
			}
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
