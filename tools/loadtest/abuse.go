package main

import (
	"bytes"
	"cmp"
	"context"
	"encoding/binary"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/moonforge/moonforge/engine/protocol"
	"github.com/moonforge/moonforge/engine/wire"
)

// The abuse soak (make bench): honest clients on 127.0.0.2 run an open-loop echo load, alone and
// beside the abuse catalogue run from 127.0.0.9 (all of 127/8 reaches loopback), in alternating
// rounds. The honest clients' p99 and failures are compared between the two.
const (
	honestIP = "127.0.0.2"
	abuserIP = "127.0.0.9"
)

// abuseCounts is what the abusers did, for the report.
type abuseCounts struct {
	conns, refused, kicked, limited, answered atomic.Int64
}

// abuseProcess is the abuse catalogue run by a process of its own (`loadtest abuse`), so that
// what the abusers cost their own process (the connection flood's sockets, the 1 MiB frames)
// does not slow the process that measures the honest clients.
type abuseProcess struct {
	cmd *exec.Cmd
	out bytes.Buffer
}

// startAbusers starts `loadtest abuse` against addr with the given kinds; nice: at the lowest CPU
// priority, so that on a machine shared with the server the attackers take only the CPU the
// server and the honest clients leave, as attackers on machines of their own would.
func startAbusers(ctx context.Context, addr, kinds string, nice bool) (*abuseProcess, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	args := []string{exe, "abuse", "-addr", addr, "-abusers", kinds}
	if nice {
		nicePath, err := exec.LookPath("nice")
		if err != nil {
			return nil, fmt.Errorf("abusers at low priority: %w (run the suite with -nice-abusers=false)", err)
		}
		args = append([]string{nicePath, "-n", "19"}, args...)
	}
	p := &abuseProcess{cmd: exec.CommandContext(ctx, args[0], args[1:]...)}
	p.cmd.Stdout, p.cmd.Stderr = &p.out, os.Stderr
	if err := p.cmd.Start(); err != nil {
		return nil, fmt.Errorf("abusers: %w", err)
	}
	return p, nil
}

// stop ends the abusers and returns what they did.
func (p *abuseProcess) stop() (*abuseCounts, error) {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	if err := p.cmd.Wait(); err != nil {
		return nil, fmt.Errorf("abusers: %w", err)
	}
	var r abuseReport
	if err := json.Unmarshal(p.out.Bytes(), &r); err != nil {
		return nil, fmt.Errorf("abusers' report %q: %w", p.out.String(), err)
	}
	n := &abuseCounts{}
	n.conns.Store(r.Conns)
	n.refused.Store(r.Refused)
	n.kicked.Store(r.Kicked)
	n.limited.Store(r.Limited)
	n.answered.Store(r.Answered)
	return n, nil
}

// abuseReport is what `loadtest abuse` prints when it stops.
type abuseReport struct {
	Conns, Refused, Kicked, Limited, Answered int64
}

// runAbusers is `loadtest abuse`: the catalogue against -addr until SIGTERM or SIGINT, then its
// counts as JSON on stdout.
func runAbusers(args []string) error {
	fs := flag.NewFlagSet("abuse", flag.ContinueOnError)
	addr := fs.String("addr", "127.0.0.1:7001", "gateway address (TCP)")
	list := fs.String("abusers", "all", "all, or a comma-separated list of "+strings.Join(abuseKinds, ", "))
	if err := fs.Parse(args); err != nil {
		return err
	}
	kinds, err := parseAbusers(*list)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	n := &abuseCounts{}
	abuse(ctx, *addr, kinds, n)
	return json.NewEncoder(os.Stdout).Encode(abuseReport{n.conns.Load(), n.refused.Load(), n.kicked.Load(), n.limited.Load(), n.answered.Load()})
}

func (a *abuseCounts) String() string {
	return fmt.Sprintf("abuser connections %d (refused or closed at once %d, kicked %d), requests limited %d, answered %d",
		a.conns.Load(), a.refused.Load(), a.kicked.Load(), a.limited.Load(), a.answered.Load())
}

// abuseKinds names the abusers of the catalogue, in the order abuse starts them.
var abuseKinds = []string{"conn", "slow", "unfinished", "login", "chat", "decode"}

// parseAbusers checks a comma-separated list of abuseKinds ("" or "all": every kind).
func parseAbusers(list string) (map[string]bool, error) {
	kinds := map[string]bool{}
	if list == "" || list == "all" {
		for _, k := range abuseKinds {
			kinds[k] = true
		}
		return kinds, nil
	}
	for _, k := range strings.Split(list, ",") {
		if !slices.Contains(abuseKinds, k) {
			return nil, fmt.Errorf("unknown abuser %q (want all or some of %s)", k, strings.Join(abuseKinds, ", "))
		}
		kinds[k] = true
	}
	return kinds, nil
}

// abuse runs the abusers of the given kinds until ctx ends. Each loop is bounded in count as
// well as in time.
func abuse(ctx context.Context, addr string, kinds map[string]bool, n *abuseCounts) {
	var wg sync.WaitGroup
	run := func(kind string, workers int, f func(ctx context.Context, w int)) {
		if !kinds[kind] {
			return
		}
		for w := range workers {
			wg.Add(1)
			go func() { defer wg.Done(); f(ctx, w) }()
		}
	}
	run("conn", 4, func(ctx context.Context, _ int) { connFlood(ctx, addr, n) })
	run("slow", 50, func(ctx context.Context, _ int) { slowSender(ctx, addr, n) })
	run("unfinished", 50, func(ctx context.Context, w int) { unfinishedFrame(ctx, addr, n, w) })
	run("login", 10, func(ctx context.Context, w int) { loginFlood(ctx, addr, n, w) })
	run("chat", 2, func(ctx context.Context, w int) { requestFlood(ctx, addr, n, w, msgChatSendReq, chatPayload()) })
	run("decode", 2, func(ctx context.Context, w int) { requestFlood(ctx, addr, n, w, msgEchoReq, oversizedDecode()) })
	wg.Wait()
}

// dialAbuser connects from abuserIP. Its connections close with a reset (SO_LINGER 0), as flood
// tools' do: a normal close leaves the closing side's port in TIME_WAIT for a minute, and at the
// connection flood's 400 a second the abusers' address would run out of ephemeral ports within
// that minute. From then on every connect(2) searches the nearly full port range in the kernel of
// the machine the server shares (measured: 80% system time, the honest clients' median latency
// doubled), a cost an attacker's own machine would bear, not the server's.
func dialAbuser(ctx context.Context, addr string, n *abuseCounts) (net.Conn, error) {
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(abuserIP)}, Timeout: 5 * time.Second}
	nc, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	_ = nc.(*net.TCPConn).SetLinger(0)
	n.conns.Add(1)
	context.AfterFunc(ctx, func() { nc.Close() })
	return nc, nil
}

// connFlood opens connections and holds them without a word, up to 500 per worker at a time.
func connFlood(ctx context.Context, addr string, n *abuseCounts) {
	var held []net.Conn
	defer func() {
		for _, c := range held {
			c.Close()
		}
	}()
	for i := 0; i < 20000 && ctx.Err() == nil; i++ {
		c, err := dialAbuser(ctx, addr, n)
		if err != nil {
			n.refused.Add(1)
			time.Sleep(10 * time.Millisecond)
			continue
		}
		held = append(held, c)
		if len(held) >= 500 {
			held[0].Close()
			held = held[1:]
		}
		sleep(ctx, 10*time.Millisecond)
	}
}

// slowSender sends a login frame one byte every 200 ms, again on a new connection when kicked.
func slowSender(ctx context.Context, addr string, n *abuseCounts) {
	payload, _ := proto.Marshal(&protocol.LoginReq{Method: "guest", Account: "slow-sender-device-0001"})
	frame := wire.AppendStream(nil, wire.Frame{MsgID: protocol.MsgLoginReq, Seq: 1, Payload: payload})
	for i := 0; i < 100 && ctx.Err() == nil; i++ {
		c, err := dialAbuser(ctx, addr, n)
		if err != nil {
			n.refused.Add(1)
			time.Sleep(100 * time.Millisecond)
			continue
		}
		for _, b := range frame {
			if _, err := c.Write([]byte{b}); err != nil {
				break
			}
			if sleep(ctx, 200*time.Millisecond); ctx.Err() != nil {
				break
			}
		}
		n.kicked.Add(1)
		c.Close()
	}
}

// unfinishedFrame announces a 1 MiB frame and sends 100 bytes of it, before login (odd workers)
// or after a guest login (even ones), then waits for the server to give up.
func unfinishedFrame(ctx context.Context, addr string, n *abuseCounts, w int) {
	for i := 0; i < 200 && ctx.Err() == nil; i++ {
		c, err := dialAbuser(ctx, addr, n)
		if err != nil {
			n.refused.Add(1)
			time.Sleep(100 * time.Millisecond)
			continue
		}
		// One device per worker: new accounts per address are bounded by auth.guests_per_ip_minute,
		// which the soak's server turns off for its honest clients.
		if w%2 == 0 && rawLogin(c, fmt.Sprintf("unfinished-frame-%04d", w)) != nil {
			c.Close()
			continue
		}
		head := binary.BigEndian.AppendUint32(nil, wire.DefaultMaxLength)
		head = binary.BigEndian.AppendUint16(head, msgEchoReq)
		head = append(head, 0, 0, 0, 0, 0, 9)
		_, _ = c.Write(append(head, make([]byte, 100)...))
		_, _ = io.Copy(io.Discard, c) // until the server closes (FRAME_TOO_LARGE, or idle)
		n.kicked.Add(1)
		c.Close()
		sleep(ctx, 100*time.Millisecond)
	}
}

// loginFlood tries wrong passwords as fast as answers come.
func loginFlood(ctx context.Context, addr string, n *abuseCounts, w int) {
	c, err := dialAbuser(ctx, addr, n)
	if err != nil {
		n.refused.Add(1)
		return
	}
	defer c.Close()
	r := wire.NewReader(c, 4096, wire.DefaultMaxLength)
	for i := 1; i <= 100000 && ctx.Err() == nil; i++ {
		payload, _ := proto.Marshal(&protocol.LoginReq{Method: "password", Account: fmt.Sprintf("victim-%d", w%3), Secret: fmt.Sprintf("guess-%d", i)})
		if _, err := c.Write(wire.AppendStream(nil, wire.Frame{MsgID: protocol.MsgLoginReq, Seq: uint32(i), Payload: payload})); err != nil {
			return
		}
		f, err := r.Next()
		if err != nil {
			return
		}
		countAnswer(f, n)
	}
}

// requestFlood logs in and sends one request kind back to back without waiting, reading the
// answers on the side.
func requestFlood(ctx context.Context, addr string, n *abuseCounts, w int, msgID uint16, payload []byte) {
	c, err := dialAbuser(ctx, addr, n)
	if err != nil {
		n.refused.Add(1)
		return
	}
	defer c.Close()
	if rawLogin(c, fmt.Sprintf("flooder-%d-%04d-device", msgID, w)) != nil {
		return
	}
	go func() {
		r := wire.NewReader(c, 64<<10, wire.DefaultMaxLength)
		for {
			f, err := r.Next()
			if err != nil {
				return
			}
			if f.IsReply() {
				countAnswer(f, n)
			}
		}
	}()
	for seq := uint32(2); seq < 200000 && ctx.Err() == nil; seq++ {
		if _, err := c.Write(wire.AppendStream(nil, wire.Frame{MsgID: msgID, Seq: seq, Payload: payload})); err != nil {
			return
		}
		if len(payload) > 1024 {
			sleep(ctx, 100*time.Millisecond) // large frames: 10 MiB/s per worker
		}
	}
}

func countAnswer(f wire.Frame, n *abuseCounts) {
	if f.MsgID == protocol.MsgError {
		n.limited.Add(1)
	} else {
		n.answered.Add(1)
	}
}

// rawLogin logs in as a guest on a raw connection and waits for the answer.
func rawLogin(c net.Conn, device string) error {
	payload, _ := proto.Marshal(&protocol.LoginReq{Method: "guest", Account: device})
	if _, err := c.Write(wire.AppendStream(nil, wire.Frame{MsgID: protocol.MsgLoginReq, Seq: 1, Payload: payload})); err != nil {
		return err
	}
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	defer c.SetReadDeadline(time.Time{})
	f, err := wire.NewReader(c, 12, 1<<16).Next()
	if err != nil {
		return err
	}
	if f.MsgID != protocol.MsgLoginAck {
		return fmt.Errorf("login answered with msg_id %d", f.MsgID)
	}
	return nil
}

// chatPayload is ChatSendReq{text: "flood"}.
func chatPayload() []byte { return []byte{0x0a, 5, 'f', 'l', 'o', 'o', 'd'} }

// oversizedDecode is an EchoReq of nearly 1 MiB whose body is nested unknown groups and lengths:
// each one is cheap to send and makes the decoder work.
func oversizedDecode() []byte {
	var b bytes.Buffer
	for b.Len() < wire.DefaultMaxLength-64 {
		b.Write([]byte{0x1a, 0x00}) // unknown field 3, empty
	}
	return b.Bytes()
}

// abuseSoak measures the honest clients' open-loop echo alone and beside the abusers, in
// alternating rounds on one server, and returns the round of each whose p99 is the median, with a
// summary for the targets table that lists every round.
func abuseSoak(ctx context.Context, c suiteConfig, warmup, duration time.Duration) (calm, abused *result, summary string, ok bool, err error) {
	if _, err := parseAbusers(c.abusers); err != nil {
		return nil, nil, "", false, err
	}
	srv, err := startServer(ctx, c, "abuse", "")
	if err != nil {
		return nil, nil, "", false, err
	}
	defer srv.stop()
	honest := options{Addr: srv.tcp, Admin: srv.admin, Transport: "tcp", Scenario: "echo", Conns: c.scale(1000),
		Rate: float64(c.scale(10000)), Duration: duration, Warmup: warmup, Payload: 16, Quiet: true,
		SourceIP: honestIP, Device: "soak-honest"}
	rounds := max(c.soakRounds, 1)
	if c.quick {
		rounds = 1
	}
	var calms, abuseds []*result
	for range rounds {
		r, err := measure(ctx, honest, 1)
		if err != nil {
			return nil, nil, "", false, fmt.Errorf("honest load alone: %w", err)
		}
		calms = append(calms, r)
		abusers, err := startAbusers(ctx, srv.tcp, c.abusers, c.niceAbusers)
		if err != nil {
			return nil, nil, "", false, err
		}
		r, err = measure(ctx, honest, 1)
		counts, aerr := abusers.stop()
		if err == nil && aerr != nil {
			err = aerr
		}
		if err != nil {
			return nil, nil, "", false, fmt.Errorf("honest load beside the abusers: %w", err)
		}
		r.Notes = counts.String()
		abuseds = append(abuseds, r)
	}
	calm, abused = medianP99(calms), medianP99(abuseds)
	calm.Name = fmt.Sprintf("soak: %d honest clients alone (median p99 of %d)", honest.Conns, rounds)
	abused.Name = fmt.Sprintf("soak: %d honest clients beside the abusers (median p99 of %d)", honest.Conns, rounds)
	failed, errs := int64(0), map[string]int64{}
	for _, r := range abuseds {
		failed += r.Failed
		for code, n := range r.Errors {
			errs[code] += n
		}
	}
	ratio := abused.Latency.P99 / max(calm.Latency.P99, 0.001)
	priority := "the abusers at normal CPU priority"
	if c.niceAbusers {
		priority = "the abusers at the lowest CPU priority (nice 19)"
	}
	summary = fmt.Sprintf("honest p99 %.2f ms beside the abusers, %.2f ms alone (%.1f×; medians of %d alternating rounds: %s beside, %s alone); %d failed",
		abused.Latency.P99, calm.Latency.P99, ratio, rounds, p99s(abuseds), p99s(calms), failed)
	if len(errs) > 0 {
		summary += fmt.Sprintf(" %v", errs)
	}
	summary += "; " + abused.Notes + "; " + priority
	return calm, abused, summary, failed == 0 && ratio <= 2, nil
}

// medianP99 returns the result whose p99 is the median of rs (the higher middle one of an even
// count).
func medianP99(rs []*result) *result {
	sorted := slices.Clone(rs)
	slices.SortFunc(sorted, func(a, b *result) int { return cmp.Compare(a.Latency.P99, b.Latency.P99) })
	return sorted[len(sorted)/2]
}

// p99s lists the p99 of each result, in ms.
func p99s(rs []*result) string {
	var parts []string
	for _, r := range rs {
		parts = append(parts, fmt.Sprintf("%.1f", r.Latency.P99))
	}
	return strings.Join(parts, ", ") + " ms"
}
