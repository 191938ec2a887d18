// The declaration of room types: mf.room_type and the callbacks a type may define.

package script

import (
	lua "github.com/yuin/gopher-lua"
)

// Room callbacks a room type may define.
const (
	onCreate     = "on_create"
	onJoin       = "on_join"
	onLeave      = "on_leave"
	onDisconnect = "on_disconnect"
	onReconnect  = "on_reconnect"
	onCall       = "on_call"
	onMessage    = "on_message"
	onTick       = "on_tick"
	onClose      = "on_close"
)

// luaRoomType implements mf.room_type(name, opts): it declares a room type and returns its table,
// the same table after every reload, on which the script defines the callbacks.
func (vm *VM) luaRoomType(L *lua.LState) int {
	vm.mustLoad("mf.room_type")
	name := L.CheckString(1)
	opts := L.OptTable(2, nil)
	if !loginMethodName.MatchString(name) {
		vm.errorf("mf.room_type: name %q must match [a-z][a-z0-9_]* (at most 32 characters)", name)
	}
	if _, dup := vm.roomTypeDecls[name]; dup {
		vm.errorf("mf.room_type: %q is declared twice", name)
	}
	rt := RoomType{Name: name, TickHz: 10, MaxPlayers: 16}
	if opts != nil {
		opts.ForEach(func(k, v lua.LValue) {
			switch k.String() {
			case "tick_hz":
				n, ok := v.(lua.LNumber)
				if !ok || n < 0 || n > 1000 {
					vm.errorf("mf.room_type: tick_hz must be a number from 0 to 1000")
				}
				rt.TickHz = float64(n)
			case "max_players":
				n, ok := v.(lua.LNumber)
				if !ok || n < 1 || n != lua.LNumber(int(n)) {
					vm.errorf("mf.room_type: max_players must be a positive integer")
				}
				rt.MaxPlayers = int(n)
			case "keep_empty":
				b, ok := v.(lua.LBool)
				if !ok {
					vm.errorf("mf.room_type: keep_empty must be a boolean")
				}
				rt.KeepEmpty = bool(b)
			case "messages":
				list, ok := v.(*lua.LTable)
				if !ok {
					vm.errorf("mf.room_type: messages must be a list of message names")
				}
				for i := 1; i <= list.Len(); i++ {
					m := list.RawGetInt(i).String()
					msg := vm.bundle.Codecs.ByName(m)
					if msg == nil {
						vm.errorf("mf.room_type: no message %q with a msg_id in the schema", m)
					}
					rt.Messages = append(rt.Messages, msg.FullName)
				}
			default:
				vm.errorf("mf.room_type: unknown option %q", k.String())
			}
		})
	}
	vm.roomTypeDecls[name] = rt
	t, ok := vm.roomTypeTables[name]
	if !ok {
		t = L.CreateTable(0, 6)
		vm.roomTypeTables[name] = t
	}
	L.Push(t)
	return 1
}
