package call

import (
	"sync"
	"sync/atomic"
)

// Inbox receives the answers posted to its box. Deliver is called from the poster's goroutine
// (an actor, a timer, a bus reader) and must not block.
type Inbox interface {
	Deliver(a Answer)
}

// Boxes is the post office of one process: it gives each Inbox an Address and carries answers to
// it. Answers for another node go to Remote (a bus, later); without one they are dropped. Safe for
// concurrent use; Post never blocks.
type Boxes struct {
	node    string
	remote  Poster
	next    atomic.Uint64
	shards  [boxShards]boxShard // by box id: answers to different boxes rarely share a lock
	dropped atomic.Uint64
}

const boxShards = 64

type boxShard struct {
	mu    sync.RWMutex
	boxes map[uint64]Inbox
}

func (b *Boxes) shard(id uint64) *boxShard { return &b.shards[id%boxShards] }

// NewBoxes returns the post office of node ("" for a process on its own); remote, if not nil,
// carries answers addressed to other nodes.
func NewBoxes(node string, remote Poster) *Boxes { return &Boxes{node: node, remote: remote} }

// Open gives in an address until Close.
func (b *Boxes) Open(in Inbox) Address {
	id := b.next.Add(1)
	sh := b.shard(id)
	sh.mu.Lock()
	if sh.boxes == nil {
		sh.boxes = map[uint64]Inbox{}
	}
	sh.boxes[id] = in
	sh.mu.Unlock()
	return Address{Node: b.node, Box: id}
}

// Close ends an address: later answers to it are dropped.
func (b *Boxes) Close(a Address) {
	sh := b.shard(a.Box)
	sh.mu.Lock()
	delete(sh.boxes, a.Box)
	sh.mu.Unlock()
}

// Post delivers a to its box (Poster).
func (b *Boxes) Post(a Answer) {
	if a.To.Node != b.node {
		if b.remote != nil {
			b.remote.Post(a)
			return
		}
		b.dropped.Add(1)
		return
	}
	sh := b.shard(a.To.Box)
	sh.mu.RLock()
	in, ok := sh.boxes[a.To.Box]
	sh.mu.RUnlock()
	if !ok {
		b.dropped.Add(1)
		return
	}
	in.Deliver(a)
}

// Dropped returns how many answers found no box (their requester was gone).
func (b *Boxes) Dropped() uint64 { return b.dropped.Load() }
