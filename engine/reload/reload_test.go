package reload

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/moonforge/moonforge/engine/source"
)

func tree(t *testing.T) (luaDir, protoDir string) {
	t.Helper()
	dir := t.TempDir()
	luaDir, protoDir = filepath.Join(dir, "lua"), filepath.Join(dir, "proto")
	for _, d := range []string{filepath.Join(luaDir, "lobby"), filepath.Join(protoDir, "moonforge"), filepath.Join(protoDir, "demo")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for from, to := range map[string]string{
		"../../proto/moonforge/protocol.proto": filepath.Join(protoDir, "moonforge", "protocol.proto"),
		"../../proto/demo/demo.proto":          filepath.Join(protoDir, "demo", "demo.proto"),
	} {
		b, err := os.ReadFile(from)
		if err != nil {
			t.Fatal(err)
		}
		write(t, to, string(b))
	}
	write(t, filepath.Join(luaDir, "lobby", "echo.lua"), `mf.handle("EchoReq", function(ctx, req) return "EchoAck", req end)`)
	return luaDir, protoDir
}

func write(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestReloadOutcomes(t *testing.T) {
	luaDir, protoDir := tree(t)
	var seen []string
	r, err := Start(Config{LuaDir: luaDir, ProtoDir: protoDir, OnResult: func(res Result) { seen = append(seen, res.Outcome) }})
	if err != nil {
		t.Fatal(err)
	}
	first := r.Versions().Load().Version
	if res := r.Reload("test"); res.Outcome != Unchanged || res.Version != first || len(res.Files) != 0 {
		t.Fatalf("nothing changed: %+v", res)
	}

	write(t, filepath.Join(luaDir, "lobby", "echo.lua"), `mf.handle("EchoReq", function(ctx, req) req.n = req.n + 1; return "EchoAck", req end)`)
	res := r.Reload("test")
	if res.Outcome != Applied || res.Previous != first || res.Version == first || r.Versions().Load().Version != res.Version {
		t.Fatalf("changed script: %+v", res)
	}
	if strings.Join(res.Files, ",") != "lua/lobby/echo.lua" {
		t.Fatalf("changed files %v", res.Files)
	}
	applied := res.Version

	write(t, filepath.Join(luaDir, "lobby", "echo.lua"), "mf.handle(\"EchoReq\", function(ctx, req)\n  return \"EchoAck\", req\n")
	res = r.Reload("test")
	if res.Outcome != Rejected || r.Versions().Load().Version != applied || len(res.Problems) != 1 {
		t.Fatalf("broken script: %+v", res)
	}
	if p := res.Problems[0]; p.File != "lua/lobby/echo.lua" || p.Line != 2 {
		t.Fatalf("problem %+v, want lua/lobby/echo.lua:2", p)
	}
	if r.Last().Outcome != Rejected {
		t.Fatal("Last does not hold the last attempt")
	}

	write(t, filepath.Join(luaDir, "lobby", "echo.lua"), `mf.handle("EchoReq", function(ctx, req) return "EchoAck", req end)`)
	write(t, filepath.Join(protoDir, "demo", "dup.proto"), "syntax = \"proto3\";\npackage demo;\nimport \"moonforge/protocol.proto\";\nmessage Dup { option (moonforge.msg_id) = 1001; }\n")
	res = r.Reload("test")
	if res.Outcome != Rejected || len(res.Problems) == 0 || !strings.HasPrefix(res.Problems[0].File, "proto/") {
		t.Fatalf("duplicate msg_id: %+v", res)
	}
	if strings.Join(seen, ",") != "initial,unchanged,applied,rejected,rejected" {
		t.Fatalf("results seen: %v", seen)
	}
}

func TestStartRefusesABrokenTree(t *testing.T) {
	luaDir, protoDir := tree(t)
	write(t, filepath.Join(luaDir, "lobby", "bad.lua"), `mf.handle("NoSuchReq", function() end)`)
	_, err := Start(Config{LuaDir: luaDir, ProtoDir: protoDir})
	if err == nil || !strings.Contains(err.Error(), "lua/lobby/bad.lua") {
		t.Fatalf("start with a broken script: %v", err)
	}
}

// Problems name files with forward slashes whatever the OS, so that file:line reads the same on
// Windows as on Linux and macOS: built on Windows, the filepath.Join paths below have backslashes.
// (make test-windows checks the same end to end, on moonforge.exe under Wine.)
func TestProblemPathsUseForwardSlashes(t *testing.T) {
	luaDir, protoDir := tree(t)
	r, err := Start(Config{LuaDir: luaDir, ProtoDir: protoDir})
	if err != nil {
		t.Fatal(err)
	}
	write(t, filepath.Join(luaDir, "lobby", "echo.lua"), "mf.handle(\"EchoReq\", function(ctx, req)\n  return \"EchoAck\", req\n")
	res := r.Reload("test")
	if len(res.Problems) != 1 || res.Problems[0].File != "lua/lobby/echo.lua" || !strings.HasPrefix(res.Problems[0].String(), "lua/lobby/echo.lua:2: ") {
		t.Fatalf("broken script: %+v", res.Problems)
	}

	write(t, filepath.Join(luaDir, "lobby", "echo.lua"), `mf.handle("EchoReq", function(ctx, req) return "EchoAck", req end)`)
	write(t, filepath.Join(protoDir, "demo", "bad.proto"), "syntax = \"proto3\";\npackage demo;\nmessage {\n")
	res = r.Reload("test")
	if len(res.Problems) == 0 || res.Problems[0].File != "proto/demo/bad.proto" || !strings.HasPrefix(res.Problems[0].String(), "proto/demo/bad.proto:3:") {
		t.Fatalf("broken proto: %+v", res.Problems)
	}

	missing := filepath.Join(t.TempDir(), "gone", "proto")
	_, err = Start(Config{LuaDir: luaDir, ProtoDir: missing})
	var e *Error
	if !errors.As(err, &e) || len(e.Problems) != 1 || e.Problems[0].File != filepath.ToSlash(missing) {
		t.Fatalf("missing proto dir: %v", err)
	}
	if strings.Contains(err.Error(), `\`) {
		t.Fatalf("missing proto dir: a backslash in %q", err)
	}

	p := source.Problem{File: filepath.Join("lua", "lobby", "echo.lua"), Line: 4, Message: "boom"}
	if got := p.String(); got != "lua/lobby/echo.lua:4: boom" {
		t.Fatalf("Problem.String() = %q", got)
	}
}
