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
	boxes   sync.Map // uint64 → Inbox
	dropped atomic.Uint64
}

// NewBoxes returns the post office of node ("" for a process on its own); remote, if not nil,
// carries answers addressed to other nodes.
func NewBoxes(node string, remote Poster) *Boxes { return &Boxes{node: node, remote: remote} }

// Open gives in an address until Close.
func (b *Boxes) Open(in Inbox) Address {
	id := b.next.Add(1)
	b.boxes.Store(id, in)
	return Address{Node: b.node, Box: id}
}

// Close ends an address: later answers to it are dropped.
func (b *Boxes) Close(a Address) { b.boxes.Delete(a.Box) }

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
	in, ok := b.boxes.Load(a.To.Box)
	if !ok {
		b.dropped.Add(1)
		return
	}
	in.(Inbox).Deliver(a)
}

// Dropped returns how many answers found no box (their requester was gone).
func (b *Boxes) Dropped() uint64 { return b.dropped.Load() }
