package node

import (
	"runtime/debug"
	"runtime/metrics"
	"sync"
	"sync/atomic"
	"time"

	"github.com/moonforge/moonforge/engine/call"
	"github.com/moonforge/moonforge/engine/protocol"
	"github.com/moonforge/moonforge/engine/room"
	"github.com/moonforge/moonforge/engine/script"
)

// memoryGuard applies memory_limit as Go's soft memory limit and sheds load above the high-water
// mark (memory_high_water of the limit): new logins and new rooms are refused with UNAVAILABLE
// until the heap falls below it again. Safe for concurrent use.
type memoryGuard struct {
	high   uint64 // bytes; 0: never sheds
	sample []metrics.Sample
	over   atomic.Bool
}

func newMemoryGuard(limit int64, highWater float64) *memoryGuard {
	g := &memoryGuard{sample: []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}}
	if limit > 0 {
		debug.SetMemoryLimit(limit)
		g.high = uint64(float64(limit) * highWater)
	}
	return g
}

// check samples the heap; called by the node's upkeep.
func (g *memoryGuard) check() (heap uint64, changed bool) {
	if g.high == 0 {
		return 0, false
	}
	metrics.Read(g.sample)
	heap = g.sample[0].Value.Uint64()
	over := heap > g.high
	return heap, g.over.Swap(over) != over
}

// Shedding reports whether new logins and rooms are refused now.
func (g *memoryGuard) Shedding() bool { return g.over.Load() }

// guardedRooms is the room service the scripts see: the room manager, with new rooms refused
// while memory sheds, a room closed when the first join after its creation fails (its creator
// could not get in: nobody would), and at most perPlayer open rooms whose first member was the
// same player (the rooms a player's requests made).
type guardedRooms struct {
	*room.Manager
	mem       *memoryGuard
	perPlayer int

	mu    sync.Mutex
	fresh map[string]time.Time // rooms created and not joined yet
	made  map[string][]string  // player → the rooms it was the first to join
}

func newGuardedRooms(m *room.Manager, mem *memoryGuard, perPlayer int) *guardedRooms {
	return &guardedRooms{Manager: m, mem: mem, perPlayer: perPlayer, fresh: map[string]time.Time{}, made: map[string][]string{}}
}

// freshFor is how long a created room counts as waiting for its creator's join.
const freshFor = time.Minute

func (g *guardedRooms) Create(roomType string, args any) (string, error) {
	if g.mem.Shedding() {
		return "", &protocol.CodeError{Code: protocol.Unavailable, Message: "the server is short of memory: no new room now", RetryAfterMs: 1000}
	}
	id, err := g.Manager.Create(roomType, args)
	if err == nil {
		now := time.Now()
		g.mu.Lock()
		for old, at := range g.fresh {
			if now.Sub(at) > freshFor {
				delete(g.fresh, old)
			}
		}
		g.fresh[id] = now
		g.mu.Unlock()
	}
	return id, err
}

func (g *guardedRooms) Join(c *call.Call) {
	g.mu.Lock()
	_, fresh := g.fresh[c.Target]
	delete(g.fresh, c.Target)
	var refused error
	if fresh {
		refused = g.claim(c.PlayerID, c.Target)
	}
	g.mu.Unlock()
	switch {
	case refused != nil:
		g.Manager.CloseIfEmpty(c.Target)
		c.Fail(refused)
	case fresh:
		// The creator's join: if it fails, nobody is in the room and it closes.
		inner := *c
		inner.Post = postFunc(func(a call.Answer) {
			if a.Err != nil {
				g.Manager.CloseIfEmpty(c.Target)
			}
			c.Post.Post(a)
		})
		g.Manager.Join(&inner)
	default:
		g.Manager.Join(c)
	}
}

// postFunc is a call.Poster made of a function.
type postFunc func(call.Answer)

func (f postFunc) Post(a call.Answer) { f(a) }

// claim counts a fresh room as made by player, unless the player already made perPlayer rooms
// that are still open; g.mu is held.
func (g *guardedRooms) claim(playerID, roomID string) error {
	open := g.made[playerID][:0]
	for _, id := range g.made[playerID] {
		if g.Manager.IsOpen(id) {
			open = append(open, id)
		}
	}
	if len(open) >= g.perPlayer {
		g.made[playerID] = open
		return protocol.Errorf(protocol.Unavailable, "a player may make at most %d open rooms (session.max_rooms_per_player)", g.perPlayer)
	}
	g.made[playerID] = append(open, roomID)
	return nil
}

var _ script.Rooms = (*guardedRooms)(nil)
