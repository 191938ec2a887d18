package script

import (
	"strings"
	"testing"

	lua "github.com/yuin/gopher-lua"
)

// FuzzFormatWidths: formatWidths never panics, refuses only with "invalid conversion", and what it
// accepts formats (with gopher-lua's own string.format, numbers as arguments) into a string of
// at most about 100 bytes per byte of format: no width can ask for a huge allocation.
func FuzzFormatWidths(f *testing.F) {
	for _, s := range []string{"%d", "%5.2f", "%99d", "%100d", "%.100f", "%%", "%-+ #0123s", "abc%", "%.", "%999999999999999999999d", "%1.2.3d", "%0%100"} {
		f.Add(s)
	}
	L := lua.NewState()
	defer L.Close()
	format := L.GetField(L.GetGlobal("string"), "format")
	f.Fuzz(func(t *testing.T, s string) {
		err := formatWidths(s)
		if err != nil {
			if !strings.Contains(err.Error(), "invalid conversion") {
				t.Fatalf("formatWidths(%q) = %v", s, err)
			}
			return
		}
		args := []lua.LValue{lua.LString(s)}
		for range 8 {
			args = append(args, lua.LNumber(12345.678))
		}
		if L.CallByParam(lua.P{Fn: format, NRet: 1, Protect: true}, args...) != nil {
			return // gopher-lua refuses the format itself
		}
		out := L.Get(-1).String()
		L.Pop(1)
		if len(out) > 110*len(s)+1000 {
			t.Fatalf("format %q accepted, made %d bytes", s, len(out))
		}
	})
}
