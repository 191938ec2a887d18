package script

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
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
	t := vm.L.CreateTable(0, 5)
	for name, fn := range map[string]lua.LGFunction{
		"get": vm.luaDBGet, "put": vm.luaDBPut, "delete": vm.luaDBDelete, "cas": vm.luaDBCAS, "batch": vm.luaDBBatch,
	} {
		t.RawSetString(name, vm.waiting(fn))
	}
	return t
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

func (vm *VM) dbKey(L *lua.LState, fn string) string {
	key := L.CheckString(1)
	if key == "" || len(key) > maxDBKey {
		vm.errorf("%s: the key must have 1 to %d bytes", fn, maxDBKey)
	}
	return dbPrefix + key
}

// luaDBGet implements mf.db.get(key): the stored value and its version, or
// nil and 0.
func (vm *VM) luaDBGet(L *lua.LState) int {
	key := vm.dbKey(L, "mf.db.get")
	if w := vm.handlerWrites(L); w != nil {
		if op, ok := w.get(key); ok {
			return pushResult(L, vm.bufferedRead(op))
		}
	}
	if op, ok := vm.commits.pending(key); ok {
		return pushResult(L, vm.bufferedRead(op))
	}
	return vm.dbRun(L, "mf.db.get", func(ctx context.Context, s store.Store) (dbResult, error) {
		raw, version, err := s.GetVersion(ctx, key)
		if errors.Is(err, store.ErrNotFound) {
			return dbResult{nil, 0.0}, nil
		}
		if err != nil {
			return nil, err
		}
		var v any
		if err := json.Unmarshal(raw, &v); err != nil {
			return nil, fmt.Errorf("stored value of %q is not readable: %w", key[len(dbPrefix):], err)
		}
		return dbResult{v, float64(version)}, nil
	})
}

// luaDBPut implements mf.db.put(key, value): in a handler, buffered into the handler's batch;
// elsewhere durable when it returns.
func (vm *VM) luaDBPut(L *lua.LState) int {
	vm.mustRun("mf.db.put")
	key := vm.dbKey(L, "mf.db.put")
	raw := vm.dbValue("mf.db.put", L.CheckAny(2))
	if w := vm.handlerWrites(L); w != nil {
		vm.buffer(w, "mf.db.put", store.Op{Key: key, Value: raw})
		return pushResult(L, nil)
	}
	vm.commits.note(store.Op{Key: key, Value: raw}, vm.commits.made(), false)
	return vm.dbWrite(L, "mf.db.put", func(ctx context.Context, s store.Store) (dbResult, error) {
		return dbResult{}, s.Put(ctx, key, raw)
	})
}

// luaDBDelete implements mf.db.delete(key), buffered like put.
func (vm *VM) luaDBDelete(L *lua.LState) int {
	vm.mustRun("mf.db.delete")
	key := vm.dbKey(L, "mf.db.delete")
	if w := vm.handlerWrites(L); w != nil {
		vm.buffer(w, "mf.db.delete", store.Op{Key: key, Delete: true})
		return pushResult(L, nil)
	}
	vm.commits.note(store.Op{Key: key, Delete: true}, vm.commits.made(), false)
	return vm.dbWrite(L, "mf.db.delete", func(ctx context.Context, s store.Store) (dbResult, error) {
		return dbResult{}, s.Delete(ctx, key)
	})
}

// dbWrites are the mf.db puts and deletes of one handler, not yet committed: one op per key, the
// last one written, with its place in the VM's order of writes (commits.seq). Owned by the VM's
// goroutine.
type dbWrites struct {
	ops []store.Op
	seq []uint64       // of each op
	at  map[string]int // key -> index in ops
}

func (w *dbWrites) get(key string) (store.Op, bool) {
	if i, ok := w.at[key]; ok {
		return w.ops[i], true
	}
	return store.Op{}, false
}

// set adds op made at seq, replacing the op of its key if there is one, and returns how many
// bytes of keys and values that adds.
func (w *dbWrites) set(op store.Op, seq uint64) int {
	if i, ok := w.at[op.Key]; ok {
		old := w.ops[i]
		w.ops[i], w.seq[i] = op, seq
		return len(op.Value) - len(old.Value)
	}
	if w.at == nil {
		w.at = map[string]int{}
	}
	w.at[op.Key] = len(w.ops)
	w.ops = append(w.ops, op)
	w.seq = append(w.seq, seq)
	return len(op.Key) + len(op.Value)
}

// take returns the ops and their seqs, and empties w.
func (w *dbWrites) take() ([]store.Op, []uint64) {
	ops, seq := w.ops, w.seq
	w.ops, w.seq, w.at = nil, nil, nil
	return ops, seq
}

// oldest returns the seq of w's oldest op, if it has any.
func (w *dbWrites) oldest() (uint64, bool) {
	if len(w.seq) == 0 {
		return 0, false
	}
	return slices.Min(w.seq), true
}

// handlerWrites returns the write buffer of the handler running in L, or nil when L is not a
// handler that can wait (the load phase, timers, room callbacks other than on_message): there
// writes go to the store at once.
func (vm *VM) handlerWrites(L *lua.LState) *dbWrites {
	w := &vm.waits
	if w.running == nil || !w.ours[L] || w.post == nil {
		return nil
	}
	return &w.running.writes
}

// buffer adds op to the handler's batch, checked against the store's limits now so that the
// error names the call that broke them.
func (vm *VM) buffer(w *dbWrites, fn string, op store.Op) {
	caps := vm.store().Capabilities()
	if caps.MaxValueLen > 0 && len(op.Value) > caps.MaxValueLen {
		vm.raiseCode(fn, dbCodeError(fn, fmt.Errorf("%w: %d bytes (at most %d)", store.ErrValueTooLarge, len(op.Value), caps.MaxValueLen)))
	}
	if _, ok := w.at[op.Key]; !ok && caps.MaxBatchOps > 0 && len(w.ops) >= caps.MaxBatchOps {
		vm.raiseCode(fn, dbCodeError(fn, fmt.Errorf("%w: a handler writes at most %d keys", store.ErrTooManyOps, caps.MaxBatchOps)))
	}
	w.set(op, vm.commits.made())
}

// bufferedRead is what mf.db.get returns for a key the handler wrote: the written value and
// version -1 (not known before the commit; it matches no version), or nil and 0 for a delete
// (absent after the commit).
func (vm *VM) bufferedRead(op store.Op) dbResult {
	if op.Delete {
		return dbResult{nil, 0.0}
	}
	var v any
	_ = json.Unmarshal(op.Value, &v) // written by dbValue
	return dbResult{v, -1.0}
}

// store returns the services' store, or one that takes every write (a VM without a store).
func (vm *VM) store() store.Store {
	if vm.svc == nil || vm.svc.Store == nil {
		return nullStore{}
	}
	return vm.svc.Store
}

// dbResult is what a store call returns to Lua: plain data, one value each.
type dbResult []any

// dbRun runs a store call. In a handler that can wait (mf.handle, a room's
// on_message, with a reply address) the call runs on a goroutine of its own
// while the handler yields, and the actor serves other messages meanwhile;
// elsewhere (the load phase, timers, room callbacks) it runs on the actor's
// goroutine. Either way the Lua caller gets the result's values, or an error
// with a code (see dbCodeError). The function is called through vm.waiting.
func (vm *VM) dbRun(L *lua.LState, fn string, op func(ctx context.Context, s store.Store) (dbResult, error)) int {
	if vm.svc == nil || vm.svc.Store == nil {
		out, _ := op(context.Background(), nullStore{})
		return pushResult(L, out)
	}
	s := vm.svc.Store
	return vm.offActor(L, fn, dbCodeError, func(ctx context.Context) (dbResult, error) { return op(ctx, s) })
}

// dbWrite runs a store write in its turn after the VM's earlier writes (writeQueued).
func (vm *VM) dbWrite(L *lua.LState, fn string, op func(ctx context.Context, s store.Store) (dbResult, error)) int {
	if vm.svc == nil || vm.svc.Store == nil {
		out, _ := op(context.Background(), nullStore{})
		return pushResult(L, out)
	}
	s := vm.svc.Store
	return vm.writeQueued(L, fn, dbCodeError, func(ctx context.Context) (dbResult, error) { return op(ctx, s) })
}

// offActor runs op, which may block, as dbRun describes: on a goroutine of its own while a
// handler yields, or on the actor's goroutine elsewhere. code gives an error its code.
func (vm *VM) offActor(L *lua.LState, fn string, code func(fn string, err error) *protocol.CodeError, op func(ctx context.Context) (dbResult, error)) int {
	if w := &vm.waits; w.running != nil && w.ours[L] && w.post != nil {
		c := vm.newCall(L, fn)
		go func() {
			ctx, cancel := context.WithDeadline(context.Background(), c.Deadline)
			defer cancel()
			out, err := op(ctx)
			if err != nil {
				c.Fail(code(fn, err))
				return
			}
			c.Return(out)
		}()
		return vm.await(L, c.ID)
	}
	ctx, cancel := vm.dbContext()
	defer cancel()
	out, err := op(ctx)
	if err != nil {
		vm.raiseCode(fn, code(fn, err))
	}
	return pushResult(L, out)
}

// pushResult pushes what a waiting function's wrapper expects: true, then
// the values.
func pushResult(L *lua.LState, out dbResult) int {
	L.Push(lua.LTrue)
	for _, v := range out {
		L.Push(Import(L, v))
	}
	return 1 + len(out)
}

// nullStore answers as an empty store that takes every write: mf.db in a VM
// with no store (tests, tools).
type nullStore struct{ store.Store }

func (nullStore) GetVersion(context.Context, string) ([]byte, uint64, error) {
	return nil, 0, store.ErrNotFound
}
func (nullStore) Put(context.Context, string, []byte) error { return nil }
func (nullStore) Delete(context.Context, string) error      { return nil }
func (nullStore) Batch(context.Context, []store.Op) error   { return nil }
func (nullStore) Capabilities() store.Capabilities {
	return store.Capabilities{MaxValueLen: store.MaxValueLen, MaxBatchOps: 10000}
}

// dbCodeError gives a store error its code: BAD_REQUEST for a key or value
// outside the store's limits, TIMEOUT when the call's deadline passed,
// UNAVAILABLE when the store did not answer, INTERNAL otherwise. The actor
// goes on; nothing of the failed write was applied.
func dbCodeError(fn string, err error) *protocol.CodeError {
	code := protocol.Internal
	switch {
	case errors.Is(err, store.ErrInvalidKey), errors.Is(err, store.ErrValueTooLarge), errors.Is(err, store.ErrTooManyOps), errors.Is(err, store.ErrCrossGroup):
		code = protocol.BadRequest
	case errors.Is(err, context.DeadlineExceeded):
		code = protocol.Timeout
	case errors.Is(err, store.ErrUnavailable), errors.Is(err, store.ErrClosed):
		code = protocol.Unavailable
	}
	return &protocol.CodeError{Code: code, Message: fmt.Sprintf("%s: %v", fn, err)}
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

// dbVersion reads a version argument: a whole number from 0, or -1 (what mf.db.get returns for
// a key the handler wrote), which matches no version: never is true then.
func (vm *VM) dbVersion(fn string, v lua.LValue) (version uint64, never bool) {
	n, ok := v.(lua.LNumber)
	if ok && n == -1 {
		return 0, true
	}
	if !ok || n < 0 || float64(n) != float64(uint64(n)) {
		vm.errorf("%s: a version is a whole number from 0, or -1 (what mf.db.get returned), got %s", fn, v.String())
	}
	return uint64(n), false
}

// luaDBCAS implements mf.db.cas(key, version, value): writes value (nil:
// deletes the key) only if the key is at version (0: absent); returns true
// if it wrote, false if the version did not match.
func (vm *VM) luaDBCAS(L *lua.LState) int {
	vm.mustRun("mf.db.cas")
	key := vm.dbKey(L, "mf.db.cas")
	version, never := vm.dbVersion("mf.db.cas", L.Get(2))
	op := store.Op{Key: key, Match: true, Version: version}
	if v := L.Get(3); v == lua.LNil {
		op.Delete = true
	} else {
		op.Value = vm.dbValue("mf.db.cas", v)
	}
	return vm.dbBatch(L, "mf.db.cas", []store.Op{op}, never)
}

// luaDBBatch implements mf.db.batch(ops): ops is a list of
// {key=, value=} (a put), {key=, delete=true}, with an optional version=
// that makes the whole batch conditional; all are written in one atomic
// batch, or none. Returns true, or false when a version did not match.
func (vm *VM) luaDBBatch(L *lua.LState) int {
	vm.mustRun("mf.db.batch")
	list := L.CheckTable(1)
	var ops []store.Op
	never := false
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
			var n bool
			op.Version, n = vm.dbVersion("mf.db.batch", v)
			op.Match, never = true, never || n
		}
		ops = append(ops, op)
	}
	return vm.dbBatch(L, "mf.db.batch", ops, never)
}

// dbBatch applies ops; the Lua caller gets false on a version conflict, or at once when never
// (a version that matches nothing). In a handler, the writes it buffered so far are committed
// first, in a batch of their own, so that the store sees the handler's writes in order.
func (vm *VM) dbBatch(L *lua.LState, fn string, ops []store.Op, never bool) int {
	var earlier []store.Op
	if w := vm.handlerWrites(L); w != nil {
		earlier = vm.order(w.take())
	}
	if !never {
		seq, conditional := vm.commits.made(), slices.ContainsFunc(ops, func(op store.Op) bool { return op.Match || op.Check })
		for _, op := range ops {
			vm.commits.note(op, seq, conditional)
		}
	}
	return vm.dbWrite(L, fn, func(ctx context.Context, s store.Store) (dbResult, error) {
		if len(earlier) > 0 {
			if err := s.Batch(ctx, earlier); err != nil {
				return nil, fmt.Errorf("committing the handler's earlier writes: %w", err)
			}
		}
		if never {
			return dbResult{false}, nil
		}
		err := s.Batch(ctx, ops)
		if errors.Is(err, store.ErrConflict) {
			return dbResult{false}, nil
		}
		return dbResult{true}, err
	})
}
