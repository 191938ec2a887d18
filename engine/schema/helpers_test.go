package schema

import (
	"os"
	"sync"
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

var (
	testSchemaOnce sync.Once
	testSchemaVal  *Schema
	testSchemaErr  error
)

// testSchema loads the codec test schema once per test binary.
func testSchema(tb testing.TB) *Schema {
	tb.Helper()
	testSchemaOnce.Do(func() { testSchemaVal, testSchemaErr = LoadFS(testFS(tb)) })
	if testSchemaErr != nil {
		tb.Fatal(testSchemaErr)
	}
	return testSchemaVal
}

// testMessage returns the message of the test schema with the given name.
func testMessage(tb testing.TB, name string) *Message {
	tb.Helper()
	m := testSchema(tb).ByName(name)
	if m == nil {
		tb.Fatalf("no message %s", name)
	}
	return m
}
