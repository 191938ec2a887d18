package script_test

import (
	"os"
	"regexp"
	"sort"
	"strings"
	"testing"

	lua "github.com/yuin/gopher-lua"

	"github.com/moonforge/moonforge/engine/script"
)

// TestLuaAPIIsDocumented keeps docs/lua-api.md true to the code: every function reachable from
// the mf table, and every room method, has a heading there, and every heading names something
// that exists.
func TestLuaAPIIsDocumented(t *testing.T) {
	doc, err := os.ReadFile("../../docs/lua-api.md")
	if err != nil {
		t.Fatal(err)
	}
	documented := map[string]bool{}
	for _, m := range regexp.MustCompile(`(?m)^### (.+)$`).FindAllStringSubmatch(string(doc), -1) {
		for _, part := range strings.Split(m[1], " and ") {
			name := part
			if i := strings.IndexAny(name, "(["); i >= 0 {
				name = name[:i]
			}
			if i := strings.Index(name, "/"); i >= 0 { // "mf.log.debug/info/warn/error"
				base := name[:strings.LastIndex(name[:i], ".")+1]
				for _, leaf := range strings.Split(name[len(base):], "/") {
					documented[base+leaf] = true
				}
				continue
			}
			for _, n := range strings.Split(name, ", ") {
				documented[strings.TrimSpace(n)] = true
			}
		}
	}

	vm := script.NewVM("lobby", nil)
	defer vm.Close()
	exists := map[string]bool{}   // every name, tables included
	required := map[string]bool{} // functions and constants, which need a heading
	var walk func(prefix string, t *lua.LTable)
	walk = func(prefix string, t *lua.LTable) {
		t.ForEach(func(k, v lua.LValue) {
			name := prefix + "." + k.String()
			exists[name] = true
			switch v := v.(type) {
			case *lua.LTable:
				if mt, ok := vm.L.GetMetatable(v).(*lua.LTable); ok && mt.RawGetString("__call") != lua.LNil {
					required[name] = true // callable, like mf.log
				}
				walk(name, v)
			default:
				required[name] = true
			}
		})
	}
	walk("mf", vm.L.GetGlobal("mf").(*lua.LTable))
	for _, m := range []string{"broadcast", "send", "remove", "close"} {
		exists["room:"+m] = true
		required["room:"+m] = true
	}

	var missing, stale []string
	for name := range required {
		if !documented[name] && !strings.HasPrefix(name, "mf.code.") {
			missing = append(missing, name)
		}
	}
	for name := range documented {
		if !exists[name] {
			stale = append(stale, name)
		}
	}
	sort.Strings(missing)
	sort.Strings(stale)
	if len(missing) > 0 {
		t.Errorf("not documented in docs/lua-api.md: %v", missing)
	}
	if len(stale) > 0 {
		t.Errorf("documented but not in the API: %v", stale)
	}
}
