package failovertest

import (
	"context"
	"errors"
	"strconv"
	"testing"
	"time"

	"github.com/moonforge/moonforge/engine/store"
	"github.com/moonforge/moonforge/engine/store/storetest"
)

func openRedis(t *testing.T, cfg store.RedisConfig) *store.RedisStore {
	t.Helper()
	s, err := store.OpenRedis(t.Context(), cfg)
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

// writeTimeout bounds each write of a load: longer than a failover's
// detection, so that a write may wait through it.
const writeTimeout = 2 * time.Second

// pairLoad writes, for each player, the same number to two of its keys in
// one batch: the batch is atomic when both keys always have the same
// version (each applied batch adds one to each) and the same value.
func pairLoad(s store.Store, players []string) *storetest.WriteLoad {
	return storetest.StartWriteLoad(len(players), writeTimeout, func(ctx context.Context, w int, i int64) error {
		v := []byte(strconv.FormatInt(i, 10))
		return s.Batch(ctx, []store.Op{{Key: store.PlayerKey(players[w], "a"), Value: v}, {Key: store.PlayerKey(players[w], "b"), Value: v}})
	})
}

// checkPairs reads each player's two keys back and fails the test when a
// batch was applied in part. It returns, per player, how many acknowledged
// writes are missing (the last acknowledged number minus the stored one,
// when positive).
func checkPairs(t *testing.T, s store.Store, players []string, load *storetest.WriteLoad) []int64 {
	t.Helper()
	if err := load.Err(); err != nil {
		t.Errorf("a write failed with an error that is not ErrUnavailable: %v", err)
	}
	lost := make([]int64, len(players))
	for w, p := range players {
		a, va, err := s.GetVersion(context.Background(), store.PlayerKey(p, "a"))
		if err != nil {
			t.Fatalf("player %s, a: %v", p, err)
		}
		b, vb, err := s.GetVersion(context.Background(), store.PlayerKey(p, "b"))
		if err != nil {
			t.Fatalf("player %s, b: %v", p, err)
		}
		if string(a) != string(b) || va != vb {
			t.Errorf("player %s: a batch applied in part: a=%s (version %d), b=%s (version %d)", p, a, va, b, vb)
		}
		n, _ := strconv.ParseInt(string(a), 10, 64)
		if acked := load.Acked(w); n < acked {
			lost[w] = acked - n
		}
	}
	return lost
}

// sum adds up n.
func sum(n []int64) int64 {
	var s int64
	for _, x := range n {
		s += x
	}
	return s
}
