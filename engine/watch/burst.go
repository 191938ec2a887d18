package watch

import (
	"slices"
	"time"
)

// burst collects the paths changed since the last report and says when to report them. It is not
// safe for concurrent use.
type burst struct {
	debounce, maxDelay time.Duration
	paths              map[string]struct{}
	first              time.Time // when the first path of the burst arrived
}

// add records path, changed at now, and returns how long from now the burst is due: debounce
// after its last change, but no later than maxDelay after its first.
func (b *burst) add(path string, now time.Time) time.Duration {
	if len(b.paths) == 0 {
		b.paths = map[string]struct{}{}
		b.first = now
	}
	b.paths[path] = struct{}{}
	return max(min(b.debounce, b.first.Add(b.maxDelay).Sub(now)), 0)
}

// take returns the burst's paths, sorted, and starts a new burst.
func (b *burst) take() []string {
	paths := make([]string, 0, len(b.paths))
	for p := range b.paths {
		paths = append(paths, p)
	}
	b.paths = nil
	slices.Sort(paths)
	return paths
}
