// A room's VM: the room object its callbacks get (room:broadcast and the other methods) and the
// callbacks themselves (on_create ... on_close), which package room runs on the room's actor.

package script

import (
	"slices"
	"time"

	lua "github.com/yuin/gopher-lua"

	"github.com/moonforge/moonforge/engine/call"
	"github.com/moonforge/moonforge/engine/protocol"
)

// RoomHandle is the engine's side of one room, given to the VM that runs it. Its methods are
// called from the room's own goroutine.
type RoomHandle interface {
	ID() string
	Type() string
	// Broadcast queues a push to every player in the room except the one named (may be "").
	Broadcast(msgID uint16, payload []byte, except string)
	// Send queues a push to one player of the room; false if the player is not in it.
	Send(playerID string, msgID uint16, payload []byte) bool
	// Remove makes a player leave after the current callback (on_leave with reason "removed").
	Remove(playerID string)
	// Close closes the room after the current callback.
	Close()
}

// openRoomObjects builds the metatable of room objects, whose methods a room's callbacks call.
func (vm *VM) openRoomObjects() {
	methods := vm.funcs(map[string]lua.LGFunction{
		"broadcast": vm.luaRoomBroadcast,
		"send":      vm.luaRoomSend,
		"remove":    vm.luaRoomRemove,
		"close":     vm.luaRoomClose,
	}, 0)
	vm.roomMeta = vm.L.CreateTable(0, 1)
	vm.roomMeta.RawSetString("__index", methods)
}

// roomArg returns the handle of the room object passed as self.
func (vm *VM) roomArg(fn string) (*lua.LTable, RoomHandle) {
	self := vm.cur().CheckTable(1)
	h, ok := vm.rooms[self]
	if !ok {
		vm.errorf("%s: call it as room:%s(...) on a room this VM runs", fn, fn)
	}
	return self, h
}

func (vm *VM) luaRoomBroadcast(L *lua.LState) int {
	_, h := vm.roomArg("broadcast")
	msg, payload := vm.encodeArg("room:broadcast", 2)
	h.Broadcast(msg.ID, payload, L.OptString(4, ""))
	return 0
}

func (vm *VM) luaRoomSend(L *lua.LState) int {
	_, h := vm.roomArg("send")
	player := L.CheckString(2)
	msg, payload := vm.encodeArg("room:send", 3)
	L.Push(lua.LBool(h.Send(player, msg.ID, payload)))
	return 1
}

func (vm *VM) luaRoomRemove(L *lua.LState) int {
	_, h := vm.roomArg("remove")
	h.Remove(L.CheckString(2))
	return 0
}

func (vm *VM) luaRoomClose(L *lua.LState) int {
	_, h := vm.roomArg("close")
	h.Close()
	return 0
}

// roomObject returns the Lua object of a room, creating it on first use.
func (vm *VM) roomObject(h RoomHandle) *lua.LTable {
	for t, other := range vm.rooms {
		if other == h {
			return t
		}
	}
	L := vm.L
	t := L.CreateTable(0, 6)
	t.RawSetString("id", lua.LString(h.ID()))
	t.RawSetString("type", lua.LString(h.Type()))
	t.RawSetString("state", L.CreateTable(0, 4))
	t.RawSetString("players", L.CreateTable(0, 8))
	t.RawSetString("tick", lua.LNumber(0))
	L.SetMetatable(t, vm.roomMeta)
	vm.rooms[t] = h
	return t
}

// roomCallback calls a callback of the room's type, if defined. A missing type table or
// callback is not an error.
func (vm *VM) roomCallback(h RoomHandle, name string, nret int, deadline time.Time, args ...lua.LValue) ([]lua.LValue, error) {
	typ, ok := vm.roomTypeTables[h.Type()]
	if !ok {
		return nil, protocol.Errorf(protocol.Unavailable, "room type %q is not declared by this version", h.Type())
	}
	fn, ok := typ.RawGetString(name).(*lua.LFunction)
	if !ok {
		out := vm.ret[:nret]
		for i := range out {
			out[i] = lua.LNil
		}
		return out, nil
	}
	return vm.protectedCall(fn, nret, deadline, args...)
}

// RoomCreate runs on_create(room, args) for a new room.
func (vm *VM) RoomCreate(h RoomHandle, args any) error {
	room := vm.roomObject(h)
	now := time.Now()
	if _, err := vm.roomCallback(h, onCreate, 0, vm.limit(now, time.Time{}), room, Import(vm.L, args)); err != nil {
		return vm.callError(err, h.Type()+"."+onCreate, time.Time{})
	}
	return nil
}

// RoomJoin adds a player: room.players[id] is set, then on_join(room, player, args) runs; if it
// raises, the player is taken out again and the error returned. Its return value is exported.
func (vm *VM) RoomJoin(h RoomHandle, playerID string, args any, deadline time.Time) (any, error) {
	room := vm.roomObject(h)
	players := room.RawGetString("players").(*lua.LTable)
	player := vm.L.CreateTable(0, 1)
	player.RawSetString("id", lua.LString(playerID))
	players.RawSetString(playerID, player)
	out, err := vm.roomCallback(h, onJoin, 1, vm.limit(time.Now(), deadline), room, player, Import(vm.L, args))
	if err != nil {
		players.RawSetString(playerID, lua.LNil)
		return nil, vm.callError(err, h.Type()+"."+onJoin, deadline)
	}
	v, xerr := Export(out[0])
	if xerr != nil {
		players.RawSetString(playerID, lua.LNil)
		return nil, vm.callError(xerr, h.Type()+"."+onJoin+" result", deadline)
	}
	return v, nil
}

// RoomLeave runs on_leave(room, player, reason), removes the player, and returns what on_leave
// returned (exported). Errors are logged: the player leaves regardless.
func (vm *VM) RoomLeave(h RoomHandle, playerID, reason string) any {
	room := vm.roomObject(h)
	players := room.RawGetString("players").(*lua.LTable)
	player := players.RawGetString(playerID)
	if player == lua.LNil {
		return nil
	}
	defer players.RawSetString(playerID, lua.LNil)
	out, err := vm.roomCallback(h, onLeave, 1, vm.limit(time.Now(), time.Time{}), room, player, lua.LString(reason))
	if err != nil {
		vm.callError(err, h.Type()+"."+onLeave, time.Time{})
		return nil
	}
	v, err := Export(out[0])
	if err != nil {
		vm.callError(err, h.Type()+"."+onLeave+" result", time.Time{})
		return nil
	}
	return v
}

// RoomPresence runs on_disconnect(room, player) (event call.SessionDetached) or
// on_reconnect(room, player) (call.SessionResumed, or a new login, call.SessionStarted) for a
// player of the room. Errors are logged.
func (vm *VM) RoomPresence(h RoomHandle, playerID, event string) {
	name := onReconnect
	if event == call.SessionDetached {
		name = onDisconnect
	}
	room := vm.roomObject(h)
	player := room.RawGetString("players").(*lua.LTable).RawGetString(playerID)
	if player == lua.LNil {
		return
	}
	if _, err := vm.roomCallback(h, name, 0, vm.limit(time.Now(), time.Time{}), room, player); err != nil {
		vm.callError(err, h.Type()+"."+name, time.Time{})
	}
}

// RoomCall runs on_call(room, name, args) for mf.room.call and answers c with its result.
func (vm *VM) RoomCall(h RoomHandle, c *call.Call) {
	typ, ok := vm.roomTypeTables[h.Type()]
	if !ok || typ.RawGetString(onCall) == lua.LNil {
		c.Fail(protocol.Errorf(protocol.BadRequest, "room type %s has no %s", h.Type(), onCall))
		return
	}
	room := vm.roomObject(h)
	what := h.Type() + "." + onCall
	out, err := vm.roomCallback(h, onCall, 1, vm.limit(time.Now(), c.Deadline), room, lua.LString(c.Name), Import(vm.L, c.Args))
	if err != nil {
		c.Fail(vm.callError(err, what, c.Deadline))
		return
	}
	v, err := Export(out[0])
	if err != nil {
		c.Fail(vm.callError(err, what+" result", c.Deadline))
		return
	}
	c.Return(v)
}

// RoomMessage runs on_message(room, player, name, msg) for a client request routed to the room.
// A message the room's type does not declare (the player changed rooms, or a reload changed the
// type, after the router decided) is refused with BAD_REQUEST.
func (vm *VM) RoomMessage(h RoomHandle, req *call.Request) {
	room := vm.roomObject(h)
	player := room.RawGetString("players").(*lua.LTable).RawGetString(req.PlayerID)
	if player == lua.LNil {
		req.Fail(protocol.Errorf(protocol.BadRequest, "not in room %s", h.ID()))
		return
	}
	msg := vm.bundle.Codecs.ByID(req.MsgID)
	if msg == nil {
		req.Fail(protocol.Errorf(protocol.UnknownMessage, "message %d is not in this version's schema", req.MsgID))
		return
	}
	if !slices.Contains(vm.roomTypeDecls[h.Type()].Messages, msg.FullName) {
		req.Fail(protocol.Errorf(protocol.BadRequest, "room type %s does not take %s", h.Type(), msg.FullName))
		return
	}
	body, err := msg.Decode(vm.L, req.Payload)
	if err != nil {
		req.Fail(&protocol.CodeError{Code: protocol.DecodeFailed, Message: err.Error()})
		return
	}
	typ, ok := vm.roomTypeTables[h.Type()]
	if !ok {
		req.Fail(protocol.Errorf(protocol.Unavailable, "room type %q is not declared by this version", h.Type()))
		return
	}
	fn, ok := typ.RawGetString(onMessage).(*lua.LFunction)
	if !ok {
		req.Fail(protocol.Errorf(protocol.Unavailable, "room type %q has no %s", h.Type(), onMessage))
		return
	}
	vm.runRequest(req, fn, msg.FullName, room, player, lua.LString(msg.Name), body)
}

// RoomTick advances room.tick and runs on_tick(room, dt) with dt in seconds. Errors are logged.
func (vm *VM) RoomTick(h RoomHandle, dt time.Duration) {
	room := vm.roomObject(h)
	room.RawSetString("tick", room.RawGetString("tick").(lua.LNumber)+1)
	if _, err := vm.roomCallback(h, onTick, 0, vm.limit(time.Now(), time.Time{}), room, lua.LNumber(dt.Seconds())); err != nil {
		vm.callError(err, h.Type()+"."+onTick, time.Time{})
	}
}

// RoomClosed runs on_close(room) and forgets the room.
func (vm *VM) RoomClosed(h RoomHandle) {
	room := vm.roomObject(h)
	if _, err := vm.roomCallback(h, onClose, 0, vm.limit(time.Now(), time.Time{}), room); err != nil {
		vm.callError(err, h.Type()+"."+onClose, time.Time{})
	}
	delete(vm.rooms, room)
}
