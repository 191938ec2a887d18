package script

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	lua "github.com/yuin/gopher-lua"

	"github.com/moonforge/moonforge/engine/store"
)

// dbPrefix keeps the keys of mf.db apart from the engine's own (accounts, tokens).
const dbPrefix = "lua/"

// maxDBKey is the longest key mf.db accepts.
const maxDBKey = 512

func (vm *VM) newDBTable() *lua.LTable {
	return vm.funcs(map[string]lua.LGFunction{
		"get":    vm.luaDBGet,
		"put":    vm.luaDBPut,
		"delete": vm.luaDBDelete,
	}, 0)
}

// dbContext bounds a store call by the deadline of the running call.
func (vm *VM) dbContext() (context.Context, context.CancelFunc) {
	vm.guard.mu.Lock()
	deadline := vm.guard.deadline
	vm.guard.mu.Unlock()
	if deadline.IsZero() {
		deadline = time.Now().Add(vm.handlerTimeout())
	}
	return context.WithDeadline(context.Background(), deadline)
}

func (vm *VM) dbKey(fn string) string {
	key := vm.cur().CheckString(1)
	if key == "" || len(key) > maxDBKey {
		vm.errorf("%s: the key must have 1 to %d bytes", fn, maxDBKey)
	}
	return dbPrefix + key
}

// luaDBGet implements mf.db.get(key): the stored value, or nil.
func (vm *VM) luaDBGet(L *lua.LState) int {
	key := vm.dbKey("mf.db.get")
	if vm.svc == nil || vm.svc.Store == nil {
		L.Push(lua.LNil)
		return 1
	}
	ctx, cancel := vm.dbContext()
	defer cancel()
	raw, err := vm.svc.Store.Get(ctx, key)
	if errors.Is(err, store.ErrNotFound) {
		L.Push(lua.LNil)
		return 1
	}
	if err != nil {
		vm.errorf("mf.db.get: %v", err)
	}
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		vm.errorf("mf.db.get: stored value of %q is not readable: %v", key[len(dbPrefix):], err)
	}
	L.Push(Import(L, v))
	return 1
}

// luaDBPut implements mf.db.put(key, value): durable when it returns.
func (vm *VM) luaDBPut(L *lua.LState) int {
	vm.mustRun("mf.db.put")
	key := vm.dbKey("mf.db.put")
	v, err := Export(L.CheckAny(2))
	if err != nil {
		vm.errorf("mf.db.put: %v", err)
	}
	raw, err := json.Marshal(v)
	if err != nil {
		vm.errorf("mf.db.put: %v", err)
	}
	if vm.svc != nil && vm.svc.Store != nil {
		ctx, cancel := vm.dbContext()
		defer cancel()
		if err := vm.svc.Store.Put(ctx, key, raw); err != nil {
			vm.errorf("mf.db.put: %v", err)
		}
	}
	return 0
}

// luaDBDelete implements mf.db.delete(key).
func (vm *VM) luaDBDelete(L *lua.LState) int {
	vm.mustRun("mf.db.delete")
	key := vm.dbKey("mf.db.delete")
	if vm.svc != nil && vm.svc.Store != nil {
		ctx, cancel := vm.dbContext()
		defer cancel()
		if err := vm.svc.Store.Delete(ctx, key); err != nil {
			vm.errorf("mf.db.delete: %v", err)
		}
	}
	return 0
}
