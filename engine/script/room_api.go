// mf.room: the room service seen from a role's handlers (create, join, leave, of, list), bound
// to the Go room service through the Rooms interface.

package script

import (
	lua "github.com/yuin/gopher-lua"

	"github.com/moonforge/moonforge/engine/call"
)

// Rooms is the room service seen from a VM (mf.room). Join and Leave never block: their answer is
// posted to the call's reply address, the actor of the handler that waits for it. Errors that are
// *protocol.CodeError reach the client with their code.
type Rooms interface {
	Create(roomType string, args any) (string, error)
	// Join puts c.PlayerID in room c.Target and answers c with on_join's result.
	Join(c *call.Call)
	// Leave takes c.PlayerID out of its room and answers c with on_leave's result.
	Leave(c *call.Call)
	// Call runs on_call(room, c.Name, c.Args) in room c.Target and answers c with its result.
	Call(c *call.Call)
	Of(playerID string) string
	List(roomType string) []RoomInfo
}

// RoomInfo describes an open room.
type RoomInfo struct {
	ID, Type            string
	Players, MaxPlayers int
}

// newRoomTable builds mf.room, the room service (and, once, the methods of room objects).
func (vm *VM) newRoomTable() *lua.LTable {
	t := vm.funcs(map[string]lua.LGFunction{
		"create": vm.luaRoomCreate,
		"of":     vm.luaRoomOf,
		"list":   vm.luaRoomList,
	}, 2)
	t.RawSetString("join", vm.waiting(vm.luaRoomJoin))
	t.RawSetString("leave", vm.waiting(vm.luaRoomLeave))
	t.RawSetString("call", vm.waiting(vm.luaRoomCall))
	vm.openRoomObjects()
	return t
}

func (vm *VM) roomService(fn string) Rooms {
	vm.mustRun(fn)
	if vm.svc == nil || vm.svc.Rooms == nil {
		vm.errorf("%s: rooms are not available here", fn)
	}
	return vm.svc.Rooms
}

// luaRoomCreate implements mf.room.create(type, args) → room id.
func (vm *VM) luaRoomCreate(L *lua.LState) int {
	rooms := vm.roomService("mf.room.create")
	typ := L.CheckString(1)
	args, err := Export(L.Get(2))
	if err != nil {
		vm.errorf("mf.room.create: %v", err)
	}
	id, err := rooms.Create(typ, args)
	if err != nil {
		vm.raiseCode("mf.room.create", err)
	}
	L.Push(lua.LString(id))
	return 1
}

// luaRoomJoin implements mf.room.join(room_id, player_id, args) → what on_join returned. The
// handler waits for the room's answer.
func (vm *VM) luaRoomJoin(L *lua.LState) int {
	rooms := vm.roomService("mf.room.join")
	c := vm.newCall(L, "mf.room.join")
	c.Target = L.CheckString(1)
	c.PlayerID = L.CheckString(2)
	args, err := Export(L.Get(3))
	if err != nil {
		vm.errorf("mf.room.join: %v", err)
	}
	c.Args = args
	rooms.Join(c)
	return vm.await(L, c.ID)
}

// luaRoomLeave implements mf.room.leave(player_id) → what on_leave returned. The handler waits
// for the room's answer.
func (vm *VM) luaRoomLeave(L *lua.LState) int {
	rooms := vm.roomService("mf.room.leave")
	c := vm.newCall(L, "mf.room.leave")
	c.PlayerID = L.CheckString(1)
	rooms.Leave(c)
	return vm.await(L, c.ID)
}

// luaRoomCall implements mf.room.call(room_id, name, args) → what the room's on_call returned.
// The handler waits for the room's answer.
func (vm *VM) luaRoomCall(L *lua.LState) int {
	rooms := vm.roomService("mf.room.call")
	c := vm.newCall(L, "mf.room.call")
	c.Target = L.CheckString(1)
	c.Name = L.CheckString(2)
	args, err := Export(L.Get(3))
	if err != nil {
		vm.errorf("mf.room.call: %v", err)
	}
	c.Args = args
	rooms.Call(c)
	return vm.await(L, c.ID)
}

// luaRoomOf implements mf.room.of(player_id) → room id or nil.
func (vm *VM) luaRoomOf(L *lua.LState) int {
	rooms := vm.roomService("mf.room.of")
	if id := rooms.Of(L.CheckString(1)); id != "" {
		L.Push(lua.LString(id))
	} else {
		L.Push(lua.LNil)
	}
	return 1
}

// luaRoomList implements mf.room.list(type) → { {id=, type=, players=, max_players=}, ... }.
func (vm *VM) luaRoomList(L *lua.LState) int {
	rooms := vm.roomService("mf.room.list")
	list := rooms.List(L.OptString(1, ""))
	t := L.CreateTable(len(list), 0)
	for _, r := range list {
		e := L.CreateTable(0, 4)
		e.RawSetString("id", lua.LString(r.ID))
		e.RawSetString("type", lua.LString(r.Type))
		e.RawSetString("players", lua.LNumber(r.Players))
		e.RawSetString("max_players", lua.LNumber(r.MaxPlayers))
		t.Append(e)
	}
	L.Push(t)
	return 1
}
