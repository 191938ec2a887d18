// Package playerdata keeps players' data in memory on the node that serves
// them and writes it behind to the store: one writer at a time per player
// (a store.Lease with a fencing token), changes marked dirty and flushed on
// an interval, on logout, on stop, and on demand (Save, for replies the
// game marks as saved). A flush first goes to a local journal (on disk,
// checksummed, bounded, in order), then to the store; while the store is
// unreachable, flushes wait in the journal and are retried in order. A
// journaled write whose lease was lost meanwhile is refused by the store's
// fencing and reported (Config.OnLost), never applied over the new owner's
// data.
//
// A player's keys are store.PlayerKey(id, name), all in the player's group,
// so that a flush is one atomic batch on every backend; the lease is at
// store.PlayerKey(id, "lease").
package playerdata

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/moonforge/moonforge/engine/ident"
	"github.com/moonforge/moonforge/engine/store"
)

// Config configures a Manager. Zero durations take their defaults.
type Config struct {
	Store store.Store
	// Owner names this node in the leases it holds. "": the name kept in
	// Dir/owner, made at the first Open, so that the next run on the same
	// directory (after a kill -9 too) is the same owner: it applies the
	// journal's entries and takes the leases it held at once.
	Owner string
	// Dir holds the journal (Dir/journal). Required.
	Dir string
	// FlushEvery is how often dirty players are flushed. Default 5s.
	FlushEvery time.Duration
	// LeaseTTL is how long a lease holds without renewal; it is renewed every
	// third of it. Default 15s.
	LeaseTTL time.Duration
	// JournalMax bounds the journal file. Default 64 MiB.
	JournalMax int64
	// OnLost is told of each journaled write refused and each renewal
	// refused because the player's lease was lost; it may be called from
	// several goroutines at once. Default: a log line.
	OnLost func(player string, err error)
	Log    *slog.Logger
	// Parallelism bounds the store calls made at once for different players
	// (lease renewals, flushes, releases). Default: 32, a networked store's
	// share of connections; 1024 for a store whose commits group the writes
	// made at once (Capabilities.GroupCommit: the embedded store), so that
	// more at once means fewer commits and fsyncs.
	Parallelism int
}

// Errors of a Manager.
var (
	// ErrNotLoaded: a player that this node has not loaded (or has unloaded).
	ErrNotLoaded = errors.New("playerdata: player not loaded on this node")
	// ErrPending: Save's write is in the journal, on this node's disk, but
	// not yet in the store (unreachable); it will be applied in order when
	// the store returns, unless the lease is lost meanwhile.
	ErrPending = errors.New("playerdata: saved to the local journal; the store is unreachable")
	// ErrClosed: the Manager is closing or closed (the node stops); Close saves every player.
	ErrClosed = errors.New("playerdata: the node is stopping")
)

// Manager holds the loaded players of one node. Safe for concurrent use; a
// player's Data is used by one actor at a time (its own goroutine).
type Manager struct {
	cfg     Config
	journal *Journal
	mu      sync.Mutex
	players map[string]*Data
	busy    map[string]chan struct{} // players being loaded or unloaded; closed when done
	drain   sync.Mutex               // one drain of the journal at a time
	closing atomic.Bool              // set when Close starts
	stop    chan struct{}
	done    sync.WaitGroup
}

// Data is one loaded player's records: name -> bytes. Get and Set never
// touch the store or the disk.
type Data struct {
	id     string
	lease  *store.Lease
	mu     sync.Mutex
	values map[string][]byte
	dirty  map[string]bool
}

// Open opens the journal and starts the flush loop. Entries left in the
// journal by a previous run are applied first, with their own tokens.
func Open(cfg Config) (*Manager, error) {
	if cfg.Store == nil || cfg.Dir == "" {
		return nil, errors.New("playerdata: Config needs Store and Dir")
	}
	if cfg.Owner == "" {
		owner, err := ownerOf(cfg.Dir)
		if err != nil {
			return nil, err
		}
		cfg.Owner = owner
	}
	if cfg.FlushEvery <= 0 {
		cfg.FlushEvery = 5 * time.Second
	}
	if cfg.LeaseTTL <= 0 {
		cfg.LeaseTTL = 15 * time.Second
	}
	if cfg.JournalMax <= 0 {
		cfg.JournalMax = 64 << 20
	}
	if cfg.Parallelism <= 0 {
		cfg.Parallelism = 32
		if cfg.Store.Capabilities().GroupCommit {
			cfg.Parallelism = 1024
		}
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	if cfg.OnLost == nil {
		log := cfg.Log
		cfg.OnLost = func(player string, err error) {
			log.Error("playerdata: a journaled write was refused: the lease was lost", "player", player, "err", err)
		}
	}
	j, recovered, discarded, err := OpenJournal(filepath.Join(cfg.Dir, "journal"), cfg.JournalMax)
	if err != nil {
		return nil, err
	}
	if discarded > 0 {
		cfg.Log.Warn("playerdata: journal: dropped a torn tail (a write not acknowledged)", "bytes", discarded)
	}
	if len(recovered) > 0 {
		cfg.Log.Info("playerdata: journal: applying writes left by the last run", "entries", len(recovered))
	}
	m := &Manager{cfg: cfg, journal: j, players: map[string]*Data{}, busy: map[string]chan struct{}{}, stop: make(chan struct{})}
	m.done.Go(m.loop)
	return m, nil
}

// ownerOf returns the owner name kept in dir/owner, made if missing.
func ownerOf(dir string) (string, error) {
	path := filepath.Join(dir, "owner")
	raw, err := os.ReadFile(path)
	if err == nil && len(strings.TrimSpace(string(raw))) > 0 {
		return strings.TrimSpace(string(raw)), nil
	}
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("playerdata: %w", err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("playerdata: %w", err)
	}
	owner := ident.New("journal-", 16)
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return "", fmt.Errorf("playerdata: %w", err)
	}
	_, err = f.WriteString(owner + "\n")
	if err == nil {
		err = f.Sync() // before any lease names it
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return "", fmt.Errorf("playerdata: %w", err)
	}
	return owner, nil
}

func leaseKey(player string) string { return store.PlayerKey(player, "lease") }

// Load takes the player's lease and reads the player's records. It fails
// with store.ErrLeaseHeld while another node holds the lease; loading a
// player loaded already returns its Data. Loads and unloads of one player
// take turns: a Load during an Unload waits for it, then loads anew.
func (m *Manager) Load(ctx context.Context, player string) (*Data, error) {
	if player == "" || strings.ContainsAny(player, "{}") {
		return nil, fmt.Errorf("playerdata: bad player id %q", player)
	}
	if m.closing.Load() {
		return nil, ErrClosed
	}
	if err := m.waitTurn(ctx, player); err != nil {
		return nil, err
	}
	if d := m.players[player]; d != nil {
		m.mu.Unlock()
		return d, nil
	}
	done := m.take(player)
	m.mu.Unlock()
	defer done()
	// Writes this node journaled for the player go first.
	if err := m.Drain(ctx); err != nil {
		return nil, err
	}
	l, err := store.Acquire(ctx, m.cfg.Store, leaseKey(player), m.cfg.Owner, m.cfg.LeaseTTL)
	if err != nil {
		return nil, err
	}
	d := &Data{id: player, lease: l, values: map[string][]byte{}, dirty: map[string]bool{}}
	prefix := store.PlayerKey(player, "")
	err = m.cfg.Store.Scan(ctx, prefix, func(k string, v []byte) error {
		if name := k[len(prefix):]; name != "lease" {
			d.values[name] = append([]byte(nil), v...)
		}
		return nil
	})
	if err != nil {
		_ = l.Release(ctx)
		return nil, err
	}
	m.mu.Lock()
	m.players[player] = d
	m.mu.Unlock()
	return d, nil
}

// waitTurn waits until no Load or Unload of player runs and returns with
// m.mu held, or returns ctx's error without it.
func (m *Manager) waitTurn(ctx context.Context, player string) error {
	m.mu.Lock()
	for {
		ch, busy := m.busy[player]
		if !busy {
			return nil
		}
		m.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
		m.mu.Lock()
	}
}

// take marks player busy (m.mu held) and returns the function that ends
// the turn.
func (m *Manager) take(player string) func() {
	ch := make(chan struct{})
	m.busy[player] = ch
	return func() {
		m.mu.Lock()
		delete(m.busy, player)
		m.mu.Unlock()
		close(ch)
	}
}

// Loaded returns the player's Data if this node has it loaded and no Load
// or Unload of it runs, else nil (then Load). It never blocks on the store.
func (m *Manager) Loaded(player string) *Data {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, busy := m.busy[player]; busy {
		return nil
	}
	return m.players[player]
}

// Players returns the ids of the players loaded (not being loaded or unloaded), in no order.
func (m *Manager) Players() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]string, 0, len(m.players))
	for id := range m.players {
		if _, busy := m.busy[id]; !busy {
			out = append(out, id)
		}
	}
	return out
}

// Get returns a copy of the record name, or nil.
func (d *Data) Get(name string) []byte {
	d.mu.Lock()
	defer d.mu.Unlock()
	if v, ok := d.values[name]; ok {
		return append([]byte{}, v...)
	}
	return nil
}

// Names returns the names of the player's records, sorted.
func (d *Data) Names() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return slices.Sorted(maps.Keys(d.values))
}

// Set changes the record name in memory and marks it dirty; value nil
// deletes it.
func (d *Data) Set(name string, value []byte) error {
	if name == "" || name == "lease" || len(store.PlayerKey(d.id, name)) > store.MaxKeyLen {
		return fmt.Errorf("%w: record name %q", store.ErrInvalidKey, name)
	}
	if len(value) > store.MaxValueLen {
		return fmt.Errorf("%w: record %q of %d bytes", store.ErrValueTooLarge, name, len(value))
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if value == nil {
		delete(d.values, name)
	} else {
		d.values[name] = append([]byte{}, value...)
	}
	d.dirty[name] = true
	return nil
}

// take returns the dirty records as ops and marks them clean.
func (d *Data) take() []store.Op {
	d.mu.Lock()
	defer d.mu.Unlock()
	ops := make([]store.Op, 0, len(d.dirty))
	for _, name := range slices.Sorted(maps.Keys(d.dirty)) {
		v, ok := d.values[name]
		ops = append(ops, store.Op{Key: store.PlayerKey(d.id, name), Value: v, Delete: !ok})
	}
	clear(d.dirty)
	return ops
}

// flush journals the player's dirty records, if any; the caller drains.
func (m *Manager) flush(d *Data) error {
	ops := d.take()
	if len(ops) == 0 {
		return nil
	}
	_, err := m.journal.Append(Entry{Lease: leaseKey(d.id), Token: d.lease.Token(), Ops: ops})
	if err != nil {
		// Not journaled: mark the records dirty again for the next flush.
		d.mu.Lock()
		for _, op := range ops {
			d.dirty[op.Key[len(store.PlayerKey(d.id, "")):]] = true
		}
		d.mu.Unlock()
	}
	return err
}

// Save flushes the player now and waits until the store has the write. If
// the store is unreachable until ctx ends, the write stays journaled and
// the error wraps ErrPending.
func (m *Manager) Save(ctx context.Context, player string) error {
	d := m.Loaded(player)
	if d == nil {
		return ErrNotLoaded
	}
	return m.save(ctx, d)
}

func (m *Manager) save(ctx context.Context, d *Data) error {
	if err := m.flush(d); err != nil {
		return err
	}
	for {
		err := m.Drain(ctx)
		if err == nil {
			return nil
		}
		if !errors.Is(err, store.ErrUnavailable) {
			return err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w: %w", ErrPending, err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// Unload saves the player and releases the lease (logout). If the save
// fails, the player stays loaded (its lease renewed, its writes flushed by
// the loop) and the error is returned; unloading a player not loaded does
// nothing. Once Close has started it returns ErrClosed: Close saves the
// player.
func (m *Manager) Unload(ctx context.Context, player string) error {
	if m.closing.Load() {
		return ErrClosed
	}
	if err := m.waitTurn(ctx, player); err != nil {
		return err
	}
	d := m.players[player]
	if d == nil {
		m.mu.Unlock()
		return nil
	}
	done := m.take(player)
	m.mu.Unlock()
	defer done()
	if err := m.save(ctx, d); err != nil {
		return err
	}
	m.mu.Lock()
	delete(m.players, player)
	m.mu.Unlock()
	return d.lease.Release(ctx)
}

// Drain applies the journal's entries to the store: each player's in
// order, players concurrently, and a player's consecutive entries under one
// token as one batch. A player's chain stops at the first entry that the
// store cannot take now, and Drain returns that error (it wraps
// store.ErrUnavailable, or is the store's); an entry refused by fencing is
// dropped and reported to OnLost.
func (m *Manager) Drain(ctx context.Context) error {
	m.drain.Lock()
	defer m.drain.Unlock()
	var chains [][]Entry
	at := map[string]int{}
	for _, e := range m.journal.Pending() {
		i, ok := at[e.Lease]
		if !ok {
			i = len(chains)
			at[e.Lease] = i
			chains = append(chains, nil)
		}
		chains[i] = append(chains[i], e)
	}
	errs := make([]error, len(chains))
	inParallel(len(chains), m.cfg.Parallelism, func(i int) { errs[i] = m.drainChain(ctx, chains[i]) })
	return errors.Join(errs...)
}

// drainChain applies one player's entries in order.
func (m *Manager) drainChain(ctx context.Context, chain []Entry) error {
	for len(chain) > 0 {
		n := 1
		merged := chain[0]
		for n < len(chain) && chain[n].Token == merged.Token {
			merged.Ops = append(slices.Clip(merged.Ops), chain[n].Ops...)
			n++
		}
		err := m.apply(ctx, merged)
		if errors.Is(err, store.ErrConflict) {
			player := playerOf(merged.Lease)
			m.cfg.OnLost(player, err)
			m.lost(player)
		} else if err != nil {
			return err
		}
		for _, e := range chain[:n] {
			if err := m.journal.Ack(e.Seq); err != nil {
				return err
			}
		}
		chain = chain[n:]
	}
	return nil
}

// apply writes one entry, fenced by its token. When that token is stale
// but the lease's record still names this node's Owner, no other owner has
// held the lease since (an owner writes its name into the record, releasing
// too), so the entry is applied with the current token: this covers renewals
// made after the entry was journaled, before or across a restart.
func (m *Manager) apply(ctx context.Context, e Entry) error {
	token := e.Token
	for attempt := 0; ; attempt++ {
		err := m.cfg.Store.Batch(ctx, append([]store.Op{{Key: e.Lease, Check: true, Version: token}}, e.Ops...))
		if !errors.Is(err, store.ErrConflict) || attempt == 3 {
			return err
		}
		owner, current, rerr := store.LeaseOwner(ctx, m.cfg.Store, e.Lease)
		if rerr != nil {
			return rerr
		}
		if owner != m.cfg.Owner || current == token {
			return err
		}
		token = current
	}
}

// lost forgets a player whose lease another node took.
func (m *Manager) lost(player string) {
	m.mu.Lock()
	delete(m.players, player)
	m.mu.Unlock()
}

func playerOf(lease string) string {
	g := store.Group(lease)
	return strings.TrimSuffix(strings.TrimPrefix(g, "p/{"), "}")
}

// FlushAll journals every dirty player and drains the journal.
func (m *Manager) FlushAll(ctx context.Context) error {
	m.mu.Lock()
	all := slices.Collect(maps.Values(m.players))
	m.mu.Unlock()
	var errs []error
	for _, d := range all {
		errs = append(errs, m.flush(d))
	}
	errs = append(errs, m.Drain(ctx))
	return errors.Join(errs...)
}

// renew renews the leases due for it; a lease that cannot be renewed
// because another node took it is reported and its player dropped. Other
// failures are retried in the next round.
func (m *Manager) renew(ctx context.Context) {
	m.mu.Lock()
	all := slices.Collect(maps.Values(m.players))
	m.mu.Unlock()
	due := slices.DeleteFunc(all, func(d *Data) bool { return time.Until(d.lease.Until()) > m.cfg.LeaseTTL*2/3 })
	// Side by side, each renewal costs the node a share of a store round trip (and of a commit,
	// which the embedded store groups): one after another, a node holding thousands of players
	// could not renew them all within a lease's lifetime.
	var (
		mu     sync.Mutex
		failed int
		first  error // the first failure, for the log
	)
	inParallel(len(due), m.cfg.Parallelism, func(i int) {
		d := due[i]
		err := d.lease.Renew(ctx)
		switch {
		case err == nil:
		case errors.Is(err, store.ErrLeaseLost):
			m.cfg.OnLost(d.id, err)
			m.lost(d.id)
		default:
			mu.Lock()
			if failed++; first == nil {
				first = fmt.Errorf("player %s: %w", d.id, err)
			}
			mu.Unlock()
		}
	})
	if failed > 0 {
		// One line per round: a store that is down fails every renewal of every player.
		m.cfg.Log.Warn("playerdata: lease renewals failed; retrying", "failed", failed, "due", len(due), "first", first)
	}
}

// inParallel calls fn(0) to fn(n-1), limit at a time, and returns when all have returned.
func inParallel(n, limit int, fn func(i int)) {
	sem := make(chan struct{}, limit)
	var wg sync.WaitGroup
	for i := range n {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			fn(i)
		})
	}
	wg.Wait()
}

func (m *Manager) loop() {
	flush := time.NewTicker(m.cfg.FlushEvery)
	defer flush.Stop()
	renew := time.NewTicker(m.cfg.LeaseTTL / 6)
	defer renew.Stop()
	// Each round's budget starts when the round does.
	budget := func() (context.Context, context.CancelFunc) {
		return context.WithTimeout(context.Background(), m.cfg.LeaseTTL/3)
	}
	for {
		select {
		case <-m.stop:
			return
		case <-flush.C:
			ctx, cancel := budget()
			if err := m.FlushAll(ctx); err != nil {
				m.cfg.Log.Warn("playerdata: flush failed; the journal keeps the writes", "err", err)
			}
			cancel()
		case <-renew.C:
			ctx, cancel := budget()
			m.renew(ctx)
			cancel()
		}
	}
}

// Close is the graceful stop (and drain): it flushes every player, waits
// for the store until ctx ends, releases the leases and closes the journal.
// Writes the store did not take stay in the journal for the next run.
func (m *Manager) Close(ctx context.Context) error {
	m.closing.Store(true)
	close(m.stop)
	m.done.Wait()
	err := m.FlushAll(ctx)
	for errors.Is(err, store.ErrUnavailable) && ctx.Err() == nil {
		time.Sleep(50 * time.Millisecond)
		err = m.Drain(ctx)
	}
	m.mu.Lock()
	all := slices.Collect(maps.Values(m.players))
	clear(m.players)
	m.mu.Unlock()
	if err == nil {
		inParallel(len(all), m.cfg.Parallelism, func(i int) { _ = all[i].lease.Release(ctx) })
	}
	return errors.Join(err, m.journal.Close())
}
