package script

import (
	"fmt"
	"math"
	"sort"
	"strconv"

	lua "github.com/yuin/gopher-lua"
)

// maxDepth bounds the nesting of plain values copied out of a VM.
const maxDepth = 64

// Export copies a plain Lua value out of its VM, so that it can be stored or handed to another
// VM: nil, booleans, finite numbers, strings, and tables of those. A table whose keys are exactly
// 1..n becomes a []any, any other table a map[string]any (number keys become their decimal
// strings). Functions, userdata, coroutines, cycles and non-finite numbers are errors naming the
// path.
func Export(v lua.LValue) (any, error) {
	return export(v, "value", 0, map[*lua.LTable]bool{})
}

func export(v lua.LValue, path string, depth int, seen map[*lua.LTable]bool) (any, error) {
	switch v := v.(type) {
	case *lua.LNilType:
		return nil, nil
	case lua.LBool:
		return bool(v), nil
	case lua.LNumber:
		f := float64(v)
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return nil, fmt.Errorf("%s: %v cannot be stored", path, f)
		}
		return f, nil
	case lua.LString:
		return string(v), nil
	case *lua.LTable:
		if depth >= maxDepth {
			return nil, fmt.Errorf("%s: nested deeper than %d", path, maxDepth)
		}
		if seen[v] {
			return nil, fmt.Errorf("%s: the table contains itself", path)
		}
		seen[v] = true
		defer delete(seen, v)
		n := v.Len()
		count := 0
		v.ForEach(func(lua.LValue, lua.LValue) { count++ })
		if n > 0 && n == count {
			out := make([]any, n)
			for i := 1; i <= n; i++ {
				e, err := export(v.RawGetInt(i), fmt.Sprintf("%s[%d]", path, i), depth+1, seen)
				if err != nil {
					return nil, err
				}
				out[i-1] = e
			}
			return out, nil
		}
		out := make(map[string]any, count)
		var err error
		v.ForEach(func(k, e lua.LValue) {
			if err != nil {
				return
			}
			var key string
			switch k := k.(type) {
			case lua.LString:
				key = string(k)
			case lua.LNumber:
				key = strconv.FormatFloat(float64(k), 'f', -1, 64)
			default:
				err = fmt.Errorf("%s: a key of type %s cannot be stored", path, k.Type())
				return
			}
			out[key], err = export(e, path+"."+key, depth+1, seen)
		})
		if err != nil {
			return nil, err
		}
		return out, nil
	}
	return nil, fmt.Errorf("%s: a %s cannot be stored", path, v.Type())
}

// Import builds a Lua value in L from a value made by Export (or decoded from JSON).
func Import(L *lua.LState, v any) lua.LValue {
	switch v := v.(type) {
	case nil:
		return lua.LNil
	case bool:
		return lua.LBool(v)
	case float64:
		return lua.LNumber(v)
	case int:
		return lua.LNumber(v)
	case int64:
		return lua.LNumber(v)
	case string:
		return lua.LString(v)
	case []any:
		t := L.CreateTable(len(v), 0)
		for _, e := range v {
			t.Append(Import(L, e))
		}
		return t
	case map[string]any:
		t := L.CreateTable(0, len(v))
		keys := make([]string, 0, len(v))
		for k := range v {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			t.RawSetString(k, Import(L, v[k]))
		}
		return t
	}
	return lua.LString(fmt.Sprint(v))
}
