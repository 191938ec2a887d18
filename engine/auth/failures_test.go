package auth

import (
	"context"
	"errors"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/moonforge/moonforge/engine/store"
)

// TestFailuresCountAcrossNodes: two nodes sharing a store count one account's failures together,
// concurrent failures included, and the waits grow as a Throttle's do.
func TestFailuresCountAcrossNodes(t *testing.T) {
	s := openStore(t, filepath.Join(t.TempDir(), "db"))
	ctx := context.Background()
	cfg := ThrottleConfig{Free: 2, Delay: time.Second, Failures: 12, Lockout: time.Hour}
	a, b := NewFailures(s, cfg), NewFailures(s, cfg)
	if wait, seen, err := a.Wait(ctx, "password/ann"); wait != 0 || seen || err != nil {
		t.Fatalf("before any failure: wait %s, seen %v, %v", wait, seen, err)
	}
	var wg sync.WaitGroup
	for i := range 8 { // 8 failures at once, half through each node
		n := a
		if i%2 == 1 {
			n = b
		}
		wg.Go(func() {
			if _, err := n.Failed(ctx, "password/ann"); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	// The 9th failure in a row waits as a Throttle's 9th does: 2 free, then 1 s doubling from
	// the 3rd: 64 s.
	wait, err := b.Failed(ctx, "password/ann")
	if err != nil || wait != 64*time.Second {
		t.Fatalf("the 9th failure: wait %s, %v; want 64s", wait, err)
	}
	if wait, seen, err := a.Wait(ctx, "password/ann"); !seen || err != nil || wait < 63*time.Second || wait > 64*time.Second {
		t.Fatalf("the other node: wait %s, seen %v, %v; want about 64s", wait, seen, err)
	}
	if wait, seen, _ := a.Wait(ctx, "password/bob"); wait != 0 || seen {
		t.Fatalf("another account: wait %s, seen %v", wait, seen)
	}
	if err := a.Succeeded(ctx, "password/ann"); err != nil {
		t.Fatal(err)
	}
	if wait, seen, err := b.Wait(ctx, "password/ann"); wait != 0 || seen || err != nil {
		t.Fatalf("after a success: wait %s, seen %v, %v", wait, seen, err)
	}
}

// TestFailuresIgnoreAMalformedEntry: an entry of another shape counts as none, and the next
// failure replaces it.
func TestFailuresIgnoreAMalformedEntry(t *testing.T) {
	s := openStore(t, filepath.Join(t.TempDir(), "db"))
	ctx := context.Background()
	if err := s.Put(ctx, failuresPrefix+"password/ann", []byte("garbage")); err != nil {
		t.Fatal(err)
	}
	f := NewFailures(s, ThrottleConfig{Free: 1})
	if wait, _, err := f.Wait(ctx, "password/ann"); wait != 0 || err != nil {
		t.Fatalf("malformed entry: wait %s, %v", wait, err)
	}
	if wait, err := f.Failed(ctx, "password/ann"); wait != 0 || err != nil {
		t.Fatalf("first failure over a malformed entry: wait %s, %v", wait, err)
	}
	if wait, err := f.Failed(ctx, "password/ann"); wait != time.Second || err != nil {
		t.Fatalf("second failure: wait %s, %v; want 1s", wait, err)
	}
}

// TestFailuresExpire: failures are forgotten Lockout after the last one, by the store's TTL.
func TestFailuresExpire(t *testing.T) {
	s := openStore(t, filepath.Join(t.TempDir(), "db"))
	ctx := context.Background()
	f := NewFailures(s, ThrottleConfig{Free: 1, Lockout: 300 * time.Millisecond})
	for range 3 {
		if _, err := f.Failed(ctx, "password/ann"); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		_, seen, err := f.Wait(ctx, "password/ann")
		if err != nil {
			t.Fatal(err)
		}
		if !seen {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("failures still on record 5 s after a lockout of 300 ms")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if _, err := s.Get(ctx, failuresPrefix+"password/ann"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("entry after expiry: %v", err)
	}
}
