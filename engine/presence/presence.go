// Package presence keeps which players have a live session, built from nothing but the sessions'
// call.Presence messages: a node can follow the players of other nodes from the same messages
// carried by a bus.
package presence

import (
	"sync"

	"github.com/moonforge/moonforge/engine/call"
)

// Directory is the presence of players: whether each has a live session (bound to a connection,
// or awaiting a resume). It implements call.Notifier. Safe for concurrent use; nothing blocks.
type Directory struct {
	mu      sync.RWMutex
	players map[string]state
}

type state struct {
	session   string
	connected bool
}

// NewDirectory returns a directory in which nobody is online.
func NewDirectory() *Directory { return &Directory{players: map[string]state{}} }

// Notify applies a presence message. A message about a session other than the player's current
// one (the end of a replaced session, which comes after its successor started) changes nothing.
func (d *Directory) Notify(p call.Presence) {
	d.mu.Lock()
	defer d.mu.Unlock()
	cur, known := d.players[p.PlayerID]
	if p.Event == call.SessionStarted {
		d.players[p.PlayerID] = state{session: p.SessionID, connected: true}
		return
	}
	if !known || cur.session != p.SessionID {
		return
	}
	switch p.Event {
	case call.SessionDetached:
		d.players[p.PlayerID] = state{session: p.SessionID}
	case call.SessionResumed:
		d.players[p.PlayerID] = state{session: p.SessionID, connected: true}
	case call.SessionEnded:
		delete(d.players, p.PlayerID)
	}
}

// Online reports whether the player has a live session, and whether a connection is bound to it
// now (false while it awaits a resume).
func (d *Directory) Online(playerID string) (online, connected bool) {
	d.mu.RLock()
	s, ok := d.players[playerID]
	d.mu.RUnlock()
	return ok, s.connected
}
