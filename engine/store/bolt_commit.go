package store

import (
	"sync"

	bolt "go.etcd.io/bbolt"
)

// commits is the BoltStore's group commit. A write that finds no transaction committing runs
// its own at once; writes that arrive while one commits wait for it and then go together in the
// next transaction, so concurrent writes share one fsync and a lone write waits for no timer
// (bbolt's DB.Batch waits MaxBatchDelay for company, 10 ms by default). Safe for concurrent use.
type commits struct {
	mu     sync.Mutex
	busy   bool // a goroutine is committing; it takes the queue when done
	queued []*commitWrite
}

// commitWrite is one caller's write and, once committed, its result.
type commitWrite struct {
	fn   func(*bolt.Tx) error
	err  error
	done chan struct{}
}

// run applies fn in a write transaction, possibly shared with other callers' writes, and returns
// after that transaction's commit. fn may run more than once (it is run alone again when another
// write of its transaction fails), so it must only write to the transaction.
func (c *commits) run(db *bolt.DB, fn func(*bolt.Tx) error) error {
	w := &commitWrite{fn: fn, done: make(chan struct{})}
	c.mu.Lock()
	c.queued = append(c.queued, w)
	if c.busy {
		c.mu.Unlock()
		<-w.done // the committing goroutine takes it with the next transaction
		return w.err
	}
	c.busy = true
	for len(c.queued) > 0 {
		group := c.queued
		c.queued = nil
		c.mu.Unlock()
		commit(db, group)
		c.mu.Lock()
	}
	c.busy = false
	c.mu.Unlock()
	return w.err
}

// commit runs a group of writes in one transaction; if one fails, each runs alone so that only
// the failing ones fail.
func commit(db *bolt.DB, group []*commitWrite) {
	err := db.Update(func(tx *bolt.Tx) error {
		for _, w := range group {
			if err := w.fn(tx); err != nil {
				return err
			}
		}
		return nil
	})
	for _, w := range group {
		if err != nil && len(group) > 1 {
			w.err = db.Update(w.fn)
		} else {
			w.err = err
		}
		close(w.done)
	}
}
