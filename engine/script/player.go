// Typed player data seen from Lua: mf.player.data and mf.player.save.

package script

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	lua "github.com/yuin/gopher-lua"
	"github.com/yuin/gopher-lua/parse"

	"github.com/moonforge/moonforge/engine/call"
	"github.com/moonforge/moonforge/engine/luapb"
	"github.com/moonforge/moonforge/engine/playerdata"
	"github.com/moonforge/moonforge/engine/protocol"
	"github.com/moonforge/moonforge/engine/store"
)

// playerRecord is the name of the record that holds a player's message in playerdata.
const playerRecord = "data"

// playerEntry is one player's data in a VM of the player role: the table Lua changes, decoded from
// the record of the node's playerdata.Manager. Owned by the VM's goroutine.
type playerEntry struct {
	data  *playerdata.Data
	table *lua.LTable
	typ   *luapb.Type // the type the table was decoded with
	saved []byte      // the encoding last given to data
}

// playerType returns the codec of the configured player message in the applied version: the same
// one while the schema's sources do not change, so that a reload of Lua alone converts nothing.
func (vm *VM) playerType() (*luapb.Type, error) {
	name := vm.svc.PlayerMessage
	if hash := vm.bundle.Schema.Hash(); vm.playerTyp == nil || vm.playerTypSchema != hash {
		vm.playerTyp, vm.playerTypSchema = vm.bundle.Codecs.Type(name), hash
	}
	if vm.playerTyp == nil {
		return nil, protocol.Errorf(protocol.Internal, "mf.player.data: the player message %q (player.message) is not in the schema", name)
	}
	return vm.playerTyp, nil
}

// playerCtx checks that ctx (argument 1) is the running handler's own and that the handler runs
// on the player's actor of the player role, and returns the player's id.
func (vm *VM) playerCtx(L *lua.LState, fn string) string {
	ud, ok := L.Get(1).(*lua.LUserData)
	var c *requestContext
	if ok {
		c, ok = ud.Value.(*requestContext)
	}
	w := &vm.waits
	switch {
	case !ok:
		vm.errorf("%s(ctx): pass the handler's ctx", fn)
	case vm.svc == nil || vm.svc.PlayerData == nil:
		vm.errorf("%s: player data is not available on this node", fn)
	case vm.role != vm.svc.PlayerRole:
		vm.errorf("%s: player data is held by the handlers of role %s (player.role), not %s", fn, vm.svc.PlayerRole, vm.role)
	case c.keyed:
		vm.errorf("%s: a handler with opts.key runs on the key's actor, not the player's: player data is reachable only from handlers without a key", fn)
	case w.running == nil || !w.ours[L] || w.running.req != c.req:
		vm.errorf("%s: call it in the handler whose ctx it is", fn)
	case c.req.PlayerID == "":
		vm.errorf("%s: the request has no player", fn)
	}
	return c.req.PlayerID
}

// playerEntry returns the player's entry, decoding it from the Manager's record when the Manager
// has the player loaded; nil when it must be loaded first.
func (vm *VM) playerEntry(L *lua.LState, player string) (*playerEntry, error) {
	typ, err := vm.playerType()
	if err != nil {
		return nil, err
	}
	m := vm.svc.PlayerData
	e := vm.players[player]
	if e != nil && m.Loaded(player) != e.data {
		delete(vm.players, player)
		return nil, &protocol.CodeError{Code: protocol.Unavailable, Message: "mf.player.data: this node lost the player's lease (another node serves the player); changes since the last save are dropped", RetryAfterMs: 1000}
	}
	if e == nil {
		d := m.Loaded(player)
		if d == nil {
			return nil, nil
		}
		raw := d.Get(playerRecord)
		t, err := typ.Decode(L, raw)
		if err != nil {
			return nil, protocol.Errorf(protocol.Internal, "mf.player.data: the stored %s of player %s does not decode: %v", typ.FullName, player, err)
		}
		e = &playerEntry{data: d, table: t, typ: typ, saved: raw}
		vm.players[player] = e
		return e, nil
	}
	if e.typ != typ { // a reload changed the schema: read the table again with the new message
		raw, err := e.typ.Encode(nil, e.table)
		if err == nil {
			var t *lua.LTable
			if t, err = typ.Decode(L, raw); err == nil {
				refill(e.table, t)
				e.typ = typ
			}
		}
		if err != nil {
			return nil, protocol.Errorf(protocol.Internal, "mf.player.data: converting to the new %s: %v", typ.FullName, err)
		}
	}
	return e, nil
}

// refill makes dst hold exactly src's fields, keeping dst's identity.
func refill(dst, src *lua.LTable) {
	var keys []lua.LValue
	dst.ForEach(func(k, _ lua.LValue) { keys = append(keys, k) })
	for _, k := range keys {
		dst.RawSet(k, lua.LNil)
	}
	src.ForEach(func(k, v lua.LValue) { dst.RawSet(k, v) })
}

// luaPlayerData is the Go half of mf.player.data(ctx): the player's table, or nil when it must be
// loaded first (then the Lua half calls load and this again with must = true).
func (vm *VM) luaPlayerData(L *lua.LState) int {
	player := vm.playerCtx(L, "mf.player.data")
	e, err := vm.playerEntry(L, player)
	if err != nil {
		vm.raiseCode("mf.player.data", err)
	}
	if e == nil {
		if lua.LVAsBool(L.Get(2)) {
			vm.raiseCode("mf.player.data", &protocol.CodeError{Code: protocol.Unavailable, Message: "mf.player.data: the player's data was unloaded meanwhile", RetryAfterMs: 100})
		}
		L.Push(lua.LNil)
		return 1
	}
	vm.waits.running.player = true
	L.Push(e.table)
	return 1
}

// luaPlayerLoad loads the player's data into the node's Manager (takes the lease, reads the
// store), waiting by yielding.
func (vm *VM) luaPlayerLoad(L *lua.LState) int {
	player := vm.playerCtx(L, "mf.player.data")
	m := vm.svc.PlayerData
	return vm.offActor(L, "mf.player.data", playerCodeError, func(ctx context.Context) (dbResult, error) {
		_, err := m.Load(ctx, player)
		return nil, err
	})
}

// luaPlayerSave implements mf.player.save(ctx): takes the changes of the player's table now and
// waits (yielding) until the store has them.
func (vm *VM) luaPlayerSave(L *lua.LState) int {
	player := vm.playerCtx(L, "mf.player.save")
	e, err := vm.playerEntry(L, player)
	if err != nil {
		vm.raiseCode("mf.player.save", err)
	}
	if e == nil { // not loaded: nothing of this session to save
		return pushResult(L, nil)
	}
	if err := vm.settlePlayer(player); err != nil {
		vm.raiseCode("mf.player.save", err)
	}
	m := vm.svc.PlayerData
	return vm.writeQueued(L, "mf.player.save", playerCodeError, func(ctx context.Context) (dbResult, error) {
		return nil, m.Save(ctx, player)
	})
}

// settlePlayer gives the Manager the player's table if it changed: it encodes it and compares the
// bytes with the last encoding given (a change anywhere in the table, nested tables included,
// changes the bytes: the encoding is deterministic). A table that does not encode is put back as
// it was last given, and the error (naming the field) is returned.
func (vm *VM) settlePlayer(player string) error {
	e := vm.players[player]
	if e == nil {
		return nil
	}
	raw, err := e.typ.Encode(nil, e.table)
	if err != nil {
		if t, derr := e.typ.Decode(vm.L, e.saved); derr == nil {
			refill(e.table, t)
		}
		return protocol.Errorf(protocol.Internal, "mf.player.data: the player's table does not encode, its changes are undone: %v", err)
	}
	if bytes.Equal(raw, e.saved) {
		return nil
	}
	if err := e.data.Set(playerRecord, raw); err != nil {
		return playerCodeError("mf.player.data", err)
	}
	e.saved = raw
	return nil
}

// PlayerEnded takes the player's last changes and unloads the player's data from the node (a
// save, then the lease released) when the player's session ended; on the player's actor of the
// player role, as a presence message. The unload runs on a goroutine of its own; if it fails, the
// data stays loaded and is saved by the Manager's flushes; once the node's stop closes the
// Manager, the Manager's Close saves the player instead.
func (vm *VM) PlayerEnded(p call.Presence) {
	if vm.svc == nil || vm.svc.PlayerData == nil || vm.role != vm.svc.PlayerRole {
		return
	}
	if err := vm.settlePlayer(p.PlayerID); err != nil {
		vm.log.Error("player data at session end", "player", p.PlayerID, "error", err)
	}
	delete(vm.players, p.PlayerID)
	m, log := vm.svc.PlayerData, vm.log
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		err := m.Unload(ctx, p.PlayerID)
		if errors.Is(err, playerdata.ErrClosed) {
			return // the node stops: its Manager.Close saves the player
		}
		if err != nil {
			log.Warn("player data not unloaded at session end; it stays loaded and is flushed", "player", p.PlayerID, "error", err)
			return
		}
		log.Debug("player data unloaded", "player", p.PlayerID, "reason", p.Reason)
	}()
}

// playerCodeError gives a playerdata error its code: UNAVAILABLE (retry later) while another
// node holds the player's lease, when this node lost it, when the store is unreachable (a save
// then waits in the node's journal) or the journal is full; else as dbCodeError.
func playerCodeError(fn string, err error) *protocol.CodeError {
	var ce *protocol.CodeError
	if errors.As(err, &ce) {
		return ce
	}
	switch {
	case errors.Is(err, store.ErrLeaseHeld), errors.Is(err, store.ErrLeaseLost), errors.Is(err, playerdata.ErrNotLoaded), errors.Is(err, playerdata.ErrClosed):
		return &protocol.CodeError{Code: protocol.Unavailable, Message: fmt.Sprintf("%s: %v", fn, err), RetryAfterMs: 1000}
	case errors.Is(err, playerdata.ErrPending), errors.Is(err, playerdata.ErrJournalFull):
		return &protocol.CodeError{Code: protocol.Unavailable, Message: fmt.Sprintf("%s: %v", fn, err), RetryAfterMs: 1000}
	}
	return dbCodeError(fn, err)
}

// playerLua joins the two halves of mf.player.data: a cached table at once, else a load that
// waits, then the table.
const playerLua = `
local data, load = ...
return function(ctx)
	local t = data(ctx)
	if t == nil then
		load(ctx)
		t = data(ctx, true)
	end
	return t
end
`

var playerProto = func() *lua.FunctionProto {
	stmts, err := parse.Parse(strings.NewReader(playerLua), "=mf.player")
	if err != nil {
		panic(err)
	}
	proto, err := lua.Compile(stmts, "=mf.player")
	if err != nil {
		panic(err)
	}
	return proto
}()

// newPlayerTable builds mf.player: online, data, save.
func (vm *VM) newPlayerTable() *lua.LTable {
	L := vm.L
	t := vm.funcs(map[string]lua.LGFunction{"online": vm.luaPlayerOnline}, 2)
	L.Push(L.NewFunctionFromProto(playerProto))
	L.Push(L.NewFunction(vm.luaPlayerData))
	L.Push(vm.waiting(vm.luaPlayerLoad))
	L.Call(2, 1)
	t.RawSetString("data", L.Get(-1))
	L.Pop(1)
	t.RawSetString("save", vm.waiting(vm.luaPlayerSave))
	return t
}
