package storetest

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/moonforge/moonforge/engine/store"
)

// WriteLoad is a write load for fault tests: writers goroutines, each
// writing its own sequence 1, 2, 3, ... one write at a time, recording the
// last one acknowledged (returned nil). A test kills or moves the store's
// servers meanwhile, stops the load, and checks that each writer's last
// acknowledged write is in the store.
type WriteLoad struct {
	acked   []atomic.Int64
	failed  atomic.Int64
	stop    chan struct{}
	wg      sync.WaitGroup
	mu      sync.Mutex
	unknown error // the first error not wrapping store.ErrUnavailable
	last    error // the last error
}

// StartWriteLoad starts writers goroutines; writer w calls write(ctx, w, i)
// for i = 1, 2, 3, ..., each call with a context that ends after timeout,
// until Stop. A write must leave i in the store, or fail.
func StartWriteLoad(writers int, timeout time.Duration, write func(ctx context.Context, w int, i int64) error) *WriteLoad {
	l := &WriteLoad{acked: make([]atomic.Int64, writers), stop: make(chan struct{})}
	for w := range writers {
		l.wg.Go(func() {
			for i := int64(1); ; i++ {
				select {
				case <-l.stop:
					return
				default:
				}
				ctx, cancel := context.WithTimeout(context.Background(), timeout)
				err := write(ctx, w, i)
				cancel()
				switch {
				case err == nil:
					l.acked[w].Store(i)
				default:
					l.failed.Add(1)
					l.mu.Lock()
					if l.unknown == nil && !errors.Is(err, store.ErrUnavailable) {
						l.unknown = err
					}
					l.last = err
					l.mu.Unlock()
				}
			}
		})
	}
	return l
}

// WaitAcked waits until every writer has had n more writes acknowledged
// than when it was called; it fails the test after within (a bound of
// liveness: leave room for a loaded machine).
func (l *WriteLoad) WaitAcked(t testing.TB, n int64, within time.Duration) {
	t.Helper()
	from := make([]int64, len(l.acked))
	for w := range l.acked {
		from[w] = l.acked[w].Load()
	}
	for deadline := time.Now().Add(within); ; time.Sleep(20 * time.Millisecond) {
		ready := true
		for w := range l.acked {
			ready = ready && l.acked[w].Load() >= from[w]+n
		}
		if ready {
			return
		}
		if time.Now().After(deadline) {
			l.mu.Lock()
			defer l.mu.Unlock()
			t.Fatalf("writes were not acknowledged within %v (%d failed, the last with: %v)", within, l.failed.Load(), l.last)
		}
	}
}

// Stop ends the load and waits for the writes in flight.
func (l *WriteLoad) Stop() {
	close(l.stop)
	l.wg.Wait()
}

// Acked returns writer w's last acknowledged write, 0 for none.
func (l *WriteLoad) Acked(w int) int64 { return l.acked[w].Load() }

// Failed returns how many writes failed.
func (l *WriteLoad) Failed() int64 { return l.failed.Load() }

// Err returns the first error that did not wrap store.ErrUnavailable, if
// any: a store under a fault should fail a write only as unavailable.
func (l *WriteLoad) Err() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.unknown
}
