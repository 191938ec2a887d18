package luapb

import (
	"sync"
	"testing"

	lua "github.com/yuin/gopher-lua"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/dynamicpb"
)

// smallWire is test.Small{text: "hello world", count: 42, ok: true}.
const smallWire = "\x0a\x0bhello world\x10\x2a\x18\x01"

func BenchmarkDecodeSmall(b *testing.B) {
	m := testMessage(b, testSchema(b), "test.Small")
	L := lua.NewState()
	defer L.Close()
	wire := []byte(smallWire)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := m.Decode(L, wire); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkEncodeSmall(b *testing.B) {
	m := testMessage(b, testSchema(b), "test.Small")
	L := lua.NewState()
	defer L.Close()
	t, err := m.Decode(L, []byte(smallWire))
	if err != nil {
		b.Fatal(err)
	}
	buf := make([]byte, 0, 64)
	b.ReportAllocs()
	for b.Loop() {
		if buf, err = m.Encode(buf[:0], t); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDynamicpbUnmarshalSmall is the baseline the design notes measured (about 1.2 µs).
func BenchmarkDynamicpbUnmarshalSmall(b *testing.B) {
	m := testMessage(b, testSchema(b), "test.Small")
	wire := []byte(smallWire)
	b.ReportAllocs()
	for b.Loop() {
		if err := proto.Unmarshal(wire, dynamicpb.NewMessage(m.Desc)); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkLuaTableSmall is the baseline of building the same table with gopher-lua calls alone.
func BenchmarkLuaTableSmall(b *testing.B) {
	L := lua.NewState()
	defer L.Close()
	wire := []byte(smallWire)
	b.ReportAllocs()
	for b.Loop() {
		t := L.CreateTable(0, 3)
		t.RawSetString("text", lua.LString(wire[2:13]))
		t.RawSetString("count", lua.LNumber(wire[14]))
		t.RawSetString("ok", lua.LTrue)
	}
}

func BenchmarkDecodeEverything(b *testing.B) {
	s := testSchema(b)
	m := testMessage(b, s, "test.Everything")
	wire, err := proto.MarshalOptions{Deterministic: true}.Marshal(textMessage(b, m, `scalars: {i32: 1 s: "x" color: RED} repeats: {i32: [1, 2, 3] points: [{x: 1}, {y: 2}]}
		maps: {ss: {key: "a" value: "b"} uu: {key: 1 value: 2}} choice: {text: "t"} optionals: {oi: 3}`))
	if err != nil {
		b.Fatal(err)
	}
	L := lua.NewState()
	defer L.Close()
	b.SetBytes(int64(len(wire)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := m.Decode(L, wire); err != nil {
			b.Fatal(err)
		}
	}
}

// TestConcurrentUse runs Decode and Encode of one Message from several goroutines, each with its
// own LState, for the race detector.
func TestConcurrentUse(t *testing.T) {
	m := testMessage(t, testSchema(t), "test.Small")
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			L := lua.NewState()
			defer L.Close()
			for i := 0; i < 200; i++ {
				tbl, err := m.Decode(L, []byte(smallWire))
				if err == nil {
					var out []byte
					out, err = m.Encode(nil, tbl)
					if err == nil && string(out) != smallWire {
						t.Errorf("Encode(Decode(x)) = %x, want %x", out, smallWire)
						return
					}
				}
				if err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}
