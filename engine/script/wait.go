package script

import (
	"context"
	"errors"
	"strings"
	"time"

	lua "github.com/yuin/gopher-lua"
	"github.com/yuin/gopher-lua/parse"

	"github.com/moonforge/moonforge/engine/call"
	"github.com/moonforge/moonforge/engine/protocol"
)

// Handlers that wait. A handler (mf.handle, a room's on_message, a function served with mf.serve)
// runs in a coroutine of its own.
// A call that needs another actor's answer (mf.room.join, mf.room.leave) posts its request with
// the actor's reply address and yields; the actor serves other messages meanwhile, and when the
// answer arrives (Resume) the handler continues where it stopped. The rules:
//
//   - The handler's deadline (lua.handler_timeout, or the request's if earlier) spans the wait: at
//     the deadline the request is answered and the coroutine is dropped; a later answer is ignored.
//   - A player's next request waits until that player's suspended one has finished, so a player's
//     requests are handled in order; other players' messages run meanwhile. Served calls are not
//     ordered: each runs when it arrives.
//   - A reload while a handler waits lets it finish on the code it started with (its closures),
//     and its reply is encoded with the schema of that version.
//   - Module tables (mf.module) are shared: another handler may change them during the wait. That
//     is the one way state changes under a handler's feet.
//   - Waiting works in the handler and in functions it calls, through pcall and xpcall (which are
//     replaced by coroutine-aware versions while a handler runs), but not in timers, room callbacks
//     other than on_message, or coroutines the script creates: there the call raises an error.

// maxIdleCoroutines bounds the coroutines a VM keeps for its next handlers.
const maxIdleCoroutines = 8

// waits is the VM's state of handlers in coroutines. Owned by the VM's goroutine.
type waits struct {
	byCall   map[uint64]*run        // suspended handlers by the id of the call they wait for
	queued   map[string][]queuedRun // players with a suspended handler → their next requests
	idle     []coroutine            // finished coroutines, ready for the next handler
	ours     map[*lua.LState]bool   // coroutines in which a call may wait
	running  *run                   // the handler on the CPU now
	nextCall uint64
	replyTo  call.Address // where the answers of this VM's calls go
	post     call.Poster
	marker   *lua.LUserData // the first value a wait yields
	spare    *run           // a run to reuse
}

func (w *waits) init() {
	w.byCall = map[uint64]*run{}
	w.queued = map[string][]queuedRun{}
	w.ours = map[*lua.LState]bool{}
}

// coroutine is a Lua thread with a context of its own, which the watchdog cancels to stop it.
type coroutine struct {
	th     *lua.LState
	ctx    context.Context
	cancel context.CancelFunc
}

// run is one handler call in its coroutine: a request's, or a served call's.
type run struct {
	co       coroutine
	req      *call.Request // nil for a served call
	served   *call.Call    // the call a served function answers (mf.serve); nil for a request
	bundle   *Bundle       // the version it started on
	fn       *lua.LFunction
	what     string
	deadline time.Time
	start    time.Time
	children []*lua.LState // coroutines of its pcall and xpcall calls
	writes   dbWrites      // its mf.db puts and deletes, committed when it returns
	player   bool          // it used mf.player.data: its changes are taken when it ends
	// While its writes commit: the handler is over, its reply encoded and held until then.
	committing bool
	waitID     uint64 // its entry in byCall while it commits
	replyID    uint16
	payload    []byte
	result     any // a served function's result, exported
}

// fail answers r's request or served call with an error.
func (r *run) fail(ce *protocol.CodeError) {
	if r.served != nil {
		r.served.Fail(ce)
		return
	}
	r.req.Fail(ce)
}

// outer is the deadline r's caller set.
func (r *run) outer() time.Time {
	if r.served != nil {
		return r.served.Deadline
	}
	return r.req.Deadline
}

// finished runs what waited for r (the next requests of its player) once r is over.
func (vm *VM) finished(r *run) {
	if r.req != nil {
		vm.next(r.req.PlayerID)
	}
}

type queuedRun struct {
	req  *call.Request
	fn   *lua.LFunction
	what string
	args []lua.LValue
}

// SetReplyTo gives the VM the address where the answers of its calls arrive (its actor's box) and
// the poster that carries its calls' answers there. Without it, calls that wait are refused.
func (vm *VM) SetReplyTo(addr call.Address, post call.Poster) {
	vm.waits.replyTo, vm.waits.post = addr, post
}

// newCoroutine returns an idle coroutine or makes one.
func (vm *VM) newCoroutine() coroutine {
	w := &vm.waits
	if n := len(w.idle); n > 0 {
		c := w.idle[n-1]
		w.idle = w.idle[:n-1]
		return c
	}
	th, _ := vm.L.NewThread()
	ctx, cancel := context.WithCancel(context.Background())
	th.SetContext(ctx) // also cancels the context NewThread derived from the VM's
	w.ours[th] = true
	return coroutine{th: th, ctx: ctx, cancel: cancel}
}

// end forgets the coroutines of a run that is over (its pcall children).
func (vm *VM) end(r *run) {
	for _, th := range r.children {
		delete(vm.waits.ours, th)
	}
}

// release keeps a coroutine that finished normally for the next handler, or drops it.
func (vm *VM) release(c coroutine, finished bool) {
	w := &vm.waits
	if finished && c.ctx.Err() == nil && len(w.idle) < maxIdleCoroutines {
		c.th.Dead = false // gopher-lua marks a coroutine that returned dead; its stack is empty again
		w.idle = append(w.idle, c)
		return
	}
	c.cancel()
	delete(w.ours, c.th)
}

// runRequest calls fn(args...) for a request in a coroutine and turns its (name, table) result
// into the reply. If the player has a handler waiting, the request waits for it.
func (vm *VM) runRequest(req *call.Request, fn *lua.LFunction, what string, args ...lua.LValue) {
	if len(vm.waits.queued) > 0 {
		if q, busy := vm.waits.queued[req.PlayerID]; busy {
			vm.waits.queued[req.PlayerID] = append(q, queuedRun{req: req, fn: fn, what: what, args: append([]lua.LValue(nil), args...)})
			return
		}
	}
	vm.start(req, fn, what, args...)
}

// start runs a handler until it returns or waits; true if it waits. A request past its deadline
// (its client had TIMEOUT from the gateway) is failed instead: its handler does not run.
func (vm *VM) start(req *call.Request, fn *lua.LFunction, what string, args ...lua.LValue) bool {
	now := time.Now()
	if req.Expired(now) {
		req.Fail(protocol.Errorf(protocol.Timeout, "no reply within the request deadline"))
		return false
	}
	return vm.begin(run{req: req, bundle: vm.bundle, fn: fn, what: what, start: now, deadline: vm.limit(now, req.Deadline)}, args...)
}

// begin runs a handler or served function described by set (all but its coroutine) in a
// coroutine until it returns or waits; true if it waits.
func (vm *VM) begin(set run, args ...lua.LValue) bool {
	r := vm.waits.spare
	if r == nil {
		r = &run{}
	}
	vm.waits.spare = nil
	*r = set
	r.co = vm.newCoroutine()
	if vm.step(r, r.fn, args...) {
		return true
	}
	vm.waits.spare = r // a run that did not wait is free again (most handlers never wait); begin overwrites it
	return false
}

// step resumes r (starting it with fn) and handles how it stops; true if it waits again.
func (vm *VM) step(r *run, fn *lua.LFunction, args ...lua.LValue) bool {
	w := &vm.waits
	w.running = r
	vm.enter(r.co.cancel, r.deadline)
	state, err, out := vm.L.Resume(r.co.th, fn, args...)
	vm.leave()
	w.running = nil
	if state == lua.ResumeYield {
		if len(out) == 2 && out[0] == w.marker {
			id := uint64(out[1].(lua.LNumber))
			w.byCall[id] = r
			if r.req == nil {
				return true
			}
			if _, ok := w.queued[r.req.PlayerID]; !ok {
				w.queued[r.req.PlayerID] = nil
			}
			return true
		}
		err = errors.New(r.what + ": coroutine.yield outside a coroutine the script created")
	}
	if err != nil && r.co.ctx.Err() != nil {
		err = errDeadline{limit: r.deadline}
	}
	if r.player && r.req != nil {
		if perr := vm.settlePlayer(r.req.PlayerID); perr != nil && err == nil {
			err = perr
		}
	}
	vm.release(r.co, state == lua.ResumeOK)
	vm.end(r)
	if err != nil {
		r.writes.take() // a handler that fails writes nothing
		ce := vm.callError(err, r.what, r.outer())
		if r.req != nil {
			vm.observe(r.what, r.start, ce.Code)
		}
		r.fail(ce)
		return false
	}
	if r.served != nil {
		if !vm.exportServed(r, out) {
			r.writes.take()
			return false
		}
	} else if r.req.Seq != 0 {
		name, body := replyOf(out)
		var ok bool
		if r.replyID, r.payload, ok = vm.encodeReply(r, name, body); !ok {
			r.writes.take()
			vm.observe(r.what, r.start, protocol.Internal)
			return false
		}
	}
	if ops := vm.order(r.writes.take()); len(ops) > 0 {
		vm.commit(r, ops)
		return true
	}
	vm.finish(r, nil)
	return false
}

// replyOf is a handler's reply: the message name and the table it returned.
func replyOf(out []lua.LValue) (name, body lua.LValue) {
	name, body = lua.LNil, lua.LNil
	if len(out) > 0 {
		name = out[0]
	}
	if len(out) > 1 {
		body = out[1]
	}
	return name, body
}

// finish answers a handler or served function that is over: its reply or result, or err (its
// commit failed).
func (vm *VM) finish(r *run, err *protocol.CodeError) {
	if r.served != nil {
		if err != nil {
			r.served.Fail(err)
			return
		}
		r.served.Return(r.result)
		return
	}
	if err != nil {
		vm.observe(r.what, r.start, err.Code)
		r.req.Fail(err)
		return
	}
	vm.observe(r.what, r.start, 0)
	if r.req.Seq != 0 {
		r.req.Reply(r.replyID, r.payload)
	}
}

// next runs the requests that waited for a player's handler to finish, until one waits.
func (vm *VM) next(player string) {
	w := &vm.waits
	for {
		q := w.queued[player]
		if len(q) == 0 {
			delete(w.queued, player)
			return
		}
		w.queued[player] = q[1:]
		n := q[0]
		if vm.start(n.req, n.fn, n.what, n.args...) {
			return
		}
	}
}

// Resume continues the handler that waits for a's call with its answer; an answer whose handler
// is gone (its deadline passed) is ignored.
func (vm *VM) Resume(a call.Answer) {
	if it, ok := vm.commits.groups[a.ID]; ok {
		delete(vm.commits.groups, a.ID)
		vm.settle(it, a.Err, false)
		return
	}
	r, ok := vm.waits.byCall[a.ID]
	if !ok {
		return
	}
	delete(vm.waits.byCall, a.ID)
	args := []lua.LValue{lua.LTrue, Import(vm.L, a.Value)}
	if values, ok := a.Value.(dbResult); ok { // several results
		args = args[:1]
		for _, v := range values {
			args = append(args, Import(vm.L, v))
		}
	}
	if a.Err != nil {
		args = []lua.LValue{lua.LFalse, lua.LNumber(a.Err.Code), lua.LString(a.Err.Message)}
	}
	if !vm.step(r, nil, args...) {
		vm.finished(r)
	}
}

// nextWait returns the earliest deadline of a waiting handler.
func (vm *VM) nextWait() (time.Time, bool) {
	var at time.Time
	for _, r := range vm.waits.byCall {
		if at.IsZero() || r.deadline.Before(at) {
			at = r.deadline
		}
	}
	return at, !at.IsZero()
}

// expireWaits ends the waiting handlers whose deadline has passed at now.
func (vm *VM) expireWaits(now time.Time) {
	for id, r := range vm.waits.byCall {
		if now.Before(r.deadline) {
			continue
		}
		delete(vm.waits.byCall, id)
		if !r.committing {
			vm.release(r.co, false)
			vm.end(r)
		}
		ce := vm.callError(errDeadline{limit: r.deadline}, r.what, r.outer())
		if r.req != nil {
			vm.observe(r.what, r.start, ce.Code)
		}
		r.fail(ce)
		vm.finished(r)
	}
}

// Waiting returns the number of handlers waiting for an answer.
func (vm *VM) Waiting() int { return len(vm.waits.byCall) }

// abandonWaits answers the waiting handlers and the requests queued behind them when the VM closes.
func (vm *VM) abandonWaits() {
	for id, r := range vm.waits.byCall {
		delete(vm.waits.byCall, id)
		r.fail(protocol.Errorf(protocol.Unavailable, "the actor stopped"))
	}
	for p, q := range vm.waits.queued {
		for _, n := range q {
			n.req.Fail(protocol.Errorf(protocol.Unavailable, "the actor stopped"))
		}
		delete(vm.waits.queued, p)
	}
}

// newCall starts a call that the running handler will wait for, or raises a Lua error when the
// current code cannot wait.
func (vm *VM) newCall(L *lua.LState, fn string) *call.Call {
	w := &vm.waits
	if w.running == nil || !w.ours[L] {
		vm.errorf("%s waits for an answer: call it from a handler (mf.handle, mf.serve or a room's on_message), not from a timer, a callback or a coroutine of the script", fn)
	}
	if w.post == nil {
		vm.errorf("%s: this VM has no reply address", fn)
	}
	w.nextCall++
	return &call.Call{ID: w.nextCall, Deadline: w.running.deadline, ReplyTo: w.replyTo, Post: w.post}
}

// await suspends the running handler until the answer of call id (see Resume). Its Lua caller
// gets (true, value) or (false, code, message): the prelude's wrappers turn the latter into an
// mf.error.
func (vm *VM) await(L *lua.LState, id uint64) int {
	return L.Yield(vm.waits.marker, lua.LNumber(id))
}

// prelude replaces pcall and xpcall, while a handler runs, with versions that let a wait inside
// them reach the handler's resumer: the protected function runs in a coroutine of its own, and
// each of its waits is passed up and its answer passed back down.
const prelude = `
local marker, can_wait, adopt, forget, raw_pcall, raw_xpcall, result = ...
local create, resume, status, yield = coroutine.create, coroutine.resume, coroutine.status, coroutine.yield
local function new_co(f)
	local co = create(f)
	adopt(co)
	return co
end
local function step(co, ok, ...)
	if not ok then return false, ... end
	if status(co) == "dead" then return true, ... end
	if (...) ~= marker then return false, "attempt to yield across pcall" end
	return step(co, resume(co, yield(...)))
end
local function done(co, ...)
	forget(co)
	return ...
end
function pcall(f, ...)
	if not can_wait() then return raw_pcall(f, ...) end
	local co = new_co(f)
	return done(co, step(co, resume(co, ...)))
end
function xpcall(f, handler)
	if not can_wait() then return raw_xpcall(f, handler) end
	local co = new_co(f)
	local function handled(ok, ...)
		if ok then return true, ... end
		return false, handler(...)
	end
	return done(co, handled(step(co, resume(co))))
end
return function(f)
	return function(...) return result(f(...)) end
end
`

var preludeProto = func() *lua.FunctionProto {
	stmts, err := parse.Parse(strings.NewReader(prelude), "=mf.prelude")
	if err != nil {
		panic(err)
	}
	proto, err := lua.Compile(stmts, "=mf.prelude")
	if err != nil {
		panic(err)
	}
	return proto
}()

// openWaits installs the wait marker and the prelude; on the VM's own state, at creation.
func (vm *VM) openWaits() {
	L := vm.L
	w := &vm.waits
	w.marker = L.NewUserData()
	canWait := L.NewFunction(func(L *lua.LState) int {
		L.Push(lua.LBool(w.running != nil && w.ours[L]))
		return 1
	})
	// coroutine.create makes the protected function's coroutine from the handler's, so its
	// context is a child of the handler's: the watchdog stops both.
	adopt := L.NewFunction(func(L *lua.LState) int {
		th := L.CheckThread(1)
		w.ours[th] = true
		w.running.children = append(w.running.children, th)
		return 0
	})
	forget := L.NewFunction(func(L *lua.LState) int {
		delete(w.ours, L.CheckThread(1))
		return 0
	})
	result := L.NewFunction(func(L *lua.LState) int {
		if lua.LVAsBool(L.Get(1)) {
			n := L.GetTop() - 1
			for i := 2; i <= n+1; i++ {
				L.Push(L.Get(i))
			}
			return n
		}
		vm.raiseCode("", &protocol.CodeError{Code: protocol.Code(L.CheckInt(2)), Message: L.CheckString(3)})
		return 0
	})
	fn := L.NewFunctionFromProto(preludeProto)
	L.Push(fn)
	L.Push(w.marker)
	L.Push(canWait)
	L.Push(adopt)
	L.Push(forget)
	L.Push(L.GetGlobal("pcall"))
	L.Push(L.GetGlobal("xpcall"))
	L.Push(result)
	L.Call(7, 1)
	vm.wrapWait = L.Get(-1).(*lua.LFunction)
	L.Pop(1)
}

// waiting returns a Lua function that calls a Go function which waits (returns await's result)
// and turns a failed answer into an mf.error.
func (vm *VM) waiting(fn lua.LGFunction) *lua.LFunction {
	L := vm.L
	if err := L.CallByParam(lua.P{Fn: vm.wrapWait, NRet: 1, Protect: true}, L.NewFunction(fn)); err != nil {
		panic(err)
	}
	f := L.Get(-1).(*lua.LFunction)
	L.Pop(1)
	return f
}
