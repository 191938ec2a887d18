package script

import (
	"math/rand/v2"

	lua "github.com/yuin/gopher-lua"
)

// openRandom gives math.random and math.randomseed a generator of this VM's own, seeded from the
// process's random source when the VM starts. gopher-lua's versions share Go's global generator,
// whose Seed has been a no-op since Go 1.24, so math.randomseed(n) could not make a sequence
// repeatable; and they panic on an empty interval. Here math.randomseed(n) makes this VM's
// sequence repeatable, without touching any other actor's, and an empty interval is a Lua error.
// The generator lives as long as the VM: a reload keeps its state.
func openRandom(L *lua.LState, math *lua.LTable) {
	src := rand.NewPCG(rand.Uint64(), rand.Uint64())
	r := rand.New(src)
	math.RawSetString("random", L.NewFunction(func(L *lua.LState) int {
		switch L.GetTop() {
		case 0:
			L.Push(lua.LNumber(r.Float64()))
			return 1
		case 1:
			n := L.CheckInt64(1)
			if n < 1 {
				L.ArgError(1, "interval is empty")
			}
			L.Push(lua.LNumber(r.Int64N(n) + 1))
			return 1
		default:
			lo, hi := L.CheckInt64(1), L.CheckInt64(2)
			if lo > hi {
				L.ArgError(2, "interval is empty")
			}
			span := uint64(hi - lo)
			if span == ^uint64(0) {
				L.Push(lua.LNumber(int64(r.Uint64())))
			} else {
				L.Push(lua.LNumber(lo + int64(r.Uint64N(span+1))))
			}
			return 1
		}
	}))
	math.RawSetString("randomseed", L.NewFunction(func(L *lua.LState) int {
		if L.GetTop() == 0 {
			src.Seed(rand.Uint64(), rand.Uint64())
			return 0
		}
		src.Seed(uint64(L.CheckInt64(1)), 0)
		return 0
	}))
}
