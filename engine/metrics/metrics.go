// Package metrics defines Moonforge's Prometheus metrics on a registry of its own and receives
// the events of the gateway, the Lua VMs, the actors and the rooms (it implements their Observer
// interfaces). Labels are bounded: messages by the names the schema declares, codes by the code
// table.
package metrics

import (
	"maps"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/moonforge/moonforge/engine/protocol"
)

// Gauges are read at scrape time from the parts that own the numbers.
type Gauges struct {
	Sessions func() int
	Rooms    func() int
	// Mailboxes returns the queued tasks summed over all actors, and the deepest mailbox.
	Mailboxes func() (total, deepest int)
	// Undelivered counts answers whose box was closed (call.Boxes.Dropped).
	Undelivered func() uint64
	// Traffic returns the frame bytes received from and sent to clients (gate.Gateway.Traffic).
	Traffic func() (in, out uint64)
}

// Metrics holds the collectors. Its methods are safe for concurrent use.
type Metrics struct {
	Registry *prometheus.Registry

	connections *prometheus.GaugeVec
	requests    *prometheus.CounterVec
	latency     *prometheus.HistogramVec
	handler     *prometheus.HistogramVec
	reloads     *prometheus.CounterVec
	applies     *prometheus.CounterVec
	tickLate    *prometheus.HistogramVec
	version     *prometheus.GaugeVec
	warnings    *prometheus.CounterVec
	late        prometheus.Counter
	datagrams   *prometheus.CounterVec

	// Children of the vectors above by message name, made on first use: WithLabelValues hashes
	// its labels on every call, which the per-request path should not pay.
	answers  byName[*answerObs]
	handlers byName[prometheus.Observer]
}

// byName maps message names to values made once per name. The map is replaced, never changed, so
// that a lookup takes no lock.
type byName[T any] struct {
	m  atomic.Pointer[map[string]T]
	mu sync.Mutex // orders the replacements
}

// get returns the value of name, made by newValue on its first use.
func (b *byName[T]) get(name string, newValue func() T) T {
	if m := b.m.Load(); m != nil {
		if v, ok := (*m)[name]; ok {
			return v
		}
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	var old map[string]T
	if m := b.m.Load(); m != nil {
		old = *m
	}
	if v, ok := old[name]; ok {
		return v
	}
	v := newValue()
	next := maps.Clone(old)
	if next == nil {
		next = map[string]T{}
	}
	next[name] = v
	b.m.Store(&next)
	return v
}

// answerObs holds one message's children of requests and latency.
type answerObs struct {
	latency prometheus.Observer
	codes   [protocol.BadRequest + 1]atomic.Pointer[prometheus.Counter] // OK and the framework's codes
	others  sync.Map                                                    // protocol.Code → prometheus.Counter: a script's codes
}

// count returns the counter of answers with code, made on its first use.
func (o *answerObs) count(m *Metrics, msg string, code protocol.Code) prometheus.Counter {
	newCounter := func() prometheus.Counter { return m.requests.WithLabelValues(msg, codeLabel(code)) }
	if int(code) >= len(o.codes) {
		c, ok := o.others.Load(code)
		if !ok {
			c, _ = o.others.LoadOrStore(code, newCounter())
		}
		return c.(prometheus.Counter)
	}
	slot := &o.codes[code]
	if c := slot.Load(); c != nil {
		return *c
	}
	c := newCounter()
	slot.CompareAndSwap(nil, &c)
	return *slot.Load()
}

// New registers every collector, the Go runtime's and the process's included.
func New(g Gauges) *Metrics {
	m := &Metrics{
		Registry: prometheus.NewRegistry(),
		connections: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "moonforge_connections", Help: "Open client connections by transport.",
		}, []string{"transport"}),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "moonforge_requests_total", Help: "Client requests answered, by message and code (OK for a reply).",
		}, []string{"msg", "code"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "moonforge_request_seconds", Help: "Time from a request's arrival to its answer, by message.",
			Buckets: prometheus.ExponentialBuckets(50e-6, 2.5, 14),
		}, []string{"msg"}),
		handler: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "moonforge_handler_seconds", Help: "Time spent in Lua handlers, by message.",
			Buckets: prometheus.ExponentialBuckets(10e-6, 2.5, 14),
		}, []string{"msg"}),
		reloads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "moonforge_reloads_total", Help: "Script and schema reloads by result (applied, rejected, unchanged).",
		}, []string{"result"}),
		applies: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "moonforge_actor_applies_total", Help: "Script versions applied by actors, by role and result.",
		}, []string{"role", "result"}),
		tickLate: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "moonforge_room_tick_lateness_seconds", Help: "How late room ticks run, by room type.",
			Buckets: prometheus.ExponentialBuckets(100e-6, 2, 14),
		}, []string{"type"}),
		late: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "moonforge_late_answers_total", Help: "Answers dropped because their request was already answered TIMEOUT.",
		}),
		version: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "moonforge_script_version_info", Help: "1 for the script version in force.",
		}, []string{"version"}),
		warnings: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "moonforge_connection_warnings_total", Help: "Per-connection warnings by kind, and whether log sampling kept them (logged) or dropped them.",
		}, []string{"kind", "logged"}),
		datagrams: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "moonforge_kcp_dropped_datagrams_total", Help: "UDP datagrams the KCP gateway dropped, by reason (malformed, oversized, forged, stray, limit).",
		}, []string{"reason"}),
	}
	m.Registry.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		m.connections, m.requests, m.latency, m.handler,
		m.reloads, m.applies, m.tickLate, m.version, m.warnings, m.late, m.datagrams,
	)
	gauge := func(name, help string, f func() float64) {
		m.Registry.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, f))
	}
	if g.Sessions != nil {
		gauge("moonforge_sessions", "Live sessions, bound or awaiting resume.", func() float64 { return float64(g.Sessions()) })
	}
	if g.Rooms != nil {
		gauge("moonforge_rooms", "Open rooms.", func() float64 { return float64(g.Rooms()) })
	}
	if g.Undelivered != nil {
		gauge("moonforge_undelivered_answers", "Answers dropped because their requester was gone (a closed connection).", func() float64 { return float64(g.Undelivered()) })
	}
	if g.Traffic != nil {
		in := func() float64 { b, _ := g.Traffic(); return float64(b) }
		out := func() float64 { _, b := g.Traffic(); return float64(b) }
		m.Registry.MustRegister(
			prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "moonforge_received_bytes_total", Help: "Frame bytes received from clients."}, in),
			prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "moonforge_sent_bytes_total", Help: "Frame bytes sent to clients."}, out),
		)
	}
	if g.Mailboxes != nil {
		gauge("moonforge_mailbox_depth", "Tasks queued in all actor mailboxes.", func() float64 { t, _ := g.Mailboxes(); return float64(t) })
		gauge("moonforge_mailbox_depth_max", "Tasks queued in the fullest actor mailbox.", func() float64 { _, d := g.Mailboxes(); return float64(d) })
	}
	return m
}

// codeLabel is the code label of an answer.
func codeLabel(code protocol.Code) string {
	if code == 0 {
		return "OK"
	}
	return code.String()
}

// Connections implements gate.Observer.
func (m *Metrics) Connections(transport string, delta int) {
	m.connections.WithLabelValues(transport).Add(float64(delta))
}

// Answered implements gate.Observer.
func (m *Metrics) Answered(msg string, code protocol.Code, took time.Duration) {
	o := m.answers.get(msg, func() *answerObs { return &answerObs{latency: m.latency.WithLabelValues(msg)} })
	o.count(m, msg, code).Inc()
	o.latency.Observe(took.Seconds())
}

// Warned implements gate.Observer.
func (m *Metrics) Warned(kind string, logged bool) {
	l := "false"
	if logged {
		l = "true"
	}
	m.warnings.WithLabelValues(kind, l).Inc()
}

// DatagramDropped implements gate.DatagramObserver.
func (m *Metrics) DatagramDropped(reason string) {
	m.datagrams.WithLabelValues(reason).Inc()
}

// Handled implements script.Observer.
func (m *Metrics) Handled(msg string, took time.Duration, _ protocol.Code) {
	m.handlers.get(msg, func() prometheus.Observer { return m.handler.WithLabelValues(msg) }).Observe(took.Seconds())
}

// Applied implements actor.Observer.
func (m *Metrics) Applied(role string, ok bool, _ time.Duration) {
	result := "ok"
	if !ok {
		result = "failed"
	}
	m.applies.WithLabelValues(role, result).Inc()
}

// Tick implements room.Observer.
func (m *Metrics) Tick(roomType string, late time.Duration) {
	m.tickLate.WithLabelValues(roomType).Observe(late.Seconds())
}

// Reloaded counts a reload by result and, when one is applied, marks the version in force.
func (m *Metrics) Reloaded(result, version, previous string) {
	m.reloads.WithLabelValues(result).Inc()
	if result == "applied" || result == "initial" {
		if previous != "" {
			m.version.DeleteLabelValues(previous)
		}
		m.version.WithLabelValues(version).Set(1)
	}
}

// Late counts an answer that came after its request's TIMEOUT (gate.Observer).
func (m *Metrics) Late() { m.late.Inc() }
