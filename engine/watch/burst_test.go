package watch

import (
	"slices"
	"testing"
	"time"
)

func TestBurstDue(t *testing.T) {
	b := burst{debounce: 150 * time.Millisecond, maxDelay: time.Second}
	t0 := time.Unix(1000, 0)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }

	if d := b.add("a", at(0)); d != 150*time.Millisecond {
		t.Fatalf("first event: due in %v, want 150ms", d)
	}
	if d := b.add("b", at(100)); d != 150*time.Millisecond {
		t.Fatalf("second event: due in %v, want 150ms after it", d)
	}
	if d := b.add("c", at(900)); d != 100*time.Millisecond {
		t.Fatalf("near MaxDelay: due in %v, want 100ms", d)
	}
	if d := b.add("a", at(1200)); d != 0 {
		t.Fatalf("past MaxDelay: due in %v, want 0", d)
	}
	if got := b.take(); !slices.Equal(got, []string{"a", "b", "c"}) {
		t.Fatalf("take = %q", got)
	}

	// The next burst starts its own MaxDelay.
	if d := b.add("z", at(5000)); d != 150*time.Millisecond {
		t.Fatalf("new burst: due in %v, want 150ms", d)
	}
	if got := b.take(); !slices.Equal(got, []string{"z"}) {
		t.Fatalf("take = %q", got)
	}
	if got := b.take(); len(got) != 0 {
		t.Fatalf("take of an empty burst = %q", got)
	}
}

func TestBurstMaxDelayBelowDebounce(t *testing.T) {
	b := burst{debounce: time.Second, maxDelay: 200 * time.Millisecond}
	if d := b.add("a", time.Unix(0, 0)); d != 200*time.Millisecond {
		t.Fatalf("due in %v, want 200ms", d)
	}
}
