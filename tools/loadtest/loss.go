package main

import (
	"context"
	"fmt"
	"os"

	"github.com/moonforge/moonforge/tools/relay"
)

// lossConfig turns the per-connection rate limit off for the loss comparison: its few
// connections each send more than gate.rate_limit's default at 0% loss, and it compares
// transports, not limits.
const lossConfig = "gate:\n  rate_limit: 0\n"

// lossRun is one echo run of the loss comparison.
type lossRun struct {
	transport string
	loss      float64
	r         *result
}

// lossComparison runs the echo scenario over KCP through a UDP relay that drops (and duplicates
// and reorders) datagrams, and over TCP through a relay that models each lost segment as a stall
// of TCP's minimum retransmission timeout (200 ms), at 0%, 5% and 20% loss, all on one server.
// The loopback kernel here can drop nothing by itself (no netem), hence the model for TCP.
func lossComparison(ctx context.Context, c suiteConfig, rep *report) ([]lossRun, error) {
	srv, err := startServer(ctx, c, "loss", lossConfig)
	if err != nil {
		return nil, err
	}
	defer srv.stop()
	warmup, duration := c.window()
	// Few enough requests in flight that the CPU is not saturated: the latencies then show how
	// each transport recovers from loss, not queueing behind a busy processor.
	conns := c.scale(20)
	var runs []lossRun
	for _, loss := range []float64{0, 0.05, 0.20} {
		for _, transport := range []string{"kcp", "tcp"} {
			var addr, note string
			var stats func() string
			if transport == "kcp" {
				r, err := relay.ListenUDP(srv.kcp, relay.Config{Loss: loss, Duplicate: loss / 10, Reorder: loss / 5, Seed: 15})
				if err != nil {
					return nil, err
				}
				defer r.Close()
				addr = r.Addr()
				stats = func() string {
					s := r.Stats()
					return fmt.Sprintf("relay: %d datagrams dropped, %d duplicated, %d reordered of %d", s.Dropped, s.Duplicated, s.Reordered, s.Dropped+s.Forwarded)
				}
			} else {
				r, err := relay.ListenTCP(srv.tcp, relay.StallConfig{Loss: loss, Seed: 15})
				if err != nil {
					return nil, err
				}
				defer r.Close()
				addr = r.Addr()
				note = "TCP loss modelled as 200 ms stalls; "
				stats = func() string { return fmt.Sprintf("model: %d stalls of 200 ms", r.Stalls()) }
			}
			name := fmt.Sprintf("echo %s %d×2, %g%% loss", transport, conns, loss*100)
			o := options{Addr: addr, Admin: srv.admin, Transport: transport, Scenario: "echo", Conns: conns, InFlight: 2,
				Duration: duration, Warmup: warmup, Payload: 16, Quiet: true, Device: "bench-loss-" + transport}
			r, err := measure(ctx, o, 1)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", name, err)
			}
			r.Name = name
			r.Notes = note + stats()
			if r.Server != nil && r.Throughput > 0 {
				r.Notes += fmt.Sprintf("; server CPU %.1f µs per RPC", r.Server.CPUPercent/100*1e6/r.Throughput)
			}
			rep.Results = append(rep.Results, r)
			runs = append(runs, lossRun{transport, loss, r})
			fmt.Fprintf(os.Stderr, "%-28s %10.0f req/s  p50 %7.2f ms  p99 %7.2f ms  failed %d\n", name, r.Throughput, r.Latency.P50, r.Latency.P99, r.Failed)
		}
	}
	return runs, nil
}

// lossTargets states the loss comparison's two targets: at 5% loss KCP's p99 well below TCP's
// (modelled), at most half of it; at 0% loss KCP's throughput at least half of TCP's.
func lossTargets(runs []lossRun) []target {
	find := func(transport string, loss float64) *result {
		for _, r := range runs {
			if r.transport == transport && r.loss == loss {
				return r.r
			}
		}
		return &result{}
	}
	k5, t5 := find("kcp", 0.05), find("tcp", 0.05)
	k0, t0 := find("kcp", 0), find("tcp", 0)
	return []target{
		{"7. KCP p99 at 5% loss", "well below TCP's (at most half; TCP modelled)",
			fmt.Sprintf("KCP %.1f ms, TCP model %.1f ms", k5.Latency.P99, t5.Latency.P99),
			k5.Latency.P99 > 0 && k5.Latency.P99 <= t5.Latency.P99/2 && k5.Failed == 0},
		{"8. KCP throughput at 0% loss", "≥ 50% of TCP's",
			fmt.Sprintf("KCP %.0f RPC/s, TCP %.0f RPC/s (%.0f%%)", k0.Throughput, t0.Throughput, 100*k0.Throughput/max(t0.Throughput, 1)),
			k0.Throughput >= t0.Throughput/2 && k0.Failed == 0},
	}
}
