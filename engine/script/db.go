package script

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	lua "github.com/yuin/gopher-lua"

	"github.com/moonforge/moonforge/engine/protocol"
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
		"cas":    vm.luaDBCAS,
		"batch":  vm.luaDBBatch,
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

// luaDBGet implements mf.db.get(key): the stored value and its version, or
// nil and 0.
func (vm *VM) luaDBGet(L *lua.LState) int {
	key := vm.dbKey("mf.db.get")
	if vm.svc == nil || vm.svc.Store == nil {
		L.Push(lua.LNil)
		L.Push(lua.LNumber(0))
		return 2
	}
	ctx, cancel := vm.dbContext()
	defer cancel()
	raw, version, err := vm.svc.Store.GetVersion(ctx, key)
	if errors.Is(err, store.ErrNotFound) {
		L.Push(lua.LNil)
		L.Push(lua.LNumber(0))
		return 2
	}
	if err != nil {
		vm.dbError("mf.db.get", err)
	}
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		vm.errorf("mf.db.get: stored value of %q is not readable: %v", key[len(dbPrefix):], err)
	}
	L.Push(Import(L, v))
	L.Push(lua.LNumber(version))
	return 2
}

// luaDBPut implements mf.db.put(key, value): durable when it returns.
func (vm *VM) luaDBPut(L *lua.LState) int {
	vm.mustRun("mf.db.put")
	key := vm.dbKey("mf.db.put")
	raw := vm.dbValue("mf.db.put", L.CheckAny(2))
	if vm.svc != nil && vm.svc.Store != nil {
		ctx, cancel := vm.dbContext()
		defer cancel()
		if err := vm.svc.Store.Put(ctx, key, raw); err != nil {
			vm.dbError("mf.db.put", err)
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
			vm.dbError("mf.db.delete", err)
		}
	}
	return 0
}

// dbError raises a store error with a code: BAD_REQUEST for a key or value
// outside the store's limits, TIMEOUT when the call's deadline passed,
// UNAVAILABLE when the store did not answer, INTERNAL otherwise. The actor
// goes on; nothing of the failed write was applied.
func (vm *VM) dbError(fn string, err error) {
	code := protocol.Internal
	switch {
	case errors.Is(err, store.ErrInvalidKey), errors.Is(err, store.ErrValueTooLarge), errors.Is(err, store.ErrTooManyOps), errors.Is(err, store.ErrCrossGroup):
		code = protocol.BadRequest
	case errors.Is(err, context.DeadlineExceeded):
		code = protocol.Timeout
	case errors.Is(err, store.ErrUnavailable), errors.Is(err, store.ErrClosed):
		code = protocol.Unavailable
	}
	vm.raiseCode(fn, &protocol.CodeError{Code: code, Message: fmt.Sprintf("%s: %v", fn, err)})
}

// dbValue encodes v as a stored value (JSON).
func (vm *VM) dbValue(fn string, v lua.LValue) []byte {
	x, err := Export(v)
	if err != nil {
		vm.errorf("%s: %v", fn, err)
	}
	raw, err := json.Marshal(x)
	if err != nil {
		vm.errorf("%s: %v", fn, err)
	}
	return raw
}

// dbVersion reads a version argument: a whole number from 0.
func (vm *VM) dbVersion(fn string, v lua.LValue) uint64 {
	n, ok := v.(lua.LNumber)
	if !ok || n < 0 || float64(n) != float64(uint64(n)) {
		vm.errorf("%s: a version is a whole number from 0 (what mf.db.get returned), got %s", fn, v.String())
	}
	return uint64(n)
}

// luaDBCAS implements mf.db.cas(key, version, value): writes value (nil:
// deletes the key) only if the key is at version (0: absent); returns true
// if it wrote, false if the version did not match.
func (vm *VM) luaDBCAS(L *lua.LState) int {
	vm.mustRun("mf.db.cas")
	key := vm.dbKey("mf.db.cas")
	op := store.Op{Key: key, Match: true, Version: vm.dbVersion("mf.db.cas", L.Get(2))}
	if v := L.Get(3); v == lua.LNil {
		op.Delete = true
	} else {
		op.Value = vm.dbValue("mf.db.cas", v)
	}
	L.Push(lua.LBool(vm.dbBatch("mf.db.cas", []store.Op{op})))
	return 1
}

// luaDBBatch implements mf.db.batch(ops): ops is a list of
// {key=, value=} (a put), {key=, delete=true}, with an optional version=
// that makes the whole batch conditional; all are written in one atomic
// batch, or none. Returns true, or false when a version did not match.
func (vm *VM) luaDBBatch(L *lua.LState) int {
	vm.mustRun("mf.db.batch")
	list := L.CheckTable(1)
	var ops []store.Op
	for i := 1; i <= list.Len(); i++ {
		t, ok := list.RawGetInt(i).(*lua.LTable)
		if !ok {
			vm.errorf("mf.db.batch: op %d is not a table", i)
		}
		k, ok := t.RawGetString("key").(lua.LString)
		if !ok || len(k) == 0 || len(k) > maxDBKey {
			vm.errorf("mf.db.batch: op %d: the key must be a string of 1 to %d bytes", i, maxDBKey)
		}
		op := store.Op{Key: dbPrefix + string(k), Delete: lua.LVAsBool(t.RawGetString("delete"))}
		if !op.Delete {
			op.Value = vm.dbValue("mf.db.batch", t.RawGetString("value"))
		}
		if v := t.RawGetString("version"); v != lua.LNil {
			op.Match, op.Version = true, vm.dbVersion("mf.db.batch", v)
		}
		ops = append(ops, op)
	}
	L.Push(lua.LBool(vm.dbBatch("mf.db.batch", ops)))
	return 1
}

// dbBatch applies ops and reports false on a version conflict.
func (vm *VM) dbBatch(fn string, ops []store.Op) bool {
	if vm.svc == nil || vm.svc.Store == nil {
		return true
	}
	ctx, cancel := vm.dbContext()
	defer cancel()
	err := vm.svc.Store.Batch(ctx, ops)
	if errors.Is(err, store.ErrConflict) {
		return false
	}
	if err != nil {
		vm.dbError(fn, err)
	}
	return true
}
