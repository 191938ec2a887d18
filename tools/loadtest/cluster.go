package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
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
// idle node, the time from kill -9 of a lobby to the registry reporting it gone (after which
// no proxy routes to it), then, on two other lobbies, requests that each make one mf.call from
// one lobby to the other (throughput, and p99 at a load without queueing).
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
	startWith := func(c suiteConfig, id, role string, extra ...string) (*server, error) {
		s, err := startServer(ctx, c, id, "", append([]string{"-role", role, "-id", id}, extra...)...)
		if err == nil {
			nodes = append(nodes, s)
			defer func() { rss = append(rss, fmt.Sprintf("%s %.0f MB", role, rssMB(s.pid()))) }()
			time.Sleep(time.Second) // idle: scripts loaded, record announced
		}
		return s, err
	}
	start := func(id, role string, extra ...string) (*server, error) { return startWith(c, id, role, extra...) }
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
	lobby2, err := start("lobby-2", "lobby", "-nats", url)
	if err != nil {
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

	ce1, err := echo("cluster echo 100×1", proxy.tcp, proxy.admin, max(1, conns/10), 1, 0, "tcp", false)
	if err != nil {
		return nil, err
	}
	ce1.Notes = "the latency of the cluster echo without queueing: 100 requests in flight"

	gone, err := killToGone(url, lobby1)
	if err != nil {
		return nil, err
	}
	ce.Notes += fmt.Sprintf("; kill -9 of a lobby to its record gone (no proxy routes to it): %.2f s", gone.Seconds())

	// mf.call from one lobby to another: lobby-2 leaves; a caller lobby, whose EchoReq handler
	// calls the echo that a server lobby serves, takes every EchoReq (the server declares none).
	lobby2.stop()
	caller, served, err := callScripts(c.luaDir)
	defer os.RemoveAll(caller)
	defer os.RemoveAll(served)
	if err != nil {
		return nil, err
	}
	cc, sc := c, c
	cc.luaDir, sc.luaDir = caller, served
	if _, err := startWith(sc, "lobby-served", "lobby", "-nats", url); err != nil {
		return nil, err
	}
	if _, err := startWith(cc, "lobby-caller", "lobby", "-nats", url); err != nil {
		return nil, err
	}
	time.Sleep(time.Second) // records announced and watched
	mc, err := echo("cluster mf.call 1000×16", proxy.tcp, proxy.admin, conns, 16, 0, "tcp", false)
	if err != nil {
		return nil, err
	}
	mc.RatioToBaseline = mc.Throughput / ce.Throughput
	mc.Notes = "each request: client -> proxy -> lobby-caller, whose handler does mf.call(\"lobby-served\", ...) over NATS and answers with its result; one mf.call per request; ×baseline is over the cluster echo"
	mc1, err := echo("cluster mf.call 100×1", proxy.tcp, proxy.admin, max(1, conns/10), 1, 0, "tcp", false)
	if err != nil {
		return nil, err
	}
	mc1.RatioToBaseline = mc1.Throughput / ce1.Throughput
	mc1.Notes = "the latency of a request that makes one mf.call lobby to lobby, without queueing; ×baseline is over the cluster echo 100×1"
	return &clusterOutcome{target: target{
		Name: "12. cluster echo 1000×16; mf.call lobby to lobby", Wanted: "≥ 40k RPC/s and ≥ 50% of the bus echo",
		Measured: fmt.Sprintf("%.0f RPC/s, %.0f%% of the bus echo (%.0f); kill -9 to routed around %.2f s; mf.call lobby to lobby: %.0f calls/s (%.0f%% of the cluster echo), p99 %.2f ms per request at 100 in flight (cluster echo %.2f ms)",
			ce.Throughput, 100*ce.RatioToBaseline, bus.Throughput, gone.Seconds(), mc.Throughput, 100*mc.RatioToBaseline, mc1.Latency.P99, ce1.Latency.P99),
		Met: ce.Throughput >= 40000 && ce.RatioToBaseline >= 0.5 && ce.Failed == 0 && mc.Failed == 0 && mc1.Failed == 0,
	}}, nil
}

// callScripts returns two copies of the scripts under dir: the caller's, whose lobby EchoReq
// handler answers with an mf.call to the lobby node "lobby-served", and the server's, whose lobby
// serves that call ("bench.echo") and handles no EchoReq.
func callScripts(dir string) (caller, served string, err error) {
	const callerLua = `-- The cluster bench's caller: every EchoReq makes one mf.call to another lobby node.
mf.handle("EchoReq", function(ctx, req)
  local out = mf.call("lobby-served", "bench.echo", {body = req.body, n = req.n}, {timeout = 5})
  return "EchoAck", {body = out.body, n = out.n}
end)
`
	const servedLua = `-- The cluster bench's served echo, for the caller lobby's mf.call.
mf.serve("bench.echo", function(ctx, args)
  return args
end)
`
	for i, lua := range []string{callerLua, servedLua} {
		d, err := os.MkdirTemp("", "moonforge-bench-lua-")
		if err != nil {
			return caller, served, err
		}
		if i == 0 {
			caller = d
		} else {
			served = d
		}
		if err := copyDir(dir, d); err != nil {
			return caller, served, err
		}
		if err := os.WriteFile(filepath.Join(d, "lobby", "echo.lua"), []byte(lua), 0o644); err != nil {
			return caller, served, err
		}
	}
	return caller, served, nil
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
