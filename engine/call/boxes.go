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
// concurrent use; Post never blocks and takes no lock.
//
// A box id names its slot (the low 32 bits) and the count of boxes opened before it (the high
// bits): Post finds the inbox by index, and an answer to a closed box finds its slot empty or
// reused under another id. Slots live in pages that never move, so a reader needs no lock.
type Boxes struct {
	node    string
	remote  Poster
	pages   atomic.Pointer[[]*boxPage]
	dropped atomic.Uint64

	mu     sync.Mutex // Open and Close
	opened uint64
	used   uint32   // slots handed out so far
	free   []uint32 // closed slots, reused first
}

const boxPageSize = 1024

type boxPage [boxPageSize]atomic.Pointer[box]

type box struct {
	id uint64
	in Inbox
}

// NewBoxes returns the post office of node ("" for a process on its own); remote, if not nil,
// carries answers addressed to other nodes.
func NewBoxes(node string, remote Poster) *Boxes {
	b := &Boxes{node: node, remote: remote}
	b.pages.Store(&[]*boxPage{})
	return b
}

// Open gives in an address until Close.
func (b *Boxes) Open(in Inbox) Address {
	b.mu.Lock()
	defer b.mu.Unlock()
	var i uint32
	if n := len(b.free); n > 0 {
		i = b.free[n-1]
		b.free = b.free[:n-1]
	} else {
		i = b.used
		b.used++
		if pages := *b.pages.Load(); int(i/boxPageSize) == len(pages) {
			grown := append(pages[:len(pages):len(pages)], new(boxPage))
			b.pages.Store(&grown)
		}
	}
	b.opened++
	if b.opened<<32 == 0 { // wrapped: 0 is no box
		b.opened++
	}
	id := b.opened<<32 | uint64(i)
	b.slot(i).Store(&box{id: id, in: in})
	return Address{Node: b.node, Box: id}
}

// slot returns the slot of index i, or nil if no page holds it yet.
func (b *Boxes) slot(i uint32) *atomic.Pointer[box] {
	pages := *b.pages.Load()
	if p := int(i / boxPageSize); p < len(pages) {
		return &pages[p][i%boxPageSize]
	}
	return nil
}

// Close ends an address: later answers to it are dropped.
func (b *Boxes) Close(a Address) {
	b.mu.Lock()
	defer b.mu.Unlock()
	i := uint32(a.Box)
	if s := b.slot(i); s != nil {
		if cur := s.Load(); cur != nil && cur.id == a.Box {
			s.Store(nil)
			b.free = append(b.free, i)
		}
	}
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
	if s := b.slot(uint32(a.To.Box)); s != nil {
		if cur := s.Load(); cur != nil && cur.id == a.To.Box {
			cur.in.Deliver(a)
			return
		}
	}
	b.dropped.Add(1)
}

// Dropped returns how many answers found no box (their requester was gone).
func (b *Boxes) Dropped() uint64 { return b.dropped.Load() }
