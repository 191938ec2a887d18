package luapb

import (
	"math"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	lua "github.com/yuin/gopher-lua"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// maxExact is the largest magnitude of a 64-bit integer that Decode gives Lua as a number.
const maxExact = 1 << 53

// Decode's budget: a payload of n bytes may build at most decodeBase + decodePerByte*n Lua table
// entries, counted per message as its field count (the defaults of absent fields included), so
// that a small payload of empty nested messages cannot build a huge tree of tables.
const (
	decodeBase    = 4096
	decodePerByte = 16
)

// yieldEvery is how many fields a decode reads between yields of its thread (runtime.Gosched):
// Go preempts a running goroutine only after 10 ms, and a payload of half a million fields takes
// about that long, which would hold one of the process's GOMAXPROCS threads from every other
// connection and actor. A few thousand fields take tens of microseconds.
const yieldEvery = 4096

// decoder holds the state of one Decode call. It is confined to the calling goroutine.
type decoder struct {
	L      *lua.LState
	holes  int // nil slots created so far by sparse integer map keys
	budget int // table entries the call may still build
	fields int // fields read so far, for yieldEvery
}

// read counts one field or packed element read, and yields the thread every yieldEvery of them.
func (d *decoder) read() {
	if d.fields++; d.fields%yieldEvery == 0 {
		runtime.Gosched()
	}
}

// pendingEntry is a map entry whose integer key would leave holes in the table's array part if
// set now; the entries of a map are set in key order once its message is decoded.
type pendingEntry struct {
	f   *field
	t   *lua.LTable
	key int
	val lua.LValue
}

func decode(L *lua.LState, c *codec, b []byte) (*lua.LTable, error) {
	d := decoder{L: L, budget: decodeBase + decodePerByte*len(b)}
	t := L.CreateTable(0, len(c.fields))
	if err := d.message(c, t, b, 0, false); err != nil {
		return nil, rooted(err, c.name)
	}
	return t, nil
}

// message decodes b into t. When merge is set, t already holds a decoded message of type c (the
// field occurred again on the wire) and b is merged into it as protobuf-go merges.
func (d *decoder) message(c *codec, t *lua.LTable, b []byte, depth int, merge bool) error {
	if depth > maxDepth {
		return kindErrorf(errTooDeep, "messages nested deeper than %d", maxDepth)
	}
	if d.budget -= 1 + len(c.fields); d.budget < 0 {
		return kindErrorf(errTooBig, "the message would build more than %d table entries per payload byte", decodePerByte)
	}
	var seenBuf, deferBuf [2]uint64
	seen, deferring := seenBuf[:], deferBuf[:]
	if w := (len(c.fields) + 63) / 64; w > len(seenBuf) {
		seen, deferring = make([]uint64, w), make([]uint64, w)
	}
	var pending []pendingEntry
	for len(b) > 0 {
		d.read()
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return malformed(n)
		}
		if num > protowire.MaxValidNumber {
			return errorf("field number %d out of range", num)
		}
		b = b[n:]
		f := c.lookup(num)
		if f == nil {
			n = protowire.ConsumeFieldValue(num, typ, b)
			if n < 0 {
				return at(malformed(n), "(field "+strconv.Itoa(int(num))+")")
			}
			b = b[n:]
			continue
		}
		word, bit := f.index/64, uint64(1)<<(f.index%64)
		fresh := !merge && seen[word]&bit == 0
		seen[word] |= bit
		var err error
		switch {
		case f.list:
			n, err = d.list(f, d.listTable(t, f, fresh), typ, b, depth)
		case f.isMap():
			mt := d.listTable(t, f, fresh)
			var key, val lua.LValue
			key, val, n, err = d.mapEntry(f, typ, b, depth)
			if err != nil {
				break
			}
			// An integer key that would leave holes in the array part waits until the
			// message ends; so do the later keys of that map, to keep the wire order.
			if ik, ok := arrayIndex(key); ok && (deferring[word]&bit != 0 || ik > mt.MaxN()+1) {
				deferring[word] |= bit
				pending = append(pending, pendingEntry{f: f, t: mt, key: ik, val: val})
			} else {
				mt.RawSet(key, val)
			}
		case f.kind == protoreflect.MessageKind:
			n, err = d.subMessage(c, f, t, typ, b, depth)
		default:
			var v lua.LValue
			v, n, err = scalar(f, typ, b)
			if err == nil {
				if f.oneof >= 0 {
					clearOneof(c, t, f)
				}
				t.RawSet(f.key, v)
			}
		}
		if err != nil {
			return at(err, fieldSegment(f))
		}
		b = b[n:]
	}
	if len(pending) > 0 {
		if err := d.flush(pending); err != nil {
			return err
		}
	}
	if merge {
		return nil
	}
	for i, f := range c.fields {
		if seen[i/64]&(uint64(1)<<(i%64)) != 0 {
			continue
		}
		switch {
		case f.implicit:
			t.RawSet(f.key, f.zero)
		case f.list || f.isMap():
			t.RawSet(f.key, d.L.CreateTable(0, 0))
		}
	}
	return nil
}

// listTable returns the table of a repeated or map field of t, creating it on the field's first
// occurrence.
func (d *decoder) listTable(t *lua.LTable, f *field, fresh bool) *lua.LTable {
	if !fresh {
		if lt, ok := t.RawGetString(f.name).(*lua.LTable); ok {
			return lt
		}
	}
	var lt *lua.LTable
	if f.isMap() {
		lt = d.L.CreateTable(0, 0)
	} else {
		lt = d.L.CreateTable(4, 0)
	}
	t.RawSet(f.key, lt)
	return lt
}

// clearOneof removes the members of f's oneof other than f from t: the last member on the wire wins.
func clearOneof(c *codec, t *lua.LTable, f *field) {
	for _, g := range c.fields {
		if g.oneof == f.oneof && g != f {
			t.RawSetString(g.name, lua.LNil)
		}
	}
}

// subMessage decodes a message field of t, merging into the table already there when the field
// occurs again.
func (d *decoder) subMessage(c *codec, f *field, t *lua.LTable, typ protowire.Type, b []byte, depth int) (int, error) {
	if typ != protowire.BytesType {
		return 0, wrongWire(f, typ)
	}
	v, n := protowire.ConsumeBytes(b)
	if n < 0 {
		return 0, malformed(n)
	}
	if st, ok := t.RawGetString(f.name).(*lua.LTable); ok {
		return n, d.message(f.msg, st, v, depth+1, true)
	}
	st := d.L.CreateTable(0, len(f.msg.fields))
	if err := d.message(f.msg, st, v, depth+1, false); err != nil {
		return 0, err
	}
	if f.oneof >= 0 {
		clearOneof(c, t, f)
	}
	t.RawSet(f.key, st)
	return n, nil
}

func (d *decoder) list(f *field, lt *lua.LTable, typ protowire.Type, b []byte, depth int) (int, error) {
	if f.kind == protoreflect.MessageKind {
		if typ != protowire.BytesType {
			return 0, wrongWire(f, typ)
		}
		v, n := protowire.ConsumeBytes(b)
		if n < 0 {
			return 0, malformed(n)
		}
		st := d.L.CreateTable(0, len(f.msg.fields))
		if err := d.message(f.msg, st, v, depth+1, false); err != nil {
			return 0, at(err, indexSegment(lt.Len()+1))
		}
		lt.Append(st)
		return n, nil
	}
	if typ != f.wire && !(typ == protowire.BytesType && f.packable) {
		return 0, wrongWire(f, typ)
	}
	if typ == protowire.BytesType && f.packable {
		v, n := protowire.ConsumeBytes(b)
		if n < 0 {
			return 0, malformed(n)
		}
		for len(v) > 0 {
			d.read()
			x, m, err := scalar(f, f.wire, v)
			if err != nil {
				return 0, at(err, indexSegment(lt.Len()+1))
			}
			lt.Append(x)
			v = v[m:]
		}
		return n, nil
	}
	x, n, err := scalar(f, typ, b)
	if err != nil {
		return 0, at(err, indexSegment(lt.Len()+1))
	}
	lt.Append(x)
	return n, nil
}

// mapEntry decodes one entry of map field f. A missing key or value is the type's default (an
// empty message for message values), as in protobuf-go.
func (d *decoder) mapEntry(f *field, typ protowire.Type, b []byte, depth int) (key, val lua.LValue, n int, err error) {
	if typ != protowire.BytesType {
		return nil, nil, 0, wrongWire(f, typ)
	}
	entry, n := protowire.ConsumeBytes(b)
	if n < 0 {
		return nil, nil, 0, malformed(n)
	}
	vf := f.mapVal
	for len(entry) > 0 {
		num, etyp, m := protowire.ConsumeTag(entry)
		if m < 0 {
			return nil, nil, 0, malformed(m)
		}
		if num > protowire.MaxValidNumber {
			return nil, nil, 0, errorf("map entry field number %d out of range", num)
		}
		entry = entry[m:]
		switch {
		case num == 1:
			if key, m, err = scalar(f.mapKey, etyp, entry); err != nil {
				return nil, nil, 0, at(err, "(key)")
			}
		case num == 2 && vf.kind != protoreflect.MessageKind:
			if val, m, err = scalar(vf, etyp, entry); err != nil {
				return nil, nil, 0, at(err, "(value)")
			}
		case num == 2:
			if etyp != protowire.BytesType {
				return nil, nil, 0, at(wrongWire(vf, etyp), "(value)")
			}
			var v []byte
			if v, m = protowire.ConsumeBytes(entry); m < 0 {
				return nil, nil, 0, malformed(m)
			}
			st, merge := val.(*lua.LTable)
			if !merge {
				st = d.L.CreateTable(0, len(vf.msg.fields))
			}
			if err := d.message(vf.msg, st, v, depth+1, merge); err != nil {
				return nil, nil, 0, at(err, "(value)")
			}
			val = st
		default:
			if m = protowire.ConsumeFieldValue(num, etyp, entry); m < 0 {
				return nil, nil, 0, malformed(m)
			}
		}
		entry = entry[m:]
	}
	if key == nil {
		key = f.mapKey.zero
	}
	if val == nil && vf.kind == protoreflect.MessageKind {
		st := d.L.CreateTable(0, len(vf.msg.fields))
		if err := d.message(vf.msg, st, nil, depth+1, false); err != nil {
			return nil, nil, 0, err
		}
		val = st
	} else if val == nil {
		val = vf.zero
	}
	return key, val, n, nil
}

// arrayIndex reports whether gopher-lua keeps key in a table's array part, and at which index.
func arrayIndex(key lua.LValue) (int, bool) {
	k, ok := key.(lua.LNumber)
	if !ok || k < 1 || k >= lua.LNumber(lua.MaxArrayIndex) {
		return 0, false
	}
	return int(k), true
}

// flush sets the pending map entries in key order, so that dense keys arriving out of order leave
// no holes; later entries with the same key win, as on the wire.
func (d *decoder) flush(pending []pendingEntry) error {
	slices.SortStableFunc(pending, func(x, y pendingEntry) int {
		if x.f != y.f {
			return x.f.index - y.f.index
		}
		return x.key - y.key
	})
	for _, p := range pending {
		if top := p.t.MaxN(); p.key > top+1 {
			d.holes += p.key - top - 1
			if d.holes > maxHoles {
				return at(kindErrorf(errSparseKeys, "integer map keys too sparse for a Lua table (key %d would add %d nil slots to its array part; at most %d per Decode)",
					p.key, p.key-top-1, maxHoles), fieldSegment(p.f))
			}
		}
		p.t.RawSetInt(p.key, p.val)
	}
	return nil
}

// scalar decodes one value of the non-message field f whose wire type on the wire is typ.
func scalar(f *field, typ protowire.Type, b []byte) (lua.LValue, int, error) {
	if typ != f.wire {
		return nil, 0, wrongWire(f, typ)
	}
	switch f.wire {
	case protowire.VarintType:
		v, n := protowire.ConsumeVarint(b)
		if n < 0 {
			return nil, 0, malformed(n)
		}
		switch f.kind {
		case protoreflect.BoolKind:
			if v != 0 {
				return lua.LTrue, n, nil
			}
			return lua.LFalse, n, nil
		case protoreflect.EnumKind:
			return f.enum.value(protoreflect.EnumNumber(int32(v))), n, nil
		case protoreflect.Int32Kind:
			return number(float64(int32(v))), n, nil
		case protoreflect.Uint32Kind:
			return number(float64(uint32(v))), n, nil
		case protoreflect.Sint32Kind:
			return number(float64(int32(protowire.DecodeZigZag(v & math.MaxUint32)))), n, nil
		case protoreflect.Sint64Kind:
			return int64Value(protowire.DecodeZigZag(v)), n, nil
		case protoreflect.Uint64Kind:
			return uint64Value(v), n, nil
		default: // Int64Kind
			return int64Value(int64(v)), n, nil
		}
	case protowire.Fixed32Type:
		v, n := protowire.ConsumeFixed32(b)
		if n < 0 {
			return nil, 0, malformed(n)
		}
		switch f.kind {
		case protoreflect.FloatKind:
			return lua.LNumber(math.Float32frombits(v)), n, nil
		case protoreflect.Sfixed32Kind:
			return number(float64(int32(v))), n, nil
		default: // Fixed32Kind
			return number(float64(v)), n, nil
		}
	case protowire.Fixed64Type:
		v, n := protowire.ConsumeFixed64(b)
		if n < 0 {
			return nil, 0, malformed(n)
		}
		switch f.kind {
		case protoreflect.DoubleKind:
			return lua.LNumber(math.Float64frombits(v)), n, nil
		case protoreflect.Sfixed64Kind:
			return int64Value(int64(v)), n, nil
		default: // Fixed64Kind
			return uint64Value(v), n, nil
		}
	default: // BytesType: string or bytes
		v, n := protowire.ConsumeBytes(b)
		if n < 0 {
			return nil, 0, malformed(n)
		}
		if f.kind == protoreflect.StringKind && !utf8.Valid(v) {
			return nil, 0, errorf("invalid UTF-8 in string")
		}
		return lua.LString(v), n, nil
	}
}

// smallInts are the Lua numbers 0 to len(smallInts)-1, boxed once: decoding a small integer costs
// no allocation.
var smallInts = func() (v [1024]lua.LValue) {
	for i := range v {
		v[i] = lua.LNumber(i)
	}
	return v
}()

// number is x as a Lua value, without an allocation when x is a small non-negative integer.
func number(x float64) lua.LValue {
	if x >= 0 && x < float64(len(smallInts)) {
		if i := int(x); float64(i) == x {
			return smallInts[i]
		}
	}
	return lua.LNumber(x)
}

// int64Value is v as a Lua number when exactly representable, else as a decimal string.
func int64Value(v int64) lua.LValue {
	if v >= -maxExact && v <= maxExact {
		return number(float64(v))
	}
	return lua.LString(strconv.FormatInt(v, 10))
}

func uint64Value(v uint64) lua.LValue {
	if v <= maxExact {
		return number(float64(v))
	}
	return lua.LString(strconv.FormatUint(v, 10))
}

func malformed(n int) error {
	msg := protowire.ParseError(n).Error()
	if rest, ok := strings.CutPrefix(msg, "proto:"); ok {
		msg = strings.TrimLeft(rest, " \u00a0")
	}
	return errorf("malformed wire data: %s", msg)
}

func wrongWire(f *field, typ protowire.Type) error {
	kind := f.kind.String()
	if f.isMap() {
		kind = "map"
	}
	return kindErrorf(errWrongWire, "wrong wire type %s for a %s field (want %s)", wireName(typ), kind, wireName(f.wire))
}

func wireName(t protowire.Type) string {
	switch t {
	case protowire.VarintType:
		return "varint"
	case protowire.Fixed32Type:
		return "fixed32"
	case protowire.Fixed64Type:
		return "fixed64"
	case protowire.BytesType:
		return "bytes"
	case protowire.StartGroupType:
		return "start-group"
	case protowire.EndGroupType:
		return "end-group"
	default:
		return "reserved(" + strconv.Itoa(int(t)) + ")"
	}
}
