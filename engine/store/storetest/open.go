package storetest

import (
	"context"
	"errors"
	"testing"

	"github.com/moonforge/moonforge/engine/store"
)

// Opened returns s, the result of opening a store, failing the test on
// err, and closes it at the test's end.
func Opened[S store.Store](t testing.TB, s S, err error) S {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil && !errors.Is(err, store.ErrClosed) {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

// OpenRedis opens a Redis store for the test and closes it at its end.
func OpenRedis(t testing.TB, cfg store.RedisConfig) *store.RedisStore {
	t.Helper()
	s, err := store.OpenRedis(context.Background(), cfg)
	return Opened(t, s, err)
}
