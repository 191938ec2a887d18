package script

import (
	"sync"
	"sync/atomic"

	"github.com/moonforge/moonforge/engine/route"
)

// Versions holds the bundle in force and tells actors when a newer one replaces it. Safe for
// concurrent use; Load is a single atomic read, for the hot path.
type Versions struct {
	current atomic.Pointer[Bundle]
	mu      sync.Mutex
	changed chan struct{}
}

// NewVersions starts with b in force.
func NewVersions(b *Bundle) *Versions {
	v := &Versions{changed: make(chan struct{})}
	v.current.Store(b)
	return v
}

// Load returns the bundle in force.
func (v *Versions) Load() *Bundle { return v.current.Load() }

// Current returns the bundle in force and a channel that is closed when it is replaced.
func (v *Versions) Current() (*Bundle, <-chan struct{}) {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.current.Load(), v.changed
}

// Set puts b in force and wakes everyone waiting on the previous channel.
func (v *Versions) Set(b *Bundle) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.current.Store(b)
	close(v.changed)
	v.changed = make(chan struct{})
}

// MsgName returns the full name of a message id in the schema in force; false if it declares none.
func (v *Versions) MsgName(id uint16) (string, bool) {
	b := v.current.Load()
	if b == nil || b.Schema == nil {
		return "", false
	}
	if m := b.Schema.ByID(id); m != nil {
		return m.FullName, true
	}
	return "", false
}

// Table returns the routing table of the version in force.
func (v *Versions) Table() *route.Table { return v.current.Load().Routes }
