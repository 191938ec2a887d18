package registry

import (
	"context"
	"encoding/json"
	"errors"
	"regexp"
	"strings"

	"github.com/nats-io/nats.go/jetstream"
)

// Placement is where a player's work for a role goes: the node a balancing policy placed it on.
// Its key in PlacementsBucket is PlacementKey(role, key).
type Placement struct {
	Node string `json:"node"`
}

var placementKey = regexp.MustCompile(`^[-_=a-zA-Z0-9]{1,128}$`)

// PlacementKey returns the bucket key of a placement of key (a player id, or a handler's
// partition key) for role, ok false when key cannot be a bucket key (it is then placed per node).
func PlacementKey(role, key string) (string, bool) {
	if !placementKey.MatchString(key) || !placementKey.MatchString(role) {
		return "", false
	}
	return role + "/" + key, true
}

// Place records that the placement k goes to node, by compare-and-set, and returns the node it
// goes to: node, or the node of a placement written meanwhile that usable accepts (another proxy
// placed the same player first). An entry naming a node that usable refuses (one that left the
// registry) is replaced.
func (r *Registry) Place(ctx context.Context, k, node string, usable func(node string) bool) (string, error) {
	b, _ := json.Marshal(Placement{Node: node})
	for {
		e, err := r.placements.Get(ctx, k)
		switch {
		case errors.Is(err, jetstream.ErrKeyNotFound):
			if _, err := r.placements.Create(ctx, k, b); err == nil {
				return node, nil
			} else if !errors.Is(err, jetstream.ErrKeyExists) {
				return "", err
			}
		case err != nil:
			return "", err
		default:
			var cur Placement
			if json.Unmarshal(e.Value(), &cur) == nil && (cur.Node == node || usable(cur.Node)) {
				return cur.Node, nil
			}
			if _, err := r.placements.Update(ctx, k, b, e.Revision()); err == nil {
				return node, nil
			} else if !errors.Is(err, jetstream.ErrKeyExists) {
				return "", err
			}
		}
		if ctx.Err() != nil {
			return "", ctx.Err()
		}
	}
}

// Unplace removes the placement k if it still names node.
func (r *Registry) Unplace(ctx context.Context, k, node string) error {
	e, err := r.placements.Get(ctx, k)
	if err != nil {
		return nil
	}
	var cur Placement
	if json.Unmarshal(e.Value(), &cur) != nil || cur.Node != node {
		return nil
	}
	return r.placements.Delete(ctx, k, jetstream.LastRevision(e.Revision()))
}

// WatchPlacements follows the placements until ctx ends. Its Count of PlacedOn(role, node) is how
// many keys of role are placed on node.
func (r *Registry) WatchPlacements(ctx context.Context) (*Live[Placement], error) {
	return watchLive(ctx, r.placements, "", ">", func(k string, p Placement) string {
		role, _, _ := strings.Cut(k, "/")
		return PlacedOn(role, p.Node)
	})
}

// PlacedOn is the group of the placements of role on node (Live.Count).
func PlacedOn(role, node string) string { return role + "/" + node }
