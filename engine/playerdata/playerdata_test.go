//go:build unix

package playerdata_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/moonforge/moonforge/engine/playerdata"
	"github.com/moonforge/moonforge/engine/store"
	"github.com/moonforge/moonforge/engine/store/storetest"
)

// redisStore opens a store on a durable redis-server of the test's own.
func redisStore(t *testing.T) (store.Store, *storetest.Server) {
	t.Helper()
	srv := storetest.StartRedis(t, storetest.DurableRedis...)
	s, err := store.OpenRedis(t.Context(), store.RedisConfig{Addrs: []string{srv.Addr}, DialTimeout: 200 * time.Millisecond, ReadTimeout: 500 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s, srv
}

func open(t *testing.T, cfg playerdata.Config) *playerdata.Manager {
	t.Helper()
	if cfg.Dir == "" {
		cfg.Dir = t.TempDir()
	}
	m, err := playerdata.Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Close(context.Background()) })
	return m
}

func wantStored(t *testing.T, s store.Store, player, name, want string) {
	t.Helper()
	got, err := s.Get(context.Background(), store.PlayerKey(player, name))
	if err != nil || string(got) != want {
		t.Fatalf("store has %s/%s = %q, %v; want %q", player, name, got, err, want)
	}
}

func TestLoadSaveUnload(t *testing.T) {
	ctx := t.Context()
	s, err := store.OpenBolt(store.BoltConfig{Path: t.TempDir() + "/db"})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	a := open(t, playerdata.Config{Store: s, Owner: "node-a", FlushEvery: time.Hour})
	b := open(t, playerdata.Config{Store: s, Owner: "node-b", FlushEvery: time.Hour})
	d, err := a.Load(ctx, "p1")
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Set("gold", []byte("10")); err != nil {
		t.Fatal(err)
	}
	if err := d.Set("lease", []byte("x")); !errors.Is(err, store.ErrInvalidKey) {
		t.Fatalf("Set of the lease record: %v", err)
	}
	if _, err := s.Get(ctx, store.PlayerKey("p1", "gold")); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Set wrote to the store at once: %v", err)
	}
	if err := a.Save(ctx, "p1"); err != nil {
		t.Fatal(err)
	}
	wantStored(t, s, "p1", "gold", "10")
	if _, err := b.Load(ctx, "p1"); !errors.Is(err, store.ErrLeaseHeld) {
		t.Fatalf("Load of a player another node holds: %v", err)
	}
	_ = d.Set("gold", []byte("11"))
	_ = d.Set("bag", []byte("sword"))
	if err := a.Unload(ctx, "p1"); err != nil {
		t.Fatal(err)
	}
	db, err := b.Load(ctx, "p1")
	if err != nil {
		t.Fatalf("Load after the other node's logout: %v", err)
	}
	if string(db.Get("gold")) != "11" || string(db.Get("bag")) != "sword" || len(db.Names()) != 2 {
		t.Fatalf("loaded %v", db.Names())
	}
	_ = db.Set("bag", nil)
	if err := b.Save(ctx, "p1"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(ctx, store.PlayerKey("p1", "bag")); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("a deleted record is still stored: %v", err)
	}
	if err := a.Save(ctx, "p1"); !errors.Is(err, playerdata.ErrNotLoaded) {
		t.Fatalf("Save of an unloaded player: %v", err)
	}
}

// TestStoreDownWritesWaitInOrder: while Redis is stopped, saves wait in the
// journal; when it returns, all are applied, in order.
func TestStoreDownWritesWaitInOrder(t *testing.T) {
	ctx := t.Context()
	s, srv := redisStore(t)
	m := open(t, playerdata.Config{Store: s, Owner: "node-a", FlushEvery: time.Hour, LeaseTTL: time.Minute})
	d, err := m.Load(ctx, "p")
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= 5; i++ {
		_ = d.Set("n", []byte(strconv.Itoa(i)))
		_ = d.Set(fmt.Sprintf("at%d", i), []byte("x"))
		short, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
		err := m.Save(short, "p")
		cancel()
		if !errors.Is(err, playerdata.ErrPending) {
			t.Fatalf("Save %d with the store stopped = %v, want ErrPending", i, err)
		}
	}
	if err := srv.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	if err := m.Save(ctx, "p"); err != nil {
		t.Fatalf("Save once the store is back: %v", err)
	}
	wantStored(t, s, "p", "n", "5")
	for i := 1; i <= 5; i++ {
		wantStored(t, s, "p", fmt.Sprintf("at%d", i), "x")
	}
}

// TestJournaledWriteOfLostLeaseIsRefused: a node dies with writes in its
// journal; another node takes the player over and writes; the first node's
// restart replays its journal, and the store refuses it by fencing.
func TestJournaledWriteOfLostLeaseIsRefused(t *testing.T) {
	ctx := t.Context()
	s, srv := redisStore(t)
	dir := t.TempDir()
	a, err := playerdata.Open(playerdata.Config{Store: s, Owner: "node-a", Dir: dir, FlushEvery: time.Hour, LeaseTTL: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	d, err := a.Load(ctx, "p")
	if err != nil {
		t.Fatal(err)
	}
	_ = srv.Signal(syscall.SIGSTOP)
	_ = d.Set("n", []byte("from a"))
	short, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	if err := a.Save(short, "p"); !errors.Is(err, playerdata.ErrPending) {
		t.Fatalf("Save = %v, want ErrPending", err)
	}
	cancel()
	a.Abandon() // killed
	_ = srv.Signal(syscall.SIGCONT)

	time.Sleep(400 * time.Millisecond) // a's lease expires
	b := open(t, playerdata.Config{Store: s, Owner: "node-b", FlushEvery: time.Hour})
	db, err := b.Load(ctx, "p")
	if err != nil {
		t.Fatal(err)
	}
	_ = db.Set("n", []byte("from b"))
	if err := b.Save(ctx, "p"); err != nil {
		t.Fatal(err)
	}

	var lost atomic.Int32
	a2 := open(t, playerdata.Config{Store: s, Owner: "node-a", Dir: dir, FlushEvery: time.Hour,
		OnLost: func(player string, err error) {
			if player == "p" && errors.Is(err, store.ErrConflict) {
				lost.Add(1)
			}
		}})
	if err := a2.Drain(ctx); err != nil {
		t.Fatal(err)
	}
	if lost.Load() != 1 {
		t.Fatalf("OnLost called %d times, want 1", lost.Load())
	}
	wantStored(t, s, "p", "n", "from b")
}

// TestRestartReplaysJournal: a node dies with writes in its journal and
// nobody takes the player over: its restart applies them, though the lease
// was renewed meanwhile.
func TestRestartReplaysJournal(t *testing.T) {
	ctx := t.Context()
	s, srv := redisStore(t)
	dir := t.TempDir()
	a, err := playerdata.Open(playerdata.Config{Store: s, Owner: "node-a", Dir: dir, FlushEvery: time.Hour, LeaseTTL: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	d, _ := a.Load(ctx, "p")
	_ = srv.Signal(syscall.SIGSTOP)
	_ = d.Set("n", []byte("journaled"))
	short, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	_ = a.Save(short, "p")
	cancel()
	a.Abandon()
	_ = srv.Signal(syscall.SIGCONT)
	if _, err := store.Acquire(ctx, s, store.PlayerKey("p", "lease"), "node-a", time.Minute); err != nil {
		t.Fatal(err) // the same owner renews: the journaled token is now stale
	}
	a2 := open(t, playerdata.Config{Store: s, Owner: "node-a", Dir: dir, FlushEvery: time.Hour})
	if err := a2.Drain(ctx); err != nil {
		t.Fatal(err)
	}
	wantStored(t, s, "p", "n", "journaled")
}

// TestStoreRestartUnderLoadLosesNothing: Redis (appendfsync always) is
// killed while players are saved in a loop, and restarted; every save that
// returned nil is in the store afterwards, before anything is written again.
func TestStoreRestartUnderLoadLosesNothing(t *testing.T) {
	ctx := t.Context()
	s, srv := redisStore(t)
	m := open(t, playerdata.Config{Store: s, Owner: "node-a", FlushEvery: time.Hour, LeaseTTL: time.Minute})
	const players = 4
	data := make([]*playerdata.Data, players)
	for p := range players {
		d, err := m.Load(ctx, fmt.Sprint("p", p))
		if err != nil {
			t.Fatal(err)
		}
		data[p] = d
	}
	load := storetest.StartWriteLoad(players, time.Second, func(ctx context.Context, p int, i int64) error {
		_ = data[p].Set("n", []byte(strconv.FormatInt(i, 10)))
		return m.Save(ctx, fmt.Sprint("p", p))
	})
	load.WaitAcked(t, 5, time.Minute)
	srv.Kill() // kill -9 in the middle of the saves
	load.Stop()
	srv.Restart(t) // again on its append-only file
	for p := range players {
		got, err := s.Get(ctx, store.PlayerKey(fmt.Sprint("p", p), "n"))
		n, _ := strconv.ParseInt(string(got), 10, 64)
		if err != nil || n < load.Acked(p) || load.Acked(p) == 0 {
			t.Fatalf("player %d: stored %q (%v), last acknowledged save %d", p, got, err, load.Acked(p))
		}
	}
}

// TestOwnerAndTurns: a Manager without an Owner keeps its name in its directory, so that the next
// run is the same owner (it takes its leases back at once, even unreleased); loads and unloads of
// one player racing on goroutines leave it either loaded with the lease held, or released.
func TestOwnerAndTurns(t *testing.T) {
	ctx := t.Context()
	s, err := store.OpenBolt(store.BoltConfig{Path: t.TempDir() + "/db"})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	dir := t.TempDir()
	a, err := playerdata.Open(playerdata.Config{Store: s, Dir: dir, FlushEvery: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Load(ctx, "p1"); err != nil {
		t.Fatal(err)
	}
	owner, _, err := store.LeaseOwner(ctx, s, store.PlayerKey("p1", "lease"))
	if err != nil || owner == "" {
		t.Fatalf("lease owner %q, %v", owner, err)
	}
	a.Abandon() // as a kill -9: the lease stays taken
	a, err = playerdata.Open(playerdata.Config{Store: s, Dir: dir, FlushEvery: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close(context.Background())
	if _, err := a.Load(ctx, "p1"); err != nil {
		t.Fatalf("the next run on the same directory: %v", err)
	}
	if again, _, _ := store.LeaseOwner(ctx, s, store.PlayerKey("p1", "lease")); again != owner {
		t.Fatalf("owner %q after a restart, want %q", again, owner)
	}

	var wg sync.WaitGroup
	for i := range 16 {
		wg.Go(func() {
			for range 10 {
				var err error
				if i%2 == 0 {
					_, err = a.Load(ctx, "p2")
				} else {
					err = a.Unload(ctx, "p2")
				}
				if err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	b := open(t, playerdata.Config{Store: s, Owner: "node-b", FlushEvery: time.Hour})
	_, err = b.Load(ctx, "p2")
	if loaded := a.Loaded("p2") != nil; loaded != errors.Is(err, store.ErrLeaseHeld) {
		t.Fatalf("loaded here %v, another node's load: %v", loaded, err)
	}
}

// distantStore is a store whose batches (and so lease renewals) each take a fixed time, as over a
// network or behind an fsync of their own.
type distantStore struct {
	store.Store
	delay time.Duration
}

func (s distantStore) Batch(ctx context.Context, ops []store.Op) error {
	select {
	case <-time.After(s.delay):
	case <-ctx.Done():
		return ctx.Err()
	}
	return s.Store.Batch(ctx, ops)
}

// Capabilities has no group commit: the store is across a network.
func (s distantStore) Capabilities() store.Capabilities {
	c := s.Store.Capabilities()
	c.GroupCommit = false
	return c
}

// peakStore counts the most Batch calls in progress at once; each takes a while, so that the
// calls a Manager makes together overlap.
type peakStore struct {
	store.Store
	groupCommit bool
	now, peak   atomic.Int64
}

func (s *peakStore) Batch(ctx context.Context, ops []store.Op) error {
	n := s.now.Add(1)
	defer s.now.Add(-1)
	for p := s.peak.Load(); n > p && !s.peak.CompareAndSwap(p, n); p = s.peak.Load() {
	}
	time.Sleep(time.Millisecond)
	return s.Store.Batch(ctx, ops)
}

func (s *peakStore) Capabilities() store.Capabilities {
	c := s.Store.Capabilities()
	c.GroupCommit = s.groupCommit
	return c
}

// Renewals go to a store with a group commit (the embedded one) all together, so that they take
// a few commits (an fsync each) instead of one per handful; to a networked store 32 at a time.
func TestRenewalsTogetherOnTheEmbeddedStore(t *testing.T) {
	for name, want := range map[string][2]int64{"group commit": {33, 200}, "networked": {2, 32}} {
		t.Run(name, func(t *testing.T) {
			bolt, err := store.OpenBolt(store.BoltConfig{Path: t.TempDir() + "/db"})
			if err != nil {
				t.Fatal(err)
			}
			defer bolt.Close()
			s := &peakStore{Store: bolt, groupCommit: name == "group commit"}
			m := open(t, playerdata.Config{Store: s, Owner: "node-a", FlushEvery: time.Hour, LeaseTTL: time.Second})
			for i := range 200 {
				if _, err := m.Load(t.Context(), fmt.Sprintf("p%d", i)); err != nil {
					t.Fatal(err)
				}
			}
			s.peak.Store(0)
			time.Sleep(900 * time.Millisecond) // the renewal rounds come every 1/6 s: the leases are renewed in them
			if p := s.peak.Load(); p < want[0] || p > want[1] {
				t.Fatalf("%d renewals at once; want %d to %d", p, want[0], want[1])
			}
		})
	}
}

// TestManyLeasesStayRenewed: a node holding many players keeps every lease when each renewal
// takes a store round trip. One renewal after another, 800 renewals of 5 ms need 4 s, more than
// the 3 s a lease lasts, and leases were lost (and with them the players' later writes).
func TestManyLeasesStayRenewed(t *testing.T) {
	ctx := t.Context()
	bolt, err := store.OpenBolt(store.BoltConfig{Path: t.TempDir() + "/db"})
	if err != nil {
		t.Fatal(err)
	}
	defer bolt.Close()
	var lost atomic.Int64
	m := open(t, playerdata.Config{Store: distantStore{bolt, 5 * time.Millisecond}, Owner: "node-a",
		FlushEvery: time.Hour, LeaseTTL: 3 * time.Second, OnLost: func(string, error) { lost.Add(1) }})
	const players = 800
	var wg sync.WaitGroup
	errs := make(chan error, players)
	sem := make(chan struct{}, 32)
	for i := range players {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			if _, err := m.Load(ctx, fmt.Sprintf("p%d", i)); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("load: %v", err)
	}
	time.Sleep(7 * time.Second) // more than two leases' lifetimes
	if n := lost.Load(); n > 0 {
		t.Fatalf("%d of %d leases lost", n, players)
	}
	for i := range players {
		if d := m.Loaded(fmt.Sprintf("p%d", i)); d == nil {
			t.Fatalf("p%d is no longer loaded", i)
		}
	}
}

// downStore fails every write once down is set, as a store that went away does.
type downStore struct {
	store.Store
	down atomic.Bool
}

func (s *downStore) Batch(ctx context.Context, ops []store.Op) error {
	if s.down.Load() {
		return store.ErrUnavailable
	}
	return s.Store.Batch(ctx, ops)
}

// warnings counts the log records of one message and keeps their "failed" attributes.
type warnings struct {
	msg    string
	mu     sync.Mutex
	failed []int64
}

func (w *warnings) Enabled(context.Context, slog.Level) bool { return true }
func (w *warnings) WithAttrs([]slog.Attr) slog.Handler       { return w }
func (w *warnings) WithGroup(string) slog.Handler            { return w }
func (w *warnings) Handle(_ context.Context, r slog.Record) error {
	if r.Message != w.msg {
		return nil
	}
	var failed int64
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == "failed" {
			failed = a.Value.Int64()
		}
		return true
	})
	w.mu.Lock()
	w.failed = append(w.failed, failed)
	w.mu.Unlock()
	return nil
}

// A store that is down fails the renewal of every player in every round: that is one log line
// per round, with the count, not one per player.
func TestFailedRenewalsLoggedOncePerRound(t *testing.T) {
	bolt, err := store.OpenBolt(store.BoltConfig{Path: t.TempDir() + "/db"})
	if err != nil {
		t.Fatal(err)
	}
	defer bolt.Close()
	s := &downStore{Store: bolt}
	w := &warnings{msg: "playerdata: lease renewals failed; retrying"}
	const players = 50
	m := open(t, playerdata.Config{Store: s, Owner: "node-a", FlushEvery: time.Hour, LeaseTTL: 1200 * time.Millisecond, Log: slog.New(w)})
	for i := range players {
		if _, err := m.Load(t.Context(), fmt.Sprintf("p%d", i)); err != nil {
			t.Fatal(err)
		}
	}
	s.down.Store(true)
	time.Sleep(time.Second) // the leases fall due after 400 ms; rounds come every 200 ms
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.failed) == 0 || len(w.failed) > 6 {
		t.Fatalf("%d warnings in 1 s of renewal rounds every 200 ms; want one per round", len(w.failed))
	}
	var most int64
	for _, n := range w.failed {
		most = max(most, n)
	}
	if most != players {
		t.Fatalf("failed counts per round %v; want a round with all %d", w.failed, players)
	}
}
