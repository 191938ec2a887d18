// Package relay is a TCP relay for the SDKs' chaos tests: it forwards a client's connections to a
// server and breaks them on command, at random but reproducibly from a seed, as a mobile network
// would: resets, stalls, and cuts in the middle of a frame.
package relay

import (
	"context"
	"errors"
	"fmt"
	"math/rand"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// Faults is how many faults a chaos run survives.
const Faults = 1000

// Seed is the seed of a chaos run: MOONFORGE_CHAOS_SEED, or a fixed one, so that the faults of a
// failed run can be replayed.
func Seed() (int64, error) {
	s := os.Getenv("MOONFORGE_CHAOS_SEED")
	if s == "" {
		return 18, nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("MOONFORGE_CHAOS_SEED=%q: %v", s, err)
	}
	return n, nil
}

// Fault is one kind of damage done to a live connection.
type Fault string

// The faults a Relay injects.
const (
	Reset      Fault = "reset"       // both sides closed at once (RST)
	Cut        Fault = "cut"         // the next chunk either way is cut short, then both sides close
	ShortStall Fault = "short-stall" // nothing forwarded for 20-300 ms
	LongStall  Fault = "long-stall"  // nothing forwarded for 0.3-1.5 s: the client's heartbeat may give up
)

// Relay accepts connections on a loopback port and forwards each to the target. Its methods are
// safe for concurrent use; Inject is meant for one goroutine (the fault loop), whose choices come
// from the seed alone.
type Relay struct {
	ln     net.Listener
	target string
	rnd    *rand.Rand

	mu     sync.Mutex
	links  []*link
	counts map[Fault]int
	wg     sync.WaitGroup
}

// New starts a relay to target (host:port) on a free loopback port.
func New(target string, seed int64) (*Relay, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	r := &Relay{ln: ln, target: target, rnd: rand.New(rand.NewSource(seed)), counts: map[Fault]int{}}
	r.wg.Add(1)
	go r.accept()
	return r, nil
}

// Addr is the address clients connect to.
func (r *Relay) Addr() *net.TCPAddr {
	return r.ln.Addr().(*net.TCPAddr)
}

// Close stops accepting and closes every connection.
func (r *Relay) Close() {
	_ = r.ln.Close()
	r.mu.Lock()
	for _, l := range r.links {
		l.close(false)
	}
	r.mu.Unlock()
	r.wg.Wait()
}

// Counts returns how many faults of each kind were injected.
func (r *Relay) Counts() map[Fault]int {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make(map[Fault]int, len(r.counts))
	for k, v := range r.counts {
		out[k] = v
	}
	return out
}

func (r *Relay) accept() {
	defer r.wg.Done()
	for {
		c, err := r.ln.Accept()
		if err != nil {
			return
		}
		s, err := net.DialTimeout("tcp", r.target, 5*time.Second)
		if err != nil {
			_ = c.Close()
			continue
		}
		l := &link{client: c.(*net.TCPConn), server: s.(*net.TCPConn)}
		r.mu.Lock()
		r.links = append(r.links, l)
		r.mu.Unlock()
		r.wg.Add(2)
		go func() { defer r.wg.Done(); l.pipe(l.server, l.client) }()
		go func() { defer r.wg.Done(); l.pipe(l.client, l.server) }()
	}
}

// Inject does one random fault to a random live connection and reports which, or false when no
// connection is live.
func (r *Relay) Inject() (Fault, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	live := r.links[:0]
	for _, l := range r.links {
		if !l.isClosed() {
			live = append(live, l)
		}
	}
	r.links = live
	if len(live) == 0 {
		return "", false
	}
	l := live[r.rnd.Intn(len(live))]
	f, d, frac := choose(r.rnd)
	switch f {
	case Reset:
		l.close(true)
	case Cut:
		l.cutAt(frac)
	default:
		l.stall(d)
	}
	r.counts[f]++
	return f, true
}

// choose draws a fault with its stall duration or cut point: resets 25%, cuts 20%, short stalls
// 40%, long stalls 15%.
func choose(rnd *rand.Rand) (f Fault, stall time.Duration, cut float64) {
	switch p := rnd.Intn(100); {
	case p < 25:
		return Reset, 0, 0
	case p < 45:
		return Cut, 0, rnd.Float64()
	case p < 85:
		return ShortStall, time.Duration(20+rnd.Intn(280)) * time.Millisecond, 0
	default:
		return LongStall, time.Duration(300+rnd.Intn(1200)) * time.Millisecond, 0
	}
}

// link is one relayed connection.
type link struct {
	client, server *net.TCPConn

	mu         sync.Mutex
	stallUntil time.Time
	cut        float64 // > 0: cut the next chunk at this fraction
	closed     bool
}

func (l *link) isClosed() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.closed
}

func (l *link) stall(d time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if until := time.Now().Add(d); until.After(l.stallUntil) {
		l.stallUntil = until
	}
}

func (l *link) cutAt(frac float64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.cut = frac + 1e-9
}

// close closes both sides; with reset, so that the peers see a reset rather than an orderly end.
func (l *link) close(reset bool) {
	l.mu.Lock()
	l.closed = true
	l.mu.Unlock()
	for _, c := range []*net.TCPConn{l.client, l.server} {
		if reset {
			_ = c.SetLinger(0)
		}
		_ = c.Close()
	}
}

// pipe forwards src to dst until either fails, honouring stalls and cuts.
func (l *link) pipe(dst, src *net.TCPConn) {
	buf := make([]byte, 32*1024)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			l.mu.Lock()
			wait := time.Until(l.stallUntil)
			l.mu.Unlock()
			if wait > 0 {
				time.Sleep(wait)
			}
			l.mu.Lock()
			cut := l.cut
			l.cut = 0
			l.mu.Unlock()
			if cut > 0 {
				_, _ = dst.Write(buf[:int(cut*float64(n))])
				l.close(false)
				return
			}
			if _, werr := dst.Write(buf[:n]); werr != nil {
				l.close(false)
				return
			}
		}
		if err != nil {
			l.close(false)
			return
		}
	}
}

// Result is what Run observed.
type Result struct {
	Faults int
	Counts map[Fault]int
	Output string
}

// Summary is "1000 faults (cut 200, ...)".
func (res Result) Summary() string {
	var parts []string
	for f, n := range res.Counts {
		parts = append(parts, fmt.Sprintf("%s %d", f, n))
	}
	sort.Strings(parts)
	return fmt.Sprintf("%d faults (%s)", res.Faults, strings.Join(parts, ", "))
}

// Run relays to target while the client program that start builds plays: start gets the relay's
// port and a stop file. Run injects a fault every 5-50 ms (seeded) until faults were done, then
// creates the stop file, on which the program must settle, check itself and exit. The whole run
// is bounded by ctx. The error says what went wrong; the program's verdict is in its output.
func Run(ctx context.Context, target string, seed int64, faults int, start func(port int, stopFile string) *exec.Cmd) (Result, error) {
	r, err := New(target, seed)
	if err != nil {
		return Result{}, err
	}
	defer r.Close()
	dir, err := os.MkdirTemp("", "relay")
	if err != nil {
		return Result{}, err
	}
	defer os.RemoveAll(dir)
	stop := filepath.Join(dir, "stop")
	cmd := start(r.Addr().Port, stop)
	out := &lockedWriter{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		return Result{}, err
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	output := out.String
	pace := rand.New(rand.NewSource(seed + 1))
	done := 0
	for done < faults {
		select {
		case err := <-exited:
			return Result{Faults: done, Counts: r.Counts(), Output: output()}, fmt.Errorf("the client exited after %d faults: %v", done, err)
		case <-ctx.Done():
			_ = cmd.Process.Kill()
			<-exited
			return Result{Faults: done, Counts: r.Counts(), Output: output()}, fmt.Errorf("only %d faults before the deadline", done)
		case <-time.After(time.Duration(5+pace.Intn(45)) * time.Millisecond):
		}
		if _, ok := r.Inject(); ok {
			done++
		}
	}
	if err := os.WriteFile(stop, nil, 0o644); err != nil {
		return Result{}, err
	}
	select {
	case err = <-exited:
	case <-ctx.Done():
		_ = cmd.Process.Kill()
		<-exited
		err = errors.New("the client did not finish after the stop file")
	}
	return Result{Faults: done, Counts: r.Counts(), Output: output()}, err
}

// lockedWriter collects output from a process's stdout and stderr.
type lockedWriter struct {
	mu sync.Mutex
	w  strings.Builder
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func (l *lockedWriter) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.String()
}

// verdict is the closing line of a chaos program that passed.
var verdict = regexp.MustCompile(`(?m)^chaos: [1-9]\d* passed, 0 failed$`)

// Chaos is a whole chaos test: it runs the client program that start builds (given a context
// that bounds the run, the relay's port and the stop file) through a relay to target for Faults
// faults with the seed of Seed, and fails t unless the program ends with "chaos: N passed, 0
// failed".
func Chaos(t *testing.T, target string, start func(ctx context.Context, port int, stopFile string) *exec.Cmd) {
	t.Helper()
	seed, err := Seed()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("relay seed %d (MOONFORGE_CHAOS_SEED=%d replays the faults)", seed, seed)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	res, err := Run(ctx, target, seed, Faults, func(port int, stop string) *exec.Cmd { return start(ctx, port, stop) })
	if err != nil || !verdict.MatchString(res.Output) {
		t.Fatalf("after %s: %v\n%s", res.Summary(), err, res.Output)
	}
	t.Logf("%s\n%s", res.Summary(), res.Output)
}
