package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/moonforge/moonforge/engine/registry"
)

// clusterOutcome is what the cluster part of the suite measured.
type clusterOutcome struct{ target target }

type echoFunc func(name string, addr, admin string, conns, inflight int, rate float64, transport string, baseline bool) (*result, error)

// clusterBench runs a cluster as processes: a master (its embedded nats-server listening), a
// proxy and two lobbies. It measures the bus's own request/reply echo (from this process, over
// the master's server), client echo through proxy -> NATS -> lobby Lua -> back, the RSS of each
// idle node, and the time from kill -9 of a lobby to the registry reporting it gone (after which
// no proxy routes to it).
func clusterBench(ctx context.Context, c suiteConfig, rep *report, echo echoFunc) (*clusterOutcome, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	natsAddr := l.Addr().String()
	l.Close()
	url := "nats://" + natsAddr
	var nodes []*server
	var rss []string
	defer func() {
		for _, n := range nodes {
			n.stop()
		}
	}()
	start := func(id, role string, extra ...string) (*server, error) {
		s, err := startServer(ctx, c, id, append([]string{"-role", role, "-id", id}, extra...)...)
		if err == nil {
			nodes = append(nodes, s)
			defer func() { rss = append(rss, fmt.Sprintf("%s %.0f MB", role, rssMB(s.pid()))) }()
			time.Sleep(time.Second) // idle: scripts loaded, record announced
		}
		return s, err
	}
	if _, err := start("master-1", "master", "-nats-listen", natsAddr); err != nil {
		return nil, err
	}
	proxy, err := start("proxy-1", "proxy", "-nats", url)
	if err != nil {
		return nil, err
	}
	lobby1, err := start("lobby-1", "lobby", "-nats", url)
	if err != nil {
		return nil, err
	}
	if _, err := start("lobby-2", "lobby", "-nats", url); err != nil {
		return nil, err
	}
	time.Sleep(time.Second) // records announced and watched

	conns := c.scale(1000)
	warmup, duration := c.window()
	bus, err := busEcho(url, conns/10, 16, warmup, duration)
	if err != nil {
		return nil, err
	}
	bus.Notes = "nats.go request/reply, responder in this process, over the master's nats-server"
	rep.Results = append(rep.Results, bus)
	fmt.Fprintf(os.Stderr, "%-28s %10.0f req/s\n", bus.Name, bus.Throughput)
	ce, err := echo("cluster echo 1000×16", proxy.tcp, proxy.admin, conns, 16, 0, "tcp", false)
	if err != nil {
		return nil, err
	}
	ce.RatioToBaseline = ce.Throughput / bus.Throughput
	ce.Notes = "client -> proxy -> NATS -> lobby Lua -> back, each its own process; ×baseline is over the bus echo; idle RSS: " + strings.Join(rss, ", ")

	gone, err := killToGone(url, lobby1)
	if err != nil {
		return nil, err
	}
	ce.Notes += fmt.Sprintf("; kill -9 of a lobby to its record gone (no proxy routes to it): %.2f s", gone.Seconds())
	return &clusterOutcome{target: target{
		Name: "12. cluster echo 1000×16", Wanted: "≥ 40k RPC/s and ≥ 50% of the bus echo",
		Measured: fmt.Sprintf("%.0f RPC/s, %.0f%% of the bus echo (%.0f); kill -9 to routed around %.2f s", ce.Throughput, 100*ce.RatioToBaseline, bus.Throughput, gone.Seconds()),
		Met:      ce.Throughput >= 40000 && ce.RatioToBaseline >= 0.5 && ce.Failed == 0,
	}}, nil
}

// busEcho measures NATS request/reply of 16-byte messages: a responder connection echoes, conns
// requester connections keep inflight requests each.
func busEcho(url string, conns, inflight int, warmup, duration time.Duration) (*result, error) {
	resp, err := nats.Connect(url)
	if err != nil {
		return nil, err
	}
	defer resp.Close()
	if _, err := resp.Subscribe("bench.echo", func(m *nats.Msg) { _ = m.Respond(m.Data) }); err != nil {
		return nil, err
	}
	_ = resp.Flush()
	var done atomic.Int64
	var failed atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	payload := make([]byte, 16)
	for range max(1, conns) {
		nc, err := nats.Connect(url)
		if err != nil {
			return nil, err
		}
		defer nc.Close()
		for range inflight {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					select {
					case <-stop:
						return
					default:
					}
					if _, err := nc.Request("bench.echo", payload, 5*time.Second); err != nil {
						failed.Add(1)
					} else {
						done.Add(1)
					}
				}
			}()
		}
	}
	time.Sleep(warmup)
	before, began := done.Load(), time.Now()
	time.Sleep(duration)
	after, secs := done.Load(), time.Since(began).Seconds()
	close(stop)
	wg.Wait()
	return &result{Name: fmt.Sprintf("bus echo %d×%d", max(1, conns), inflight), Requests: after - before, Failed: failed.Load(),
		Throughput: float64(after-before) / secs, Seconds: secs}, nil
}

// killToGone kills a node with SIGKILL and returns how long until a registry watcher sees its
// record deleted (expired), which is when proxies stop routing to it.
func killToGone(url string, n *server) (time.Duration, error) {
	nc, err := nats.Connect(url)
	if err != nil {
		return 0, err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return 0, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	kv, err := js.KeyValue(ctx, registry.NodesBucket)
	if err != nil {
		return 0, err
	}
	w, err := kv.Watch(ctx, "lobby-1", jetstream.UpdatesOnly())
	if err != nil {
		return 0, err
	}
	defer func() { _ = w.Stop() }()
	killed := time.Now()
	_ = n.cmd.Process.Kill()
	for e := range w.Updates() {
		if e != nil && e.Operation() != jetstream.KeyValuePut {
			return time.Since(killed), nil
		}
	}
	return 0, fmt.Errorf("the killed node's record did not expire within 30s")
}

// rssMB reads a process's resident set from /proc (Linux; 0 elsewhere).
func rssMB(pid int) float64 {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
			kb, _ := strconv.ParseFloat(f[1], 64)
			return kb / 1024
		}
	}
	return 0
}
