package lua

import (
	"fmt"
	"math/rand"
	"testing"
)

// TestTableHashModel sets, clears and reads random keys of every kind in tables of every size
// against a Go map, checking after each step that gets agree and that a traversal visits each
// live key exactly once.
func TestTableHashModel(t *testing.T) {
	rnd := rand.New(rand.NewSource(1))
	keys := []LValue{LTrue, LFalse, LNumber(0), LNumber(-1), LNumber(1.5), LNumber(MaxArrayIndex + 1), newLTable(0, 0)}
	for i := 0; i < 40; i++ {
		keys = append(keys, LString(fmt.Sprintf("k%d", i)))
	}
	for round := 0; round < 200; round++ {
		tb := newLTable(0, rnd.Intn(4))
		model := map[LValue]LValue{}
		n := 1 + rnd.Intn(len(keys))
		for step := 0; step < 300; step++ {
			k := keys[rnd.Intn(n)]
			var v LValue = LNumber(step)
			if rnd.Intn(3) == 0 {
				v = LNil
			}
			switch rnd.Intn(3) {
			case 0:
				tb.RawSet(k, v)
			case 1:
				tb.RawSetH(k, v)
			default:
				if s, ok := k.(LString); ok {
					tb.RawSetString(string(s), v)
				} else {
					tb.RawSetH(k, v)
				}
			}
			if v == LNil {
				delete(model, k)
			} else {
				model[k] = v
			}
			for _, k := range keys {
				want, ok := model[k]
				if !ok {
					want = LNil
				}
				if got := tb.RawGetH(k); got != want {
					t.Fatalf("round %d step %d: RawGetH(%v) = %v, want %v", round, step, k, got, want)
				}
			}
			seen := map[LValue]bool{}
			for k, v := tb.Next(LNil); k != LNil; k, v = tb.Next(k) {
				if seen[k] || model[k] != v {
					t.Fatalf("round %d step %d: Next gave %v=%v (seen before: %v), want %v", round, step, k, v, seen[k], model[k])
				}
				seen[k] = true
			}
			if len(seen) != len(model) {
				t.Fatalf("round %d step %d: traversal saw %d keys, want %d", round, step, len(seen), len(model))
			}
		}
	}
}

// TestTableClearDuringTraversal clears every field while traversing, as Lua allows, in small and
// indexed tables, with an array part too.
func TestTableClearDuringTraversal(t *testing.T) {
	for _, n := range []int{1, 3, smallHash, smallHash + 1, 100} {
		tb := newLTable(0, 0)
		tb.RawSetInt(1, LTrue)
		tb.RawSetInt(2, LTrue)
		for i := 0; i < n; i++ {
			tb.RawSetString(fmt.Sprintf("f%d", i), LNumber(i))
			tb.RawSetH(LNumber(-i), LNumber(i))
		}
		visited := 0
		for k, _ := tb.Next(LNil); k != LNil; k, _ = tb.Next(k) {
			tb.RawSet(k, LNil)
			visited++
		}
		if want := 2 + 2*n; visited != want {
			t.Errorf("n=%d: visited %d keys, want %d", n, visited, want)
		}
		if k, _ := tb.Next(LNil); k != LNil {
			t.Errorf("n=%d: key %v left after clearing", n, k)
		}
		// The dead entries make room for new keys.
		for i := 0; i < 4*n; i++ {
			tb.RawSetString(fmt.Sprintf("g%d", i), LTrue)
		}
		if len(tb.hash) > 6*n+1 {
			t.Errorf("n=%d: %d hash entries for %d live keys", n, len(tb.hash), 4*n)
		}
	}
}

// TestTableNextOrder: array part first, then the hash part in the order keys were first set; a
// key set to nil and set again keeps its place; an unknown key ends the traversal.
func TestTableNextOrder(t *testing.T) {
	tb := newLTable(0, 0)
	tb.RawSetString("a", LNumber(1))
	tb.RawSetH(LTrue, LNumber(2))
	tb.RawSetInt(1, LNumber(3))
	tb.RawSetString("b", LNumber(4))
	tb.RawSetString("a", LNil)
	tb.RawSetString("a", LNumber(5))
	var got []string
	for k, v := tb.Next(LNil); k != LNil; k, v = tb.Next(k) {
		got = append(got, fmt.Sprintf("%v=%v", k, v))
	}
	if want := "[1=3 a=5 true=2 b=4]"; fmt.Sprint(got) != want {
		t.Errorf("traversal %v, want %s", got, want)
	}
	if k, v := tb.Next(LString("nope")); k != LNil || v != LNil {
		t.Errorf("Next(unknown) = %v, %v", k, v)
	}
	if k, v := tb.Next(LNumber(7)); k != LNil || v != LNil {
		t.Errorf("Next(7) beyond the array = %v, %v", k, v)
	}
}

// TestTableGrowthDropsOldEntries: when the hash part outgrows the entries allocated with the
// table, those entries no longer hold its keys and values.
func TestTableGrowthDropsOldEntries(t *testing.T) {
	tb := newLTable(0, 2)
	tb.RawSetString("a", LString("x"))
	tb.RawSetString("b", LString("y"))
	inline := tb.hash[:2:2]
	tb.RawSetString("c", LString("z"))
	if inline[0] != (hashEntry{}) || inline[1] != (hashEntry{}) {
		t.Errorf("the table's first entries still hold %v after growth", inline)
	}
	for _, k := range []string{"a", "b", "c"} {
		if tb.RawGetString(k) == LNil {
			t.Errorf("lost %s", k)
		}
	}
}

func BenchmarkTableSmallStringKeys(b *testing.B) {
	keys := []LValue{LString("text"), LString("count"), LString("ok")}
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		tb := newLTable(0, 3)
		tb.RawSet(keys[0], LString("hello"))
		tb.RawSet(keys[1], LTrue)
		tb.RawSet(keys[2], LTrue)
		if tb.RawGetString("ok") != LTrue {
			b.Fatal("lost a key")
		}
	}
}

func BenchmarkTableGlobalLookup(b *testing.B) {
	tb := newLTable(0, 64)
	for i := 0; i < 64; i++ {
		tb.RawSetString(fmt.Sprintf("name%d", i), LNumber(i))
	}
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if tb.RawGetString("name42") == LNil {
			b.Fatal("lost a key")
		}
	}
}

// BenchmarkTableConstructor is a Lua function that builds a table with two string keys, as a
// handler builds its reply.
func BenchmarkTableConstructor(b *testing.B) {
	L := NewState()
	defer L.Close()
	if err := L.DoString(`function make(x) return { n = x, body = "b" } end`); err != nil {
		b.Fatal(err)
	}
	fn := L.GetGlobal("make")
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		L.Push(fn)
		L.Push(LNumber(1))
		L.Call(1, 1)
		L.Pop(1)
	}
}
