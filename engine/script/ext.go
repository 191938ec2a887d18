package script

import (
	"fmt"
	"sort"

	lua "github.com/yuin/gopher-lua"
	luar "layeh.com/gopher-luar"
)

// Extensions are Go values that a studio's own binary gives its scripts: mf.ext.<name> is the
// value, bound with gopher-luar — a struct pointer's exported methods and fields, a function, a
// map or a slice, called from Lua with Lua values converted to Go and back. Every actor's VM
// shares the same Go values, from its own goroutine: they must be safe for concurrent use.
// The hot path (ctx, the codec) keeps its hand-written bindings; gopher-luar's reflection costs
// about twice as much per call, which suits gameplay services, not per-field access.
type Extensions map[string]any

// CheckExtensions reports a name that Lua could not write as mf.ext.<name>.
func CheckExtensions(ext Extensions) error {
	for name := range ext {
		if !loginMethodName.MatchString(name) {
			return fmt.Errorf("extension %q: a name must match [a-z][a-z0-9_]* (at most 32 characters)", name)
		}
	}
	return nil
}

// extTable builds mf.ext from a version's extensions.
func (vm *VM) extTable(ext Extensions) *lua.LTable {
	names := make([]string, 0, len(ext))
	for name := range ext {
		names = append(names, name)
	}
	sort.Strings(names)
	t := vm.L.CreateTable(0, len(names))
	for _, name := range names {
		t.RawSetString(name, luar.New(vm.L, ext[name]))
	}
	return t
}
