// Package route is the routing table of a script version: which role (or room) handles each
// client message, and which role runs each custom login method. A Table is plain data, built from
// what the scripts declared and serialisable as JSON, so a node that does not run a role's scripts
// (a proxy) can route to it. Hash places a key on a pool's actors the same way in every process.
package route

import "sync/atomic"

// Route says where a client message is handled: by the sender's room when it is of one of Rooms,
// otherwise by Role's handler (none: the sender is told it is in no such room).
type Route struct {
	Role  string   `json:"role,omitempty"`  // role whose VMs run the mf.handle handler; "" if none
	Key   string   `json:"key,omitempty"`   // partition key: "" spreads players over the role's actors, a name pins one actor
	Rooms []string `json:"rooms,omitempty"` // room types that declare the message (messages option), sorted
}

// InRooms reports whether rooms of type roomType take the message.
func (r Route) InRooms(roomType string) bool {
	for _, t := range r.Rooms {
		if t == roomType {
			return true
		}
	}
	return false
}

// Table is the routing table of one script version. Immutable once built (its first Message
// lookup indexes Messages); safe for concurrent use.
type Table struct {
	Version  string            `json:"version"`  // the script version it was built from
	Messages map[uint16]Route  `json:"messages"` // by msg id
	Logins   map[string]string `json:"logins"`   // custom login method → role
	Calls    map[string]string `json:"calls"`    // mf.serve name → role
	// SessionEnd: the roles that registered mf.on_session_end → its partition key ("": the player).
	SessionEnd map[string]string `json:"session_end,omitempty"`

	byID atomic.Pointer[[]*Route] // Messages by id, up to the highest: a request's lookup is an index
}

// Message returns the route of client message id; false if the table has none.
func (t *Table) Message(id uint16) (Route, bool) {
	byID := t.byID.Load()
	if byID == nil {
		byID = t.index()
	}
	if int(id) >= len(*byID) || (*byID)[id] == nil {
		return Route{}, false
	}
	return *(*byID)[id], true
}

// index builds the table's index by id. Goroutines that race build equal ones; one is kept.
func (t *Table) index() *[]*Route {
	highest := -1
	for id := range t.Messages {
		highest = max(highest, int(id))
	}
	byID := make([]*Route, highest+1)
	for id, r := range t.Messages {
		byID[id] = &r
	}
	t.byID.CompareAndSwap(nil, &byID)
	return t.byID.Load()
}

// New returns an empty table for a version.
func New(version string) *Table {
	return &Table{Version: version, Messages: map[uint16]Route{}, Logins: map[string]string{}, Calls: map[string]string{}}
}

// Roles returns the roles the table sends work to (handlers, login methods, session-end hooks),
// without rooms.
func (t *Table) Roles() map[string]bool {
	roles := map[string]bool{}
	for _, r := range t.Messages {
		if r.Role != "" {
			roles[r.Role] = true
		}
	}
	for role := range t.SessionEnd {
		roles[role] = true
	}
	for _, role := range t.Logins {
		roles[role] = true
	}
	for _, role := range t.Calls {
		roles[role] = true
	}
	return roles
}

// Hash is the 64-bit FNV-1a hash of key. It has no per-process seed: every node computes the
// same value, so a placement can be reproduced on another node.
func Hash(key string) uint64 {
	const (
		offset = 14695981039346656037
		prime  = 1099511628211
	)
	h := uint64(offset)
	for i := 0; i < len(key); i++ {
		h ^= uint64(key[i])
		h *= prime
	}
	return h
}

// Pick returns the index in [0, n) that key maps to among n actors (n > 0).
func Pick(key string, n int) int { return PickHash(Hash(key), n) }

// PickHash is Pick of a key whose Hash is h.
func PickHash(h uint64, n int) int { return int(h % uint64(n)) }
