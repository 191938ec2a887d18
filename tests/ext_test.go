package tests

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/moonforge/moonforge/engine/protocol"
)

// The studio example (docs/extensions.md) is a binary of its own that imports the engine and gives
// its Lua a Go path-finder as mf.ext.paths. Its handler calls the Go methods; a hot reload of the
// Lua keeps using the same Go value (its search count goes on).
func TestStudioBinaryWithGoExtension(t *testing.T) {
	s := startServer(t, options{binary: built.studio, prepare: func(t testing.TB, dir string) {
		example := filepath.Join(built.root, "examples", "studio")
		copyTree(t, filepath.Join(example, "lua"), filepath.Join(dir, "lua"))
		copyTree(t, filepath.Join(example, "proto", "studio"), filepath.Join(dir, "proto", "studio"))
	}})
	c := s.dial(t, "tcp")
	guest(t, c, "studio")
	ack := s.mustCall(t, c, "studio.PathReq", `{"x0": 0, "y0": 0, "x1": 5, "y1": 0}`, "PathAck")
	// The wall at x = 3 from y = 0 to 12 is passed at y = 13: 13 down, 5 across, 13 up.
	if got := field(ack, "steps").Int(); got != 31 || field(ack, "searches").Int() != 1 || field(ack, "note").String() != "shortest" {
		t.Fatalf("first path: %v", ack)
	}
	_, err := s.call(timeout(t, 10*time.Second), c, "studio.PathReq", `{"x0": 0, "y0": 0, "x1": 3, "y1": 0}`)
	expectCode(t, "a path into the wall", err, protocol.BadRequest)

	prev := s.lastReload(t)
	s.editFile(t, "lua/lobby/paths.lua", `note = "shortest"`, `note = "reloaded"`)
	if r := s.nextReload(t, prev); r.Result != "applied" {
		t.Fatalf("reload: %+v", r)
	}
	ack = s.mustCall(t, c, "studio.PathReq", `{"x0": 0, "y0": 0, "x1": 0, "y1": 4}`, "PathAck")
	if field(ack, "steps").Int() != 4 || field(ack, "searches").Int() != 3 || field(ack, "note").String() != "reloaded" {
		t.Fatalf("after the reload: %v", ack)
	}
}
