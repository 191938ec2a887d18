package main

import (
	"context"
	"fmt"
	"math"
	"math/rand"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/moonforge/moonforge/engine/wire"
)

// options describe one run.
type options struct {
	Addr      string        `json:"addr"`
	Admin     string        `json:"admin,omitempty"` // the server's admin endpoint, for its CPU, RSS...
	Transport string        `json:"transport"`
	Scenario  string        `json:"scenario"`
	Conns     int           `json:"conns"`
	InFlight  int           `json:"in_flight,omitempty"` // closed loop: requests in flight per connection
	Rate      float64       `json:"rate,omitempty"`      // open loop: requests per second over all connections
	Duration  time.Duration `json:"duration_ns"`
	Warmup    time.Duration `json:"warmup_ns"`
	RoomSize  int           `json:"room_size,omitempty"`
	Payload   int           `json:"payload,omitempty"`
	LocalIPs  int           `json:"local_ips,omitempty"` // spread connections over 127.0.0.1..N
	Device    string        `json:"-"`                   // guest device id prefix
	Quiet     bool          `json:"-"`
	Baseline  bool          `json:"baseline,omitempty"` // the target is the raw echo baseline

	// window, if set, is called when the measured window starts and when it ends, while the
	// connections are still open and loaded.
	window func(start bool) `json:"-"`
}

// Message ids of the demo schema (proto/demo/demo.proto) the scenarios send.
const (
	msgEchoReq      = 1001
	msgChatSendReq  = 2001
	msgArenaJoinReq = 3001
	msgArenaJoinAck = 3002
	msgArenaMoveReq = 3005
)

// load is one run in progress.
type load struct {
	o       options
	st      stats
	conns   []*conn
	running atomic.Bool
	wg      sync.WaitGroup
}

// runLoad dials the connections, sets them up, runs the warm-up and the measured window, and
// returns the client-side results (latency histogram merged from every connection).
func runLoad(ctx context.Context, o options) (*result, *hdrhistogram.Histogram, error) {
	if o.Device == "" {
		o.Device = fmt.Sprintf("load-%s", o.Scenario)
	}
	l := &load{o: o}
	if o.Scenario == "login" {
		return l.runLogins(ctx)
	}
	if err := l.connect(ctx); err != nil {
		l.closeAll()
		return nil, nil, err
	}
	if o.Scenario == "arena" {
		if err := l.formRooms(ctx); err != nil {
			l.closeAll()
			return nil, nil, err
		}
	}
	l.running.Store(true)
	l.start()
	sleep(ctx, o.Warmup)
	base := l.st.done.Load()
	baseFailed := l.st.failed.Load()
	basePushes := l.st.pushes.Load()
	l.mark(true)
	for _, c := range l.conns {
		c.measuring.Store(true)
	}
	began := time.Now()
	l.progress(ctx, o.Duration)
	elapsed := time.Since(began)
	for _, c := range l.conns {
		c.measuring.Store(false)
	}
	l.mark(false)
	done := l.st.done.Load() - base
	failed := l.st.failed.Load() - baseFailed
	pushes := l.st.pushes.Load() - basePushes
	l.running.Store(false)
	l.wg.Wait()
	drainUntil := time.Now().Add(2 * time.Second)
	for l.st.sent.Load() > l.st.done.Load() && time.Now().Before(drainUntil) {
		time.Sleep(10 * time.Millisecond)
	}
	l.closeAll()
	hist := newHistogram()
	for _, c := range l.conns {
		<-c.readerDone
		hist.Merge(c.hist)
	}
	res := &result{
		Options:    o,
		Requests:   done,
		Failed:     failed,
		Throughput: float64(done) / elapsed.Seconds(),
		Pushes:     pushes,
		PushRate:   float64(pushes) / elapsed.Seconds(),
		Errors:     l.st.errorsByCode(),
		Seconds:    elapsed.Seconds(),
	}
	return res, hist, nil
}

// connect dials every connection (a few at a time) and logs in where the scenario needs it.
func (l *load) connect(ctx context.Context) error {
	l.conns = make([]*conn, l.o.Conns)
	sem := make(chan struct{}, 64)
	var mu sync.Mutex
	var firstErr error
	var wg sync.WaitGroup
	for i := range l.conns {
		wg.Add(1)
		sem <- struct{}{}
		go func(i int) {
			defer wg.Done()
			defer func() { <-sem }()
			d := dialOptions{addr: l.o.Addr, transport: l.o.Transport}
			if l.o.LocalIPs > 1 {
				d.localIP = fmt.Sprintf("127.0.0.%d", 1+i%l.o.LocalIPs)
			}
			c, err := dial(ctx, d, &l.st)
			if err == nil && l.o.Scenario != "idle" {
				err = c.login(ctx, fmt.Sprintf("%s-%d", l.o.Device, i))
			}
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				if firstErr == nil {
					firstErr = fmt.Errorf("connection %d: %w", i, err)
				}
				if c != nil {
					c.close(err)
				}
				return
			}
			l.conns[i] = c
		}(i)
	}
	wg.Wait()
	if firstErr != nil {
		return firstErr
	}
	return nil
}

// formRooms puts the connections into arena rooms of RoomSize: the first of each group opens a
// room (quick match when every earlier room is full), the others join it by id.
func (l *load) formRooms(ctx context.Context) error {
	size := max(1, l.o.RoomSize)
	for g := 0; g < len(l.conns); g += size {
		f, err := l.conns[g].call(ctx, msgArenaJoinReq, nil)
		if err != nil {
			return fmt.Errorf("room %d: %w", g/size, err)
		}
		roomID, err := firstString(f.Payload)
		if err != nil || f.MsgID != msgArenaJoinAck {
			return fmt.Errorf("room %d: unexpected answer %d", g/size, f.MsgID)
		}
		join := protowire.AppendString(protowire.AppendTag(nil, 1, protowire.BytesType), roomID)
		var wg sync.WaitGroup
		errs := make(chan error, size)
		for i := g + 1; i < min(g+size, len(l.conns)); i++ {
			wg.Add(1)
			go func(c *conn) {
				defer wg.Done()
				if _, err := c.call(ctx, msgArenaJoinReq, join); err != nil {
					errs <- err
				}
			}(l.conns[i])
		}
		wg.Wait()
		select {
		case err := <-errs:
			return fmt.Errorf("room %d: %w", g/size, err)
		default:
		}
	}
	return nil
}

// firstString returns field 1 of a message when it is a string.
func firstString(b []byte) (string, error) {
	num, typ, n := protowire.ConsumeTag(b)
	if n < 0 || num != 1 || typ != protowire.BytesType {
		return "", fmt.Errorf("no field 1")
	}
	s, m := protowire.ConsumeString(b[n:])
	if m < 0 {
		return "", fmt.Errorf("bad field 1")
	}
	return s, nil
}

// request returns the next request of the scenario for connection i.
func (l *load) request(i int, n int64) (uint16, []byte) {
	switch l.o.Scenario {
	case "chat":
		return msgChatSendReq, protowire.AppendString(protowire.AppendTag(nil, 1, protowire.BytesType), fmt.Sprintf("load %d", n))
	case "arena":
		dx := float32([]float64{1, 0, -1, 0}[n%4])
		dy := float32([]float64{0, 1, 0, -1}[n%4])
		vec := protowire.AppendFixed32(protowire.AppendTag(nil, 1, protowire.Fixed32Type), math.Float32bits(dx))
		vec = protowire.AppendFixed32(protowire.AppendTag(vec, 2, protowire.Fixed32Type), math.Float32bits(dy))
		return msgArenaMoveReq, protowire.AppendBytes(protowire.AppendTag(nil, 1, protowire.BytesType), vec)
	default: // echo
		b := protowire.AppendBytes(protowire.AppendTag(nil, 1, protowire.BytesType), l.echoBody())
		return msgEchoReq, protowire.AppendVarint(protowire.AppendTag(b, 2, protowire.VarintType), uint64(n))
	}
}

func (l *load) echoBody() []byte {
	body := make([]byte, l.o.Payload)
	for i := range body {
		body[i] = byte('a' + i%26)
	}
	return body
}

// start begins the load: closed loop (InFlight requests kept in flight per connection), or open
// loop (Rate requests per second spread evenly, each connection on its own schedule; latency
// counts from the scheduled time, so a slow server cannot hide its queueing).
func (l *load) start() {
	if l.o.Scenario == "idle" {
		return
	}
	rate := l.o.Rate
	if l.o.Scenario == "arena" && rate == 0 {
		rate = 20 * float64(len(l.conns)) // every bot moves at the 20 Hz tick rate
	}
	for i, c := range l.conns {
		i, c := i, c
		if rate > 0 {
			l.wg.Add(1)
			go l.openLoop(i, c, rate/float64(len(l.conns)))
			continue
		}
		var n atomic.Int64
		c.onReply = func(wire.Frame) {
			if l.running.Load() {
				id, p := l.request(i, n.Add(1))
				_ = c.send(id, p, time.Now())
			}
		}
		for k := 0; k < max(1, l.o.InFlight); k++ {
			id, p := l.request(i, n.Add(1))
			_ = c.send(id, p, time.Now())
		}
	}
}

func (l *load) openLoop(i int, c *conn, perSecond float64) {
	defer l.wg.Done()
	interval := time.Duration(float64(time.Second) / perSecond)
	next := time.Now().Add(time.Duration(rand.Int63n(int64(interval) + 1)))
	for n := int64(0); l.running.Load(); n++ {
		if d := time.Until(next); d > 0 {
			time.Sleep(d)
		}
		id, p := l.request(i, n)
		if c.send(id, p, next) != nil {
			return
		}
		next = next.Add(interval)
	}
}

// progress waits for d, printing a progress line every second.
func (l *load) progress(ctx context.Context, d time.Duration) {
	end := time.Now().Add(d)
	t := time.NewTicker(time.Second)
	defer t.Stop()
	last := l.st.done.Load()
	for time.Now().Before(end) {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			now := l.st.done.Load()
			if !l.o.Quiet {
				fmt.Fprintf(os.Stderr, "\r%-6s %-5s conns %6d  %9.0f req/s  failed %6d  pushes %9d   ",
					l.o.Scenario, l.o.Transport, l.st.connected.Load(), float64(now-last), l.st.failed.Load(), l.st.pushes.Load())
			}
			last = now
		case <-time.After(time.Until(end)):
		}
	}
	if !l.o.Quiet {
		fmt.Fprintln(os.Stderr)
	}
}

func (l *load) closeAll() {
	for _, c := range l.conns {
		if c != nil {
			c.close(nil)
		}
	}
}

// runLogins measures logins: each of Conns workers connects, logs in as a guest, disconnects,
// again and again.
func (l *load) runLogins(ctx context.Context) (*result, *hdrhistogram.Histogram, error) {
	var wg sync.WaitGroup
	hists := make([]*hdrhistogram.Histogram, l.o.Conns)
	var measuring atomic.Bool
	stop := make(chan struct{})
	for w := 0; w < l.o.Conns; w++ {
		hists[w] = newHistogram()
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for n := 0; ; n++ {
				select {
				case <-stop:
					return
				default:
				}
				t0 := time.Now()
				c, err := dial(ctx, dialOptions{addr: l.o.Addr, transport: l.o.Transport}, &l.st)
				if err == nil {
					err = c.login(ctx, fmt.Sprintf("%s-%d-%d", l.o.Device, w, n%50))
					c.close(nil)
				}
				if !measuring.Load() {
					continue
				}
				if err != nil {
					l.st.failed.Add(1)
					continue
				}
				l.st.done.Add(1)
				_ = hists[w].RecordValue(min(time.Since(t0).Microseconds(), maxLatency))
			}
		}(w)
	}
	sleep(ctx, l.o.Warmup)
	l.mark(true)
	measuring.Store(true)
	began := time.Now()
	l.progress(ctx, l.o.Duration)
	measuring.Store(false)
	elapsed := time.Since(began)
	l.mark(false)
	close(stop)
	wg.Wait()
	hist := newHistogram()
	for _, h := range hists {
		hist.Merge(h)
	}
	done := l.st.done.Load()
	return &result{Options: l.o, Requests: done, Failed: l.st.failed.Load(), Throughput: float64(done) / elapsed.Seconds(), Seconds: elapsed.Seconds()}, hist, nil
}

func (l *load) mark(start bool) {
	if l.o.window != nil {
		l.o.window(start)
	}
}

func sleep(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}
