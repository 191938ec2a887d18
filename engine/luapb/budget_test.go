package luapb

import (
	"bytes"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"testing/fstest"

	lua "github.com/yuin/gopher-lua"

	"github.com/moonforge/moonforge/engine/schema"
)

// TestDecodeBudget: a payload of empty elements of a wide message would build far more table
// entries than it has bytes; Decode refuses it past its budget, and decodes the same shape when it
// stays within.
func TestDecodeBudget(t *testing.T) {
	var fields strings.Builder
	for i := 1; i <= 60; i++ {
		fmt.Fprintf(&fields, "  int32 f%d = %d;\n", i, i)
	}
	fsys := testFS(t)
	fsys["test/wide.proto"] = &fstest.MapFile{Data: []byte(`syntax = "proto3";
package test;
import "moonforge/protocol.proto";
message Wide {
` + fields.String() + `}
message Many {
  option (moonforge.msg_id) = 1900;
  repeated Wide items = 1;
}
`)}
	sch, err := schema.LoadFS(fsys)
	if err != nil {
		t.Fatal(err)
	}
	m := testMessage(t, New(sch), "test.Many")
	L := lua.NewState()
	defer L.Close()
	few := bytes.Repeat([]byte{0x0a, 0x00}, 10) // 10 empty items: within the base budget
	tbl, err := m.Decode(L, few)
	if err != nil {
		t.Fatalf("10 items: %v", err)
	}
	if items := tbl.RawGetString("items").(*lua.LTable); items.Len() != 10 {
		t.Fatalf("%d items decoded", items.Len())
	}
	flood := bytes.Repeat([]byte{0x0a, 0x00}, 50000) // 100 KB for 3 million entries
	if _, err := m.Decode(L, flood); !errors.Is(err, errTooBig) {
		t.Fatalf("50000 empty wide items: %v, want over budget", err)
	}
}

// TestLongDecodeYields: a payload of half a million unknown fields takes milliseconds to decode;
// the decoder lets other goroutines run in between rather than holding its thread until Go's
// preemption (10 ms). With one thread, a goroutine that only yields gets to run once per yield.
func TestLongDecodeYields(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	m := testMessage(t, testSchema(t), "test.Scalars")
	payload := bytes.Repeat([]byte{0xfa, 0x07, 0x00}, 500_000) // unknown field 127, empty
	L := lua.NewState()
	defer L.Close()
	var done atomic.Bool
	turns := make(chan int)
	go func() {
		n := 0
		for !done.Load() {
			n++
			runtime.Gosched()
		}
		turns <- n
	}()
	runtime.Gosched() // let it start
	_, err := m.Decode(L, payload)
	done.Store(true)
	n := <-turns
	if err != nil {
		t.Fatal(err)
	}
	if want := len(payload) / 3 / yieldEvery / 2; n < want {
		t.Fatalf("another goroutine ran %d times during the decode, want at least %d", n, want)
	}
}
