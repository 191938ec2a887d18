package gate

import (
	"testing"
	"time"
)

func TestLogSampler(t *testing.T) {
	var s logSampler
	now := time.Unix(1000, 0)
	for i := range sampleBurst {
		if ok, dropped := s.allow("bad_frame", "10.0.0.1", now); !ok || dropped != 0 {
			t.Fatalf("warning %d: ok=%v dropped=%d", i, ok, dropped)
		}
	}
	for range 7 {
		if ok, _ := s.allow("bad_frame", "10.0.0.1", now); ok {
			t.Fatal("a warning beyond the burst was logged")
		}
	}
	if ok, _ := s.allow("bad_frame", "10.0.0.2", now); !ok {
		t.Fatal("another address was sampled with the first")
	}
	if ok, _ := s.allow("rate_limited", "10.0.0.1", now); !ok {
		t.Fatal("another kind was sampled with the first")
	}
	ok, dropped := s.allow("bad_frame", "10.0.0.1", now.Add(sampleWindow))
	if !ok || dropped != 7 {
		t.Fatalf("next window: ok=%v dropped=%d, want the 7 dropped reported", ok, dropped)
	}
}

func TestLogSamplerBounded(t *testing.T) {
	var s logSampler
	now := time.Unix(1000, 0)
	for i := range 3 * sampleKeys {
		s.allow("k", string(rune(i)), now)
	}
	if len(s.keys) > sampleKeys {
		t.Fatalf("%d keys kept", len(s.keys))
	}
}

func TestConnLimits(t *testing.T) {
	l := newConnLimits(3, 2)
	for i, c := range []struct {
		remote string
		ok     bool
	}{{"1.1.1.1:1", true}, {"1.1.1.1:2", true}, {"1.1.1.1:3", false}, {"2.2.2.2:1", true}, {"3.3.3.3:1", false}} {
		if ok, _ := l.acquire(c.remote); ok != c.ok {
			t.Fatalf("connection %d from %s: %v, want %v", i, c.remote, ok, c.ok)
		}
	}
	l.release("1.1.1.1:1")
	if ok, _ := l.acquire("1.1.1.1:4"); !ok {
		t.Fatal("a released place was not reused")
	}
	if len(l.byIP) != 2 || l.total != 3 {
		t.Fatalf("counts %v %d", l.byIP, l.total)
	}
}
