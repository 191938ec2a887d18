// Command loadtest simulates many clients of protocol v1 and reports what the server does under
// them: throughput, latency percentiles (HDR histogram), errors by code, and the server's CPU,
// memory, goroutines and traffic (from its /metrics). Every figure can be compared with a raw
// Go TCP echo server built into the tool, driven by the same generator in the same run.
//
//	loadtest -scenario echo -conns 1000 -inflight 16 -duration 10s    # closed loop
//	loadtest -scenario echo -conns 1000 -rate 50000                    # open loop, 50k req/s
//	loadtest -scenario echo -baseline                                  # the raw echo baseline
//	loadtest baseline -addr 127.0.0.1:7100 -admin 127.0.0.1:7180       # the raw echo as a server, its CPU on /metrics
//	loadtest -transport kcp -addr 127.0.0.1:7003 -conns 100 -inflight 4  # echo over KCP
//	loadtest -scenario arena -conns 8000 -room-size 8                  # 1000 rooms of 8 bots at 20 Hz
//	loadtest -scenario idle -conns 10000 -local-ips 4                  # connect and hold
//	loadtest -scenario login -conns 50                                 # logins per second
//	loadtest -procs 4 ...                                              # the same load from 4 processes
//	loadtest suite                                                     # the standard set (make bench)
//
// Scenarios: echo (a Lua handler returns its request), chat (at most one message per connection
// per second: the demo's limit), arena, idle, login.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
	dto "github.com/prometheus/client_model/go"

	"github.com/moonforge/moonforge/engine/process"
	"github.com/moonforge/moonforge/engine/protocol"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "suite" {
		if err := suite(os.Args[2:]); err != nil {
			fmt.Fprintln(os.Stderr, "loadtest:", err)
			os.Exit(1)
		}
		return
	}
	if len(os.Args) > 1 && os.Args[1] == "abuse" {
		if err := runAbusers(os.Args[2:]); err != nil {
			fmt.Fprintln(os.Stderr, "loadtest:", err)
			os.Exit(1)
		}
		return
	}
	if len(os.Args) > 1 && os.Args[1] == "baseline" {
		fs := flag.NewFlagSet("baseline", flag.ExitOnError)
		addr := fs.String("addr", "127.0.0.1:7100", "listen address")
		admin := fs.String("admin", "", `address of a /metrics endpoint with this process's CPU ("" for none)`)
		_ = fs.Parse(os.Args[2:])
		b, err := startBaseline(*addr)
		if err == nil && *admin != "" {
			*admin, err = serveProcessMetrics(*admin)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "loadtest:", err)
			os.Exit(1)
		}
		if *admin != "" {
			fmt.Println("raw echo baseline on", b.addr(), "metrics on", *admin)
		} else {
			fmt.Println("raw echo baseline on", b.addr())
		}
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		defer stop()
		<-ctx.Done()
		return
	}
	if err := single(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "loadtest:", err)
		os.Exit(1)
	}
}

func single(args []string) error {
	fs := flag.NewFlagSet("loadtest", flag.ExitOnError)
	var o options
	fs.StringVar(&o.Addr, "addr", "127.0.0.1:7001", "gateway address (TCP; WebSocket or KCP with -transport ws or kcp)")
	fs.StringVar(&o.Admin, "admin", "127.0.0.1:7080", `server admin address for its CPU, RSS and traffic ("" to skip)`)
	fs.StringVar(&o.Transport, "transport", "tcp", "tcp, ws or kcp")
	fs.StringVar(&o.Scenario, "scenario", "echo", "echo, chat, arena, idle or login")
	fs.IntVar(&o.Conns, "conns", 100, "connections (login: concurrent workers)")
	fs.IntVar(&o.InFlight, "inflight", 1, "closed loop: requests in flight per connection")
	fs.Float64Var(&o.Rate, "rate", 0, "open loop: requests per second over all connections (0: closed loop)")
	fs.DurationVar(&o.Duration, "duration", 10*time.Second, "measured window")
	fs.DurationVar(&o.Warmup, "warmup", 2*time.Second, "load before the measured window")
	fs.IntVar(&o.RoomSize, "room-size", 8, "arena: bots per room")
	fs.Float64Var(&o.MoveHz, "move-hz", 20, "arena: moves per second per bot (0: bots only receive the state)")
	fs.IntVar(&o.Payload, "payload", 16, "echo: body bytes")
	fs.IntVar(&o.LocalIPs, "local-ips", 1, "spread connections over 127.0.0.1..N (more than ~28k connections)")
	fs.StringVar(&o.Device, "device", "", "guest device id prefix (default load-<scenario>)")
	fs.BoolVar(&o.Quiet, "quiet", false, "no progress line")
	useBaseline := fs.Bool("baseline", false, "start the raw echo baseline in this process and load it instead")
	procs := fs.Int("procs", 1, "run the load from this many processes")
	jsonOut := fs.String("json", "", "also write the result as JSON to this file")
	child := fs.Bool("child", false, "internal: one of several load processes")
	startAt := fs.Int64("start-at", 0, "internal: when the measured window starts (Unix ns)")
	_ = fs.Parse(args)

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if *useBaseline {
		b, err := startBaseline("127.0.0.1:0")
		if err != nil {
			return err
		}
		defer b.close()
		o.Addr, o.Admin, o.Baseline = b.addr(), "", true
	}
	if *child {
		return runChild(ctx, o, *startAt)
	}
	if o.Scenario == "chat" && o.Rate == 0 {
		// The demo's chat takes a burst of 5 messages per player, then 1 per second.
		o.Rate = float64(o.Conns)
		fmt.Fprintf(os.Stderr, "chat: open loop at %g messages/s, one per connection per second (the demo's per-player limit)\n", o.Rate)
	}
	res, err := measure(ctx, o, *procs)
	if err != nil {
		return err
	}
	printTable(os.Stdout, []*result{res})
	if len(res.Errors) > 0 {
		fmt.Printf("errors by code: %v\n", res.Errors)
	}
	if o.Scenario == "login" && res.Errors[protocol.RateLimited.String()] > 0 {
		fmt.Println("logins refused RATE_LIMITED: the server limits new guest accounts per address (auth.guests_per_ip_minute); on a test server set it to 0, as `loadtest suite` does")
	}
	if *jsonOut != "" {
		return writeJSON(*jsonOut, res)
	}
	return nil
}

// measure runs one load (from procs processes) with the server's statistics over the measured
// window (idle: from before connecting to the end of the window, so RSS grows by what the
// connections cost).
func measure(ctx context.Context, o options, procs int) (*result, error) {
	var before, after map[string]*dto.MetricFamily
	var began, ended time.Time
	if o.Scenario == "idle" {
		before, _ = scrape(o.Admin)
		began = time.Now()
	}
	o.window = func(start bool) {
		switch {
		case start && o.Scenario != "idle":
			before, _ = scrape(o.Admin)
			began = time.Now()
		case !start:
			after, _ = scrape(o.Admin)
			ended = time.Now()
		}
	}
	var res *result
	var hist *hdrhistogram.Histogram
	var err error
	if procs > 1 {
		res, hist, err = runProcs(ctx, o, procs)
	} else {
		res, hist, err = runLoad(ctx, o)
	}
	if err != nil {
		return nil, err
	}
	res.Latency = summarize(hist)
	res.Server = serverDelta(before, after, ended.Sub(began))
	return res, nil
}

// childResult is what a child process reports to its parent.
type childResult struct {
	Result    *result                `json:"result"`
	Histogram *hdrhistogram.Snapshot `json:"histogram"`
}

func runChild(ctx context.Context, o options, startAt int64) error {
	if startAt > 0 {
		o.begin = time.Unix(0, startAt)
	}
	o.Quiet = true
	res, hist, err := runLoad(ctx, o)
	if err != nil {
		return err
	}
	return json.NewEncoder(os.Stdout).Encode(childResult{Result: res, Histogram: hist.Export()})
}

// runProcs splits the load over procs child processes and merges what they report.
func runProcs(ctx context.Context, o options, procs int) (*result, *hdrhistogram.Histogram, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, nil, err
	}
	begin := time.Now().Add(time.Duration(o.Conns/procs/300+3) * time.Second)
	startAt := begin.UnixNano()
	if o.window != nil { // the window is the same in every process: observe it from here
		start, end := begin.Add(o.Warmup), begin.Add(o.Warmup+o.Duration)
		go func() {
			sleep(ctx, time.Until(start))
			o.window(true)
			sleep(ctx, time.Until(end))
			o.window(false)
		}()
	}
	var wg sync.WaitGroup
	results := make([]childResult, procs)
	errs := make([]error, procs)
	for p := 0; p < procs; p++ {
		conns := o.Conns / procs
		if p < o.Conns%procs {
			conns++
		}
		args := []string{"-child", "-start-at", strconv.FormatInt(startAt, 10),
			"-addr", o.Addr, "-admin", "", "-transport", o.Transport, "-scenario", o.Scenario,
			"-conns", strconv.Itoa(conns), "-inflight", strconv.Itoa(o.InFlight),
			"-rate", strconv.FormatFloat(o.Rate/float64(procs), 'f', -1, 64),
			"-duration", o.Duration.String(), "-warmup", o.Warmup.String(),
			"-room-size", strconv.Itoa(o.RoomSize), "-move-hz", strconv.FormatFloat(o.MoveHz, 'f', -1, 64), "-payload", strconv.Itoa(o.Payload),
			"-local-ips", strconv.Itoa(o.LocalIPs), "-device", fmt.Sprintf("%s-p%d", deviceOr(o), p)}
		wg.Add(1)
		go func(p int) {
			defer wg.Done()
			cmd := exec.CommandContext(ctx, self, args...)
			cmd.Stderr = os.Stderr
			out, err := cmd.Output()
			if err != nil {
				errs[p] = fmt.Errorf("process %d: %w", p, err)
				return
			}
			errs[p] = json.Unmarshal(out, &results[p])
		}(p)
	}
	wg.Wait()
	merged := &result{Options: o, Errors: map[string]int64{}}
	hist := newHistogram()
	for p, r := range results {
		if errs[p] != nil {
			return nil, nil, errs[p]
		}
		merged.Requests += r.Result.Requests
		merged.Failed += r.Result.Failed
		merged.Throughput += r.Result.Throughput
		merged.Pushes += r.Result.Pushes
		merged.PushRate += r.Result.PushRate
		merged.Seconds = max(merged.Seconds, r.Result.Seconds)
		for k, v := range r.Result.Errors {
			merged.Errors[k] += v
		}
		hist.Merge(hdrhistogram.Import(r.Histogram))
	}
	return merged, hist, nil
}

func deviceOr(o options) string {
	if o.Device != "" {
		return o.Device
	}
	return "load-" + o.Scenario
}

func writeJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

// fileLimit returns the limit on open files, which bounds the connections of one process; where
// the platform has none (Windows), 1<<20.
func fileLimit() int {
	if n, ok := process.FileLimit(); ok {
		return n
	}
	return 1 << 20
}

func numCPU() int       { return runtime.NumCPU() }
func goVersion() string { return runtime.Version() }
