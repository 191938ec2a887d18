package auth

import (
	"sync"
	"time"
)

// ThrottleConfig sets how failed logins slow down further attempts on one key (an account or a
// client IP). A zero field takes its default.
type ThrottleConfig struct {
	Free     int           // failures without delay; default 3
	Delay    time.Duration // wait after the first delayed failure, doubling per failure; default 1s
	Lockout  time.Duration // the wait once Failures failures are reached, and the longest wait; default 15m
	Failures int           // failures that lock the key for Lockout; default 10
	MaxKeys  int           // keys tracked; beyond, the oldest are forgotten; default 100 000
}

func (c ThrottleConfig) withDefaults() ThrottleConfig {
	if c.Free <= 0 {
		c.Free = 3
	}
	if c.Delay <= 0 {
		c.Delay = time.Second
	}
	if c.Lockout <= 0 {
		c.Lockout = 15 * time.Minute
	}
	if c.Failures <= 0 {
		c.Failures = 10
	}
	c.Free = min(c.Free, c.Failures)
	if c.MaxKeys <= 0 {
		c.MaxKeys = 100_000
	}
	return c
}

// Throttle counts failed logins per key with a growing delay and a temporary lockout, as
// Nakama and most identity services do. It is in memory and per process: each node throttles
// what it sees (Failures counts across the nodes sharing a store). It is safe for concurrent use.
type Throttle struct {
	cfg ThrottleConfig
	now func() time.Time

	mu   sync.Mutex
	keys map[string]*failures
}

type failures struct {
	count int
	last  time.Time
	until time.Time // no attempt before this
}

// NewThrottle returns an empty throttle.
func NewThrottle(cfg ThrottleConfig) *Throttle {
	return &Throttle{cfg: cfg.withDefaults(), now: time.Now, keys: map[string]*failures{}}
}

// Wait returns how long the key must wait before its next attempt; 0: it may try now.
func (t *Throttle) Wait(key string) time.Duration {
	now := t.now()
	t.mu.Lock()
	defer t.mu.Unlock()
	f := t.keys[key]
	if f == nil || !now.Before(f.until) {
		return 0
	}
	return f.until.Sub(now)
}

// Failed counts a failed attempt and returns the wait it imposes (0 while failures are free).
func (t *Throttle) Failed(key string) time.Duration {
	now := t.now()
	t.mu.Lock()
	defer t.mu.Unlock()
	f := t.keys[key]
	if f == nil || now.Sub(f.last) > t.cfg.Lockout {
		if f == nil && len(t.keys) >= t.cfg.MaxKeys {
			t.forgetOldest(now)
		}
		f = &failures{}
		t.keys[key] = f
	}
	f.count++
	f.last = now
	wait := t.cfg.waitAfter(f.count)
	f.until = now.Add(wait)
	return wait
}

// waitAfter is the wait a key's count-th failure in a row imposes.
func (c ThrottleConfig) waitAfter(count int) time.Duration {
	switch {
	case count >= c.Failures:
		return c.Lockout
	case count > c.Free:
		return min(c.Delay<<min(count-c.Free-1, 30), c.Lockout)
	}
	return 0
}

// Succeeded forgets the key's failures.
func (t *Throttle) Succeeded(key string) {
	t.mu.Lock()
	delete(t.keys, key)
	t.mu.Unlock()
}

// forgetOldest drops the expired keys, or if none, half the table; t.mu is held.
func (t *Throttle) forgetOldest(now time.Time) {
	for k, f := range t.keys {
		if now.Sub(f.last) > t.cfg.Lockout {
			delete(t.keys, k)
		}
	}
	for k := range t.keys {
		if len(t.keys) < t.cfg.MaxKeys/2 {
			break
		}
		delete(t.keys, k)
	}
}
