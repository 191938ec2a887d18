package script_test

import (
	"strings"
	"testing"

	"github.com/moonforge/moonforge/engine/script"
)

// The standard library's builders refuse results over script.MaxBuiltString and format widths
// over 99; everything below works as in Lua, method syntax included.
func TestBoundedBuilders(t *testing.T) {
	b := compile(t, map[string]string{"lobby/e.lua": echo})
	vm := newVM(t, b, "lobby", &script.Services{})
	if err := vm.L.DoString(`
assert(string.rep("ab", 3) == "ababab")
assert(("x"):rep(4) == "xxxx")
assert(string.rep("x", 0) == "" and string.rep("x", -1) == "")
assert(#string.rep("x", 16 * 1024 * 1024) == 16 * 1024 * 1024)
assert(table.concat({"a", "b", 3}, "-") == "a-b-3")
assert(table.concat({"a", "b", "c"}, "", 2, 3) == "bc")
assert(table.concat({}) == "")
assert(string.format("%5.2f|%-3d|%s", 3.14159, 7, "z") == " 3.14|7  |z")
assert(string.format("%99d", 1):len() == 99)
assert(("%d%%"):format(5) == "5%")
`); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{
		`string.rep("x", 16 * 1024 * 1024 + 1)`,
		`("x"):rep(1e15)`,
		`string.rep("ab", 9e9, ",")`,
		`local t = {} for i = 1, 1024 do t[i] = string.rep("y", 32 * 1024) end; table.concat(t, "", 1, 1024)`,
		`table.concat({"a"}, "", 1, 1e12)`,
		`string.format("%999999999d", 1)`,
		`string.format("%.100f", 1)`,
		`("%1000s"):format("x")`,
	} {
		err := vm.L.DoString(bad)
		if err == nil || !strings.Contains(err.Error(), "longer than") && !strings.Contains(err.Error(), "invalid conversion") {
			t.Errorf("%s: %v", bad, err)
		}
	}
}
