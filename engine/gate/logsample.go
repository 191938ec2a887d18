package gate

import (
	"sync"
	"time"
)

// Per kind and client IP, at most sampleBurst warnings are logged per sampleWindow; the others
// are only counted (Observer.Warned), and the next logged one says how many were dropped.
const (
	sampleBurst  = 5
	sampleWindow = 10 * time.Second
	sampleKeys   = 10000 // distinct kind/IP pairs kept before the table starts over
)

// logSampler rate limits per-connection warnings so that one client cannot flood the log. It is
// safe for concurrent use.
type logSampler struct {
	mu   sync.Mutex
	keys map[string]*sample
}

type sample struct {
	start   time.Time
	logged  int
	dropped int
}

// allow reports whether a warning of kind from ip is logged now, and how many of the same were
// dropped before it since they were last logged.
func (s *logSampler) allow(kind, ip string, now time.Time) (ok bool, dropped int) {
	key := kind + "|" + ip
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.keys == nil || len(s.keys) >= sampleKeys {
		s.keys = map[string]*sample{}
	}
	e := s.keys[key]
	if e == nil || now.Sub(e.start) >= sampleWindow {
		if e == nil {
			e = &sample{}
			s.keys[key] = e
		}
		e.start, e.logged = now, 0
	}
	if e.logged >= sampleBurst {
		e.dropped++
		return false, 0
	}
	e.logged++
	dropped, e.dropped = e.dropped, 0
	return true, dropped
}

// warn logs a per-connection warning of kind about the client at remote, sampled per kind and
// IP, and counts it in the metrics either way.
func (g *Gateway) warn(kind, remote, msg string, args ...any) {
	ok, dropped := g.sampler.allow(kind, hostOf(remote), time.Now())
	g.obs.Warned(kind, ok)
	if !ok {
		return
	}
	args = append(args, "kind", kind, "remote", remote)
	if dropped > 0 {
		args = append(args, "suppressed_before", dropped)
	}
	g.log.Warn(msg, args...)
}
