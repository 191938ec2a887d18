package balance

import (
	"fmt"
	"math"
	"testing"
)

const picks = 10000

func nodes(weights ...int) []Candidate {
	out := make([]Candidate, len(weights))
	for i, w := range weights {
		out[i] = Candidate{ID: fmt.Sprintf("n%d", i), Weight: w}
	}
	return out
}

func count(p Policy, c []Candidate) map[string]int {
	got := map[string]int{}
	for i := range picks {
		got[p.Pick(fmt.Sprintf("player-%d", i), c)]++
	}
	return got
}

// within checks that every node got its ideal share of picks within 10%.
func within(t *testing.T, name string, got map[string]int, c []Candidate, share func(Candidate) float64) {
	t.Helper()
	for _, x := range c {
		ideal := share(x) * picks
		if math.Abs(float64(got[x.ID])-ideal) > 0.1*ideal {
			t.Errorf("%s: %s got %d, ideal %.0f", name, x.ID, got[x.ID], ideal)
		}
	}
}

func TestDistributions(t *testing.T) {
	even := nodes(1, 1, 1, 1)
	weighted := nodes(1, 2, 3, 4)
	wsum := 10.0
	for _, name := range []string{"round_robin", "least_load", "hash"} {
		p, err := New(name)
		if err != nil {
			t.Fatal(err)
		}
		within(t, name, count(p, even), even, func(Candidate) float64 { return 0.25 })
	}
	within(t, "weighted", count(&Weighted{}, weighted), weighted, func(x Candidate) float64 { return float64(x.Weight) / wsum })
	within(t, "hash weighted", count(NewHash(), weighted), weighted, func(x Candidate) float64 { return float64(x.Weight) / wsum })
	if _, err := New("random"); err == nil {
		t.Fatal("unknown policy accepted")
	}
}

// Least load fills the least loaded nodes first, then spreads evenly.
func TestLeastLoadFillsTheEmptiest(t *testing.T) {
	c := []Candidate{{ID: "a", Load: 1000}, {ID: "b", Load: 0}, {ID: "c", Load: 500}}
	p := NewLeastLoad()
	got := map[string]int{}
	for range 1500 {
		got[p.Pick("", c)]++
	}
	// 1500 picks level the loads at 1000: b gets 1000, c 500, a none.
	if got["a"] > 1 || math.Abs(float64(got["b"]-1000)) > 2 || math.Abs(float64(got["c"]-500)) > 2 {
		t.Fatalf("least load: %v", got)
	}
	// A new report resets what the policy counted for that node.
	c[1].Load = 10
	if p.Pick("", c) != "b" {
		t.Fatal("a fresh report of no load should win")
	}
}

// Under consistent hashing, adding a node moves only the keys it takes over (about 1/(n+1) of
// them), and removing one moves only the keys it held.
func TestHashMovesOnlyItsShare(t *testing.T) {
	p := NewHash()
	four := nodes(1, 1, 1, 1)
	five := append(nodes(1, 1, 1, 1), Candidate{ID: "n4", Weight: 1})
	before := map[string]string{}
	for i := range picks {
		k := fmt.Sprintf("player-%d", i)
		before[k] = p.Pick(k, four)
	}
	moved := 0
	for k, was := range before {
		now := p.Pick(k, five)
		if now != was {
			moved++
			if now != "n4" {
				t.Fatalf("%s moved from %s to %s, not to the new node", k, was, now)
			}
		}
	}
	if ideal := picks / 5.0; math.Abs(float64(moved)-ideal) > 0.1*ideal {
		t.Fatalf("adding a node moved %d keys, ideal %.0f", moved, ideal)
	}
	without := append(nodes(1, 1), Candidate{ID: "n3", Weight: 1}) // n2 removed
	for k, was := range before {
		now := p.Pick(k, without)
		if was != "n2" && now != was {
			t.Fatalf("%s on %s moved to %s although only n2 left", k, was, now)
		}
	}
}
