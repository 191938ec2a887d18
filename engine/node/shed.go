package node

import (
	"runtime/debug"
	"runtime/metrics"
	"sync"
	"sync/atomic"
	"time"

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
// while memory sheds, and a room closed when the first join after its creation fails (its
// creator could not get in: nobody would).
type guardedRooms struct {
	*room.Manager
	mem *memoryGuard

	mu    sync.Mutex
	fresh map[string]time.Time // rooms created and not joined yet
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

func (g *guardedRooms) Join(deadline time.Time, roomID, playerID string, args any) (any, error) {
	out, err := g.Manager.Join(deadline, roomID, playerID, args)
	g.mu.Lock()
	_, fresh := g.fresh[roomID]
	delete(g.fresh, roomID)
	g.mu.Unlock()
	if err != nil && fresh {
		g.Manager.CloseIfEmpty(roomID)
	}
	return out, err
}

var _ script.Rooms = (*guardedRooms)(nil)
