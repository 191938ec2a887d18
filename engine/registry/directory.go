package registry

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Session is a player's entry in the session directory: the proxy that holds its session, and
// whether the session's connection dropped and it awaits a resume.
type Session struct {
	Proxy    string `json:"proxy"`
	Session  string `json:"session"`
	Detached bool   `json:"detached,omitempty"`
}

// Is reports whether s and o name the same session on the same proxy, attached or not.
func (s Session) Is(o Session) bool { return s.Proxy == o.Proxy && s.Session == o.Session }

// ClaimSession makes s the player's session and returns the one it replaced (ok false if none).
// Compare-and-set: of two racing claims each replaces exactly what was there when it wrote, so
// every displaced session is reported to exactly one claimer and one session is left.
func (r *Registry) ClaimSession(ctx context.Context, player string, s Session) (prev Session, ok bool, err error) {
	b, _ := json.Marshal(s)
	for {
		e, err := r.sessions.Get(ctx, player)
		switch {
		case errors.Is(err, jetstream.ErrKeyNotFound):
			if _, err := r.sessions.Create(ctx, player, b); err == nil {
				return Session{}, false, nil
			} else if !errors.Is(err, jetstream.ErrKeyExists) {
				return Session{}, false, err
			}
		case err != nil:
			return Session{}, false, err
		default:
			if _, err := r.sessions.Update(ctx, player, b, e.Revision()); err == nil {
				if json.Unmarshal(e.Value(), &prev) != nil {
					return Session{}, false, nil
				}
				return prev, true, nil
			} else if !errors.Is(err, jetstream.ErrKeyExists) {
				return Session{}, false, err
			}
		}
		if ctx.Err() != nil {
			return Session{}, false, ctx.Err()
		}
	}
}

// SessionOf returns the player's session entry.
func (r *Registry) SessionOf(ctx context.Context, player string) (Session, bool, error) {
	e, err := r.sessions.Get(ctx, player)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return Session{}, false, nil
	}
	if err != nil {
		return Session{}, false, err
	}
	var s Session
	if err := json.Unmarshal(e.Value(), &s); err != nil {
		return Session{}, false, fmt.Errorf("registry: session of %s: %w", player, err)
	}
	return s, true, nil
}

// changeSession calls write with the player's entry and its revision while the entry names s's
// session (Session.Is), and reads it again when write's compare-and-set finds that the entry
// changed meanwhile (its Detached flag, if it still names s). found is false when the entry is
// absent or names another session; write is then not called.
func (r *Registry) changeSession(ctx context.Context, player string, s Session, write func(cur Session, revision uint64) error) (found bool, err error) {
	for {
		e, err := r.sessions.Get(ctx, player)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			return false, nil
		}
		if err != nil {
			return false, err
		}
		var cur Session
		if json.Unmarshal(e.Value(), &cur) != nil || !cur.Is(s) {
			return false, nil
		}
		err = write(cur, e.Revision())
		if !errors.Is(err, jetstream.ErrKeyExists) || ctx.Err() != nil {
			return true, err
		}
	}
}

// ReleaseSession removes the player's entry if it is still s (a newer login's entry stays).
func (r *Registry) ReleaseSession(ctx context.Context, player string, s Session) error {
	_, err := r.changeSession(ctx, player, s, func(_ Session, revision uint64) error {
		return r.sessions.Delete(ctx, player, jetstream.LastRevision(revision))
	})
	return err
}

// MarkSession sets the Detached flag of the player's entry to s.Detached if the entry is still s's
// session (a newer login's or a moved session's entry stays as it is).
func (r *Registry) MarkSession(ctx context.Context, player string, s Session) error {
	b, _ := json.Marshal(s)
	_, err := r.changeSession(ctx, player, s, func(cur Session, revision uint64) error {
		if cur.Detached == s.Detached {
			return nil
		}
		_, err := r.sessions.Update(ctx, player, b, revision)
		return err
	})
	return err
}

// PlaceRoom records that room lives on node.
func (r *Registry) PlaceRoom(ctx context.Context, room, node string) error {
	_, err := r.rooms.PutString(ctx, "room."+room, node)
	return err
}

// RoomNode returns the node that holds room, or "".
func (r *Registry) RoomNode(ctx context.Context, room string) (string, error) {
	e, err := r.rooms.Get(ctx, "room."+room)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	return string(e.Value()), nil
}

// RemoveRoom forgets room.
func (r *Registry) RemoveRoom(ctx context.Context, room string) error {
	return r.rooms.Delete(ctx, "room."+room)
}

// Seat is where a player in a room plays: the room and the node that holds it.
type Seat struct {
	Room string `json:"room"`
	Type string `json:"type"` // the room's type
	Node string `json:"node"`
}

// Seat records that player is in room on node.
func (r *Registry) Seat(ctx context.Context, player string, s Seat) error {
	b, _ := json.Marshal(s)
	_, err := r.rooms.Put(ctx, "player."+player, b)
	return err
}

// Unseat removes player's seat if it is still in room.
func (r *Registry) Unseat(ctx context.Context, player, room string) error {
	e, err := r.rooms.Get(ctx, "player."+player)
	if err != nil {
		return nil
	}
	var s Seat
	if json.Unmarshal(e.Value(), &s) != nil || s.Room != room {
		return nil
	}
	return r.rooms.Delete(ctx, "player."+player, jetstream.LastRevision(e.Revision()))
}

// Live is a live copy of a directory's entries, kept by a bucket watcher, with the number of
// entries in each group when it has a grouping. Safe for concurrent use.
type Live[T any] struct {
	mu      sync.RWMutex
	entries map[string]T
	group   func(key string, v T) string // nil: no counts
	counts  map[string]int               // entries by group
}

// watchLive follows the keys of kv under prefix (prefix+tail: "*" one token, ">" any) until ctx
// ends; group, if not nil, names the group each entry is counted in (Live.Count).
func watchLive[T any](ctx context.Context, kv jetstream.KeyValue, prefix, tail string, group func(key string, v T) string) (*Live[T], error) {
	w, err := kv.Watch(ctx, prefix+tail)
	if err != nil {
		return nil, err
	}
	l := &Live[T]{entries: map[string]T{}, group: group, counts: map[string]int{}}
	ready := make(chan struct{})
	go func() {
		defer func() { _ = w.Stop() }()
		for e := range w.Updates() {
			if e == nil {
				close(ready)
				continue
			}
			key := strings.TrimPrefix(e.Key(), prefix)
			var v T
			l.mu.Lock()
			if old, had := l.entries[key]; had && l.group != nil {
				l.counts[l.group(key, old)]--
			}
			if e.Operation() == jetstream.KeyValuePut && json.Unmarshal(e.Value(), &v) == nil {
				l.entries[key] = v
				if l.group != nil {
					l.counts[l.group(key, v)]++
				}
			} else {
				delete(l.entries, key)
			}
			l.mu.Unlock()
		}
	}()
	select {
	case <-ready:
		return l, nil
	case <-time.After(5 * time.Second):
		return nil, fmt.Errorf("registry: the watcher of %s sent no initial state within 5s", prefix+tail)
	}
}

// Of returns the entry of key.
func (l *Live[T]) Of(key string) (T, bool) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	v, ok := l.entries[key]
	return v, ok
}

// Count returns how many entries are in group (0 without a grouping).
func (l *Live[T]) Count(group string) int {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.counts[group]
}

// Each calls fn for every entry, under a read lock.
func (l *Live[T]) Each(fn func(key string, v T)) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	for k, v := range l.entries {
		fn(k, v)
	}
}

// WatchSeats follows the players' seats until ctx ends.
func (r *Registry) WatchSeats(ctx context.Context) (*Live[Seat], error) {
	return watchLive[Seat](ctx, r.rooms, "player.", "*", nil)
}

// WatchSessions follows the session directory until ctx ends.
func (r *Registry) WatchSessions(ctx context.Context) (*Live[Session], error) {
	return watchLive[Session](ctx, r.sessions, "", "*", nil)
}

// ErrMoved is MoveSession's answer when the player's entry is no longer the one to move.
var ErrMoved = errors.New("registry: the player's session entry changed")

// MoveSession replaces the player's entry from with to, by compare-and-set: ErrMoved if the entry
// is not from (a login elsewhere replaced it meanwhile).
func (r *Registry) MoveSession(ctx context.Context, player string, from, to Session) error {
	b, _ := json.Marshal(to)
	found, err := r.changeSession(ctx, player, from, func(_ Session, revision uint64) error {
		_, err := r.sessions.Update(ctx, player, b, revision)
		return err
	})
	if err == nil && !found {
		return ErrMoved
	}
	return err
}
