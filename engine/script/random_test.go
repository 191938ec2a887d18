package script_test

import (
	"strings"
	"testing"

	"github.com/moonforge/moonforge/engine/script"
)

func TestMathRandomPerVM(t *testing.T) {
	b := compile(t, map[string]string{"lobby/echo.lua": echo})
	a := newVM(t, b, "lobby", &script.Services{})
	c := newVM(t, b, "lobby", &script.Services{})
	const draw = `
math.randomseed(42)
local t = {}
for i = 1, 20 do t[i] = math.random(1, 1000000) end
__seq = table.concat(t, ",")`
	seq := func(vm *script.VM) string {
		t.Helper()
		if err := vm.L.DoString(draw); err != nil {
			t.Fatal(err)
		}
		return vm.L.GetGlobal("__seq").String()
	}
	first := seq(a)
	if again := seq(a); again != first {
		t.Errorf("math.randomseed(42) twice gave two sequences:\n%s\n%s", first, again)
	}
	if other := seq(c); other != first {
		t.Errorf("two VMs seeded alike differ:\n%s\n%s", first, other)
	}
	// A seeded VM is not disturbed by another VM drawing numbers.
	if err := a.L.DoString(`math.randomseed(7); __x = math.random(1, 1e9)`); err != nil {
		t.Fatal(err)
	}
	x := a.L.GetGlobal("__x").String()
	if err := c.L.DoString(`for i = 1, 100 do math.random() end`); err != nil {
		t.Fatal(err)
	}
	if err := a.L.DoString(`math.randomseed(7); __y = math.random(1, 1e9)`); err != nil {
		t.Fatal(err)
	}
	if y := a.L.GetGlobal("__y").String(); y != x {
		t.Errorf("another VM's draws changed this one's sequence: %s then %s", x, y)
	}
	if err := a.L.DoString(`
for i = 1, 1000 do
  local f = math.random(); assert(f >= 0 and f < 1, "random() " .. f)
  local n = math.random(6); assert(n >= 1 and n <= 6 and n % 1 == 0, "random(6) " .. n)
  local m = math.random(-2, 2); assert(m >= -2 and m <= 2, "random(-2, 2) " .. m)
end
assert(math.random(5, 5) == 5)`); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{`math.random(0)`, `math.random(3, 1)`} {
		err := a.L.DoString(bad)
		if err == nil || !strings.Contains(err.Error(), "interval is empty") {
			t.Errorf("%s: err = %v, want interval is empty", bad, err)
		}
	}
}
