package script

import (
	"context"
	"sync"
	"time"

	lua "github.com/yuin/gopher-lua"

	"github.com/moonforge/moonforge/engine/call"
	"github.com/moonforge/moonforge/engine/protocol"
	"github.com/moonforge/moonforge/engine/store"
)

// The store writes of one VM reach the store in the order the VM made them. Every write goes
// through the VM's commit queue, applied by one goroutine at a time, one item after the other:
//
//   - the writes of handlers that finished (mf.db.put, delete): a handler's write set joins the
//     group batch at the tail of the queue while that batch has not started (a later write of a
//     key replaces an earlier one, which ends in the same state as applying them in order), or
//     starts a new one; one store batch, all or nothing, commits them all, and every handler in
//     it is answered when it is applied: its reply, or the batch's error;
//   - mf.db.cas, mf.db.batch and mf.player.save, each an item of its own, applied once the items
//     before it are (a handler waits for it by yielding);
//   - writes outside handlers (the load phase, timers, room callbacks): an item of their own that
//     the VM's goroutine waits for, blocked; with the queue empty they run at once on it.
//
// A handler's put takes its place in that order when it is called, not when the handler
// returns: a buffered write of a key that the VM wrote again since is committed with the later
// write (order). mf.db.get of a key written by a group batch not yet applied reads the queued
// value (version -1), as a handler reads its own buffered writes.

// commits is a VM's queue of store writes. The VM's goroutine appends items; the applier
// goroutine, while one runs, applies items[0] and removes it. Both hold mu for the fields.
type commits struct {
	mu    sync.Mutex
	items []*commitItem
	idle  chan struct{} // closed when the applier goroutine exits; nil when none runs
	// VM goroutine only:
	groups  map[uint64]*commitItem // the group batches whose answer is not taken yet, by call id
	seq     uint64                 // the last write made (made)
	latest  map[string]madeWrite   // the last write made of a key, while a buffered write may be older
	pruneAt int                    // the size of latest at which prune runs
}

// madeWrite is a write of a key in the VM's order: its op (a put or delete), or for a
// conditional write (cas, batch with versions), drop: its outcome is not known in advance.
type madeWrite struct {
	op   store.Op
	seq  uint64
	drop bool
}

// made returns the place of a write made now in the VM's order.
func (q *commits) made() uint64 {
	q.seq++
	return q.seq
}

// note records op, made at seq, as the last write of its key.
func (q *commits) note(op store.Op, seq uint64, conditional bool) {
	if q.latest == nil {
		q.latest = map[string]madeWrite{}
	}
	q.latest[op.Key] = madeWrite{op: store.Op{Key: op.Key, Value: op.Value, Delete: op.Delete}, seq: seq, drop: conditional}
}

// order turns a handler's buffered writes, taken to be committed, into the ops that keep the
// VM's order of writes: a buffered write of a key that was written again since (by a handler
// that committed first, a timer, a cas) is replaced by that later write, or left out when the
// later one was conditional; the others become the last writes of their keys.
func (vm *VM) order(ops []store.Op, seqs []uint64) []store.Op {
	q := &vm.commits
	out := ops[:0]
	for i, op := range ops {
		if m, ok := q.latest[op.Key]; ok && m.seq > seqs[i] {
			if m.drop {
				continue
			}
			op = m.op
		} else {
			q.note(op, seqs[i], false)
		}
		out = append(out, op)
	}
	vm.prune()
	return out
}

// prune forgets the last writes that no buffered write is older than, once latest has grown.
func (vm *VM) prune() {
	q := &vm.commits
	if len(q.latest) < q.pruneAt {
		return
	}
	oldest, found := uint64(0), false
	consider := func(w *dbWrites) {
		if s, ok := w.oldest(); ok && (!found || s < oldest) {
			oldest, found = s, true
		}
	}
	for _, r := range vm.waits.byCall {
		consider(&r.writes)
	}
	if r := vm.waits.running; r != nil {
		consider(&r.writes)
	}
	for k, m := range q.latest {
		if !found || m.seq <= oldest {
			delete(q.latest, k)
		}
	}
	q.pruneAt = 2*len(q.latest) + 256
}

// commitItem is one store round trip of the queue.
type commitItem struct {
	apply    func(ctx context.Context) (dbResult, error) // nil: a group batch of writes
	writes   dbWrites                                    // a group batch: the merged writes
	size     int                                         // a group batch: bytes of its keys and values
	runs     []*run                                      // a group batch: the handlers it answers
	started  bool                                        // the applier took it: nothing joins it any more
	deadline time.Time
	fn       string
	code     func(fn string, err error) *protocol.CodeError
	answer   *call.Call    // told the outcome; nil for an item the VM's goroutine waits for
	done     chan struct{} // closed when out and err are set; only when answer is nil
	out      dbResult
	err      *protocol.CodeError
}

// enqueue appends it and starts the applier if none runs; an item that starts the applier is
// in flight at once (nothing joins it). VM goroutine, mu held.
func (q *commits) enqueue(it *commitItem, s store.Store) {
	q.items = append(q.items, it)
	if q.idle == nil {
		it.started = true
		q.idle = make(chan struct{})
		go q.applyAll(s)
	}
}

// applyAll applies the queue's items in order until it is empty.
func (q *commits) applyAll(s store.Store) {
	for {
		q.mu.Lock()
		it := q.items[0]
		it.started = true
		ops := it.writes.ops
		q.mu.Unlock()

		ctx, cancel := context.WithDeadline(context.Background(), it.deadline)
		var err error
		if it.apply != nil {
			it.out, err = it.apply(ctx)
		} else {
			err = s.Batch(ctx, ops)
		}
		cancel()
		if err != nil {
			it.err = it.code(it.fn, err)
		}

		q.mu.Lock()
		q.items[0] = nil
		q.items = q.items[1:]
		idle := q.idle
		last := len(q.items) == 0
		if last {
			q.idle = nil
		}
		q.mu.Unlock()
		switch {
		case it.answer == nil:
			close(it.done)
		case it.err != nil:
			it.answer.Fail(it.err)
		default:
			it.answer.Return(it.out)
		}
		if last {
			close(idle)
			return
		}
	}
}

// pending returns the queued write of key by a group batch not yet applied, the latest one.
func (q *commits) pending(key string) (store.Op, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for i := len(q.items) - 1; i >= 0; i-- {
		if op, ok := q.items[i].writes.get(key); ok {
			return op, true
		}
	}
	return store.Op{}, false
}

// commit queues a finished handler's writes (see above); its reply waits for their batch
// (settle), and so do the player's next requests.
func (vm *VM) commit(r *run, ops []store.Op) {
	w, q := &vm.waits, &vm.commits
	w.nextCall++
	r.waitID = w.nextCall
	r.committing = true
	w.byCall[r.waitID] = r
	if r.req != nil {
		if _, ok := w.queued[r.req.PlayerID]; !ok {
			w.queued[r.req.PlayerID] = nil
		}
	}
	s := vm.store()
	caps := s.Capabilities()
	q.mu.Lock()
	defer q.mu.Unlock()
	var it *commitItem
	if n := len(q.items); n > 0 && q.items[n-1].apply == nil && !q.items[n-1].started && fits(q.items[n-1], ops, caps) {
		it = q.items[n-1]
	} else {
		w.nextCall++
		it = &commitItem{fn: "committing the handler's mf.db writes", code: dbCodeError,
			answer: &call.Call{ID: w.nextCall, ReplyTo: w.replyTo, Post: w.post}}
		if q.groups == nil {
			q.groups = map[uint64]*commitItem{}
		}
		q.groups[w.nextCall] = it
		q.enqueue(it, s)
	}
	for _, op := range ops {
		it.size += it.writes.set(op, 0)
	}
	it.runs = append(it.runs, r)
	if r.deadline.After(it.deadline) {
		it.deadline = r.deadline
	}
}

// fits tells whether ops can join the group batch it within the store's limits of one batch.
func fits(it *commitItem, ops []store.Op, caps store.Capabilities) bool {
	keys, size := len(it.writes.ops), it.size
	for _, op := range ops {
		if old, ok := it.writes.get(op.Key); ok {
			size -= len(old.Value)
		} else {
			keys++
			size += len(op.Key)
		}
		size += len(op.Value)
	}
	return (caps.MaxBatchOps <= 0 || keys <= caps.MaxBatchOps) && (caps.MaxBatchBytes <= 0 || size <= caps.MaxBatchBytes)
}

// settle answers the handlers of a group batch that the store applied (err nil) or refused, and
// runs their players' next requests unless the VM closes.
func (vm *VM) settle(it *commitItem, err *protocol.CodeError, closing bool) {
	w := &vm.waits
	var live []*run
	for _, r := range it.runs {
		if w.byCall[r.waitID] == r { // not answered at its deadline already
			delete(w.byCall, r.waitID)
			vm.finish(r, err)
			live = append(live, r)
		}
	}
	if !closing {
		for _, r := range live {
			vm.finished(r)
		}
	}
}

// writeQueued runs op, a store write, in its turn in the queue: the running handler waits for it
// by yielding; elsewhere the VM's goroutine waits for it, and runs it at once when the queue is
// empty. Its Lua caller gets the result as offActor's does.
func (vm *VM) writeQueued(L *lua.LState, fn string, code func(fn string, err error) *protocol.CodeError, op func(ctx context.Context) (dbResult, error)) int {
	q := &vm.commits
	if w := &vm.waits; w.running != nil && w.ours[L] && w.post != nil {
		c := vm.newCall(L, fn)
		q.mu.Lock()
		q.enqueue(&commitItem{apply: op, deadline: c.Deadline, fn: fn, code: code, answer: c}, vm.store())
		q.mu.Unlock()
		return vm.await(L, c.ID)
	}
	q.mu.Lock()
	if len(q.items) == 0 {
		q.mu.Unlock()
		return vm.offActor(L, fn, code, op)
	}
	ctx, cancel := vm.dbContext()
	deadline, _ := ctx.Deadline()
	cancel()
	it := &commitItem{apply: op, deadline: deadline, fn: fn, code: code, done: make(chan struct{})}
	q.enqueue(it, vm.store())
	q.mu.Unlock()
	<-it.done
	if it.err != nil {
		vm.raiseCode(fn, it.err)
	}
	return pushResult(L, it.out)
}

// closeCommits waits until the queue is applied and answers the handlers of its group batches.
func (vm *VM) closeCommits() {
	q := &vm.commits
	q.mu.Lock()
	idle := q.idle
	q.mu.Unlock()
	if idle != nil {
		<-idle
	}
	for id, it := range q.groups {
		delete(q.groups, id)
		vm.settle(it, it.err, true)
	}
}
