package room

import "github.com/moonforge/moonforge/engine/script"

// CloseIfEmpty closes a room that has no member, such as one whose creator's join failed, so that
// it does not tick on for nobody. It returns at once; the room closes on its own goroutine.
func (m *Manager) CloseIfEmpty(roomID string) {
	m.mu.Lock()
	r := m.rooms[roomID]
	m.mu.Unlock()
	if r == nil {
		return
	}
	r.actor.Send(func(vm *script.VM) {
		m.mu.Lock()
		empty := len(r.members) == 0
		m.mu.Unlock()
		if empty {
			r.closing = true
		}
		r.settle(vm)
	})
}

// IsOpen reports whether a room exists and has not closed.
func (m *Manager) IsOpen(roomID string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	r := m.rooms[roomID]
	return r != nil && !r.closed
}
