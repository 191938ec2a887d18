package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
	"google.golang.org/protobuf/proto"

	"github.com/moonforge/moonforge/engine/client"
	"github.com/moonforge/moonforge/engine/protocol"
	"github.com/moonforge/moonforge/engine/wire"
)

// maxLatency bounds what a histogram records (longer latencies are clamped to it).
const maxLatency = int64(60 * time.Second / time.Microsecond)

func newHistogram() *hdrhistogram.Histogram {
	return hdrhistogram.New(1, maxLatency, 3)
}

// stats are counters shared by every connection of a run; updated atomically.
type stats struct {
	sent      atomic.Int64
	done      atomic.Int64
	pushes    atomic.Int64
	failed    atomic.Int64
	connected atomic.Int64
	codes     sync.Map // protocol.Code → *atomic.Int64
}

func (s *stats) fail(code protocol.Code) {
	s.failed.Add(1)
	v, _ := s.codes.LoadOrStore(code, new(atomic.Int64))
	v.(*atomic.Int64).Add(1)
}

func (s *stats) errorsByCode() map[string]int64 {
	out := map[string]int64{}
	s.codes.Range(func(k, v any) bool {
		out[k.(protocol.Code).String()] = v.(*atomic.Int64).Load()
		return true
	})
	return out
}

// conn is one simulated client: a writer goroutine that sends queued frames in batches and a
// reader goroutine that matches replies to requests by seq and records their latency.
type conn struct {
	link  *client.Link
	queue *wire.Queue
	st    *stats
	hist  *hdrhistogram.Histogram // owned by the reader goroutine

	mu      sync.Mutex
	started map[uint32]time.Time       // seq → when the request was due (open loop) or sent
	waiters map[uint32]chan wire.Frame // seq → a caller of call waiting for the reply
	seq     uint32
	closed  chan struct{}
	err     error

	// Set before the load starts; they run on the reader goroutine.
	onReply func(f wire.Frame)
	onPush  func(f wire.Frame)

	measuring  atomic.Bool   // latencies are recorded only in the measured window
	readerDone chan struct{} // closed when the reader goroutine has exited
}

// dialOptions say how to reach the server.
type dialOptions struct {
	addr      string
	transport string // tcp, ws or kcp
	localIP   string // source address, to spread many connections over several loopback IPs
}

func dial(ctx context.Context, o dialOptions, st *stats) (*conn, error) {
	c := &conn{queue: wire.NewQueue(16 << 20), st: st, hist: newHistogram(), started: map[uint32]time.Time{}, waiters: map[uint32]chan wire.Frame{}, closed: make(chan struct{}), readerDone: make(chan struct{})}
	lo := client.LinkOptions{Addr: o.addr, Transport: o.transport}
	if o.localIP != "" {
		lo.LocalAddr = &net.TCPAddr{IP: net.ParseIP(o.localIP)}
	}
	dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	link, err := client.DialLink(dctx, lo)
	if err != nil {
		return nil, err
	}
	c.link = link
	st.connected.Add(1)
	go c.writeLoop()
	go c.readLoop()
	return c, nil
}

func (c *conn) writeLoop() {
	err := c.queue.Run(c.link.Write)
	if err != nil {
		c.close(err)
	}
}

func (c *conn) readLoop() {
	defer close(c.readerDone)
	for {
		f, err := c.link.Next()
		if err != nil {
			c.close(err)
			return
		}
		if !f.IsReply() {
			if f.MsgID == protocol.MsgKick {
				var k protocol.Kick
				_ = proto.Unmarshal(f.Payload, &k)
				c.close(fmt.Errorf("kicked: %s: %s", protocol.Code(k.Code), k.Reason))
				return
			}
			c.st.pushes.Add(1)
			if c.onPush != nil {
				c.onPush(f)
			}
			continue
		}
		c.mu.Lock()
		t0, ok := c.started[f.Seq]
		delete(c.started, f.Seq)
		waiter := c.waiters[f.Seq]
		delete(c.waiters, f.Seq)
		c.mu.Unlock()
		if waiter != nil {
			waiter <- f
			continue
		}
		if !ok {
			continue
		}
		if c.measuring.Load() {
			_ = c.hist.RecordValue(min(time.Since(t0).Microseconds(), maxLatency))
		}
		c.st.done.Add(1)
		if f.MsgID == protocol.MsgError {
			var e protocol.Error
			_ = proto.Unmarshal(f.Payload, &e)
			c.st.fail(protocol.Code(e.Code))
		}
		if c.onReply != nil {
			c.onReply(f)
		}
	}
}

// send queues a request; due is the time its latency counts from (now, or the scheduled time in
// an open loop).
func (c *conn) send(msgID uint16, payload []byte, due time.Time) error {
	c.mu.Lock()
	c.seq++
	if c.seq == 0 {
		c.seq = 1
	}
	seq := c.seq
	c.started[seq] = due
	c.mu.Unlock()
	c.st.sent.Add(1)
	return c.queue.Push(wire.Frame{MsgID: msgID, Seq: seq, Payload: payload})
}

// call sends one request and waits for its reply (setup steps such as login); it is not counted
// in the run's statistics.
func (c *conn) call(ctx context.Context, msgID uint16, payload []byte) (wire.Frame, error) {
	ch := make(chan wire.Frame, 1)
	c.mu.Lock()
	c.seq++
	if c.seq == 0 {
		c.seq = 1
	}
	seq := c.seq
	c.waiters[seq] = ch
	c.mu.Unlock()
	if err := c.queue.Push(wire.Frame{MsgID: msgID, Seq: seq, Payload: payload}); err != nil {
		return wire.Frame{}, c.closedErr(err)
	}
	select {
	case f := <-ch:
		if f.MsgID == protocol.MsgError {
			var e protocol.Error
			_ = proto.Unmarshal(f.Payload, &e)
			return f, &replyError{code: protocol.Code(e.Code), message: e.Message}
		}
		return f, nil
	case <-c.closed:
		return wire.Frame{}, c.closedErr(nil)
	case <-ctx.Done():
		return wire.Frame{}, ctx.Err()
	}
}

// replyError is an Error frame the server answered a request with.
type replyError struct {
	code    protocol.Code
	message string
}

func (e *replyError) Error() string { return fmt.Sprintf("%s: %s", e.code, e.message) }

// login logs in as a guest; it gives up after 10 s (KCP has no handshake: a wrong address shows
// only as silence).
func (c *conn) login(ctx context.Context, device string) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	payload, _ := proto.Marshal(&protocol.LoginReq{Method: "guest", Account: device})
	_, err := c.call(ctx, protocol.MsgLoginReq, payload)
	if errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("login: no answer in 10s: %w", err)
	}
	return err
}

func (c *conn) close(err error) {
	c.mu.Lock()
	select {
	case <-c.closed:
		c.mu.Unlock()
		return
	default:
	}
	if err == nil {
		err = errors.New("closed")
	}
	c.err = err
	close(c.closed)
	c.mu.Unlock()
	c.queue.Close(err)
	_ = c.link.Close()
	c.st.connected.Add(-1)
}

// closedErr explains a failure on a closed connection by why it closed.
func (c *conn) closedErr(err error) error {
	select {
	case <-c.closed:
		c.mu.Lock()
		defer c.mu.Unlock()
		return c.err
	default:
		return err
	}
}
