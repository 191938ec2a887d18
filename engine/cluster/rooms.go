package cluster

import (
	"context"
	"time"

	"github.com/moonforge/moonforge/engine/registry"
)

type seatOp struct {
	player, room string
	in           bool
}

// Member records a player entering or leaving a room of this process in the room directory
// (room.Directory). It never blocks: the writes are queued, in order, for one writer goroutine.
func (c *Cluster) Member(player, room string, in bool) {
	select {
	case c.seatOps <- seatOp{player, room, in}:
	default:
		c.logOnce("seat-queue", "the room directory's queue is full; a seat was not recorded", nil)
	}
}

func (c *Cluster) writeSeats(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case op := <-c.seatOps:
			wctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			var err error
			if op.in {
				err = c.cfg.Registry.Seat(wctx, op.player, registry.Seat{Room: op.room, Node: c.cfg.Node})
			} else {
				err = c.cfg.Registry.Unseat(wctx, op.player, op.room)
			}
			cancel()
			if err != nil {
				c.logOnce("seat-write", "cannot write the room directory", err)
			}
		}
	}
}

// Of returns the id of the player's room, in this process or on any node (router.Rooms).
func (c *Cluster) Of(player string) string {
	if id := c.deps.Rooms.Of(player); id != "" {
		return id
	}
	if c.seats == nil {
		return ""
	}
	seat, _ := c.seats.Of(player)
	return seat.Room
}
