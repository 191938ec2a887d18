// mf.serve, mf.call, mf.send, mf.broadcast, mf.kick: calls between roles and nodes. A role serves
// names with mf.serve; any handler calls them, in this process (straight to the actor's mailbox)
// or on another node (over the bus), and waits for the answer without blocking its actor.

package script

import (
	"regexp"
	"time"

	lua "github.com/yuin/gopher-lua"

	"github.com/moonforge/moonforge/engine/call"
	"github.com/moonforge/moonforge/engine/protocol"
)

// Calls carries calls between roles and nodes (the cluster implements it). Methods never block.
type Calls interface {
	// Call delivers c to the role or node c.Target that serves c.Name (via "master": forwarded by
	// the master) and answers c with the served function's result or an error: UNAVAILABLE at once
	// when no live node serves it, TIMEOUT at c.Deadline.
	Call(c *call.Call, via string)
	// Send delivers a one-way call to target (a role or node); nothing is answered.
	Send(target, name string, args any) error
	// Broadcast delivers a one-way call to every node of role.
	Broadcast(role, name string, args any) error
	// Kick ends a player's session wherever it is, with code and reason.
	Kick(playerID string, code protocol.Code, reason string) bool
}

var serveName = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_.]{0,63}$`)

func (vm *VM) openCalls() {
	vm.mf.RawSetString("serve", vm.L.NewFunction(vm.luaServe))
	vm.mf.RawSetString("call", vm.waiting(vm.luaCall))
	vm.mf.RawSetString("send", vm.L.NewFunction(vm.luaSend))
	vm.mf.RawSetString("broadcast", vm.L.NewFunction(vm.luaBroadcast))
	vm.mf.RawSetString("kick", vm.L.NewFunction(vm.luaKick))
}

// luaServe implements mf.serve(name, function(ctx, args) return value end), at load time.
func (vm *VM) luaServe(L *lua.LState) int {
	vm.mustLoad("mf.serve")
	name := L.CheckString(1)
	fn := L.CheckFunction(2)
	switch {
	case !serveName.MatchString(name):
		vm.errorf("mf.serve: name %q must match [A-Za-z][A-Za-z0-9_.]* (at most 64 characters)", name)
	case vm.serves[name] != nil:
		vm.errorf("mf.serve: %q is served twice", name)
	}
	vm.serves[name] = fn
	return 0
}

func (vm *VM) calls(fn string) Calls {
	vm.mustRun(fn)
	if vm.svc == nil || vm.svc.Calls == nil {
		vm.errorf("%s: calls between roles are not available here", fn)
	}
	return vm.svc.Calls
}

// luaCall implements mf.call(target, name, args, {timeout=seconds, via="master"}) → the served
// function's result. The handler waits; its actor serves other messages meanwhile.
func (vm *VM) luaCall(L *lua.LState) int {
	calls := vm.calls("mf.call")
	c := vm.newCall(L, "mf.call")
	c.Target = L.CheckString(1)
	c.Name = L.CheckString(2)
	args, err := Export(L.Get(3))
	if err != nil {
		vm.errorf("mf.call: %v", err)
	}
	c.Args = args
	via := ""
	if opts := L.OptTable(4, nil); opts != nil {
		opts.ForEach(func(k, v lua.LValue) {
			switch k.String() {
			case "timeout":
				n, ok := v.(lua.LNumber)
				if !ok || n <= 0 {
					vm.errorf("mf.call: timeout must be a positive number of seconds")
				}
				if d := time.Now().Add(time.Duration(float64(n) * float64(time.Second))); d.Before(c.Deadline) {
					c.Deadline = d
				}
			case "via":
				if v.String() != "master" {
					vm.errorf(`mf.call: via must be "master"`)
				}
				via = "master"
			default:
				vm.errorf("mf.call: unknown option %q", k.String())
			}
		})
	}
	if r := vm.waits.running; r != nil && r.req != nil {
		c.PlayerID = r.req.PlayerID
	} else if r != nil && r.served != nil {
		c.PlayerID = r.served.PlayerID
	}
	calls.Call(c, via)
	return vm.await(L, c.ID)
}

// luaSend implements mf.send(target, name, args): one-way, nothing answered.
func (vm *VM) luaSend(L *lua.LState) int {
	calls := vm.calls("mf.send")
	args, err := Export(L.Get(3))
	if err != nil {
		vm.errorf("mf.send: %v", err)
	}
	if err := calls.Send(L.CheckString(1), L.CheckString(2), args); err != nil {
		vm.raiseCode("mf.send", err)
	}
	return 0
}

// luaBroadcast implements mf.broadcast(role, name, args): one-way, to every node of the role.
func (vm *VM) luaBroadcast(L *lua.LState) int {
	calls := vm.calls("mf.broadcast")
	args, err := Export(L.Get(3))
	if err != nil {
		vm.errorf("mf.broadcast: %v", err)
	}
	if err := calls.Broadcast(L.CheckString(1), L.CheckString(2), args); err != nil {
		vm.raiseCode("mf.broadcast", err)
	}
	return 0
}

// luaKick implements mf.kick(player_id, reason) → true if the player had a session.
func (vm *VM) luaKick(L *lua.LState) int {
	calls := vm.calls("mf.kick")
	L.Push(lua.LBool(calls.Kick(L.CheckString(1), protocol.Forbidden, L.OptString(2, "kicked by the game"))))
	return 1
}

// CallServe runs the function mf.serve registered for c.Name and answers c with its result. The
// function runs in a coroutine, like a handler: it may wait (mf.call, mf.db, ...), and the actor
// serves other messages meanwhile.
func (vm *VM) CallServe(c *call.Call) {
	fn, ok := vm.serves[c.Name]
	if !ok {
		c.Fail(protocol.Errorf(protocol.Unavailable, "role %s serves no %q", vm.role, c.Name))
		return
	}
	now := time.Now()
	if !c.Deadline.IsZero() && now.After(c.Deadline) {
		c.Fail(protocol.Errorf(protocol.Timeout, "the call arrived past its deadline"))
		return
	}
	L := vm.L
	ctx := L.CreateTable(0, 2)
	ctx.RawSetString("name", lua.LString(c.Name))
	if c.PlayerID != "" {
		ctx.RawSetString("player_id", lua.LString(c.PlayerID))
	}
	vm.begin(run{served: c, bundle: vm.bundle, fn: fn, what: "mf.serve " + c.Name, start: now, deadline: vm.limit(now, c.Deadline)}, ctx, Import(L, c.Args))
}

// exportServed keeps the result a served function returned in r.result, for when its writes are
// committed; false when the result cannot travel (the call is answered with the error).
func (vm *VM) exportServed(r *run, out []lua.LValue) bool {
	var result lua.LValue = lua.LNil
	if len(out) > 0 {
		result = out[0]
	}
	v, err := Export(result)
	if err != nil {
		r.served.Fail(vm.internal(r.what + " returned " + err.Error()))
		return false
	}
	r.result = v
	return true
}
