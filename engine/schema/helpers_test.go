package schema

import (
	"os"
	"testing"
	"testing/fstest"
)

// testFS is the codec test schema: the framework proto and testdata/kinds.proto as test/kinds.proto.
func testFS(tb testing.TB) fstest.MapFS {
	tb.Helper()
	protocol, err := os.ReadFile("../../proto/moonforge/protocol.proto")
	if err != nil {
		tb.Fatal(err)
	}
	kinds, err := os.ReadFile("testdata/kinds.proto")
	if err != nil {
		tb.Fatal(err)
	}
	return fstest.MapFS{
		"moonforge/protocol.proto": {Data: protocol},
		"test/kinds.proto":         {Data: kinds},
	}
}

// testSchema loads the codec test schema.
func testSchema(tb testing.TB) *Schema {
	tb.Helper()
	s, err := LoadFS(testFS(tb))
	if err != nil {
		tb.Fatal(err)
	}
	return s
}
