package luapb

import (
	"encoding/hex"
	"errors"
	"strings"
	"testing"

	lua "github.com/yuin/gopher-lua"
	"google.golang.org/protobuf/encoding/prototext"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/dynamicpb"
)

// luaTable runs a Lua expression and returns the table it evaluates to.
func luaTable(t *testing.T, L *lua.LState, expr string) *lua.LTable {
	t.Helper()
	if err := L.DoString("__t = " + expr); err != nil {
		t.Fatalf("bad Lua %q: %v", expr, err)
	}
	tbl, ok := L.GetGlobal("__t").(*lua.LTable)
	if !ok {
		t.Fatalf("%q is not a table", expr)
	}
	return tbl
}

// TestDecodeLuaView decodes protobuf-go's encoding of a message and runs Lua assertions on the
// table, bound to the global m.
func TestDecodeLuaView(t *testing.T) {
	s := testSchema(t)
	cases := []struct{ msg, text, check string }{
		{"Scalars", ``, `
			assert(m.i32 == 0 and m.i64 == 0 and m.u32 == 0 and m.u64 == 0 and m.s32 == 0 and m.s64 == 0)
			assert(m.f32 == 0 and m.f64 == 0 and m.sf32 == 0 and m.sf64 == 0 and m.fl == 0 and m.db == 0)
			assert(m.b == false and m.s == "" and #m.s == 0 and m.by == "" and m.color == "COLOR_UNSPECIFIED")`},
		{"Scalars", `i32: -2147483648 i64: -9223372036854775808 u32: 4294967295 u64: 18446744073709551615 s32: -7
			s64: -9007199254740992 f32: 4294967295 f64: 9007199254740993 sf32: -1 sf64: 9007199254740992
			fl: 1.5 db: -0.25 b: true s: "héllo" by: "\xff\x00\xfe" color: BLUE`, `
			assert(m.i32 == -2147483648 and m.u32 == 4294967295 and m.s32 == -7 and m.f32 == 4294967295 and m.sf32 == -1)
			assert(m.i64 == "-9223372036854775808" and m.u64 == "18446744073709551615" and m.f64 == "9007199254740993")
			assert(m.s64 == -9007199254740992 and m.sf64 == 9007199254740992)
			assert(m.fl == 1.5 and m.db == -0.25 and m.b == true and m.s == "héllo" and #m.s == 6)
			assert(#m.by == 3 and string.byte(m.by, 1) == 255 and string.byte(m.by, 2) == 0 and m.color == "BLUE")`},
		{"Scalars", `color: 7`, `assert(m.color == 7)`},
		{"Scalars", `color: NEGATIVE fl: nan db: -inf`, `assert(m.color == "NEGATIVE" and m.fl ~= m.fl and m.db == -1/0)`},
		{"Optionals", ``, `assert(m.oi == nil and m.os == nil and m.ob == nil and m.oc == nil and m.od == nil and m.ou == nil and m.oby == nil)`},
		{"Optionals", `oi: 0 os: "" ob: false oc: COLOR_UNSPECIFIED`, `
			assert(m.oi == 0 and m.os == "" and m.ob == false and m.oc == "COLOR_UNSPECIFIED" and m.od == nil)`},
		{"Repeats", ``, `assert(type(m.i32) == "table" and #m.i32 == 0 and #m.points == 0 and next(m.s) == nil)`},
		{"Repeats", `i32: [3, -1, 2] s: ["a", "b"] color: [RED, 9] points: [{x: 1}, {}] unpacked_i32: [4, 5] b: [true, false]`, `
			assert(#m.i32 == 3 and m.i32[1] == 3 and m.i32[2] == -1 and m.i32[3] == 2)
			assert(#m.s == 2 and m.s[2] == "b" and m.color[1] == "RED" and m.color[2] == 9)
			assert(#m.points == 2 and m.points[1].x == 1 and m.points[1].y == 0 and m.points[2].x == 0)
			assert(#m.unpacked_i32 == 2 and m.unpacked_i32[2] == 5 and m.b[1] == true and m.b[2] == false)`},
		{"Maps", ``, `assert(next(m.ss) == nil and next(m.ip) == nil and type(m.bc) == "table")`},
		{"Maps", `ss: {key: "a" value: "b"} ss: {key: "" value: "empty"} ip: {key: 3 value: {x: 1}} ip: {key: -4 value: {}}
			ll: {key: 9223372036854775807 value: -9223372036854775808} ll: {key: 5 value: 6} bc: {key: true value: RED}
			bc: {key: false value: 42} uu: {key: 2 value: 20} uu: {key: 1 value: 10} us: {key: 18446744073709551615 value: "x"}`, `
			assert(m.ss.a == "b" and m.ss[""] == "empty")
			assert(m.ip[3].x == 1 and m.ip[3].y == 0 and m.ip[-4].x == 0)
			assert(m.ll["9223372036854775807"] == "-9223372036854775808" and m.ll[5] == 6)
			assert(m.bc[true] == "RED" and m.bc[false] == 42)
			assert(m.uu[1] == 10 and m.uu[2] == 20 and #m.uu == 2)
			assert(m.us["18446744073709551615"] == "x")`},
		{"Choice", ``, `assert(m.num == nil and m.text == nil and m.point == nil and m.flag == nil and m.other == "")`},
		{"Choice", `text: ""`, `assert(m.text == "" and m.num == nil)`},
		{"Choice", `point: {} flag: false`, `assert(m.point.x == 0 and m.text == nil and m.flag == false and m.nested == nil)`},
		{"Nested", `inner: {children: [{name: "a", children: [{name: "b"}]}]}`, `
			assert(m.p == nil and m.self == nil and m.n == 0 and m.inner.p == nil and m.inner.name == "")
			assert(m.inner.children[1].name == "a" and m.inner.children[1].children[1].name == "b")
			assert(#m.inner.children[1].children[1].children == 0)`},
		{"Sparse", `low: 1 mid: "m" high: -1`, `assert(m.low == 1 and m.mid == "m" and m.high == -1)`},
	}
	for _, tc := range cases {
		m := testMessage(t, s, "test."+tc.msg)
		b, err := proto.Marshal(textMessage(t, m, tc.text))
		if err != nil {
			t.Fatal(err)
		}
		checkDecoded(t, m, b, tc.check)
	}
}

func checkDecoded(t *testing.T, m *Message, b []byte, check string) {
	t.Helper()
	L := lua.NewState()
	defer L.Close()
	tbl, err := m.Decode(L, b)
	if err != nil {
		t.Fatalf("Decode %s %x: %v", m.FullName, b, err)
	}
	L.SetGlobal("m", tbl)
	if err := L.DoString(check); err != nil {
		t.Errorf("%s %x: %v", m.FullName, b, err)
	}
}

// TestDecodeMerges checks protobuf-go's merge rules: the last scalar wins, repeated fields
// append, a repeated message field merges, and a oneof keeps its last member.
func TestDecodeMerges(t *testing.T) {
	s := testSchema(t)
	cat := func(texts ...string) func(m *Message) []byte {
		return func(m *Message) []byte {
			var out []byte
			for _, text := range texts {
				b, err := proto.Marshal(textMessage(t, m, text))
				if err != nil {
					t.Fatal(err)
				}
				out = append(out, b...)
			}
			return out
		}
	}
	cases := []struct {
		msg   string
		wire  func(m *Message) []byte
		check string
	}{
		{"Small", cat(`text: "a" count: 1`, `text: "b"`), `assert(m.text == "b" and m.count == 1)`},
		{"Repeats", cat(`i32: [1, 2] points: [{x: 1}]`, `i32: [3] points: [{y: 2}] unpacked_i32: [7]`, `unpacked_i32: [8]`), `
			assert(#m.i32 == 3 and m.i32[3] == 3 and #m.points == 2 and m.points[2].y == 2)
			assert(#m.unpacked_i32 == 2 and m.unpacked_i32[1] == 7 and m.unpacked_i32[2] == 8)`},
		{"Nested", cat(`p: {x: 1} inner: {children: [{name: "a"}]}`, `p: {y: 2} inner: {name: "n" children: [{name: "b"}]}`), `
			assert(m.p.x == 1 and m.p.y == 2 and m.inner.name == "n" and #m.inner.children == 2)`},
		{"Choice", cat(`num: 5`, `text: "t"`), `assert(m.num == nil and m.text == "t")`},
		{"Choice", cat(`point: {x: 1}`, `point: {y: 2}`), `assert(m.point.x == 1 and m.point.y == 2)`},
		{"Choice", cat(`point: {x: 1}`, `num: 3`, `point: {y: 2}`), `assert(m.num == nil and m.point.x == 0 and m.point.y == 2)`},
		{"Maps", cat(`ss: {key: "k" value: "1"} ip: {key: 1 value: {x: 1}}`, `ss: {key: "k" value: "2"} ip: {key: 1 value: {y: 2}}`), `
			assert(m.ss.k == "2" and m.ip[1].x == 0 and m.ip[1].y == 2)`},
	}
	for _, tc := range cases {
		m := testMessage(t, s, "test."+tc.msg)
		checkDecoded(t, m, tc.wire(m), tc.check)
	}
}

// TestDecodeRawWire covers encodings protobuf-go does not produce itself but must be accepted.
func TestDecodeRawWire(t *testing.T) {
	s := testSchema(t)
	cases := []struct{ msg, hex, check string }{
		// packed and unpacked forms of the same repeated fields, mixed
		{"Repeats", "0a020102" + "0803" + "9201020a0b" + "9001" + "0c", `
			assert(#m.i32 == 3 and m.i32[3] == 3 and #m.unpacked_i32 == 3 and m.unpacked_i32[3] == 12)`},
		// a map entry without key or value, and one with the value before the key
		{"Maps", "0a00" + "4a00" + "4a0410140818" + "1200", `
			assert(m.ss[""] == "" and m.uu[0] == 0 and m.uu[24] == 20 and m.ip[0].x == 0)`},
		// unknown fields of every wire type, a group among them, are skipped
		{"Small", "f80101" + "fd0101020304" + "f90101020304050607 08" + "fa010161" + "fb01 0801 fc01" + "0a0161", `
			assert(m.text == "a" and m.count == 0)`},
		// an int32 sent as a sign-extended 10-byte varint, and a varint bool other than 1
		{"Small", "10ffffffffffffffffff01" + "1805", `assert(m.count == -1 and m.ok == true)`},
		// int32 and enum values wider than 32 bits are truncated, as protobuf-go does
		{"Scalars", "08ffffffff1f" + "80018580808010", `assert(m.i32 == -1 and m.color == "BLUE")`},
		// keys 1..5 arrive out of order yet fill the array part without holes
		{"Maps", "4a0408051005" + "4a0408031003" + "4a0408011001" + "4a0408041004" + "4a0408021002", `
			assert(#m.uu == 5 and m.uu[1] == 1 and m.uu[5] == 5)`},
	}
	for _, tc := range cases {
		b, err := hex.DecodeString(strings.ReplaceAll(tc.hex, " ", ""))
		if err != nil {
			t.Fatal(err)
		}
		checkDecoded(t, testMessage(t, s, "test."+tc.msg), b, tc.check)
		// protobuf-go agrees that these are valid
		if err := proto.Unmarshal(b, dynamicpb.NewMessage(testMessage(t, s, "test."+tc.msg).Desc)); err != nil {
			t.Errorf("protobuf-go rejects %s: %v", tc.hex, err)
		}
	}
}

// TestEncodeLuaTables encodes tables written in Lua and checks what protobuf-go reads.
func TestEncodeLuaTables(t *testing.T) {
	s := testSchema(t)
	L := lua.NewState()
	defer L.Close()
	cases := []struct{ msg, lua, text string }{
		{"Small", `{text = "hi", count = 3, ok = true}`, `text: "hi" count: 3 ok: true`},
		{"Small", `{text = "", count = 0, ok = false}`, ``},
		{"Scalars", `{i32 = -2147483648, i64 = "-9223372036854775808", u32 = 4294967295, u64 = "18446744073709551615",
			s32 = -1, s64 = -5, f32 = 4294967295, f64 = 2^53, sf32 = -1, sf64 = "-9223372036854775807",
			fl = 1.5, db = -0.1, b = true, s = "héllo", by = "\255\000", color = "BLUE"}`,
			`i32: -2147483648 i64: -9223372036854775808 u32: 4294967295 u64: 18446744073709551615 s32: -1 s64: -5
			f32: 4294967295 f64: 9007199254740992 sf32: -1 sf64: -9223372036854775807 fl: 1.5 db: -0.1 b: true
			s: "héllo" by: "\xff\x00" color: BLUE`},
		{"Scalars", `{i64 = 2^62, u64 = 2^63, color = 7}`, `i64: 4611686018427387904 u64: 9223372036854775808 color: 7`},
		{"Scalars", `{i64 = -2^63, color = -3}`, `i64: -9223372036854775808 color: NEGATIVE`},
		{"Scalars", `{fl = 0/0, db = -1/0}`, `fl: nan db: -inf`},
		{"Repeats", `{i32 = {1, -2, 3}, s = {"a", ""}, color = {"RED", 9}, points = {{x = 1}, {}, {y = -1}},
			u64 = {"18446744073709551615", 1}, unpacked_i32 = {5, 6}, b = {true, false}, by = {}}`,
			`i32: [1, -2, 3] s: ["a", ""] color: [RED, 9] points: [{x: 1}, {}, {y: -1}] u64: [18446744073709551615, 1]
			unpacked_i32: [5, 6] b: [true, false]`},
		{"Maps", `{ss = {a = "b", [""] = "e"}, ip = {[3] = {x = 1}, [-1] = {}}, ll = {["9223372036854775807"] = 1, [5] = "-5"},
			bc = {[true] = "RED", [false] = 7}, uu = {10, 20}, us = {[2^53] = "big"}}`,
			`ss: {key: "a" value: "b"} ss: {key: "" value: "e"} ip: {key: 3 value: {x: 1}} ip: {key: -1 value: {}}
			ll: {key: 9223372036854775807 value: 1} ll: {key: 5 value: -5} bc: {key: true value: RED} bc: {key: false value: 7}
			uu: {key: 1 value: 10} uu: {key: 2 value: 20} us: {key: 9007199254740992 value: "big"}`},
		{"Choice", `{point = {x = 1}, other = "o"}`, `point: {x: 1} other: "o"`},
		{"Choice", `{text = "", nested = {}}`, `text: "" nested: {}`},
		{"Choice", `{num = 0}`, `num: 0`},
		{"Optionals", `{oi = 0, os = "", ob = false, oc = "COLOR_UNSPECIFIED", od = 0, ou = 0, oby = ""}`,
			`oi: 0 os: "" ob: false oc: COLOR_UNSPECIFIED od: 0 ou: 0 oby: ""`},
		{"Nested", `{inner = {children = {{name = "a"}, {name = "b", children = {{name = "c"}}}}}, self = {n = 2}}`,
			`inner: {children: [{name: "a"}, {name: "b" children: [{name: "c"}]}]} self: {n: 2}`},
		{"Sparse", `{low = 1, mid = "m", high = -1}`, `low: 1 mid: "m" high: -1`},
	}
	for _, tc := range cases {
		m := testMessage(t, s, "test."+tc.msg)
		out, err := m.Encode(nil, luaTable(t, L, tc.lua))
		if err != nil {
			t.Fatalf("Encode %s: %v", tc.lua, err)
		}
		got := dynamicpb.NewMessage(m.Desc)
		if err := proto.Unmarshal(out, got); err != nil {
			t.Fatalf("protobuf-go cannot read Encode(%s) = %x: %v", tc.lua, out, err)
		}
		if want := textMessage(t, m, tc.text); !proto.Equal(got, want) {
			t.Errorf("Encode(%s):\ngot  %s\nwant %s", tc.lua, prototext.Format(got), prototext.Format(want))
		}
	}
}

func TestEncodeAppendsAndDefaultsAreLeftOut(t *testing.T) {
	s := testSchema(t)
	L := lua.NewState()
	defer L.Close()
	m := testMessage(t, s, "test.Scalars")
	out, err := m.Encode([]byte("prefix"), luaTable(t, L, `{i32 = 0, s = "", b = false, color = "COLOR_UNSPECIFIED", db = 0, by = ""}`))
	if err != nil || string(out) != "prefix" {
		t.Fatalf("Encode = %q, %v; want only the prefix", out, err)
	}
	out, err = m.Encode(out, luaTable(t, L, `{db = -0.0}`))
	if err != nil || hex.EncodeToString(out[6:]) != "610000000000000080" {
		t.Fatalf("Encode(-0.0) = %x, %v; want the sign bit written", out, err)
	}
}

func TestEncodeLongMessagesGetLongLengths(t *testing.T) {
	s := testSchema(t)
	L := lua.NewState()
	defer L.Close()
	m := testMessage(t, s, "test.Nested")
	long := strings.Repeat("x", 300)
	out, err := m.Encode(nil, luaTable(t, L, `{inner = {name = "`+long+`", children = {{name = "`+long+`"}}}}`))
	if err != nil {
		t.Fatal(err)
	}
	got := dynamicpb.NewMessage(m.Desc)
	if err := proto.Unmarshal(out, got); err != nil {
		t.Fatal(err)
	}
	want := textMessage(t, m, `inner: {name: "`+long+`" children: [{name: "`+long+`"}]}`)
	if !proto.Equal(got, want) {
		t.Fatalf("got %s", prototext.Format(got))
	}
}

func TestEncodeErrors(t *testing.T) {
	s := testSchema(t)
	L := lua.NewState()
	defer L.Close()
	cases := []struct{ msg, lua, want string }{
		{"Small", `{txt = "x"}`, `test.Small: unknown field "txt"`},
		{"Small", `{"x"}`, `test.Small: unknown field 1 (number)`},
		{"Small", `{text = 5}`, `test.Small.text: want string, got number`},
		{"Small", `{count = "5"}`, `test.Small.count: want number, got string`},
		{"Small", `{count = 1.5}`, `test.Small.count: want an integer, got 1.5`},
		{"Small", `{count = 2^31}`, `test.Small.count: 2147483648 out of range`},
		{"Small", `{count = 0/0}`, `test.Small.count: want an integer, got NaN`},
		{"Small", `{ok = 1}`, `test.Small.ok: want boolean, got number`},
		{"Scalars", `{u32 = -1}`, `test.Scalars.u32: -1 out of range`},
		{"Scalars", `{u64 = -1}`, `test.Scalars.u64: -1 out of range`},
		{"Scalars", `{u64 = "-1"}`, `test.Scalars.u64: want a number or decimal string, got "-1"`},
		{"Scalars", `{i64 = 2^63}`, `test.Scalars.i64: 9223372036854775808 out of range`},
		{"Scalars", `{i64 = "9223372036854775808"}`, `test.Scalars.i64: "9223372036854775808" out of range`},
		{"Scalars", `{i64 = "12abc"}`, `test.Scalars.i64: want a number or decimal string, got "12abc"`},
		{"Scalars", `{i64 = 1/0}`, `test.Scalars.i64: want an integer, got +Inf`},
		{"Scalars", `{i32 = "1"}`, `test.Scalars.i32: want number, got string`},
		{"Scalars", `{s = "\255"}`, `test.Scalars.s: invalid UTF-8`},
		{"Scalars", `{color = "PURPLE"}`, `test.Scalars.color: "PURPLE" is not a value of enum test.Color`},
		{"Scalars", `{color = 1.5}`, `test.Scalars.color: want an integer, got 1.5`},
		{"Scalars", `{color = true}`, `test.Scalars.color: want enum name or number, got boolean`},
		{"Scalars", `{fl = 1e39}`, `test.Scalars.fl: 1e+39 out of range for float`},
		{"Scalars", `{by = {}}`, `test.Scalars.by: want string, got table`},
		{"Choice", `{num = 1, text = "x"}`, `test.Choice: oneof pick has two members set: num and text`},
		{"Choice", `{flag = true, nested = {}}`, `test.Choice: oneof second has two members set: flag and nested`},
		{"Repeats", `{i32 = {1, nil, 3}}`, `test.Repeats.i32: want a sequence, got a hole at index 2 of 3`},
		{"Repeats", `{i32 = {1, 2, x = 3}}`, `test.Repeats.i32: want a sequence, got key "x" (string)`},
		{"Repeats", `{i32 = {[2] = 1}}`, `test.Repeats.i32: want a sequence, got a hole at index 1 of 2`},
		{"Repeats", `{i32 = {[1.5] = 1}}`, `test.Repeats.i32: want a sequence, got key 1.5 (number)`},
		{"Repeats", `{i32 = 5}`, `test.Repeats.i32: want table (sequence), got number`},
		{"Repeats", `{i32 = {1, "2"}}`, `test.Repeats.i32[2]: want number, got string`},
		{"Repeats", `{s = {"a", 2}}`, `test.Repeats.s[2]: want string, got number`},
		{"Repeats", `{points = {{x = 1}, {x = "bad"}}}`, `test.Repeats.points[2].x: want number, got string`},
		{"Repeats", `{points = {{x = 1}, 5}}`, `test.Repeats.points[2]: want table, got number`},
		{"Maps", `{ss = {[1] = "a"}}`, `test.Maps.ss[1]: want string key, got number`},
		{"Maps", `{ss = {a = 1}}`, `test.Maps.ss["a"]: want string, got number`},
		{"Maps", `{ip = {a = {}}}`, `test.Maps.ip["a"]: want number, got string`},
		{"Maps", `{ip = {[1.5] = {}}}`, `test.Maps.ip[1.5]: want an integer, got 1.5`},
		{"Maps", `{ip = {[1] = {x = "s"}}}`, `test.Maps.ip[1].x: want number, got string`},
		{"Maps", `{ll = {[5] = 1, ["5"] = 2}}`, `test.Maps.ll: map keys 5 and "5" are the same key`},
		{"Maps", `{bc = {[true] = "NOPE"}}`, `test.Maps.bc[true]: "NOPE" is not a value of enum test.Color`},
		{"Maps", `{ss = "x"}`, `test.Maps.ss: want table (map), got string`},
		{"Nested", `{p = "x"}`, `test.Nested.p: want table, got string`},
		{"Everything", `{repeats = {points = {{x = 1}, {x = "bad"}}}}`, `test.Everything.repeats.points[2].x: want number, got string`},
		{"Everything", `{more = {{maps = {ip = {[7] = {y = {}}}}}}}`, `test.Everything.more[1].maps.ip[7].y: want number, got table`},
	}
	for _, tc := range cases {
		m := testMessage(t, s, "test."+tc.msg)
		prefix := []byte("keep")
		out, err := m.Encode(prefix, luaTable(t, L, tc.lua))
		if err == nil {
			t.Errorf("Encode(%s) = %x, want error %q", tc.lua, out, tc.want)
			continue
		}
		if !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("Encode(%s) error %q, want %q", tc.lua, err, tc.want)
		}
		if string(out) != "keep" {
			t.Errorf("Encode(%s) returned %q on error, want dst unchanged", tc.lua, out)
		}
	}
}

func TestEncodeRejectsCycles(t *testing.T) {
	s := testSchema(t)
	L := lua.NewState()
	defer L.Close()
	tbl := luaTable(t, L, `(function() local t = {n = 1}; t.self = t; return t end)()`)
	_, err := testMessage(t, s, "test.Nested").Encode(nil, tbl)
	if !errors.Is(err, errTooDeep) {
		t.Fatalf("err = %v, want nesting too deep", err)
	}
	if _, err := testMessage(t, s, "test.Nested").Encode(nil, nil); err == nil {
		t.Fatal("Encode(nil table) succeeded")
	}
}

func TestDecodeErrors(t *testing.T) {
	s := testSchema(t)
	L := lua.NewState()
	defer L.Close()
	cases := []struct{ msg, hex, want string }{
		{"Small", "0a056869", `test.Small.text: malformed wire data: unexpected EOF`},
		{"Small", "0a", `test.Small.text: malformed wire data: unexpected EOF`},
		{"Small", "10", `test.Small.count: malformed wire data: unexpected EOF`},
		{"Small", "120101", `test.Small.count: wrong wire type bytes for a int32 field (want varint)`},
		{"Small", "0d00000000", `test.Small.text: wrong wire type fixed32 for a string field (want bytes)`},
		{"Small", "0a01ff", `test.Small.text: invalid UTF-8`},
		{"Small", "10ffffffffffffffffff02", `test.Small.count: malformed wire data: variable length integer overflow`},
		{"Small", "0001", `test.Small: malformed wire data: invalid field number`},
		{"Small", "80", `test.Small: malformed wire data: unexpected EOF`},
		{"Small", "0c", `test.Small.text: wrong wire type end-group for a string field (want bytes)`},
		{"Small", "0f", `test.Small.text: wrong wire type reserved(7)`},
		{"Small", "f80f", `test.Small(field 255): malformed wire data: unexpected EOF`},
		{"Small", "fb01fc02", `test.Small(field 31): malformed wire data: mismatching end group marker`},
		{"Small", "ffffffff7f00", `test.Small: malformed wire data: invalid field number`},
		{"Small", "808080801000", `test.Small: field number 536870912 out of range`},
		{"Scalars", "5d0000", `test.Scalars.fl: malformed wire data: unexpected EOF`},
		{"Repeats", "0a0380", `test.Repeats.i32: malformed wire data: unexpected EOF`},
		{"Repeats", "0a0180", `test.Repeats.i32[1]: malformed wire data: unexpected EOF`},
		{"Repeats", "3a03000000", `test.Repeats.f32[1]: malformed wire data: unexpected EOF`},
		{"Repeats", "7000", `test.Repeats.s: wrong wire type varint for a string field`},
		{"Repeats", "72020aff", `test.Repeats.s[1]: invalid UTF-8`},
		{"Repeats", "8a01020801" + "8a0102080f" + "8a0102100a" + "8a0103081a0e", `test.Repeats.points[4].x: wrong wire type reserved(6)`},
		{"Repeats", "8a0103" + "0a01ff", `test.Repeats.points[1].x: wrong wire type bytes`},
		{"Repeats", "8801 01", `test.Repeats.points: wrong wire type varint for a message field (want bytes)`},
		{"Maps", "0a030a01ff", `test.Maps.ss(key): invalid UTF-8`},
		{"Maps", "0a03120180", `test.Maps.ss(value): invalid UTF-8`},
		{"Maps", "12040a020801", `test.Maps.ip(key): wrong wire type bytes`},
		{"Maps", "1204 0801 1201", `test.Maps.ip: malformed wire data: unexpected EOF`},
		{"Maps", "1205 1203 0a01 00", `test.Maps.ip(value).x: wrong wire type bytes`},
		{"Maps", "0803", `test.Maps.ss: wrong wire type varint for a map field (want bytes)`},
		{"Nested", "0a020a00", `test.Nested.p.x: wrong wire type bytes`},
		{"Nested", "1203 1201 ff", `test.Nested.inner.children[1]: malformed wire data`},
	}
	for _, tc := range cases {
		b, err := hex.DecodeString(strings.ReplaceAll(tc.hex, " ", ""))
		if err != nil {
			t.Fatal(err)
		}
		_, err = testMessage(t, s, "test."+tc.msg).Decode(L, b)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Decode %s %s: error %v, want %q", tc.msg, tc.hex, err, tc.want)
		}
	}
	if _, err := testMessage(t, s, "test.Small").Decode(nil, nil); err == nil {
		t.Error("Decode with a nil LState succeeded")
	}
}

// nestedSelf is the wire encoding of a test.Nested whose self field nests depth times.
func nestedSelf(depth int) []byte {
	b := []byte{0x20, 0x01} // n = 1
	for i := 0; i < depth; i++ {
		b = protowire.AppendBytes(protowire.AppendTag(nil, 3, protowire.BytesType), b)
	}
	return b
}

func TestDecodeDepthLimit(t *testing.T) {
	s := testSchema(t)
	L := lua.NewState()
	defer L.Close()
	m := testMessage(t, s, "test.Nested")
	tbl, err := m.Decode(L, nestedSelf(maxDepth))
	if err != nil {
		t.Fatalf("%d levels: %v", maxDepth, err)
	}
	if out, err := m.Encode(nil, tbl); err != nil || string(out) != string(nestedSelf(maxDepth)) {
		t.Fatalf("Encode of %d levels: %v", maxDepth, err)
	}
	_, err = m.Decode(L, nestedSelf(maxDepth+1))
	if !errors.Is(err, errTooDeep) || !strings.Contains(err.Error(), "test.Nested.self.self.self") {
		t.Fatalf("%d levels: err = %v, want nesting too deep", maxDepth+1, err)
	}
}

// mapEntries encodes entries of test.Maps.uu (map<uint32, uint32>) with the given keys.
func mapEntries(keys ...uint64) []byte {
	var b []byte
	for _, k := range keys {
		var e []byte
		e = protowire.AppendVarint(protowire.AppendTag(e, 1, protowire.VarintType), k)
		e = protowire.AppendVarint(protowire.AppendTag(e, 2, protowire.VarintType), k+1)
		b = protowire.AppendBytes(protowire.AppendTag(b, 9, protowire.BytesType), e)
	}
	return b
}

func TestDecodeSparseMapKeys(t *testing.T) {
	s := testSchema(t)
	m := testMessage(t, s, "test.Maps")
	L := lua.NewState()
	defer L.Close()
	var keys []uint64
	for k := uint64(2000); k >= 1; k-- {
		keys = append(keys, k)
	}
	keys = append(keys, 2000) // a repeated key: the later entry wins
	b := append(mapEntries(keys...), mapEntries(uint64(lua.MaxArrayIndex), 1<<31, 0)...)
	tbl, err := m.Decode(L, b)
	if err != nil {
		t.Fatal(err)
	}
	uu := tbl.RawGetString("uu").(*lua.LTable)
	if uu.Len() != 2000 || uu.RawGetInt(2000) != lua.LNumber(2001) || uu.RawGetInt(1) != lua.LNumber(2) {
		t.Fatalf("len %d, uu[2000] = %v", uu.Len(), uu.RawGetInt(2000))
	}
	if uu.RawGet(lua.LNumber(1<<31)) != lua.LNumber(1<<31+1) || uu.RawGet(lua.LNumber(0)) != lua.LNumber(1) {
		t.Fatal("keys outside the array part are missing")
	}
	if _, err := m.Decode(L, mapEntries(maxHoles)); err != nil {
		t.Fatalf("key %d: %v", maxHoles, err)
	}
	_, err = m.Decode(L, mapEntries(maxHoles+2))
	if !errors.Is(err, errSparseKeys) || !strings.Contains(err.Error(), "test.Maps.uu: integer map keys too sparse") {
		t.Fatalf("key %d: err = %v, want too sparse", maxHoles+2, err)
	}
	// the limit holds for a whole Decode, across messages
	maps := protowire.AppendBytes(protowire.AppendTag(nil, 3, protowire.BytesType), mapEntries(maxHoles/2+2))
	everything := protowire.AppendBytes(protowire.AppendTag(maps, 8, protowire.BytesType), maps)
	if _, err := testMessage(t, s, "test.Everything").Decode(L, maps); err != nil {
		t.Fatalf("one sparse key: %v", err)
	}
	_, err = testMessage(t, s, "test.Everything").Decode(L, everything)
	if !errors.Is(err, errSparseKeys) || !strings.Contains(err.Error(), "test.Everything.more[1].maps.uu:") {
		t.Fatalf("two sparse keys: err = %v, want too sparse", err)
	}
}
