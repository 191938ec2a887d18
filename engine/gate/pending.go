package gate

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/moonforge/moonforge/engine/call"
	"github.com/moonforge/moonforge/engine/protocol"
)

// inflight is one request of a connection waiting for its answer.
type inflight struct {
	seq      uint32
	msg      string
	received time.Time
	deadline time.Time
	login    bool // a LoginReq: the answer goes to the reader, which waits for it
}

// pending is a connection's table of requests in flight. Whatever the code that handles a request
// does — answer, fail, drop it, or run on a node that died — the client gets exactly one answer:
// the first of the handler's answer and TIMEOUT at the deadline. A later answer is dropped and
// counted. Safe for concurrent use: requests are added by the reader, answers come from any
// goroutine, TIMEOUTs from the table's timer.
//
// A request's id names its slot (the low 32 bits) and the count of requests added before it (the
// high bits), so an answer finds its request without hashing, and a late answer finds its slot
// reused by another id. Freed slots are reused last-in first-out: a client with one request at a
// time always uses slot 0, which stays in the CPU's cache.
type pending struct {
	mu    sync.Mutex
	next  uint64
	slots []slot       // a request in flight, or a free slot (id 0)
	free  []uint32     // indexes of the free slots
	count atomic.Int32 // requests added and not yet answered: a request counts until its answer is queued
	timer *time.Timer
	armed time.Time // when the timer fires; zero when it is not armed
}

type slot struct {
	id uint64
	f  inflight
}

// add records a request and returns its id.
func (c *conn) add(f inflight) uint64 {
	p := &c.pending
	p.mu.Lock()
	p.next++
	if p.next<<32 == 0 { // wrapped: id 0 marks a free slot
		p.next++
	}
	var i uint32
	if n := len(p.free); n > 0 {
		i = p.free[n-1]
		p.free = p.free[:n-1]
	} else {
		i = uint32(len(p.slots))
		p.slots = append(p.slots, slot{})
	}
	id := p.next<<32 | uint64(i)
	p.slots[i] = slot{id: id, f: f}
	p.count.Add(1)
	// Deadlines are the receipt time plus one fixed timeout, so they mostly come in order: the
	// timer is re-armed only when this deadline is earlier than the one it waits for.
	if p.armed.IsZero() || f.deadline.Before(p.armed) {
		p.arm(f.deadline, c.expire)
	}
	p.mu.Unlock()
	return id
}

// remove frees slot i; under p.mu. The request still counts as in flight until its answer is
// queued (answered).
func (p *pending) remove(i uint32) {
	p.slots[i] = slot{}
	p.free = append(p.free, i)
}

// answered ends the count of a request removed from the table once its answer is queued, so that
// a connection that waits for its requests (a half-closed one) closes only after their answers.
func (p *pending) answered() { p.count.Add(-1) }

// arm sets the timer to fire at t; under p.mu.
func (p *pending) arm(t time.Time, expire func()) {
	p.armed = t
	d := time.Until(t)
	if p.timer == nil {
		p.timer = time.AfterFunc(d, expire)
		return
	}
	p.timer.Reset(d)
}

// take removes and returns request id and whether it was the only one in flight; false if it was
// answered already (or timed out). The caller queues the answer, then calls pending.answered.
func (c *conn) take(id uint64) (f inflight, only, ok bool) {
	p := &c.pending
	i := uint32(id)
	p.mu.Lock()
	if ok = int(i) < len(p.slots) && p.slots[i].id == id; ok {
		f = p.slots[i].f
		p.remove(i)
		only = p.count.Load() == 1
	}
	p.mu.Unlock()
	return f, only, ok
}

// inFlight returns the number of requests waiting for their answer.
func (c *conn) inFlight() int { return int(c.pending.count.Load()) }

// expire answers TIMEOUT to every request past its deadline; on the timer's goroutine.
func (c *conn) expire() {
	p := &c.pending
	now := time.Now()
	var late []inflight
	var next time.Time
	p.mu.Lock()
	for i, s := range p.slots {
		switch {
		case s.id == 0:
		case !now.Before(s.f.deadline):
			late = append(late, s.f)
			p.remove(uint32(i))
		case next.IsZero() || s.f.deadline.Before(next):
			next = s.f.deadline
		}
	}
	p.armed = time.Time{}
	if !next.IsZero() {
		p.arm(next, c.expire)
	}
	p.mu.Unlock()
	for _, f := range late {
		c.answer(f, call.Answer{Err: protocol.Errorf(protocol.Timeout, "no reply within the request deadline")}, false)
		p.answered()
	}
}

// stopTimer stops TIMEOUTs once the connection is closed.
func (c *conn) stopTimer() {
	c.pending.mu.Lock()
	if c.pending.timer != nil {
		c.pending.timer.Stop()
	}
	c.pending.mu.Unlock()
}

// Deliver takes the answer of a request (call.Inbox): the client gets it if the request is still
// in flight; otherwise it came too late and is dropped and counted. The answer to the only request
// in flight is written by the calling goroutine if the connection's writer is idle (see
// wire.Queue.PushNow): with one request at a time nothing would batch with it, and waking the
// writer costs a goroutine switch. With more in flight it goes to the writer, to batch.
func (c *conn) Deliver(a call.Answer) {
	f, only, ok := c.take(a.ID)
	if !ok {
		c.g.obs.Late()
		return
	}
	c.answer(f, a, only)
	c.pending.answered()
}

// answer sends a request's one answer; now: write it at once if the writer is idle.
func (c *conn) answer(f inflight, a call.Answer, now bool) {
	if f.login {
		c.loginAnswer <- a // buffered: the one answer of the one login in flight
		return
	}
	if a.Err != nil {
		c.g.obs.Answered(f.msg, a.Err.Code, time.Since(f.received))
		if f.seq == 0 {
			c.g.warn("one_way_failed", c.remote, "one-way message failed", "conn", c.id, "msg", f.msg, "code", a.Err.Code.String(), "error", a.Err.Message)
			return
		}
		c.sendError(f.seq, a.Err)
		return
	}
	c.g.obs.Answered(f.msg, 0, time.Since(f.received))
	if f.seq == 0 {
		return
	}
	if now {
		c.sendNow(wireReply(a.MsgID, f.seq, a.Payload))
		return
	}
	_ = c.Send(wireReply(a.MsgID, f.seq, a.Payload))
}
