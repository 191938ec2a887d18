package main

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/moonforge/moonforge/engine/protocol"
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
	MoveHz    float64       `json:"move_hz,omitempty"` // arena: moves per second per bot
	Payload   int           `json:"payload,omitempty"`
	LocalIPs  int           `json:"local_ips,omitempty"` // spread connections over 127.0.0.1..N
	SourceIP  string        `json:"source_ip,omitempty"` // every connection from this loopback address
	Device    string        `json:"-"`                   // guest device id prefix
	Quiet     bool          `json:"-"`
	Baseline  bool          `json:"baseline,omitempty"` // the target is the raw echo baseline

	// window, if set, is called when the measured window starts and when it ends, while the
	// connections are still open and loaded.
	window func(start bool) `json:"-"`
	// begin, if set, is when the load starts after the connections are set up (the processes
	// of a -procs run start together).
	begin time.Time `json:"-"`
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
	stopped chan struct{} // closed by closeAll
	once    sync.Once
	mu      sync.Mutex // guards conns while connect fills it
}

// runLoad dials the connections, sets them up, runs the warm-up and the measured window, and
// returns the client-side results (latency histogram merged from every connection).
func runLoad(ctx context.Context, o options) (*result, *hdrhistogram.Histogram, error) {
	if o.Device == "" {
		o.Device = fmt.Sprintf("load-%s", o.Scenario)
	}
	l := &load{o: o, stopped: make(chan struct{})}
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
	if !o.begin.IsZero() {
		if time.Now().After(o.begin) {
			fmt.Fprintln(os.Stderr, "loadtest: setup took longer than planned; this process starts late")
		}
		sleep(ctx, time.Until(o.begin))
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
	// A request still unanswered after the drain lost its reply (or its connection): a failure
	// that the latency histogram cannot show.
	errs := l.st.errorsByCode()
	if lost := l.st.sent.Load() - l.st.done.Load(); lost > 0 {
		failed += lost
		errs["NO_REPLY"] = lost
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
		Errors:     errs,
		Seconds:    elapsed.Seconds(),
	}
	return res, hist, nil
}

// heartbeat sends a one-way Ping on every connection every few seconds, as clients do, so that
// connections waiting through a long setup are not kicked as idle. It stops with ctx or when the
// load's connections close.
func (l *load) heartbeat(ctx context.Context) {
	ping := []byte{} // Ping{} with seq 0: acknowledged, not answered
	t := time.NewTicker(5 * time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-l.stopped:
			return
		case <-t.C:
			l.mu.Lock()
			conns := append([]*conn(nil), l.conns...)
			l.mu.Unlock()
			for _, c := range conns {
				if c != nil {
					_ = c.queue.Push(wire.Frame{MsgID: protocol.MsgPing, Payload: ping})
				}
			}
		}
	}
}

// connect dials every connection (a few at a time) and logs in where the scenario needs it.
func (l *load) connect(ctx context.Context) error {
	l.mu.Lock()
	l.conns = make([]*conn, l.o.Conns)
	l.mu.Unlock()
	go l.heartbeat(ctx)
	sem := make(chan struct{}, 64)
	mu := &l.mu
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
			if l.o.SourceIP != "" {
				d.localIP = l.o.SourceIP
			}
			c, err := dial(ctx, d, &l.st)
			if err == nil && l.o.Scenario != "idle" {
				err = c.login(ctx, fmt.Sprintf("%s-%08d", l.o.Device, i))
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
// new room (ArenaJoinReq.new_room), the others join it by id.
func (l *load) formRooms(ctx context.Context) error {
	size := max(1, l.o.RoomSize)
	newRoom := protowire.AppendVarint(protowire.AppendTag(nil, 2, protowire.VarintType), 1)
	sem := make(chan struct{}, 32) // rooms formed at once
	errs := make(chan error, 1)
	var wg sync.WaitGroup
	for g := 0; g < len(l.conns); g += size {
		wg.Add(1)
		sem <- struct{}{}
		go func(g int) {
			defer wg.Done()
			defer func() { <-sem }()
			if err := l.formRoom(ctx, l.conns[g:min(g+size, len(l.conns))], newRoom); err != nil {
				select {
				case errs <- fmt.Errorf("room %d: %w", g/size, err):
				default:
				}
			}
		}(g)
	}
	wg.Wait()
	select {
	case err := <-errs:
		return err
	default:
		return nil
	}
}

// formRoom opens a room with the first connection and joins the others to it.
func (l *load) formRoom(ctx context.Context, group []*conn, newRoom []byte) error {
	f, err := group[0].call(ctx, msgArenaJoinReq, newRoom)
	if err != nil {
		return err
	}
	roomID, err := firstString(f.Payload)
	if err != nil || f.MsgID != msgArenaJoinAck {
		return fmt.Errorf("unexpected answer %d", f.MsgID)
	}
	join := protowire.AppendString(protowire.AppendTag(nil, 1, protowire.BytesType), roomID)
	for _, c := range group[1:] {
		if _, err := c.call(ctx, msgArenaJoinReq, join); err != nil {
			return err
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
		rate = l.o.MoveHz * float64(len(l.conns)) // every bot moves at the tick rate
		if rate == 0 {
			return // bots that only watch the state
		}
	}
	if rate > 0 {
		l.openLoop(rate)
		return
	}
	for i, c := range l.conns {
		i, c := i, c
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

// openLoop sends rate requests per second in all, each connection on its own evenly spaced
// schedule. A few sender goroutines (one per CPU) each serve a share of the connections: they
// sleep until the earliest due request and send every one that is due, which keeps the
// generator's own scheduling delay small next to what it measures. Latency counts from the due
// time, so a server that falls behind cannot hide its queueing (no coordinated omission).
func (l *load) openLoop(rate float64) {
	interval := time.Duration(float64(time.Second) * float64(len(l.conns)) / rate)
	senders := min(runtime.NumCPU(), len(l.conns))
	for s := 0; s < senders; s++ {
		var mine []int
		for i := s; i < len(l.conns); i += senders {
			mine = append(mine, i)
		}
		l.wg.Add(1)
		go func(mine []int) {
			defer l.wg.Done()
			start := time.Now()
			due := make([]time.Time, len(mine))
			count := make([]int64, len(mine))
			for k := range due { // spread the first requests over one interval
				due[k] = start.Add(time.Duration(rand.Int63n(int64(interval) + 1)))
			}
			for l.running.Load() {
				now := time.Now()
				next := now.Add(interval)
				for k, i := range mine {
					for !due[k].After(now) {
						id, p := l.request(i, count[k])
						_ = l.conns[i].send(id, p, due[k])
						count[k]++
						due[k] = due[k].Add(interval)
					}
					if due[k].Before(next) {
						next = due[k]
					}
				}
				if d := time.Until(next); d > 0 {
					time.Sleep(d)
				}
			}
		}(mine)
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
	l.once.Do(func() { close(l.stopped) })
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
					err = c.login(ctx, fmt.Sprintf("%s-%04d-%04d", l.o.Device, w, n%50))
					c.close(nil)
				}
				if !measuring.Load() {
					continue
				}
				if re := (*replyError)(nil); errors.As(err, &re) {
					l.st.fail(re.code)
					continue
				} else if err != nil {
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
	return &result{Options: l.o, Requests: done, Failed: l.st.failed.Load(), Errors: l.st.errorsByCode(), Throughput: float64(done) / elapsed.Seconds(), Seconds: elapsed.Seconds()}, hist, nil
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
