package main

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"google.golang.org/protobuf/proto"
)

// The generator against the raw echo baseline: closed and open loop both complete requests,
// record their latency, and fail none.
func TestLoadAgainstBaseline(t *testing.T) {
	b, err := startBaseline("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer b.close()
	for _, o := range []options{
		{Scenario: "echo", Conns: 8, InFlight: 4},
		{Scenario: "echo", Conns: 8, Rate: 2000},
		{Scenario: "login", Conns: 4},
	} {
		o.Addr, o.Transport, o.Duration, o.Warmup, o.Payload, o.Quiet = b.addr(), "tcp", 300*time.Millisecond, 100*time.Millisecond, 16, true
		res, hist, err := runLoad(context.Background(), o)
		if err != nil {
			t.Fatalf("%+v: %v", o, err)
		}
		if res.Requests == 0 || res.Failed != 0 || hist.TotalCount() == 0 {
			t.Fatalf("%s: %d requests, %d failed, %d latencies", o.Scenario, res.Requests, res.Failed, hist.TotalCount())
		}
		if o.Rate > 0 && (res.Throughput < o.Rate/2 || res.Throughput > o.Rate*1.5) {
			t.Errorf("open loop at %.0f/s measured %.0f/s", o.Rate, res.Throughput)
		}
	}
}

func TestHistogramQuantileFromBuckets(t *testing.T) {
	family := func(counts ...uint64) map[string]*dto.MetricFamily {
		bounds := []float64{0.001, 0.01, 0.1}
		h := &dto.Histogram{}
		for i, c := range counts {
			h.Bucket = append(h.Bucket, &dto.Bucket{UpperBound: proto.Float64(bounds[i]), CumulativeCount: proto.Uint64(c)})
		}
		return map[string]*dto.MetricFamily{"x": {Metric: []*dto.Metric{{Histogram: h}}}}
	}
	before := family(10, 10, 10)
	after := family(10+90, 10+99, 10+100) // in the window: 90 under 1 ms, 9 under 10 ms, 1 under 100 ms
	if got := histogramQuantile(before, after, "x", 0.5); got != 0.001 {
		t.Errorf("p50 %v", got)
	}
	if got := histogramQuantile(before, after, "x", 0.99); got != 0.01 {
		t.Errorf("p99 %v", got)
	}
	if got := histogramQuantile(before, after, "x", 1); got != 0.1 {
		t.Errorf("max %v", got)
	}
}

func TestParseGoBenchAndReadmeSection(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "bench.txt")
	text := "goos: linux\nBenchmarkDecodeSmall-2   \t 1412838\t       857.7 ns/op\t     936 B/op\t      17 allocs/op\nPASS\n"
	if err := os.WriteFile(out, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	got := parseGoBench(out)
	if len(got) != 1 || got[0].Name != "BenchmarkDecodeSmall" || got[0].NsPerOp != 857.7 || got[0].Extra != "936 B/op 17 allocs/op" {
		t.Fatalf("%+v", got)
	}
	readme := filepath.Join(dir, "README.md")
	if err := os.WriteFile(readme, []byte("a\n<!-- bench:begin -->\nold\n<!-- bench:end -->\nb\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := replaceSection(readme, "new table\n"); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(readme)
	if !strings.Contains(string(b), "<!-- bench:begin -->\nnew table\n<!-- bench:end -->") || strings.Contains(string(b), "old") {
		t.Fatalf("%s", b)
	}
}

func TestParseAbusers(t *testing.T) {
	all, err := parseAbusers("all")
	if err != nil || len(all) != len(abuseKinds) {
		t.Errorf("all: %v %v", all, err)
	}
	some, err := parseAbusers("chat,decode")
	if err != nil || len(some) != 2 || !some["chat"] || !some["decode"] {
		t.Errorf("chat,decode: %v %v", some, err)
	}
	if _, err := parseAbusers("chat,typo"); err == nil || !strings.Contains(err.Error(), `unknown abuser "typo"`) {
		t.Errorf("a typo: %v, want unknown abuser", err)
	}
}

// TestRunAbusersRefusesBadFlags: `loadtest abuse` with an unknown abuser or flag returns an error
// before it starts anything.
func TestRunAbusersRefusesBadFlags(t *testing.T) {
	if err := runAbusers([]string{"-abusers", "chat,typo"}); err == nil || !strings.Contains(err.Error(), `unknown abuser "typo"`) {
		t.Errorf("-abusers chat,typo: %v", err)
	}
	if err := runAbusers([]string{"-no-such-flag"}); err == nil {
		t.Error("-no-such-flag: no error")
	}
}

func TestMedianP99(t *testing.T) {
	var rs []*result
	for _, p99 := range []float64{9, 2, 30} {
		r := &result{}
		r.Latency.P99 = p99
		rs = append(rs, r)
	}
	if m := medianP99(rs); m.Latency.P99 != 9 {
		t.Fatalf("median of 9, 2, 30: %v", m.Latency.P99)
	}
	if rs[0].Latency.P99 != 9 || rs[1].Latency.P99 != 2 {
		t.Fatal("medianP99 reordered its argument")
	}
	if got := p99s(rs); got != "9.0, 2.0, 30.0 ms" {
		t.Fatalf("p99s: %q", got)
	}
}

func TestMedianOfCPUPairs(t *testing.T) {
	first := cpuComparison{ratio: 1.8, summary: "1.80× (18.0 µs against 10.0 µs)"}
	m := medianOf(first, []float64{1.8, 1.2, 1.4})
	if m.ratio != 1.4 {
		t.Fatalf("median of 1.8, 1.2, 1.4: %v", m.ratio)
	}
	if want := "1.40×, median of 3 alternating pairs (1.80, 1.20, 1.40; the first pair: 1.80× (18.0 µs against 10.0 µs))"; m.summary != want {
		t.Fatalf("summary %q", m.summary)
	}
	if m := medianOf(first, []float64{1.8, 0, 1.4}); m != first {
		t.Fatalf("a pair not measured: %+v", m)
	}
}

// An abuser's connection ends with a reset, which leaves no TIME_WAIT state on the abusers' side:
// the server reads ECONNRESET, not the end of the stream.
func TestAbusersCloseWithAReset(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	c, err := dialAbuser(context.Background(), ln.Addr().String(), &abuseCounts{})
	if err != nil && runtime.GOOS != "linux" {
		t.Skipf("%s is not a loopback address here (on Linux all of 127/8 is): %v", abuserIP, err)
	}
	if err != nil {
		t.Fatal(err)
	}
	server, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer server.Close()
	if got := server.RemoteAddr().(*net.TCPAddr).IP.String(); got != abuserIP {
		t.Errorf("the abuser connects from %s, want %s", got, abuserIP)
	}
	c.Close()
	_ = server.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := server.Read(make([]byte, 1)); !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("the server read %v after the abuser closed, want ECONNRESET", err)
	}
}
