package luapb

import (
	"os"
	"testing"
	"testing/fstest"

	"github.com/moonforge/moonforge/engine/schema"
)

// testFS is the codec test schema: the framework proto and schema's testdata/kinds.proto as
// test/kinds.proto.
func testFS(tb testing.TB) fstest.MapFS {
	tb.Helper()
	protocol, err := os.ReadFile("../../proto/moonforge/protocol.proto")
	if err != nil {
		tb.Fatal(err)
	}
	kinds, err := os.ReadFile("../schema/testdata/kinds.proto")
	if err != nil {
		tb.Fatal(err)
	}
	return fstest.MapFS{
		"moonforge/protocol.proto": {Data: protocol},
		"test/kinds.proto":         {Data: kinds},
	}
}

// testSchema loads the codec test schema and builds its codecs.
func testSchema(tb testing.TB) *Codecs {
	tb.Helper()
	s, err := schema.LoadFS(testFS(tb))
	if err != nil {
		tb.Fatal(err)
	}
	return New(s)
}

// testMessage returns the message of s with the given name.
func testMessage(tb testing.TB, s *Codecs, name string) *Message {
	tb.Helper()
	m := s.ByName(name)
	if m == nil {
		tb.Fatalf("no message %s", name)
	}
	return m
}
