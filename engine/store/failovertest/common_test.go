package failovertest

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/moonforge/moonforge/engine/store"
	"github.com/moonforge/moonforge/engine/store/storetest"
)

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

// failover is the scenario of the failover tests: stores writing through
// the same servers with and without WaitReplicas, a master killed.
type failover struct {
	async, waiting store.Store
	players        []string // the writers' players, on the master killed
	leased         string   // a player whose lease is taken over before the kill, on that master
	kill           func()   // kills the master (SIGKILL)
	promoted       func()   // waits until the servers name another master
	within         time.Duration
}

// run takes the leased player's lease as node-a, lets it expire and takes it
// as node-b; runs the writers, kills the master in the middle of their
// writes and waits (up to within) until both stores' writes resume. Then no
// batch may be applied in part; with WaitReplicas no acknowledged write may
// be lost; node-a's stale token must be refused and node-b's accepted.
func (f failover) run(t *testing.T) {
	ctx := t.Context()
	leaseKey := store.PlayerKey(f.leased, "lease")
	old, err := store.Acquire(ctx, f.waiting, leaseKey, "node-a", 100*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(150 * time.Millisecond)
	owner, err := store.Acquire(ctx, f.waiting, leaseKey, "node-b", time.Minute)
	if err != nil {
		t.Fatal(err)
	}

	loads := map[string]*storetest.WriteLoad{"async": pairLoad(f.async, f.players), "wait": pairLoad(f.waiting, f.players)}
	for _, l := range loads {
		l.WaitAcked(t, 5, time.Minute)
	}
	f.kill()
	killed := time.Now()
	for _, l := range loads {
		l.WaitAcked(t, 5, f.within) // resumed on the promoted replica
	}
	resumed := time.Since(killed)
	for _, l := range loads {
		l.Stop()
	}
	f.promoted()
	if lost := checkPairs(t, f.waiting, f.players, loads["wait"]); sum(lost) != 0 {
		t.Errorf("with WaitReplicas 1, acknowledged writes lost per player: %v", lost)
	}
	lostAsync := checkPairs(t, f.async, f.players, loads["async"])
	t.Logf("writes resumed %v after the kill; failed writes: %d with WaitReplicas, %d without; acknowledged writes lost without WaitReplicas: %d",
		resumed.Round(time.Millisecond), loads["wait"].Failed(), loads["async"].Failed(), sum(lostAsync))

	put := []store.Op{{Key: store.PlayerKey(f.leased, "data"), Value: []byte("x")}}
	if err := old.Batch(ctx, put); !errors.Is(err, store.ErrLeaseLost) {
		t.Errorf("a write with the stale token after the failover: %v, want ErrLeaseLost", err)
	}
	if err := old.Renew(ctx); !errors.Is(err, store.ErrLeaseLost) {
		t.Errorf("renewing the stale lease after the failover: %v, want ErrLeaseLost", err)
	}
	if err := owner.Batch(ctx, put); err != nil {
		t.Errorf("the owner's write after the failover: %v", err)
	}
	if _, err := store.Acquire(ctx, f.waiting, leaseKey, "node-a", time.Minute); !errors.Is(err, store.ErrLeaseHeld) {
		t.Errorf("node-a acquiring the lease node-b holds, after the failover: %v, want ErrLeaseHeld", err)
	}
}

// waitUntil polls cond every 50 ms and fails the test when it does not hold
// within a minute (a loaded machine is slow).
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(time.Minute); !cond(); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within a minute", what)
		}
	}
}

// info returns the field of INFO section on the server at addr, "" when it
// does not answer.
func info(addr, section, field string) string {
	c := redis.NewClient(&redis.Options{Addr: addr, DialTimeout: time.Second, ReadTimeout: time.Second})
	defer c.Close()
	text, _ := c.Info(context.Background(), section).Result()
	for _, line := range strings.Split(text, "\r\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			return v
		}
	}
	return ""
}
