// Presence seen from Lua: mf.player.online and the role hook mf.on_session_end.

package script

import (
	"time"

	lua "github.com/yuin/gopher-lua"

	"github.com/moonforge/moonforge/engine/call"
)

// luaPlayerOnline implements mf.player.online(player_id) → online, connected. It reads the
// presence directory and sends nothing.
func (vm *VM) luaPlayerOnline(L *lua.LState) int {
	id := L.CheckString(1)
	online, connected := false, false
	if vm.svc != nil && vm.svc.Presence != nil {
		online, connected = vm.svc.Presence.Online(id)
	}
	L.Push(lua.LBool(online))
	L.Push(lua.LBool(connected))
	return 2
}

// luaOnSessionEnd implements mf.on_session_end(fn [, opts]): fn(player_id, reason) runs when a
// player's session ends, on the role's actor that opts.key (like mf.handle's) or the player picks.
func (vm *VM) luaOnSessionEnd(L *lua.LState) int {
	vm.mustLoad("mf.on_session_end")
	fn := L.CheckFunction(1)
	opts := L.OptTable(2, nil)
	if vm.sessionEnd != nil {
		vm.errorf("mf.on_session_end: registered twice in role %s", vm.role)
	}
	key := ""
	if opts != nil {
		opts.ForEach(func(k, v lua.LValue) {
			s, ok := v.(lua.LString)
			switch {
			case k.String() != "key":
				vm.errorf("mf.on_session_end: unknown option %q", k.String())
			case !ok || s == "":
				vm.errorf("mf.on_session_end: option key must be a non-empty string")
			}
			key = string(s)
		})
	}
	vm.sessionEnd, vm.sessionEndKey = fn, key
	return 0
}

// SessionEnded handles a presence message whose session ended, delivered to this VM's actor for
// key: it runs the role's mf.on_session_end hook if key is the hook's (its opts.key, else the
// player), then, on the player's actor of the player role, unloads the player's data (PlayerEnded)
// unless the session was replaced by the player's next one. Errors are logged.
func (vm *VM) SessionEnded(p call.Presence, key string) {
	hookKey := vm.sessionEndKey
	if hookKey == "" {
		hookKey = p.PlayerID
	}
	if vm.sessionEnd != nil && key == hookKey {
		vm.runSessionEnd(p)
	}
	if key == p.PlayerID && p.Reason != "replaced" {
		vm.PlayerEnded(p)
	}
}

func (vm *VM) runSessionEnd(p call.Presence) {
	what := "mf.on_session_end"
	if _, err := vm.protectedCall(vm.sessionEnd, 0, vm.limit(time.Now(), time.Time{}), lua.LString(p.PlayerID), lua.LString(p.Reason)); err != nil {
		vm.callError(err, what, time.Time{})
	}
}
