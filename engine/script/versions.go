package script

import "sync"

// Versions holds the bundle in force and tells actors when a newer one replaces it. Safe for
// concurrent use.
type Versions struct {
	mu      sync.Mutex
	current *Bundle
	changed chan struct{}
}

// NewVersions starts with b in force.
func NewVersions(b *Bundle) *Versions {
	return &Versions{current: b, changed: make(chan struct{})}
}

// Current returns the bundle in force and a channel that is closed when it is replaced.
func (v *Versions) Current() (*Bundle, <-chan struct{}) {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.current, v.changed
}

// Set puts b in force and wakes everyone waiting on the previous channel.
func (v *Versions) Set(b *Bundle) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.current = b
	close(v.changed)
	v.changed = make(chan struct{})
}
