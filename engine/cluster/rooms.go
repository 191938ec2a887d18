package cluster

import (
	"context"
	"time"

	"github.com/moonforge/moonforge/engine/bus"
	"github.com/moonforge/moonforge/engine/call"
	"github.com/moonforge/moonforge/engine/registry"
	"github.com/moonforge/moonforge/engine/script"
)

// Room records a room of this process opening or closing in the room directory (room.Directory).
func (c *Cluster) Room(room string, open bool) {
	c.queueWrite("the room directory", func(ctx context.Context) error {
		if open {
			return c.cfg.Registry.PlaceRoom(ctx, room, c.cfg.Node)
		}
		return c.cfg.Registry.RemoveRoom(ctx, room)
	})
}

// Member records a player entering or leaving a room of this process in the room directory
// (room.Directory). It never blocks: the writes are queued, in order (writeLoop).
func (c *Cluster) Member(player, room, roomType string, in bool) {
	c.queueWrite("the room directory", func(ctx context.Context) error {
		if in {
			return c.cfg.Registry.Seat(ctx, player, registry.Seat{Room: room, Type: roomType, Node: c.cfg.Node})
		}
		return c.cfg.Registry.Unseat(ctx, player, room)
	})
}

// write is one write to a directory in KV (seats, rooms, placements), run by writeLoop.
type write struct {
	what string // the directory, for the log
	do   func(ctx context.Context) error
}

// queueWrite queues a write for writeLoop; it never blocks (a full queue drops it, logged once).
func (c *Cluster) queueWrite(what string, do func(ctx context.Context) error) {
	select {
	case c.writes <- write{what, do}:
	default:
		c.logOnce("write-queue", "the queue of directory writes is full; a write to "+what+" was dropped", nil)
	}
}

// writeLoop runs the queued directory writes in order until ctx ends.
func (c *Cluster) writeLoop(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case w := <-c.writes:
			wctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			if err := w.do(wctx); err != nil {
				c.logOnce("write", "cannot write "+w.what, err)
			}
			cancel()
		}
	}
}

// Where returns the id and type of the player's room, in this process or on any node
// (router.Rooms).
func (c *Cluster) Where(player string) (roomID, roomType string) {
	if id, typ := c.deps.Rooms.Where(player); id != "" {
		return id, typ
	}
	if c.seats == nil {
		return "", ""
	}
	seat, _ := c.seats.Of(player)
	return seat.Room, seat.Type
}

// Seated forwards a presence message of a session held here (call.Notifier) to the node that holds
// the player's room, when the room directory names another node: its rooms run on_disconnect,
// on_reconnect, or on_leave with "offline" as they do for the sessions of their own process. One
// way (KIND_PRESENCE without a role); a node that cannot be reached loses it (logged once).
func (c *Cluster) Seated(p call.Presence) {
	if !c.started.Load() || c.seats == nil || p.Event == call.SessionMoved {
		return
	}
	if id, _ := c.deps.Rooms.Where(p.PlayerID); id != "" {
		return // a room of this process: its manager follows the sessions itself
	}
	seat, ok := c.seats.Of(p.PlayerID)
	if !ok || seat.Node == c.cfg.Node {
		return
	}
	e := &bus.Envelope{Kind: bus.Kind_KIND_PRESENCE, Source: c.cfg.Node, Target: seat.Node, Player: p.PlayerID, Session: p.SessionID, Event: p.Event, Reason: p.Reason}
	if err := c.nc.Publish(bus.NodeSubject(seat.Node), bus.Encode(e)); err != nil {
		c.logOnce("presence", "cannot forward a presence message to a room's node", err)
	}
}

// Attached records a drop or a resume of a session held here (call.Notifier) in the session
// directory, the entry's Detached flag, for mf.player.online on other nodes. It never blocks: the
// writes are queued, in order (writeLoop).
func (c *Cluster) Attached(p call.Presence) {
	if !c.started.Load() || c.cfg.Registry == nil || (p.Event != call.SessionDetached && p.Event != call.SessionResumed) {
		return
	}
	s := registry.Session{Proxy: c.cfg.Node, Session: p.SessionID, Detached: p.Event == call.SessionDetached}
	c.queueWrite("the session directory", func(ctx context.Context) error {
		return c.cfg.Registry.MarkSession(ctx, p.PlayerID, s)
	})
}

// SessionOf returns the session directory's entry of player, on any proxy. ok is false when the
// process keeps no session directory (a node alone).
func (c *Cluster) SessionOf(player string) (s registry.Session, ok bool) {
	if c.sessions == nil {
		return registry.Session{}, false
	}
	return c.sessions.Of(player)
}

// Players returns the script.Players of this node: a push goes to the player's session here, or
// through the session directory to the proxy that holds it.
func (c *Cluster) Players(local script.Players) script.Players { return players{c, local} }

type players struct {
	c     *Cluster
	local script.Players
}

func (p players) Push(player string, msgID uint16, payload []byte) bool {
	if p.local.Push(player, msgID, payload) {
		return true
	}
	if p.c.sessions == nil {
		return false
	}
	s, ok := p.c.sessions.Of(player)
	if !ok || s.Proxy == p.c.cfg.Node {
		return p.c.deliver(player, msgID, payload)
	}
	return p.c.pushTo(s, player, msgID, payload)
}

// PushAll pushes to the players here and asks every other proxy to push to its players; it
// returns how many sessions the pushes are for (the others' from the session directory).
func (p players) PushAll(msgID uint16, payload []byte) int {
	n := p.local.PushAll(msgID, payload)
	if p.c.view == nil {
		return n
	}
	others := map[string]bool{}
	for _, r := range p.c.view.Select(func(r registry.Record) bool { return r.Has("proxy") && r.ID != p.c.cfg.Node }) {
		if p.c.Push(r.ID, "", msgID, payload) == nil {
			others[r.ID] = true
		}
	}
	p.c.sessions.Each(func(_ string, s registry.Session) {
		if others[s.Proxy] {
			n++
		}
	})
	return n
}
