package main

import (
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// latency summarises a histogram in milliseconds.
type latency struct {
	P50  float64 `json:"p50_ms"`
	P90  float64 `json:"p90_ms"`
	P99  float64 `json:"p99_ms"`
	P999 float64 `json:"p999_ms"`
	Max  float64 `json:"max_ms"`
}

func summarize(h *hdrhistogram.Histogram) latency {
	ms := func(us int64) float64 { return float64(us) / 1000 }
	return latency{
		P50:  ms(h.ValueAtQuantile(50)),
		P90:  ms(h.ValueAtQuantile(90)),
		P99:  ms(h.ValueAtQuantile(99)),
		P999: ms(h.ValueAtQuantile(99.9)),
		Max:  ms(h.Max()),
	}
}

// serverStats is what the server's /metrics says over the measured window.
type serverStats struct {
	CPUPercent      float64 `json:"cpu_percent"`
	RSSBytes        float64 `json:"rss_bytes"`
	RSSDeltaBytes   float64 `json:"rss_delta_bytes"`
	Goroutines      float64 `json:"goroutines"`
	BytesInPerSec   float64 `json:"bytes_in_per_s"`
	BytesOutPerSec  float64 `json:"bytes_out_per_s"`
	TickLatenessP99 float64 `json:"tick_lateness_p99_ms,omitempty"`
	Rooms           float64 `json:"rooms,omitempty"`
}

// result is one run's report.
type result struct {
	Name       string           `json:"name,omitempty"`
	Options    options          `json:"options"`
	Requests   int64            `json:"requests"`
	Failed     int64            `json:"failed"`
	Throughput float64          `json:"throughput_per_s"`
	Latency    latency          `json:"latency"`
	Pushes     int64            `json:"pushes"`
	PushRate   float64          `json:"pushes_per_s"`
	Errors     map[string]int64 `json:"errors_by_code,omitempty"`
	Seconds    float64          `json:"seconds"`
	Server     *serverStats     `json:"server,omitempty"`
	// RatioToBaseline is Throughput over the raw echo baseline's throughput in the same run.
	RatioToBaseline float64 `json:"ratio_to_baseline,omitempty"`
	Notes           string  `json:"notes,omitempty"`
}

// scrape reads the server's Prometheus metrics.
func scrape(admin string) (map[string]*dto.MetricFamily, error) {
	if admin == "" {
		return nil, nil
	}
	resp, err := (&http.Client{Timeout: 5 * time.Second}).Get("http://" + admin + "/metrics")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	p := expfmt.NewTextParser(model.UTF8Validation)
	return p.TextToMetricFamilies(resp.Body)
}

// value sums the samples of a counter or gauge family.
func value(m map[string]*dto.MetricFamily, name string) float64 {
	f, ok := m[name]
	if !ok {
		return 0
	}
	total := 0.0
	for _, s := range f.Metric {
		switch {
		case s.Counter != nil:
			total += s.Counter.GetValue()
		case s.Gauge != nil:
			total += s.Gauge.GetValue()
		}
	}
	return total
}

// histogramQuantile estimates a quantile of a Prometheus histogram family from the bucket counts
// that accumulated between two scrapes (the upper bound of the bucket holding the quantile; past
// the last finite bucket, that bucket's bound).
func histogramQuantile(before, after map[string]*dto.MetricFamily, name string, q float64) float64 {
	counts := map[float64]float64{}
	add := func(m map[string]*dto.MetricFamily, sign float64) {
		f, ok := m[name]
		if !ok {
			return
		}
		for _, s := range f.Metric {
			if s.Histogram == nil {
				continue
			}
			for _, b := range s.Histogram.Bucket {
				counts[b.GetUpperBound()] += sign * float64(b.GetCumulativeCount())
			}
		}
	}
	add(after, 1)
	add(before, -1)
	bounds := make([]float64, 0, len(counts))
	for b := range counts {
		bounds = append(bounds, b)
	}
	sort.Float64s(bounds)
	total := 0.0
	if len(bounds) > 0 {
		total = counts[bounds[len(bounds)-1]]
	}
	if total <= 0 {
		return 0
	}
	for i, b := range bounds {
		if counts[b] >= q*total {
			if math.IsInf(b, 1) {
				// Beyond the last bucket: report its bound (a lower bound of the quantile), as JSON
				// has no infinity.
				if i > 0 {
					return bounds[i-1]
				}
				return 0
			}
			return b
		}
	}
	return 0
}

// serverDelta turns two scrapes taken d apart into the window's server statistics.
func serverDelta(before, after map[string]*dto.MetricFamily, d time.Duration) *serverStats {
	if before == nil || after == nil {
		return nil
	}
	secs := d.Seconds()
	return &serverStats{
		CPUPercent:      100 * (value(after, "process_cpu_seconds_total") - value(before, "process_cpu_seconds_total")) / secs,
		RSSBytes:        value(after, "process_resident_memory_bytes"),
		RSSDeltaBytes:   value(after, "process_resident_memory_bytes") - value(before, "process_resident_memory_bytes"),
		Goroutines:      value(after, "go_goroutines"),
		BytesInPerSec:   (value(after, "moonforge_received_bytes_total") - value(before, "moonforge_received_bytes_total")) / secs,
		BytesOutPerSec:  (value(after, "moonforge_sent_bytes_total") - value(before, "moonforge_sent_bytes_total")) / secs,
		TickLatenessP99: 1000 * histogramQuantile(before, after, "moonforge_room_tick_lateness_seconds", 0.99),
		Rooms:           value(after, "moonforge_rooms"),
	}
}

// printTable writes results as a human table.
func printTable(w io.Writer, results []*result) {
	fmt.Fprintf(w, "%-28s %7s %5s %10s %8s %8s %8s %8s %9s %8s %7s %7s %9s\n",
		"run", "conns", "load", "req/s", "p50 ms", "p99 ms", "p99.9", "max ms", "pushes/s", "failed", "cpu %", "×base", "rss MB")
	for _, r := range results {
		load := fmt.Sprintf("%d", r.Options.InFlight)
		if r.Options.Rate > 0 {
			load = fmt.Sprintf("%.0fk/s", r.Options.Rate/1000)
		}
		cpu, rss := "-", "-"
		if r.Server != nil {
			cpu = fmt.Sprintf("%.0f", r.Server.CPUPercent)
			rss = fmt.Sprintf("%.0f", r.Server.RSSBytes/(1<<20))
		}
		ratio := "-"
		if r.RatioToBaseline > 0 {
			ratio = fmt.Sprintf("%.3f", r.RatioToBaseline)
		}
		fmt.Fprintf(w, "%-28s %7d %5s %10.0f %8.2f %8.2f %8.2f %8.1f %9.0f %8d %7s %7s %9s\n",
			name(r), r.Options.Conns, load, r.Throughput, r.Latency.P50, r.Latency.P99, r.Latency.P999, r.Latency.Max,
			r.PushRate, r.Failed, cpu, ratio, rss)
	}
}

func name(r *result) string {
	if r.Name != "" {
		return r.Name
	}
	return r.Options.Scenario + "/" + r.Options.Transport
}

// markdownTable renders results for the benchmark document and the README.
func markdownTable(results []*result) string {
	var b strings.Builder
	b.WriteString("| run | conns | load | req/s | ×baseline | p50 ms | p99 ms | p99.9 ms | pushes/s | failed | server CPU % | server RSS MB | notes |\n")
	b.WriteString("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |\n")
	for _, r := range results {
		load := fmt.Sprintf("%d in flight", r.Options.InFlight)
		if r.Options.Rate > 0 {
			load = fmt.Sprintf("%.0f/s", r.Options.Rate)
		}
		switch r.Options.Scenario {
		case "idle", "login":
			load = "-"
		case "arena":
			load = fmt.Sprintf("%g moves/s each", r.Options.MoveHz)
		}
		cpu, rss := "-", "-"
		if r.Server != nil {
			cpu = fmt.Sprintf("%.0f", r.Server.CPUPercent)
			rss = fmt.Sprintf("%.0f", r.Server.RSSBytes/(1<<20))
		}
		ratio := "-"
		if r.RatioToBaseline > 0 {
			ratio = fmt.Sprintf("%.3f", r.RatioToBaseline)
		}
		fmt.Fprintf(&b, "| %s | %d | %s | %.0f | %s | %.2f | %.2f | %.2f | %.0f | %d | %s | %s | %s |\n",
			name(r), r.Options.Conns, load, r.Throughput, ratio, r.Latency.P50, r.Latency.P99, r.Latency.P999,
			r.PushRate, r.Failed, cpu, rss, r.Notes)
	}
	return b.String()
}

// machine describes where a run happened.
func machine() string {
	host, _ := os.Hostname()
	cpu := "unknown CPU"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(line, "model name") {
				cpu = strings.TrimSpace(strings.SplitN(line, ":", 2)[1])
				break
			}
		}
	}
	return fmt.Sprintf("%s, %d CPUs (%s), %s", host, numCPU(), cpu, goVersion())
}
