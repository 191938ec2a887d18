// Package luapb converts messages of a loaded schema between Protocol Buffers wire bytes and
// gopher-lua tables. It is the one package of the protobuf side that knows Lua: schema (loading,
// ids) and the Go client do without it.
//
// New builds a codec for every message type of a schema once: field tables computed up front, so
// Decode and Encode walk the wire format directly with protowire, without reflection or dynamicpb.
//
// # Lua mapping
//
// Decode (bytes to table) follows proto3 semantics:
//
//   - A scalar field with implicit presence is always in the table, with its value or its
//     default ("", 0, false, the name of enum value 0), so Lua can write #req.text without a nil
//     check. Fields with explicit presence (proto3 optional, oneof members, message fields) are in
//     the table only when they are on the wire.
//   - string is a Lua string (invalid UTF-8 is an error, as in protobuf-go); bytes is a Lua
//     string, binary safe.
//   - int32, sint32, sfixed32, uint32, fixed32, float and double are numbers. int64, sint64,
//     sfixed64, uint64 and fixed64 are numbers when |v| <= 2^53, else decimal strings, so no
//     precision is lost.
//   - bool is a boolean. An enum is the name of its value (a string) when the number is declared,
//     else the number (enums are open).
//   - A repeated field is a sequence (1-based), always present, empty when absent; packed and
//     unpacked encodings are both accepted. A map is a table keyed by the map key (string, number
//     or boolean; 64-bit keys beyond 2^53 are decimal strings), always present. A nested message
//     is a table.
//   - A field that occurs more than once merges as in protobuf-go: the last scalar wins, repeated
//     fields append, messages merge, a later map entry replaces an earlier one with the same key,
//     and a oneof keeps only its last member, under that member's own field name.
//   - Unknown fields are skipped. Truncated or malformed input, a known field with the wrong wire
//     type, invalid UTF-8 and overflowing varints are errors, as are messages nested more than 100
//     deep.
//   - gopher-lua keeps integer keys 1 to lua.MaxArrayIndex in a table's array part, so a map key
//     of 10^7 would allocate ten million slots. Decode sets integer map keys in ascending order
//     (dense keys never leave holes, whatever their order on the wire) and fails if a message's
//     sparse keys would add more than 65536 nil slots in all. Key sparse ids (player ids, for
//     example) with strings instead.
//
// Encode (table to bytes) reads tables raw, ignoring metatables:
//
//   - Every key must be the name of a field of the message; any other key is an error naming it.
//     Absent (nil) fields are not written, nor are implicit-presence scalars at their default.
//   - Types are checked: string and bytes fields take Lua strings (valid UTF-8 for string);
//     numeric fields take numbers, which must be integral and in range for integer fields (64-bit
//     ones also take decimal strings); a float takes any number within float32 range; an enum
//     takes a value name or a number; a bool takes a boolean; a repeated field takes a sequence
//     (keys exactly 1..n); a map takes a table whose keys have the key type; a message takes a
//     table. Setting two members of one oneof is an error naming both. Tables nested more than 100
//     deep (a table that contains itself, say) are an error.
//   - Fields are written in field-number order, repeated scalars packed, map entries sorted by
//     key, so equal tables encode to equal bytes.
//
// Errors name the field path, e.g. "demo.ArenaState.players[2].x: want number, got string";
// map keys appear as ["key"] or [7], (key) or (value) marks the part of a map entry at fault, and
// (field 9) an unknown field.
package luapb

import (
	"errors"

	lua "github.com/yuin/gopher-lua"

	"github.com/moonforge/moonforge/engine/schema"
)

// Codecs are the Lua codecs of one schema's messages with an id. Immutable after New and safe for
// concurrent use; a hot reload builds new Codecs with the new schema.
type Codecs struct {
	Schema *schema.Schema
	byID   []*Message // by schema.Message.Index
	byName map[string]*Message
}

// New builds the codec of every message of s (and of every type they contain); nil for a nil s.
func New(s *schema.Schema) *Codecs {
	if s == nil {
		return nil
	}
	cs := &Codecs{Schema: s, byID: make([]*Message, len(s.Messages())), byName: map[string]*Message{}}
	b := newCodecBuilder()
	for _, m := range s.Messages() {
		lm := &Message{Message: m, codec: b.message(m.Desc)}
		cs.byID[m.Index] = lm
		cs.byName[m.FullName] = lm
		if s.ByName(m.Name) == m {
			cs.byName[m.Name] = lm
		}
	}
	return cs
}

// ByID returns the message with the given id, or nil if the schema has none (or cs is nil).
func (cs *Codecs) ByID(id uint16) *Message {
	if cs == nil {
		return nil
	}
	if m := cs.Schema.ByID(id); m != nil {
		return cs.byID[m.Index]
	}
	return nil
}

// ByName is schema.Schema.ByName with the message's codec; nil if none (or cs is nil).
func (cs *Codecs) ByName(name string) *Message {
	if cs == nil {
		return nil
	}
	return cs.byName[name]
}

// Message is a schema message with its codec. Decode and Encode may be called from any
// goroutine, each with tables of an LState that the calling goroutine owns.
type Message struct {
	*schema.Message
	codec *codec
}

// Decode converts the wire bytes b into a new table created in L, as the package documentation
// describes. It does not keep b. It never panics: malformed input returns an error naming the
// field path.
func (m *Message) Decode(L *lua.LState, b []byte) (*lua.LTable, error) {
	if L == nil {
		return nil, errors.New("luapb: Decode " + m.FullName + ": nil LState")
	}
	return decode(L, m.codec, b)
}

// Encode appends the wire encoding of t to dst and returns the extended slice. Tables are read
// raw (metatables are ignored) and not modified. On error it returns dst unchanged and an error
// naming the field path, e.g. "demo.ArenaState.players[2].x: want number, got string".
func (m *Message) Encode(dst []byte, t *lua.LTable) ([]byte, error) {
	return encode(dst, m.codec, t)
}

// Type is the codec of any message type of a schema, with or without an id (a player's data
// record, say). Like Message, safe for concurrent use with tables of the caller's own LState.
type Type struct {
	FullName string
	codec    *codec
}

// Type returns the codec of the message type with the given full name, with or without an id;
// nil if the schema has none (or cs is nil). It builds the codec on every call: keep the result.
func (cs *Codecs) Type(fullName string) *Type {
	if cs == nil || cs.Schema == nil {
		return nil
	}
	md := cs.Schema.Describe(fullName)
	if md == nil {
		return nil
	}
	return &Type{FullName: fullName, codec: newCodecBuilder().message(md)}
}

// Decode is Message.Decode for this type.
func (t *Type) Decode(L *lua.LState, b []byte) (*lua.LTable, error) {
	if L == nil {
		return nil, errors.New("luapb: Decode " + t.FullName + ": nil LState")
	}
	return decode(L, t.codec, b)
}

// Encode is Message.Encode for this type.
func (t *Type) Encode(dst []byte, tb *lua.LTable) ([]byte, error) {
	return encode(dst, t.codec, tb)
}
