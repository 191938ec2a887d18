package script_test

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/moonforge/moonforge/engine/call"
	"github.com/moonforge/moonforge/engine/playerdata"
	"github.com/moonforge/moonforge/engine/protocol"
	"github.com/moonforge/moonforge/engine/script"
	"github.com/moonforge/moonforge/engine/store"
)

// heldStore holds its first batch (with holdKey set: the first that writes holdKey) until the
// test releases it (holding is closed when it arrives); the other calls go through at once, so a
// write that does not wait for the held one overtakes it. done lists the keys of each batch
// applied, in order.
type heldStore struct {
	store.Store
	holding, release chan struct{}
	holdKey          string
	once             sync.Once
	mu               sync.Mutex
	done             [][]string
}

func (h *heldStore) applied() [][]string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.done)
}

func newHeldStore(t *testing.T) *heldStore {
	return &heldStore{Store: openStore(t), holding: make(chan struct{}), release: make(chan struct{})}
}

func (h *heldStore) Batch(ctx context.Context, ops []store.Op) error {
	first := false
	if h.holdKey == "" || slices.ContainsFunc(ops, func(op store.Op) bool { return op.Key == h.holdKey }) {
		h.once.Do(func() { first = true })
	}
	if first {
		close(h.holding)
		select {
		case <-h.release:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	err := h.Store.Batch(ctx, ops)
	if err == nil {
		var keys []string
		for _, op := range ops {
			keys = append(keys, op.Key)
		}
		h.mu.Lock()
		h.done = append(h.done, keys)
		h.mu.Unlock()
	}
	return err
}

func (h *heldStore) Put(ctx context.Context, key string, value []byte) error {
	return h.Batch(ctx, []store.Op{{Key: key, Value: value}})
}

// orderLua writes one key from several players' handlers on one actor, and a history list.
const orderLua = `
local m = mf.module("order")
mf.handle("EchoReq", function(ctx, req)
  if req.body == "put" then
    m.hist = m.hist or {}
    table.insert(m.hist, req.n)
    mf.db.put("k", req.n)
    mf.db.put("hist", m.hist)
  elseif req.body == "get" then
    local v, ver = mf.db.get("k")
    return "EchoAck", { n = v or 0, body = tostring(ver) }
  elseif req.body == "cas" then
    return "EchoAck", { n = req.n, body = tostring(mf.db.cas("k", 0, req.n)) }
  elseif req.body == "timer" then
    mf.timer.after(0, function() mf.db.put("k", req.n) end)
  end
  return "EchoAck", { n = req.n }
end)`

// answering gives a VM its calls' answers through a channel; pump resumes the VM with them
// until done says so.
func answering(t *testing.T, vm *script.VM) (pump func(done func() bool)) {
	answers := make(chan call.Answer, 64)
	vm.SetReplyTo(call.Address{Box: 1}, posted(func(a call.Answer) { answers <- a }))
	return func(done func() bool) {
		t.Helper()
		for !done() {
			select {
			case a := <-answers:
				vm.Resume(a)
			case <-time.After(10 * time.Second):
				t.Fatal("no answer from the store")
			}
		}
	}
}

func stored(t *testing.T, s store.Store, key string) string {
	t.Helper()
	v, err := s.Get(context.Background(), "lua/"+key)
	if err != nil {
		return err.Error()
	}
	return string(v)
}

// TestCommitsKeepTheActorsOrder: while the first handler's commit is held, the next handlers'
// writes of the same keys wait for it instead of overtaking it, so the store ends with the last
// value the actor wrote; a mf.db.cas waits for the writes before it too.
func TestCommitsKeepTheActorsOrder(t *testing.T) {
	held := newHeldStore(t)
	vm := newVM(t, compile(t, map[string]string{"lobby/o.lua": orderLua}), "lobby", &script.Services{Store: held, HandlerTimeout: 10 * time.Second})
	pump := answering(t, vm)

	first := send(t, vm, "p1", "put", 1)
	<-held.holding
	second := send(t, vm, "p2", "put", 2)
	cas := send(t, vm, "p3", "cas", 3) // k is written ahead of it: the cas must not find it absent
	time.Sleep(50 * time.Millisecond)  // writes that do not wait for the held one reach the store meanwhile
	close(held.release)
	pump(func() bool { return first.count() == 1 && second.count() == 1 && cas.count() == 1 })
	if got := stored(t, held.Store, "k"); got != "2" {
		t.Fatalf("stored k = %s; want 2, the last value written", got)
	}
	if got := stored(t, held.Store, "hist"); got != "[1,2]" {
		t.Fatalf("stored history = %s; want [1,2]", got)
	}
	if n, body := reply(t, vm, cas); n != 3 || body != "false" {
		t.Fatalf("cas at version 0 after queued writes of k: %s; want false", body)
	}
}

// TestTimerWriteWaitsForQueuedCommits: a timer's put, made after a handler's writes, is applied
// after them.
func TestTimerWriteWaitsForQueuedCommits(t *testing.T) {
	held := newHeldStore(t)
	vm := newVM(t, compile(t, map[string]string{"lobby/o.lua": orderLua}), "lobby", &script.Services{Store: held, HandlerTimeout: 10 * time.Second})
	pump := answering(t, vm)
	first := send(t, vm, "p1", "put", 1)
	<-held.holding
	send(t, vm, "p2", "timer", 7)
	go func() {
		time.Sleep(20 * time.Millisecond) // the timer's put blocks the actor until the queue is applied
		close(held.release)
	}()
	vm.RunTimers(time.Now().Add(time.Second))
	pump(func() bool { return first.count() == 1 })
	if got := stored(t, held.Store, "k"); got != "7" {
		t.Fatalf("stored k = %s; want 7, the timer's later write", got)
	}
}

// TestGroupCommit: the writes of the handlers that finish while a commit is out are one batch;
// their replies come when it is applied, mf.db.get reads the queued value meanwhile, and a batch
// that fails fails every handler in it, the actor going on.
func TestGroupCommit(t *testing.T) {
	vm, gated, _ := gatedVM(t, map[string]string{"lobby/o.lua": orderLua})
	pump := answering(t, vm)
	open := func() { gated.gate <- struct{}{} }

	a := send(t, vm, "p1", "put", 1)
	b := send(t, vm, "p2", "put", 2)
	c := send(t, vm, "p3", "put", 3)
	g := send(t, vm, "p4", "get", 0)
	if n, body := reply(t, vm, g); n != 3 || body != "-1" {
		t.Fatalf("mf.db.get of a queued write: n=%d version %s; want 3, -1", n, body)
	}
	open()
	pump(func() bool { return a.count() == 1 })
	if b.count() != 0 || c.count() != 0 {
		t.Fatal("a handler was answered before its writes were applied")
	}
	if got := stored(t, gated.Store, "k"); got != "1" {
		t.Fatalf("after the first batch k = %s; want 1", got)
	}
	open()
	pump(func() bool { return b.count() == 1 && c.count() == 1 })
	if b.err != nil || c.err != nil {
		t.Fatalf("group batch answers: %v, %v", b.err, c.err)
	}
	batches := gated.applied()
	if len(batches) != 2 || len(batches[1]) != 2 {
		t.Fatalf("batches applied: %d, the second of %d ops; want 2, the second of 2 (k, hist)", len(batches), len(batches[len(batches)-1]))
	}
	if got := stored(t, gated.Store, "hist"); got != "[1,2,3]" {
		t.Fatalf("stored history = %s; want [1,2,3]", got)
	}

	d := send(t, vm, "p1", "put", 4)
	e := send(t, vm, "p2", "put", 5)
	f := send(t, vm, "p3", "put", 6)
	open()
	pump(func() bool { return d.count() == 1 })
	gated.setDown(true)
	open()
	pump(func() bool { return e.count() == 1 && f.count() == 1 })
	for _, x := range []*answer{e, f} {
		if x.err == nil || x.err.Code != protocol.Unavailable {
			t.Fatalf("a handler of the failed batch: %+v; want UNAVAILABLE", x.err)
		}
	}
	if got := stored(t, gated.Store, "k"); got != "4" || len(gated.applied()) != 3 {
		t.Fatalf("after the failed batch k = %s, %d batches; want 4, 3", got, len(gated.applied()))
	}
	gated.setDown(false)
	h := send(t, vm, "p2", "put", 8)
	open()
	pump(func() bool { return h.count() == 1 })
	if got := stored(t, gated.Store, "hist"); h.err != nil || got != "[1,2,3,4,5,6,8]" {
		t.Fatalf("after the store returned: %v, history %s", h.err, got)
	}
}

// TestBufferedWriteOlderThanACommit: a handler that put a key and then waited commits after a
// later handler that put the same key; the store keeps the later value.
func TestBufferedWriteOlderThanACommit(t *testing.T) {
	rooms := &calls{}
	st := openStore(t)
	vm := newVM(t, compile(t, map[string]string{"lobby/o.lua": `
local m = mf.module("o")
mf.handle("EchoReq", function(ctx, req)
  m.n = req.n
  mf.db.put("k", m.n)
  if req.body == "wait" then mf.room.join("r1", ctx.player_id) end
  return "EchoAck", { n = req.n }
end)`}), "lobby", &script.Services{Store: st, Rooms: rooms, HandlerTimeout: 10 * time.Second})
	pump := answering(t, vm)
	older := send(t, vm, "p1", "wait", 1)
	later := send(t, vm, "p2", "put", 2)
	pump(func() bool { return later.count() == 1 })
	for _, j := range rooms.take() {
		j.Return(map[string]any{"n": 0})
	}
	pump(func() bool { return older.count() == 1 })
	if older.err != nil || later.err != nil {
		t.Fatalf("answers: %v, %v", older.err, later.err)
	}
	if got := stored(t, st, "k"); got != "2" {
		t.Fatalf("stored k = %s; want 2, the value put last", got)
	}
}

// TestPlayerSaveAfterEarlierWrites: mf.player.save takes its turn after the mf.db writes of the
// actor's earlier handlers.
func TestPlayerSaveAfterEarlierWrites(t *testing.T) {
	held := newHeldStore(t)
	held.holdKey = "lua/k"
	m, err := playerdata.Open(playerdata.Config{Store: held, Dir: t.TempDir(), FlushEvery: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Close(context.Background()) })
	vm := newVM(t, compile(t, map[string]string{"lobby/p.lua": `
mf.handle("EchoReq", function(ctx, req)
  if req.body == "put" then
    mf.db.put("k", req.n)
    return "EchoAck", { n = req.n }
  end
  local me = mf.player.data(ctx)
  me.gold = me.gold + req.n
  if req.body == "save" then mf.player.save(ctx) end
  return "EchoAck", { n = me.gold }
end)`}), "lobby", &script.Services{Store: held, PlayerData: m, PlayerRole: "lobby", PlayerMessage: "demo.PlayerData", HandlerTimeout: 10 * time.Second})
	pump := answering(t, vm)
	load := send(t, vm, "p2", "gold", 1)
	pump(func() bool { return load.count() == 1 })

	put := send(t, vm, "p1", "put", 5)
	<-held.holding
	save := send(t, vm, "p2", "save", 2)
	time.Sleep(50 * time.Millisecond) // a save that does not wait reaches the store meanwhile
	close(held.release)
	pump(func() bool { return put.count() == 1 && save.count() == 1 })
	if put.err != nil || save.err != nil {
		t.Fatalf("answers: %v, %v", put.err, save.err)
	}
	k, data := -1, -1
	for i, keys := range held.applied() {
		if slices.Contains(keys, "lua/k") {
			k = i
		}
		if slices.Contains(keys, store.PlayerKey("p2", "data")) {
			data = i
		}
	}
	if k < 0 || data < k {
		t.Fatalf("batches applied %v: the save (%d) before the earlier handler's write (%d)", held.applied(), data, k)
	}
}

// TestCloseAppliesTheQueue: a VM that closes with commits queued applies them and answers their
// handlers before it is gone.
func TestCloseAppliesTheQueue(t *testing.T) {
	gated := &gatedStore{Store: openStore(t), gate: make(chan struct{}, 1)}
	vm := script.NewVM("lobby", &script.Services{Store: gated, HandlerTimeout: 10 * time.Second})
	if err := vm.Apply(compile(t, map[string]string{"lobby/o.lua": orderLua})); err != nil {
		t.Fatal(err)
	}
	answering(t, vm)
	a := send(t, vm, "p1", "put", 1)
	b := send(t, vm, "p2", "put", 2)
	go func() {
		gated.gate <- struct{}{}
		gated.gate <- struct{}{}
	}()
	vm.Close()
	if a.count() != 1 || b.count() != 1 || a.err != nil || b.err != nil {
		t.Fatalf("answers after Close: %d %v, %d %v; want both replies", a.count(), a.err, b.count(), b.err)
	}
	if got := stored(t, gated.Store, "hist"); got != "[1,2]" {
		t.Fatalf("stored history = %s; want [1,2]", got)
	}
}
