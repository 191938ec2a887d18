// Package balance places new work on one of a role's nodes. A Policy is chosen per role in
// config (cluster.balance): round robin, weighted round robin, least load, consistent hashing on
// the player id. Policies see the candidates as plain Candidates (from the registry) and keep
// only small counters of their own.
package balance

import (
	"fmt"
	"math"
	"sync"
	"sync/atomic"

	"github.com/moonforge/moonforge/engine/route"
)

// Candidate is a node a policy may pick.
type Candidate struct {
	ID     string
	Weight int // >= 1
	Load   int // reported work (sessions and queued tasks; connections for a proxy) and the keys placed on it
}

// Policy picks one candidate for key (a player id). Candidates are sorted by ID and not empty.
// Implementations are safe for concurrent use.
type Policy interface {
	Pick(key string, cands []Candidate) string
}

// New returns the policy named in config: round_robin, weighted, least_load or hash.
func New(name string) (Policy, error) {
	switch name {
	case "", "round_robin":
		return &RoundRobin{}, nil
	case "weighted":
		return &Weighted{}, nil
	case "least_load":
		return NewLeastLoad(), nil
	case "hash":
		return NewHash(), nil
	}
	return nil, fmt.Errorf("balance: unknown policy %q", name)
}

// RoundRobin takes the candidates in turn.
type RoundRobin struct{ n atomic.Uint64 }

// Pick implements Policy.
func (p *RoundRobin) Pick(_ string, c []Candidate) string {
	return c[(p.n.Add(1)-1)%uint64(len(c))].ID
}

// Weighted takes the candidates in turn, each as many times per round as its weight.
type Weighted struct{ n atomic.Uint64 }

// Pick implements Policy.
func (p *Weighted) Pick(_ string, c []Candidate) string {
	total := 0
	for _, x := range c {
		total += max(x.Weight, 1)
	}
	i := int((p.n.Add(1) - 1) % uint64(total))
	for _, x := range c {
		if i < max(x.Weight, 1) {
			return x.ID
		}
		i -= max(x.Weight, 1)
	}
	return c[len(c)-1].ID
}

// LeastLoad picks the candidate with the least load: its last report plus what this policy
// placed on it since that report (reports come once a heartbeat; without the count every pick
// between two reports would go to the same node).
type LeastLoad struct {
	mu     sync.Mutex
	placed map[string]int // since the last report
	seen   map[string]int // the last report
}

// NewLeastLoad returns a LeastLoad policy.
func NewLeastLoad() *LeastLoad {
	return &LeastLoad{placed: map[string]int{}, seen: map[string]int{}}
}

// Pick implements Policy.
func (p *LeastLoad) Pick(_ string, c []Candidate) string {
	p.mu.Lock()
	defer p.mu.Unlock()
	best, bestLoad := "", 0
	for _, x := range c {
		if last, ok := p.seen[x.ID]; !ok || last != x.Load {
			p.seen[x.ID], p.placed[x.ID] = x.Load, 0
		}
		load := x.Load + p.placed[x.ID]
		if best == "" || load < bestLoad {
			best, bestLoad = x.ID, load
		}
	}
	p.placed[best]++
	return best
}

// Hash places a key by consistent hashing (rendezvous, or highest random weight): every candidate
// scores the key, weighted, and the best score wins. Adding a node moves only the keys it now wins
// (its share); removing one moves only the keys it held. The same key goes to the same node on
// every proxy, so it is also the affinity a player keeps across proxies.
type Hash struct{}

// NewHash returns a consistent hashing policy.
func NewHash() *Hash { return &Hash{} }

// Pick implements Policy.
func (p *Hash) Pick(key string, c []Candidate) string {
	best, bestScore := "", math.Inf(-1)
	k := route.Hash(key)
	for _, x := range c {
		// u in (0, 1) from the pair; -w/ln(u) gives each node a share proportional to its weight.
		u := (float64(mix(k^mix(route.Hash(x.ID)))>>11) + 0.5) / (1 << 53)
		score := -float64(max(x.Weight, 1)) / math.Log(u)
		if score > bestScore {
			best, bestScore = x.ID, score
		}
	}
	return best
}

// mix spreads FNV's output over the ring (splitmix64's finaliser): FNV-1a of similar short
// strings clusters in the high bits.
func mix(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}
