// Package client is a Go client of protocol v1 over TCP, WebSocket or KCP: requests matched to replies
// by seq, pushes in order, heartbeat with push acknowledgement, login and resume. The bot, the
// load tool and the black-box tests use it; game clients use the Lua and C# SDKs.
package client

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/moonforge/moonforge/engine/protocol"
	"github.com/moonforge/moonforge/engine/wire"
)

// Config configures a connection.
type Config struct {
	Addr        string        // host:port
	Transport   string        // "tcp" (default), "ws", "kcp", "tls" or "wss"
	TLS         *tls.Config   // for "tls" and "wss"; nil: the system's roots
	WSPath      string        // default "/ws"
	MaxFrame    int           // default 1 MiB
	DialTimeout time.Duration // default 5s
	// Heartbeat, if set, sends Ping at this interval with the highest push seq received.
	Heartbeat time.Duration
	// PushBuffer is the capacity of Pushes(); the reader waits when it is full. Default 4096.
	PushBuffer int
}

// Push is a frame the server sent without REPLY.
type Push struct {
	MsgID   uint16
	Seq     uint32
	Payload []byte
}

// Client is one connection. Its methods are safe for concurrent use.
type Client struct {
	cfg   Config
	link  *Link
	queue *wire.Queue

	mu      sync.Mutex
	pending map[uint32]chan wire.Frame
	seq     uint32

	pushes   chan Push
	lastPush atomic.Uint32
	kick     atomic.Pointer[protocol.Kick]
	err      atomic.Value // error that ended the connection
	done     chan struct{}
	once     sync.Once
}

// ErrClosed is returned for requests on a closed connection.
var ErrClosed = errors.New("client: connection closed")

// Dial connects to a gateway.
func Dial(ctx context.Context, cfg Config) (*Client, error) {
	if cfg.Transport == "" {
		cfg.Transport = "tcp"
	}
	if cfg.DialTimeout <= 0 {
		cfg.DialTimeout = 5 * time.Second
	}
	if cfg.PushBuffer <= 0 {
		cfg.PushBuffer = 4096
	}
	c := &Client{
		cfg:     cfg,
		queue:   wire.NewQueue(64 << 20),
		pending: map[uint32]chan wire.Frame{},
		pushes:  make(chan Push, cfg.PushBuffer),
		done:    make(chan struct{}),
	}
	dctx, cancel := context.WithTimeout(ctx, cfg.DialTimeout)
	defer cancel()
	link, err := DialLink(dctx, LinkOptions{Addr: cfg.Addr, Transport: cfg.Transport, WSPath: cfg.WSPath, MaxFrame: cfg.MaxFrame, TLS: cfg.TLS})
	if err != nil {
		return nil, err
	}
	c.link = link
	go c.readLoop()
	go c.writeLoop()
	if cfg.Heartbeat > 0 {
		go c.heartbeat()
	}
	return c, nil
}

// Request sends a request and waits for its reply. An Error reply comes back as a
// *protocol.CodeError.
func (c *Client) Request(ctx context.Context, msgID uint16, payload []byte) (wire.Frame, error) {
	ch := make(chan wire.Frame, 1)
	c.mu.Lock()
	c.seq++
	if c.seq == 0 {
		c.seq = 1
	}
	seq := c.seq
	c.pending[seq] = ch
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		delete(c.pending, seq)
		c.mu.Unlock()
	}()
	if err := c.queue.Push(wire.Frame{MsgID: msgID, Seq: seq, Payload: payload}); err != nil {
		return wire.Frame{}, c.closedErr()
	}
	select {
	case f := <-ch:
		if f.MsgID == protocol.MsgError {
			var e protocol.Error
			if err := proto.Unmarshal(f.Payload, &e); err != nil {
				return f, fmt.Errorf("client: undecodable Error: %w", err)
			}
			return f, &protocol.CodeError{Code: protocol.Code(e.Code), Message: e.Message, RetryAfterMs: e.RetryAfterMs}
		}
		return f, nil
	case <-ctx.Done():
		return wire.Frame{}, ctx.Err()
	case <-c.done:
		return wire.Frame{}, c.closedErr()
	}
}

// Call sends a request built from a message and decodes the reply into out.
func (c *Client) Call(ctx context.Context, msgID uint16, in proto.Message, out proto.Message) error {
	payload, err := proto.Marshal(in)
	if err != nil {
		return err
	}
	f, err := c.Request(ctx, msgID, payload)
	if err != nil {
		return err
	}
	return proto.Unmarshal(f.Payload, out)
}

// Send sends a one-way message (seq 0).
func (c *Client) Send(msgID uint16, payload []byte) error {
	if err := c.queue.Push(wire.Frame{MsgID: msgID, Payload: payload}); err != nil {
		return c.closedErr()
	}
	return nil
}

// WriteRaw writes bytes as they are, for tests of malformed input (TCP: the byte stream; WebSocket:
// one binary message).
func (c *Client) WriteRaw(b []byte) error { return c.link.WriteRaw(b) }

// WriteText sends a text WebSocket message (a protocol violation, for tests).
func (c *Client) WriteText(s string) error { return c.link.WriteText(s) }

// Login sends LoginReq and returns LoginAck.
func (c *Client) Login(ctx context.Context, method, account, secret string, extra map[string]string) (*protocol.LoginAck, error) {
	var ack protocol.LoginAck
	err := c.Call(ctx, protocol.MsgLoginReq, &protocol.LoginReq{Method: method, Account: account, Secret: secret, Extra: extra}, &ack)
	if err != nil {
		return nil, err
	}
	return &ack, nil
}

// Resume sends ResumeReq with the given token and last push seq and returns ResumeAck. The
// replayed pushes follow on Pushes().
func (c *Client) Resume(ctx context.Context, token string, lastPushSeq uint32) (*protocol.ResumeAck, error) {
	c.lastPush.Store(lastPushSeq)
	var ack protocol.ResumeAck
	if err := c.Call(ctx, protocol.MsgResumeReq, &protocol.ResumeReq{Token: token, LastPushSeq: lastPushSeq}, &ack); err != nil {
		return nil, err
	}
	return &ack, nil
}

// Ping sends Ping with the last push seq received and returns the Pong.
func (c *Client) Ping(ctx context.Context) (*protocol.Pong, error) {
	var pong protocol.Pong
	err := c.Call(ctx, protocol.MsgPing, &protocol.Ping{ClientTimeMs: time.Now().UnixMilli(), AckPushSeq: c.lastPush.Load()}, &pong)
	return &pong, err
}

// Pushes delivers pushes in the order they arrive. Kick arrives here too.
func (c *Client) Pushes() <-chan Push { return c.pushes }

// LastPushSeq returns the highest push seq received.
func (c *Client) LastPushSeq() uint32 { return c.lastPush.Load() }

// Kicked returns the Kick the server sent, if any.
func (c *Client) Kicked() *protocol.Kick { return c.kick.Load() }

// Done is closed when the connection has ended.
func (c *Client) Done() <-chan struct{} { return c.done }

// Err returns why the connection ended (io.EOF for a close by the server).
func (c *Client) Err() error {
	err, _ := c.err.Load().(error)
	return err
}

// Close closes the connection.
func (c *Client) Close() error {
	c.shutdown(ErrClosed)
	return nil
}

func (c *Client) closedErr() error {
	if k := c.Kicked(); k != nil {
		return fmt.Errorf("client: kicked: %s: %s", protocol.Code(k.Code), k.Reason)
	}
	if err := c.Err(); err != nil && err != ErrClosed {
		return fmt.Errorf("%w: %v", ErrClosed, err)
	}
	return ErrClosed
}

func (c *Client) shutdown(err error) {
	c.once.Do(func() {
		c.err.Store(err)
		c.queue.Close(err)
		_ = c.link.Close()
		close(c.done)
	})
}

func (c *Client) readLoop() {
	for {
		f, err := c.link.Next()
		if err != nil {
			c.shutdown(err)
			return
		}
		if f.IsReply() {
			c.mu.Lock()
			ch := c.pending[f.Seq]
			c.mu.Unlock()
			if ch != nil {
				ch <- f
			}
			continue
		}
		if f.MsgID == protocol.MsgKick {
			var k protocol.Kick
			if proto.Unmarshal(f.Payload, &k) == nil {
				c.kick.Store(&k)
			}
		} else if f.Seq > c.lastPush.Load() {
			c.lastPush.Store(f.Seq)
		}
		select {
		case c.pushes <- Push{MsgID: f.MsgID, Seq: f.Seq, Payload: f.Payload}:
		case <-c.done:
			return
		}
	}
}

func (c *Client) writeLoop() {
	err := c.queue.Run(c.link.Write)
	if err != nil {
		c.shutdown(err)
	}
}

func (c *Client) heartbeat() {
	t := time.NewTicker(c.cfg.Heartbeat)
	defer t.Stop()
	for {
		select {
		case <-c.done:
			return
		case <-t.C:
			ctx, cancel := context.WithTimeout(context.Background(), c.cfg.Heartbeat)
			_, _ = c.Ping(ctx)
			cancel()
		}
	}
}
