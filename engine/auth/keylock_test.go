package auth

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"
)

// size is the number of keys with holders or waiters.
func (k *keyLocks) size() int {
	k.mu.Lock()
	defer k.mu.Unlock()
	return len(k.locks)
}

func TestKeyLocksExclusive(t *testing.T) {
	var k keyLocks
	var wg sync.WaitGroup
	inside := map[string]int{}
	var mu sync.Mutex
	for i := range 40 {
		key := []string{"a", "b"}[i%2]
		wg.Go(func() {
			for range 50 {
				unlock, err := k.lock(t.Context(), key)
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				inside[key]++
				n := inside[key]
				mu.Unlock()
				if n != 1 {
					t.Errorf("%d holders of %q", n, key)
				}
				mu.Lock()
				inside[key]--
				mu.Unlock()
				unlock()
			}
		})
	}
	wg.Wait()
	if n := k.size(); n != 0 {
		t.Fatalf("%d locks left after every holder unlocked", n)
	}
}

func TestKeyLocksContext(t *testing.T) {
	var k keyLocks
	unlock, err := k.lock(t.Context(), "a")
	if err != nil {
		t.Fatal(err)
	}
	other, err := k.lock(t.Context(), "b")
	if err != nil {
		t.Fatalf("a different key: %v", err)
	}
	other()
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Millisecond)
	defer cancel()
	if _, err := k.lock(ctx, "a"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("lock of a held key = %v, want DeadlineExceeded", err)
	}
	unlock()
	if n := k.size(); n != 0 {
		t.Fatalf("%d locks left", n)
	}
	unlock, err = k.lock(t.Context(), "a")
	if err != nil {
		t.Fatal(err)
	}
	unlock()
}
