package luapb

import (
	"bytes"
	"math/rand/v2"
	"testing"

	lua "github.com/yuin/gopher-lua"
	"google.golang.org/protobuf/encoding/prototext"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/dynamicpb"
)

// roundTrip marshals msg with protobuf-go, decodes it into Lua, encodes the table back and checks
// that protobuf-go reads the same message, bit for bit (so -0 and NaN survive too), and that
// Encode wrote as many bytes as protobuf-go, with the fields in number order (protobuf-go puts
// oneof members last, so the bytes themselves may differ).
func roundTrip(t *testing.T, L *lua.LState, m *Message, msg *dynamicpb.Message) {
	t.Helper()
	want, err := proto.MarshalOptions{Deterministic: true}.Marshal(msg)
	if err != nil {
		t.Fatal(err)
	}
	tbl, err := m.Decode(L, want)
	if err != nil {
		t.Fatalf("Decode(%s): %v", prototext.Format(msg), err)
	}
	out, err := m.Encode(nil, tbl)
	if err != nil {
		t.Fatalf("Encode(Decode(%s)): %v", prototext.Format(msg), err)
	}
	got := dynamicpb.NewMessage(m.Desc)
	if err := proto.Unmarshal(out, got); err != nil {
		t.Fatalf("protobuf-go cannot read Encode's output for %s: %v", prototext.Format(msg), err)
	}
	if !proto.Equal(msg, got) {
		t.Fatalf("round trip changed the message:\nsent %s\ngot  %s", prototext.Format(msg), prototext.Format(got))
	}
	again, err := proto.MarshalOptions{Deterministic: true}.Marshal(got)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(again, want) {
		t.Fatalf("round trip changed the bits of %s:\nsent %x\ngot  %x", prototext.Format(msg), want, again)
	}
	if len(out) != len(want) {
		t.Fatalf("Encode wrote %d bytes for %s, protobuf-go %d", len(out), prototext.Format(msg), len(want))
	}
	last := protowire.Number(0)
	for b := out; len(b) > 0; {
		num, typ, n := protowire.ConsumeTag(b)
		if num < last {
			t.Fatalf("Encode wrote field %d after field %d: %x", num, last, out)
		}
		last = num
		b = b[n:]
		b = b[protowire.ConsumeFieldValue(num, typ, b):]
	}
}

func textMessage(t testing.TB, m *Message, text string) *dynamicpb.Message {
	t.Helper()
	msg := dynamicpb.NewMessage(m.Desc)
	if err := prototext.Unmarshal([]byte(text), msg); err != nil {
		t.Fatalf("bad test message %q: %v", text, err)
	}
	return msg
}

func TestRoundTripExplicit(t *testing.T) {
	s := testSchema(t)
	L := lua.NewState()
	defer L.Close()
	cases := []struct{ msg, text string }{
		{"Scalars", ``},
		{"Scalars", `i32: -2147483648 i64: -9223372036854775808 u32: 4294967295 u64: 18446744073709551615
			s32: -2147483648 s64: -9223372036854775808 f32: 4294967295 f64: 18446744073709551615
			sf32: -2147483648 sf64: -9223372036854775808 fl: -3.4028235e38 db: -1.7976931348623157e308
			b: true s: "héllo 日本" by: "\xff\xfe\x00" color: BLUE`},
		{"Scalars", `i32: 2147483647 i64: 9223372036854775807 s32: 2147483647 s64: 9223372036854775807 sf32: 2147483647 sf64: 9223372036854775807`},
		{"Scalars", `i64: 9007199254740992 u64: 9007199254740993 s64: -9007199254740993 f64: 9007199254740992 sf64: -9007199254740992`},
		{"Scalars", `fl: nan db: -inf`},
		{"Scalars", `fl: inf db: nan`},
		{"Scalars", `fl: -0 db: -0`},
		{"Scalars", `color: NEGATIVE`},
		{"Scalars", `color: 7`},
		{"Scalars", `color: -100`},
		{"Repeats", `i32: [0, -1, 2147483647, -2147483648] i64: [-9223372036854775808, 1] u64: [18446744073709551615, 0]
			s32: [-1, 1] s64: [-9223372036854775808] f32: [0, 4294967295] f64: [18446744073709551615] sf32: [-1] sf64: [-1]
			fl: [nan, -0, inf] db: [-inf, 0.5] b: [true, false, true] s: ["", "x", "ü"] by: ["", "\xff"]
			color: [RED, 7, COLOR_UNSPECIFIED, NEGATIVE] points: [{}, {x: 1}, {y: -1}]
			unpacked_i32: [1, -1] unpacked_db: [nan, 1] unpacked_color: [BLUE, 9]`},
		{"Maps", `ss: {key: "" value: ""} ss: {key: "a" value: "b"} ip: {key: -1 value: {x: 1}} ip: {key: 0 value: {}}
			ip: {key: 1 value: {y: 2}} ip: {key: 1000 value: {}} ll: {key: -9223372036854775808 value: 9223372036854775807}
			ll: {key: 9007199254740993 value: 1} ll: {key: 3 value: -3}
			us: {key: 18446744073709551615 value: "max"} us: {key: 0 value: ""} bc: {key: true value: BLUE} bc: {key: false value: 7}
			sb: {key: -5 value: "\xff"} fd: {key: 18446744073709551615 value: nan} sp: {key: "p" value: {x: 3}}
			uu: {key: 4294967295 value: 1} uu: {key: 1 value: 0} sff: {key: -2147483648 value: -0}
			slb: {key: -1 value: true} fsf: {key: 7 value: -9223372036854775808} sfu: {key: -1 value: 18446744073709551615}`},
		{"Nested", `p: {x: 1} inner: {p: {} children: [{name: "a"}, {children: [{name: "b"}]}]} self: {self: {n: 3}} n: -1`},
		{"Choice", `num: 0`},
		{"Choice", `text: ""`},
		{"Choice", `point: {}`},
		{"Choice", `col: COLOR_UNSPECIFIED other: "o" flag: false`},
		{"Choice", `raw: "\x80" nested: {}`},
		{"Optionals", `oi: 0 os: "" ob: false oc: COLOR_UNSPECIFIED od: -0 ou: 0 oby: ""`},
		{"Optionals", `oi: -1 os: "x" ob: true oc: 7 od: nan ou: 18446744073709551615 oby: "\xff"`},
		{"Sparse", `low: 1 mid: "m" high: -9223372036854775808`},
		{"Outer.Ping", `t: 5`},
	}
	for _, tc := range cases {
		m := s.ByName("test." + tc.msg)
		if m == nil {
			t.Fatalf("no message test.%s", tc.msg)
		}
		roundTrip(t, L, m, textMessage(t, m, tc.text))
	}
}

func TestRoundTripRandom(t *testing.T) {
	s := testSchema(t)
	L := lua.NewState()
	defer L.Close()
	r := rand.New(rand.NewPCG(1, 2))
	n := 300
	if testing.Short() {
		n = 30
	}
	for _, sm := range s.Schema.Messages() {
		m := s.ByID(sm.ID)
		for i := 0; i < n; i++ {
			roundTrip(t, L, m, randomMessage(r, m.Desc, 3))
		}
	}
}
