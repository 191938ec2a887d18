package tests

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math/rand"
	"net"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/moonforge/moonforge/engine/client"
	"github.com/moonforge/moonforge/engine/protocol"
	"github.com/moonforge/moonforge/engine/wire"
	"github.com/moonforge/moonforge/tools/relay"
)

// TestKCPResumeAcrossTransports logs in over TCP in an arena with chat going on, resumes the
// session over KCP, then over TCP again, and checks that no push is lost or repeated.
func TestKCPResumeAcrossTransports(t *testing.T) {
	t.Parallel()
	s := startServer(t, options{prepare: busyChat})
	stop := chatter(t, s, "kcp-chatter")
	defer stop()
	a := s.dial(t, "tcp")
	login := guest(t, a, "kcp-resumer")
	s.mustCall(t, a, "ArenaJoinReq", `{}`, "ArenaJoinAck")
	log := newPushLog(t, s)
	log.collect(a, 300*time.Millisecond)
	token := login.Token
	for _, transport := range []string{"kcp", "tcp"} {
		_ = a.Close()
		for p := range drained(a) {
			log.add(p.Seq, p.MsgID, p.Payload)
		}
		time.Sleep(100 * time.Millisecond)
		a = s.dial(t, transport)
		ack, err := a.Resume(timeout(t, 10*time.Second), token, log.seq)
		if err != nil {
			t.Fatalf("resume over %s: %v", transport, err)
		}
		if ack.PlayerId != login.PlayerId || ack.Replayed == 0 {
			t.Fatalf("resume over %s: %v, want player %s and replayed pushes", transport, ack, login.PlayerId)
		}
		token = ack.Token
		log.collect(a, 400*time.Millisecond)
		s.mustEcho(t, a, 7, 7)
	}
	if log.byName["ArenaState"] < 15 || log.byName["ChatMessage"] < 10 {
		t.Errorf("pushes %v, want arena state and chat throughout", log.byName)
	}
}

// TestKCPIdleClose checks that a KCP session silent past 3 heartbeats is kicked with
// IDLE_TIMEOUT and its conversation forgotten, and that a conversation that never sends a frame
// is forgotten within the login timeout.
func TestKCPIdleClose(t *testing.T) {
	t.Parallel()
	s := startServer(t, options{config: "gate:\n  heartbeat: 200ms\n"})
	c := s.dial(t, "kcp")
	guest(t, c, "kcp-idle")
	if k := waitKick(t, c, 10*time.Second); k == nil || protocol.Code(k.Code) != protocol.IdleTimeout {
		t.Fatalf("want Kick IDLE_TIMEOUT, got %v (%v)", k, c.Err())
	}
	// A conversation opened with half a frame: never a whole frame, so it is forgotten.
	u := dialUDP(t, s.kcp)
	conv := rand.Uint32() | 1
	if _, err := u.Write(kcpSegment(conv, 81, 0, []byte{0, 0, 0, 100})); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, 10*time.Second, "the half-frame conversation is accepted", func() bool { return s.connections(t) == 1 })
	start := time.Now()
	waitUntil(t, 15*time.Second, "no KCP connection left", func() bool { return s.connections(t) == 0 })
	t.Logf("the silent conversation was forgotten after %s", time.Since(start).Round(100*time.Millisecond))
}

// TestKCPSessionOutlivesItsOpeningDeadline: until its first whole frame a KCP conversation's
// read deadline is the login timeout; a session that has logged in must then get the idle
// timeout, even when it stays silent past the login timeout (it was kicked there when the gateway
// kept the first deadline it set).
func TestKCPSessionOutlivesItsOpeningDeadline(t *testing.T) {
	t.Parallel()
	s := startServer(t, options{config: "gate:\n  heartbeat: 2s\n  login_timeout: 500ms\n"})
	c := s.dial(t, "kcp")
	guest(t, c, "kcp-opened")
	time.Sleep(1500 * time.Millisecond) // past the login timeout, within the idle timeout (6 s)
	if _, err := c.Ping(timeout(t, 5*time.Second)); err != nil {
		t.Fatalf("a logged-in KCP session silent past the login timeout: %v (kick %v)", err, c.Kicked())
	}
}

// TestKCPLoss runs a client through a relay that drops, duplicates, reorders and delays
// datagrams, and checks that every request is answered exactly once and every push arrives in
// order, at 0%, 5% and 20% loss.
func TestKCPLoss(t *testing.T) {
	t.Parallel()
	s := startServer(t, options{prepare: busyChat})
	stop := chatter(t, s, "loss-chatter")
	defer stop()
	for _, loss := range []float64{0, 0.05, 0.20} {
		t.Run(fmt.Sprintf("loss=%g%%", loss*100), func(t *testing.T) {
			r, err := relay.ListenUDP(s.kcp, relay.Config{Loss: loss, Duplicate: 0.02, Reorder: 0.05, Delay: time.Millisecond, Seed: 15})
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			n := exactlyOnce(t, s, r.Addr(), fmt.Sprintf("loss-%g", loss), 300)
			st := r.Stats()
			t.Logf("loss %g%%: %d pushes in order; relay %+v", loss*100, n, st)
			if loss > 0 && st.Dropped == 0 {
				t.Errorf("the relay dropped nothing at %g%% loss", loss*100)
			}
		})
	}
}

// exactlyOnce logs in over KCP at addr, joins an arena and sends requests echo requests, 8 in
// flight; it checks each reply arrives once with its request's n, and the pushes with pushLog.
// It returns the number of pushes.
func exactlyOnce(t *testing.T, s *server, addr, device string, requests int) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	l, err := client.DialLink(ctx, client.LinkOptions{Addr: addr, Transport: "kcp"})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	frames := make(chan wire.Frame, 1024)
	go func() {
		defer close(frames)
		for {
			f, err := l.Next()
			if err != nil {
				return
			}
			frames <- f
		}
	}()
	send := func(seq uint32, name, js string) {
		id, payload, err := s.msgs.Encode(name, js)
		if err != nil {
			t.Fatal(err)
		}
		if err := l.Write(wire.AppendStream(nil, wire.Frame{MsgID: id, Seq: seq, Payload: payload})); err != nil {
			t.Fatal(err)
		}
	}
	log := newPushLog(t, s)
	replies := map[uint32]int{}
	var sent uint32
	wait := func(until func() bool, d time.Duration) {
		t.Helper()
		deadline := time.After(d)
		for !until() {
			select {
			case f, ok := <-frames:
				if !ok {
					t.Fatalf("the link ended")
				}
				if !f.IsReply() {
					log.add(f.Seq, f.MsgID, f.Payload)
					continue
				}
				replies[f.Seq]++
				if replies[f.Seq] > 1 {
					t.Errorf("a second reply to seq %d", f.Seq)
				}
				if f.MsgID == protocol.MsgError {
					t.Errorf("seq %d: %s", f.Seq, describeError(frame{id: f.MsgID, flags: f.Flags, seq: f.Seq, payload: f.Payload}))
				}
				if f.Seq > 2 {
					m, err := s.msgs.Message(f.MsgID, f.Payload)
					if err != nil || field(m, "n").Int() != int64(f.Seq) {
						t.Errorf("seq %d answered with %v (%v)", f.Seq, m, err)
					}
				}
				if f.Seq > 2 && sent < uint32(requests)+2 {
					sent++
					send(sent, "EchoReq", fmt.Sprintf(`{"n": "%d"}`, sent))
				}
			case <-deadline:
				t.Fatalf("timed out: %d requests sent, %d answered", sent, len(replies))
			}
		}
	}
	send(1, "moonforge.LoginReq", `{"method": "guest", "account": "`+deviceID(device)+`"}`)
	wait(func() bool { return replies[1] == 1 }, 20*time.Second)
	send(2, "ArenaJoinReq", `{"new_room": true}`)
	wait(func() bool { return replies[2] == 1 }, 20*time.Second)
	for sent = 2; sent < 10; {
		sent++
		send(sent, "EchoReq", fmt.Sprintf(`{"n": "%d"}`, sent))
	}
	wait(func() bool { return len(replies) == requests+2 }, 60*time.Second)
	// Late duplicates would arrive within a few retransmission timeouts.
	deadline := time.Now().Add(300 * time.Millisecond)
	wait(func() bool { return time.Now().After(deadline) }, time.Second)
	for seq := uint32(1); seq <= uint32(requests)+2; seq++ {
		if replies[seq] != 1 {
			t.Errorf("seq %d answered %d times", seq, replies[seq])
		}
	}
	if log.byName["ArenaState"] < 5 {
		t.Errorf("pushes %v, want ArenaState throughout", log.byName)
	}
	return int(log.seq)
}

// TestKCPBadDatagrams sends 100k junk datagrams (random bytes, truncated and oversized segments,
// the conversation ids of live clients from another address, and a flood of new conversations
// beyond the session limit) beside live KCP clients: the live clients are served throughout,
// every junk datagram is dropped and counted (or lost by the kernel, which counts it too), the
// server's memory stays bounded, and the flood's conversations are forgotten.
func TestKCPBadDatagrams(t *testing.T) {
	t.Parallel()
	const maxSessions = 32
	// The flood's sessions never send a frame: with a login timeout longer than the flood takes on
	// a busy machine, none of them closes during it, so at most maxSessions conversations are
	// admitted and every other datagram is dropped and counted.
	s := startServer(t, options{config: fmt.Sprintf("gate:\n  login_timeout: 40s\n  kcp:\n    max_sessions: %d\n", maxSessions)})
	r, err := relay.ListenUDP(s.kcp, relay.Config{Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var live []*echoLoad
	for i := range 4 {
		c := dialAt(t, r.Addr())
		guest(t, c, fmt.Sprintf("kcp-live-%d", i))
		live = append(live, startEchoLoadOn(t, s, c))
	}
	convs := r.Conversations()
	if len(convs) != 4 {
		t.Fatalf("the relay saw conversations %v, want 4", convs)
	}
	rssBefore := s.metric(t, "process_resident_memory_bytes")

	rnd := rand.New(rand.NewSource(15))
	attacker := dialUDP(t, s.kcp)
	flood := make([]*net.UDPConn, 200)
	for i := range flood {
		flood[i] = dialUDP(t, s.kcp)
	}
	const total = 100000
	for i := range total {
		var b []byte
		u := attacker
		switch i % 5 {
		case 0: // random bytes, up to twice the MTU
			b = make([]byte, rnd.Intn(2800))
			rnd.Read(b)
		case 1: // a truncated segment: the header promises more data than follows
			b = kcpSegment(rnd.Uint32()|1, 81, 0, make([]byte, 200))[:24+rnd.Intn(200)]
		case 2: // an oversized segment
			b = kcpSegment(rnd.Uint32()|1, 81, 0, make([]byte, 1400+rnd.Intn(500)))
		case 3: // a live client's conversation, opening or not
			b = kcpSegment(convs[rnd.Intn(len(convs))], 81, uint32(rnd.Intn(2)), []byte{0, 0, 0, 100})
		case 4: // new conversations from many addresses
			u = flood[rnd.Intn(len(flood))]
			b = kcpSegment(rnd.Uint32()|1, 81, 0, []byte{0, 0, 0, 100})
		}
		_, _ = u.Write(b)
		if i%2000 == 0 {
			time.Sleep(2 * time.Millisecond) // bursts, not a single one the socket buffer cannot hold
		}
	}
	for _, l := range live {
		l.progressed(t)
	}
	var dropped uint64
	waitUntil(t, 10*time.Second, "the junk is counted", func() bool {
		dropped = 0
		for _, reason := range []string{"malformed", "oversized", "forged", "stray", "limit"} {
			dropped += uint64(s.metric(t, `moonforge_kcp_dropped_datagrams_total{reason="`+reason+`"}`))
		}
		return dropped+udpDrops(t, s.kcp) >= total-maxSessions
	})
	kernel := udpDrops(t, s.kcp)
	if dropped+kernel > total {
		t.Errorf("%d dropped and %d lost in the kernel: more than the %d sent", dropped, kernel, total)
	}
	for _, reason := range []string{"malformed", "oversized", "forged", "stray", "limit"} {
		if s.metric(t, `moonforge_kcp_dropped_datagrams_total{reason="`+reason+`"}`) == 0 {
			t.Errorf("no datagram dropped as %s", reason)
		}
	}
	if conns := s.connections(t); conns > maxSessions {
		t.Errorf("%d connections, above the KCP session limit %d", conns, maxSessions)
	}
	rssAfter := s.metric(t, "process_resident_memory_bytes")
	if rssAfter-rssBefore > 64<<20 {
		t.Errorf("resident memory grew from %.0f to %.0f bytes", rssBefore, rssAfter)
	}
	for _, l := range live {
		l.progressed(t)
		if errs := l.stop(); len(errs) > 0 {
			t.Errorf("a live client failed: %v", errs)
		}
	}
	t.Logf("%d junk datagrams: %d dropped and counted, %d lost in the kernel; RSS %.1f → %.1f MiB", total, dropped, kernel, rssBefore/(1<<20), rssAfter/(1<<20))
	// The flood's conversations never send a whole frame: forgotten within the login timeout.
	waitUntil(t, 60*time.Second, "only the live clients left", func() bool { return s.connections(t) == len(live) })
}

// kcpSegment builds one KCP PUSH (cmd 81) or other segment with conversation conv and number sn.
func kcpSegment(conv uint32, cmd byte, sn uint32, data []byte) []byte {
	b := binary.LittleEndian.AppendUint32(nil, conv)
	b = append(b, cmd, 0)
	b = binary.LittleEndian.AppendUint16(b, 256)
	b = binary.LittleEndian.AppendUint32(b, 0) // ts
	b = binary.LittleEndian.AppendUint32(b, sn)
	b = binary.LittleEndian.AppendUint32(b, 0) // una
	b = binary.LittleEndian.AppendUint32(b, uint32(len(data)))
	return append(b, data...)
}

// dialUDP opens a UDP socket connected to addr; it is closed when the test ends.
func dialUDP(t testing.TB, addr string) *net.UDPConn {
	t.Helper()
	ra, err := net.ResolveUDPAddr("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	u, err := net.DialUDP("udp", nil, ra)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = u.Close() })
	return u
}

// dialAt connects a KCP client to addr (a relay); it is closed when the test ends.
func dialAt(t testing.TB, addr string) *client.Client {
	t.Helper()
	c, err := client.Dial(timeout(t, 5*time.Second), client.Config{Addr: addr, Transport: "kcp"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// startEchoLoadOn starts the echo loop of startEchoLoad on a logged-in client.
func startEchoLoadOn(t testing.TB, s *server, c *client.Client) *echoLoad {
	l := &echoLoad{s: s, c: c, stopCh: make(chan struct{}), done: make(chan struct{}), ok: make(chan int64, 1)}
	go l.run()
	t.Cleanup(func() { l.stop() })
	return l
}

// metric returns the value of a sample of /metrics (name with its labels), 0 if absent.
func (s *server) metric(t testing.TB, sample string) float64 {
	t.Helper()
	_, body := s.httpGet(t, "/metrics")
	re := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(sample) + ` (\S+)$`)
	m := re.FindSubmatch(body)
	if m == nil {
		return 0
	}
	v, err := strconv.ParseFloat(string(m[1]), 64)
	if err != nil {
		t.Fatalf("metric %s: %v", sample, err)
	}
	return v
}

// connections returns the server's open connections from /status.
func (s *server) connections(t testing.TB) int {
	t.Helper()
	_, body := s.httpGet(t, "/status")
	var st struct {
		Connections int `json:"connections"`
	}
	if err := json.Unmarshal(body, &st); err != nil {
		t.Fatalf("/status: %v", err)
	}
	return st.Connections
}

// udpDrops returns the datagrams the kernel dropped at the UDP socket bound to addr
// (/proc/net/udp, the last column), 0 where that file does not exist.
func udpDrops(t testing.TB, addr string) uint64 {
	t.Helper()
	_, port, _ := net.SplitHostPort(addr)
	p, _ := strconv.Atoi(port)
	raw, err := os.ReadFile("/proc/net/udp")
	if err != nil {
		return 0
	}
	want := fmt.Sprintf(":%04X", p)
	sc := bufio.NewScanner(bytes.NewReader(raw))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) > 12 && strings.HasSuffix(f[1], want) && f[2] == "00000000:0000" {
			n, _ := strconv.ParseUint(f[len(f)-1], 10, 64)
			return n
		}
	}
	return 0
}

// waitUntil polls cond until it holds or d passes.
func waitUntil(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("waited %s for: %s", d, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestKCPGracefulStop stops the server with KCP clients connected, logged in or not: each gets
// Kick SERVER_SHUTDOWN (KCP resends it until acknowledged), and the process exits with status 0.
func TestKCPGracefulStop(t *testing.T) {
	t.Parallel()
	s := startServer(t, options{})
	in := s.dial(t, "kcp")
	guest(t, in, "kcp-leaving")
	out := s.dial(t, "kcp")
	if _, err := out.Ping(timeout(t, 10*time.Second)); err != nil {
		t.Fatal(err)
	}
	done := make(chan int, 1)
	go func() { done <- s.stop() }()
	for name, c := range map[string]*client.Client{"logged in": in, "not logged in": out} {
		if k := waitKick(t, c, 15*time.Second); k == nil || protocol.Code(k.Code) != protocol.ServerShutdown {
			t.Errorf("%s: want Kick SERVER_SHUTDOWN, got %v (%v)", name, k, c.Err())
		}
	}
	if code := <-done; code != 0 {
		t.Errorf("exit status %d after SIGINT, want 0", code)
	}
}
