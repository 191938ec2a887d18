package script

import (
	"strings"

	lua "github.com/yuin/gopher-lua"
)

// openLibs loads the standard libraries gameplay needs and nothing that reaches the host: no io,
// no os.execute/exit/remove/getenv, no loadfile/dofile, no package.loadlib. require resolves
// modules inside the bundle only.
func (vm *VM) openLibs() {
	L := vm.L
	for _, lib := range []struct {
		name string
		open lua.LGFunction
	}{
		{lua.BaseLibName, lua.OpenBase},
		{lua.TabLibName, lua.OpenTable},
		{lua.StringLibName, lua.OpenString},
		{lua.MathLibName, lua.OpenMath},
		{lua.CoroutineLibName, lua.OpenCoroutine},
		{lua.OsLibName, lua.OpenOs},
	} {
		L.Push(L.NewFunction(lib.open))
		L.Push(lua.LString(lib.name))
		L.Call(1, 0)
	}
	g := L.G.Global
	if math, ok := g.RawGetString(lua.MathLibName).(*lua.LTable); ok {
		openRandom(L, math)
	}
	for _, name := range []string{"dofile", "loadfile", "module", "_printregs", "collectgarbage"} {
		g.RawSetString(name, lua.LNil)
	}
	safeOS := L.CreateTable(0, 4)
	if full, ok := g.RawGetString(lua.OsLibName).(*lua.LTable); ok {
		for _, name := range []string{"time", "clock", "date", "difftime"} {
			safeOS.RawSetString(name, full.RawGetString(name))
		}
	}
	g.RawSetString(lua.OsLibName, safeOS)
	g.RawSetString("require", L.NewFunction(vm.luaRequire))
	g.RawSetString("print", L.NewFunction(vm.luaPrint))

	// gopher-lua builds each library table with room for 32 entries; copies of their exact size
	// save a few KB per VM, which every room pays.
	for _, name := range []string{lua.StringLibName, lua.TabLibName, lua.MathLibName, lua.CoroutineLibName} {
		full, ok := g.RawGetString(name).(*lua.LTable)
		if !ok {
			continue
		}
		lib := compact(L, full)
		if name == lua.StringLibName { // the string library is also the metatable of strings
			lib.RawSetString("__index", lib)
			L.SetMetatable(lua.LString(""), lib)
		}
		g.RawSetString(name, lib)
	}
	str, _ := g.RawGetString(lua.StringLibName).(*lua.LTable)
	tab, _ := g.RawGetString(lua.TabLibName).(*lua.LTable)
	boundBuilders(L, str, tab)
	// The module registry of gopher-lua's own require, which the sandbox replaces.
	L.G.Registry.RawSetString("_LOADED", lua.LNil)
}

// compact returns a copy of t sized for its entries.
func compact(L *lua.LState, t *lua.LTable) *lua.LTable {
	n := 0
	t.ForEach(func(lua.LValue, lua.LValue) { n++ })
	c := L.CreateTable(0, n)
	t.ForEach(func(k, v lua.LValue) { c.RawSetH(k, v) })
	return c
}

// luaRequire loads a module of the applied bundle by dotted name, once per version.
func (vm *VM) luaRequire(L *lua.LState) int {
	name := L.CheckString(1)
	if v, ok := vm.required[name]; ok {
		L.Push(v)
		return 1
	}
	var chunk *Chunk
	if vm.bundle != nil {
		chunk = vm.bundle.modules[name]
	}
	if chunk == nil {
		vm.errorf("module '%s' not found (require takes a dotted path under lua/, e.g. \"shared.util\")", name)
	}
	vm.required[name] = lua.LTrue // a require cycle sees true, as in Lua
	L.Push(L.NewFunctionFromProto(chunk.proto))
	L.Push(lua.LString(name))
	L.Call(1, 1)
	v := L.Get(-1)
	L.Pop(1)
	if v == lua.LNil {
		v = lua.LTrue
	}
	vm.required[name] = v
	L.Push(v)
	return 1
}

// luaPrint writes its arguments to the log at info level.
func (vm *VM) luaPrint(L *lua.LState) int {
	parts := make([]string, L.GetTop())
	for i := range parts {
		parts[i] = L.ToStringMeta(L.Get(i + 1)).String()
	}
	vm.log.Info(strings.Join(parts, "\t"), "at", vm.where())
	return 0
}
