// Package registry is the cluster's directory in JetStream KV buckets, so that it outlives any one
// process (a master that stops loses nothing): node records (refreshed every heartbeat, gone
// NodeTTL after their writer stops, every watcher told at once), the session directory (player ->
// proxy, claimed by compare-and-set), the room directory (room -> game node) and the placements
// (role and player -> node, chosen once by compare-and-set).
package registry

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Bucket names.
const (
	NodesBucket    = "mf_nodes"
	SessionsBucket = "mf_sessions"
	RoomsBucket    = "mf_rooms"
	// PlacementsBucket keeps where balancing placed each player per role, so that a player keeps
	// its node across proxies whatever the policy. An entry lives PlacementTTL after its write.
	PlacementsBucket = "mf_placements"
	PlacementTTL     = 24 * time.Hour
)

// Node states.
const (
	StateUp       = "up"
	StateDraining = "draining" // takes no new players or rooms; finishes what it has
)

// Load is what a node reports about its work.
type Load struct {
	Sessions    int     `json:"sessions"`
	Rooms       int     `json:"rooms"`
	Mailbox     int     `json:"mailbox"`     // tasks waiting in its actors' mailboxes
	CPU         float64 `json:"cpu"`         // process CPU seconds per second since the last record
	Connections int     `json:"connections"` // client connections (a proxy)
}

// Record is a node's entry in the registry.
type Record struct {
	ID       string    `json:"id"`
	Roles    []string  `json:"roles"`
	Address  string    `json:"address,omitempty"` // clients' address of a proxy; admin address otherwise
	Admin    string    `json:"admin,omitempty"`
	Weight   int       `json:"weight"`
	State    string    `json:"state"`
	Version  string    `json:"version"`            // script version running
	Handles  []uint16  `json:"handles,omitempty"`  // client msg ids its Lua handles
	Calls    []string  `json:"calls,omitempty"`    // mf.call names its Lua serves
	Problems []string  `json:"problems,omitempty"` // the last reload's errors (file:line: message)
	Load     Load      `json:"load"`
	Started  time.Time `json:"started"`
}

// Has reports whether r runs role.
func (r Record) Has(role string) bool { return slices.Contains(r.Roles, role) }

// Handles reports whether r's scripts handle msg id.
func (r Record) HandlesMsg(id uint16) bool { return slices.Contains(r.Handles, id) }

// Config configures Open.
type Config struct {
	Replicas int           // copies of each bucket (1, or 3 on three clustered servers)
	NodeTTL  time.Duration // a node record not refreshed for this long disappears
}

// Registry reads and writes the buckets. Safe for concurrent use.
type Registry struct {
	nodes      jetstream.KeyValue
	sessions   jetstream.KeyValue
	rooms      jetstream.KeyValue
	placements jetstream.KeyValue
}

// Open creates the buckets if needed (every node may; the first wins) and returns the registry.
// While JetStream is not ready (a clustered server electing its leader) it retries until ctx ends.
func Open(ctx context.Context, js jetstream.JetStream, cfg Config) (*Registry, error) {
	for {
		attempt, cancel := context.WithTimeout(ctx, 2*time.Second) // an API request may go unanswered meanwhile
		r, err := create(attempt, js, cfg)
		cancel()
		if err == nil || ctx.Err() != nil {
			return r, err
		}
		select {
		case <-ctx.Done():
			return nil, err
		case <-time.After(250 * time.Millisecond):
		}
	}
}

func create(ctx context.Context, js jetstream.JetStream, cfg Config) (*Registry, error) {
	r := &Registry{}
	for _, b := range []struct {
		kv  *jetstream.KeyValue
		cfg jetstream.KeyValueConfig
	}{
		{&r.nodes, jetstream.KeyValueConfig{Bucket: NodesBucket, Description: "Moonforge node records", TTL: cfg.NodeTTL,
			LimitMarkerTTL: time.Minute, Storage: jetstream.MemoryStorage}},
		{&r.sessions, jetstream.KeyValueConfig{Bucket: SessionsBucket, Description: "Moonforge sessions: player -> proxy"}},
		{&r.rooms, jetstream.KeyValueConfig{Bucket: RoomsBucket, Description: "Moonforge rooms: room -> game node"}},
		{&r.placements, jetstream.KeyValueConfig{Bucket: PlacementsBucket, Description: "Moonforge placements: role/player -> node",
			TTL: PlacementTTL, LimitMarkerTTL: time.Minute}},
	} {
		b.cfg.Replicas = cfg.Replicas
		// A node configured for fewer copies (a proxy beside three masters) never scales a
		// replicated bucket down: that would leave it on one server, lost with that server.
		if s, err := js.Stream(ctx, "KV_"+b.cfg.Bucket); err == nil {
			if info, err := s.Info(ctx); err == nil && info.Config.Replicas > b.cfg.Replicas {
				b.cfg.Replicas = info.Config.Replicas
			}
		}
		kv, err := js.CreateOrUpdateKeyValue(ctx, b.cfg)
		if err != nil {
			return nil, fmt.Errorf("registry: bucket %s: %w", b.cfg.Bucket, err)
		}
		*b.kv = kv
	}
	return r, nil
}

// Bind returns the registry of buckets that exist already (a tool that reads the cluster).
func Bind(ctx context.Context, js jetstream.JetStream) (*Registry, error) {
	r := &Registry{}
	var err error
	for _, b := range []struct {
		name string
		kv   *jetstream.KeyValue
	}{{NodesBucket, &r.nodes}, {SessionsBucket, &r.sessions}, {RoomsBucket, &r.rooms}} {
		if *b.kv, err = js.KeyValue(ctx, b.name); err != nil {
			return nil, fmt.Errorf("registry: bucket %s: %w (is a Moonforge cluster on this bus?)", b.name, err)
		}
	}
	return r, nil
}

// Announce writes rec; it lives NodeTTL unless written again.
func (r *Registry) Announce(ctx context.Context, rec Record) error {
	b, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	_, err = r.nodes.Put(ctx, rec.ID, b)
	return err
}

// Keep announces rec() every period until ctx ends, then removes the record. Failures are passed
// to onErr (the record expires if they last).
func (r *Registry) Keep(ctx context.Context, period time.Duration, rec func() Record, onErr func(error)) {
	t := time.NewTicker(period)
	defer t.Stop()
	for {
		c, cancel := context.WithTimeout(context.Background(), period)
		if err := r.Announce(c, rec()); err != nil && onErr != nil {
			onErr(err)
		}
		cancel()
		select {
		case <-ctx.Done():
			c, cancel := context.WithTimeout(context.Background(), time.Second)
			_ = r.nodes.Delete(c, rec().ID)
			cancel()
			return
		case <-t.C:
		}
	}
}

// Nodes returns every live record.
func (r *Registry) Nodes(ctx context.Context) ([]Record, error) {
	lister, err := r.nodes.ListKeys(ctx)
	if err != nil {
		return nil, err
	}
	var out []Record
	for k := range lister.Keys() {
		e, err := r.nodes.Get(ctx, k)
		if err != nil {
			continue // expired meanwhile
		}
		var rec Record
		if json.Unmarshal(e.Value(), &rec) == nil {
			out = append(out, rec)
		}
	}
	slices.SortFunc(out, func(a, b Record) int { return compare(a.ID, b.ID) })
	return out, nil
}

func compare(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// View is a live copy of the node records, kept by a bucket watcher. Safe for concurrent use.
type View struct {
	mu      sync.RWMutex
	nodes   map[string]Record
	version uint64 // bumped on every change
	ready   chan struct{}
	changed func(id string, rec Record, gone bool)
}

// Watch starts a View that follows the bucket until ctx ends. changed (may be nil) is called on
// the watcher's goroutine for every record written or gone.
func (r *Registry) Watch(ctx context.Context, changed func(id string, rec Record, gone bool)) (*View, error) {
	w, err := r.nodes.WatchAll(ctx)
	if err != nil {
		return nil, err
	}
	v := &View{nodes: map[string]Record{}, ready: make(chan struct{}), changed: changed}
	go func() {
		defer func() { _ = w.Stop() }()
		for {
			select {
			case <-ctx.Done():
				return
			case e, ok := <-w.Updates():
				if !ok {
					return
				}
				v.apply(e)
			}
		}
	}()
	select {
	case <-v.ready:
	case <-time.After(5 * time.Second):
		return nil, errors.New("registry: the watcher sent no initial state within 5s")
	}
	return v, nil
}

func (v *View) apply(e jetstream.KeyValueEntry) {
	if e == nil {
		select {
		case <-v.ready:
		default:
			close(v.ready)
		}
		return
	}
	var rec Record
	gone := e.Operation() != jetstream.KeyValuePut
	if !gone && json.Unmarshal(e.Value(), &rec) != nil {
		return
	}
	v.mu.Lock()
	if gone {
		delete(v.nodes, e.Key())
	} else {
		v.nodes[e.Key()] = rec
	}
	v.version++
	v.mu.Unlock()
	if v.changed != nil {
		v.changed(e.Key(), rec, gone)
	}
}

// Get returns the record of a node.
func (v *View) Get(id string) (Record, bool) {
	v.mu.RLock()
	defer v.mu.RUnlock()
	r, ok := v.nodes[id]
	return r, ok
}

// Select returns the records that keep returns true for, sorted by id.
func (v *View) Select(keep func(Record) bool) []Record {
	v.mu.RLock()
	out := make([]Record, 0, len(v.nodes))
	for _, id := range slices.Sorted(maps.Keys(v.nodes)) {
		if r := v.nodes[id]; keep(r) {
			out = append(out, r)
		}
	}
	v.mu.RUnlock()
	return out
}

// Version changes whenever a record does: a cache over Select can key on it.
func (v *View) Version() uint64 {
	v.mu.RLock()
	defer v.mu.RUnlock()
	return v.version
}
