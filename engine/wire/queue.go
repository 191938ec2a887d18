package wire

import (
	"encoding/binary"
	"errors"
	"sync"
)

// maxSpare is the largest batch buffer a queue keeps for reuse; a burst's larger one is dropped.
const maxSpare = 64 << 10

// ErrQueueFull is returned by Queue.Push when the peer does not read fast enough and the bytes
// waiting for it exceed the queue's limit.
var ErrQueueFull = errors.New("wire: send queue full")

// ErrQueueClosed is returned by Queue.Push after Close.
var ErrQueueClosed = errors.New("wire: send queue closed")

// Queue collects outgoing frames from any number of goroutines and hands them to one writer
// goroutine in batches: everything queued while the previous batch was being written goes out in
// the next single write. This is the write coalescing of the gateway and the client: one write per
// drained batch, never one per frame, and no goroutine per frame. With SetTry, PushNow writes a
// frame from the pushing goroutine when nothing else is being written, sparing the writer's
// wake-up (one goroutine switch per frame when frames come one at a time).
type Queue struct {
	mu       sync.Mutex
	pending  []byte // frames in stream format, waiting for the writer
	spare    []byte // the buffer of the previous batch, reused
	limit    int
	closed   bool
	closeErr error
	wake     chan struct{} // capacity 1: the writer has something to do

	busy bool                      // a batch is being written (by Run or PushNow)
	try  func([]byte) (int, error) // a write that never blocks; nil: PushNow is Push
	one  []byte                    // PushNow's buffer, used by whoever set busy
}

// NewQueue returns a queue that refuses frames once limit bytes are waiting.
func NewQueue(limit int) *Queue {
	return &Queue{limit: limit, wake: make(chan struct{}, 1)}
}

// Push encodes f into the queue. It never blocks on the network. Safe for concurrent use.
func (q *Queue) Push(f Frame) error {
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		return ErrQueueClosed
	}
	if len(q.pending)+LengthSize+HeaderSize+len(f.Payload) > q.limit && len(q.pending) > 0 {
		q.mu.Unlock()
		return ErrQueueFull
	}
	q.pending = AppendStream(q.pending, f)
	q.mu.Unlock()
	select {
	case q.wake <- struct{}{}:
	default:
	}
	return nil
}

// SetTry gives PushNow a write that never blocks: it writes what it can of the batch at once and
// returns how many bytes it wrote (0 when the peer's buffer is full); an error leaves the rest to
// Run's write, which reports it. Call it before Run.
func (q *Queue) SetTry(try func(batch []byte) (int, error)) {
	q.mu.Lock()
	q.try = try
	q.mu.Unlock()
}

// PushNow is Push, except that when nothing is queued or being written the frame is written at
// once by the calling goroutine through SetTry's write, which never blocks; what it cannot write
// goes to the writer. Safe for concurrent use.
func (q *Queue) PushNow(f Frame) (int, error) {
	q.mu.Lock()
	if q.try == nil || q.busy || q.closed || len(q.pending) > 0 {
		q.mu.Unlock()
		return 0, q.Push(f)
	}
	q.busy = true
	batch := AppendStream(q.one[:0], f)
	q.mu.Unlock()
	n, err := q.try(batch)
	if n < 0 {
		n = 0
	}
	q.mu.Lock()
	q.busy = false
	if n < len(batch) && !(q.closed && q.closeErr != nil) {
		// The rest goes first, before what was pushed meanwhile.
		q.pending = append(append([]byte(nil), batch[n:]...), q.pending...)
	}
	if cap(batch) <= maxSpare {
		q.one = batch
	}
	wake := len(q.pending) > 0 || q.closed
	q.mu.Unlock()
	if wake || err != nil {
		select {
		case q.wake <- struct{}{}:
		default:
		}
	}
	return n, nil
}

// Close stops the queue: Push fails from now on, and Run returns once what was queued before
// Close has been written (or at once if err is not nil, dropping it).
func (q *Queue) Close(err error) {
	q.mu.Lock()
	if !q.closed {
		q.closed = true
		q.closeErr = err
		if err != nil {
			q.pending = nil
		}
	}
	q.mu.Unlock()
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// Run is the writer loop; exactly one goroutine calls it. write receives batches of frames in
// stream format (length-prefixed, back to back) and must not keep the slice. Run returns write's
// first error, or the error given to Close, or nil after a clean Close.
func (q *Queue) Run(write func(batch []byte) error) error {
	for range q.wake {
		for {
			q.mu.Lock()
			if q.busy {
				q.mu.Unlock()
				break // PushNow is writing; it wakes the writer when it is done
			}
			batch := q.pending
			q.pending = q.spare[:0]
			closed, closeErr := q.closed, q.closeErr
			q.busy = len(batch) > 0
			q.mu.Unlock()
			if len(batch) == 0 {
				q.spare = batch
				if closed {
					return closeErr
				}
				break
			}
			err := write(batch)
			if cap(batch) > maxSpare {
				batch = nil // do not keep a buffer grown by a burst
			}
			q.mu.Lock()
			q.busy = false
			q.spare = batch
			q.mu.Unlock()
			if err != nil {
				q.Close(err)
				return err
			}
		}
	}
	return nil
}

// Frames calls fn for each frame of a batch given to Run's write, without its length prefix (the
// form a WebSocket message carries).
func Frames(batch []byte, fn func(bare []byte) error) error {
	for len(batch) >= LengthSize {
		n := int(binary.BigEndian.Uint32(batch))
		if LengthSize+n > len(batch) {
			return errors.New("wire: truncated batch")
		}
		if err := fn(batch[LengthSize : LengthSize+n]); err != nil {
			return err
		}
		batch = batch[LengthSize+n:]
	}
	return nil
}
