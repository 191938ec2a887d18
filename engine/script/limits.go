package script

import (
	"fmt"

	lua "github.com/yuin/gopher-lua"
)

// MaxBuiltString is the longest string that string.rep and table.concat may build (16 MiB), and
// maxFormatWidth the widest field or precision string.format accepts (as Lua 5.4's 99): a
// handler cannot ask the standard library for gigabytes in one call. gopher-lua has no allocation
// hook, so memory built up step by step (a loop of .. or table inserts) stays bounded only by the
// handler timeout and the process's memory limit (docs/security.md).
const (
	MaxBuiltString = 16 << 20
	maxFormatWidth = 99
)

// boundBuilders replaces string.rep, string.format and table.concat with versions that refuse to
// build more than the limits above, then call the originals.
func boundBuilders(L *lua.LState, str, tab *lua.LTable) {
	wrap := func(lib *lua.LTable, name string, check func(L *lua.LState) error) {
		orig, ok := lib.RawGetString(name).(*lua.LFunction)
		if !ok {
			return
		}
		lib.RawSetString(name, L.NewFunction(func(L *lua.LState) int {
			if err := check(L); err != nil {
				L.RaiseError("%s: %s", name, err)
			}
			top := L.GetTop()
			L.Push(orig)
			for i := 1; i <= top; i++ {
				L.Push(L.Get(i))
			}
			L.Call(top, lua.MultRet)
			return L.GetTop() - top
		}))
	}
	wrap(str, "rep", checkRep)
	wrap(str, "format", checkFormat)
	wrap(tab, "concat", checkConcat)
}

func tooLong(n int64) error {
	return fmt.Errorf("result of %d bytes is longer than %d", n, MaxBuiltString)
}

// checkRep bounds string.rep(s, n [, sep]).
func checkRep(L *lua.LState) error {
	s := L.CheckString(1)
	n := int64(L.CheckInt64(2))
	sep := L.OptString(3, "")
	if n <= 0 {
		return nil
	}
	if total := int64(len(s))*n + int64(len(sep))*(n-1); total > MaxBuiltString || total < 0 || n > MaxBuiltString {
		return tooLong(total)
	}
	return nil
}

// checkConcat bounds table.concat(t [, sep [, i [, j]]]) by adding up the lengths first.
func checkConcat(L *lua.LState) error {
	t := L.CheckTable(1)
	sep := int64(len(L.OptString(2, "")))
	i := L.OptInt64(3, 1)
	j := L.OptInt64(4, int64(t.Len()))
	if j < i {
		return nil
	}
	if j-i > MaxBuiltString {
		return tooLong(j - i)
	}
	var total int64
	for k := i; k <= j; k++ {
		switch v := t.RawGetInt(int(k)).(type) {
		case lua.LString:
			total += int64(len(v))
		case lua.LNumber:
			total += int64(len(v.String()))
		}
		if k < j {
			total += sep
		}
		if total > MaxBuiltString {
			return tooLong(total)
		}
	}
	return nil
}

// checkFormat refuses field widths and precisions above maxFormatWidth.
func checkFormat(L *lua.LState) error { return formatWidths(L.CheckString(1)) }

// formatWidths checks the widths and precisions of a string.format format.
func formatWidths(f string) error {
	for i := 0; i < len(f); i++ {
		if f[i] != '%' {
			continue
		}
		i++
		for i < len(f) && (f[i] == '-' || f[i] == '+' || f[i] == ' ' || f[i] == '#' || f[i] == '0') {
			i++
		}
		for _, part := range []bool{false, true} { // width, then precision
			if part {
				if i >= len(f) || f[i] != '.' {
					break
				}
				i++
			}
			n := 0
			for i < len(f) && f[i] >= '0' && f[i] <= '9' {
				n = min(n*10+int(f[i]-'0'), 1<<20)
				i++
			}
			if n > maxFormatWidth {
				return fmt.Errorf("invalid conversion: width or precision %d is above %d", n, maxFormatWidth)
			}
		}
	}
	return nil
}
