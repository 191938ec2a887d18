package luapb

import (
	"cmp"
	"errors"
	"math"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	lua "github.com/yuin/gopher-lua"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/reflect/protoreflect"
)

func encode(dst []byte, c *codec, t *lua.LTable) ([]byte, error) {
	if t == nil {
		return dst, rooted(errorf("want table, got nil"), c.name)
	}
	out, err := encodeMessage(dst, c, t, 0)
	if err != nil {
		return dst, rooted(err, c.name)
	}
	return out, nil
}

// encodeMessage appends the fields of t in field-number order.
func encodeMessage(b []byte, c *codec, t *lua.LTable, depth int) ([]byte, error) {
	if depth > maxDepth {
		return b, kindErrorf(errTooDeep, "tables nested deeper than %d (does a table contain itself?)", maxDepth)
	}
	var slotBuf [32]lua.LValue
	slots := slotBuf[:0]
	if len(c.fields) <= len(slotBuf) {
		slots = slotBuf[:len(c.fields)]
	} else {
		slots = make([]lua.LValue, len(c.fields))
	}
	var unknown []lua.LValue
	t.ForEach(func(k, v lua.LValue) {
		if s, ok := k.(lua.LString); ok {
			if f := c.fieldNamed(string(s)); f != nil {
				slots[f.index] = v
				return
			}
		}
		unknown = append(unknown, k)
	})
	if len(unknown) > 0 {
		return b, unknownKeys(c, unknown)
	}
	var oneofBuf [4]*field
	var oneofSet []*field
	if len(c.oneofs) <= len(oneofBuf) {
		oneofSet = oneofBuf[:len(c.oneofs)]
	} else {
		oneofSet = make([]*field, len(c.oneofs))
	}
	for i, f := range c.fields {
		v := slots[i]
		if v == nil {
			continue
		}
		if f.oneof >= 0 {
			if g := oneofSet[f.oneof]; g != nil {
				return b, errorf("oneof %s has two members set: %s and %s", c.oneofs[f.oneof], g.name, f.name)
			}
			oneofSet[f.oneof] = f
		}
		var err error
		switch {
		case f.list:
			b, err = encodeList(b, f, v, depth)
		case f.isMap():
			b, err = encodeMap(b, f, v, depth)
		default:
			b, err = encodeValue(b, f, v, f.implicit, depth)
		}
		if err != nil {
			return b, at(err, fieldSegment(f))
		}
	}
	return b, nil
}

func unknownKeys(c *codec, keys []lua.LValue) error {
	names := make([]string, len(keys))
	for i, k := range keys {
		if s, ok := k.(lua.LString); ok {
			names[i] = strconv.Quote(string(s))
		} else {
			names[i] = describe(k) + " (" + k.Type().String() + ")"
		}
	}
	slices.Sort(names)
	if len(names) == 1 {
		return errorf("unknown field %s (not a field of %s)", names[0], c.name)
	}
	return errorf("unknown fields %s (not fields of %s)", strings.Join(names, ", "), c.name)
}

// encodeValue appends the tag and value of a singular field; an implicit-presence default is
// left out when skipZero is set.
func encodeValue(b []byte, f *field, v lua.LValue, skipZero bool, depth int) ([]byte, error) {
	switch f.kind {
	case protoreflect.MessageKind:
		t, ok := v.(*lua.LTable)
		if !ok {
			return b, wantType("table", v)
		}
		b = protowire.AppendTag(b, f.num, protowire.BytesType)
		start := len(b)
		b = append(b, 0)
		var err error
		if b, err = encodeMessage(b, f.msg, t, depth+1); err != nil {
			return b, err
		}
		return endLength(b, start), nil
	case protoreflect.StringKind, protoreflect.BytesKind:
		s, ok := v.(lua.LString)
		if !ok {
			return b, wantType("string", v)
		}
		if f.kind == protoreflect.StringKind && !utf8.ValidString(string(s)) {
			return b, errorf("invalid UTF-8 in string %s", describe(s))
		}
		if skipZero && len(s) == 0 {
			return b, nil
		}
		b = protowire.AppendTag(b, f.num, protowire.BytesType)
		b = protowire.AppendVarint(b, uint64(len(s)))
		return append(b, s...), nil
	}
	x, err := scalarBits(f, v)
	if err != nil {
		return b, err
	}
	if skipZero && x == 0 {
		return b, nil
	}
	b = protowire.AppendTag(b, f.num, f.wire)
	return appendBits(b, f.wire, x), nil
}

// scalarBits converts v to the wire bits of a numeric, bool or enum field: the varint value, or
// the fixed32/fixed64 bits. Zero bits are exactly the proto3 default (so -0.0 is not zero).
func scalarBits(f *field, v lua.LValue) (uint64, error) {
	switch f.kind {
	case protoreflect.BoolKind:
		bv, ok := v.(lua.LBool)
		if !ok {
			return 0, wantType("boolean", v)
		}
		return protowire.EncodeBool(bool(bv)), nil
	case protoreflect.EnumKind:
		switch x := v.(type) {
		case lua.LString:
			n, ok := f.enum.numbers[string(x)]
			if !ok {
				return 0, errorf("%s is not a value of enum %s", describe(x), f.enum.name)
			}
			return uint64(int64(n)), nil
		case lua.LNumber:
			n, err := integer(x, math.MinInt32, math.MaxInt32)
			return uint64(n), err
		default:
			return 0, wantType("enum name or number", v)
		}
	case protoreflect.FloatKind:
		n, ok := v.(lua.LNumber)
		if !ok {
			return 0, wantType("number", v)
		}
		x := float32(n)
		if math.IsInf(float64(x), 0) && !math.IsInf(float64(n), 0) {
			return 0, errorf("%s out of range for float", describe(n))
		}
		return uint64(math.Float32bits(x)), nil
	case protoreflect.DoubleKind:
		n, ok := v.(lua.LNumber)
		if !ok {
			return 0, wantType("number", v)
		}
		return math.Float64bits(float64(n)), nil
	case protoreflect.Int32Kind, protoreflect.Sfixed32Kind:
		n, err := int32Of(v)
		if f.kind == protoreflect.Sfixed32Kind {
			return uint64(uint32(n)), err
		}
		return uint64(n), err
	case protoreflect.Sint32Kind:
		n, err := int32Of(v)
		return protowire.EncodeZigZag(int64(n)) & math.MaxUint32, err
	case protoreflect.Uint32Kind, protoreflect.Fixed32Kind:
		n, ok := v.(lua.LNumber)
		if !ok {
			return 0, wantType("number", v)
		}
		x, err := integer(n, 0, math.MaxUint32)
		return uint64(x), err
	case protoreflect.Int64Kind, protoreflect.Sfixed64Kind:
		n, err := int64Of(v)
		return uint64(n), err
	case protoreflect.Sint64Kind:
		n, err := int64Of(v)
		return protowire.EncodeZigZag(n), err
	default: // Uint64Kind, Fixed64Kind
		return uint64Of(v)
	}
}

func appendBits(b []byte, wire protowire.Type, x uint64) []byte {
	switch wire {
	case protowire.Fixed32Type:
		return protowire.AppendFixed32(b, uint32(x))
	case protowire.Fixed64Type:
		return protowire.AppendFixed64(b, x)
	default:
		return protowire.AppendVarint(b, x)
	}
}

// endLength writes the length of b[start+1:] as the varint at b[start], where one byte was
// reserved, moving the contents when the varint needs more room.
func endLength(b []byte, start int) []byte {
	n := len(b) - start - 1
	if n < 0x80 {
		b[start] = byte(n)
		return b
	}
	size := protowire.SizeVarint(uint64(n))
	b = append(b, make([]byte, size-1)...)
	copy(b[start+size:], b[start+1:start+1+n])
	protowire.AppendVarint(b[:start], uint64(n))
	return b
}

func encodeList(b []byte, f *field, v lua.LValue, depth int) ([]byte, error) {
	t, ok := v.(*lua.LTable)
	if !ok {
		return b, wantType("table (sequence)", v)
	}
	n, err := sequenceLen(t)
	if err != nil || n == 0 {
		return b, err
	}
	if f.packed {
		b = protowire.AppendTag(b, f.num, protowire.BytesType)
		start := len(b)
		b = append(b, 0)
		for i := 1; i <= n; i++ {
			x, err := scalarBits(f, t.RawGetInt(i))
			if err != nil {
				return b, at(err, indexSegment(i))
			}
			b = appendBits(b, f.wire, x)
		}
		return endLength(b, start), nil
	}
	for i := 1; i <= n; i++ {
		if b, err = encodeValue(b, f, t.RawGetInt(i), false, depth); err != nil {
			return b, at(err, indexSegment(i))
		}
	}
	return b, nil
}

// sequenceLen returns n when the keys of t are exactly 1..n.
func sequenceLen(t *lua.LTable) (int, error) {
	n := t.MaxN()
	count := 0
	var bad lua.LValue
	t.ForEach(func(k, _ lua.LValue) {
		count++
		if bad != nil {
			return
		}
		if i, ok := k.(lua.LNumber); !ok || float64(i) != math.Trunc(float64(i)) || i < 1 || i > lua.LNumber(n) {
			bad = k
		}
	})
	if bad != nil {
		return 0, errorf("want a sequence, got key %s (%s)", describe(bad), bad.Type())
	}
	if count != n {
		for i := 1; i <= n; i++ {
			if t.RawGetInt(i) == lua.LNil {
				return 0, errorf("want a sequence, got a hole at index %d of %d", i, n)
			}
		}
	}
	return n, nil
}

// mapItem is one entry of a map being encoded, with its key converted for sorting.
type mapItem struct {
	key  lua.LValue
	s    string
	i    int64
	u    uint64
	val  lua.LValue
	bits uint64 // the key's wire bits, for non-string keys
}

func encodeMap(b []byte, f *field, v lua.LValue, depth int) ([]byte, error) {
	t, ok := v.(*lua.LTable)
	if !ok {
		return b, wantType("table (map)", v)
	}
	var items []mapItem
	var err error
	kf := f.mapKey
	t.ForEach(func(k, v lua.LValue) {
		if err != nil {
			return
		}
		it := mapItem{key: k, val: v}
		switch kf.kind {
		case protoreflect.StringKind:
			s, ok := k.(lua.LString)
			switch {
			case !ok:
				err = at(wantType("string key", k), keySegment(k))
			case !utf8.ValidString(string(s)):
				err = at(errorf("invalid UTF-8 in key"), keySegment(k))
			}
			it.s = string(s)
		default:
			it.bits, err = scalarBits(kf, k)
			if err != nil {
				err = at(err, keySegment(k))
			}
			switch kf.kind {
			case protoreflect.Int32Kind, protoreflect.Int64Kind, protoreflect.Sfixed32Kind, protoreflect.Sfixed64Kind:
				it.i = int64(it.bits)
				if kf.wire == protowire.Fixed32Type {
					it.i = int64(int32(it.bits))
				}
			case protoreflect.Sint32Kind, protoreflect.Sint64Kind:
				it.i = protowire.DecodeZigZag(it.bits)
			default:
				it.u = it.bits
			}
		}
		items = append(items, it)
	})
	if err != nil {
		return b, err
	}
	slices.SortFunc(items, func(x, y mapItem) int {
		return cmp.Or(cmp.Compare(x.s, y.s), cmp.Compare(x.i, y.i), cmp.Compare(x.u, y.u))
	})
	for i := 1; i < len(items); i++ {
		if items[i].s == items[i-1].s && items[i].i == items[i-1].i && items[i].u == items[i-1].u {
			return b, errorf("map keys %s and %s are the same key", describe(items[i-1].key), describe(items[i].key))
		}
	}
	for _, it := range items {
		b = protowire.AppendTag(b, f.num, protowire.BytesType)
		start := len(b)
		b = append(b, 0)
		if kf.kind == protoreflect.StringKind {
			b = protowire.AppendTag(b, 1, protowire.BytesType)
			b = protowire.AppendString(b, it.s)
		} else {
			b = protowire.AppendTag(b, 1, kf.wire)
			b = appendBits(b, kf.wire, it.bits)
		}
		var err error
		if b, err = encodeValue(b, f.mapVal, it.val, false, depth); err != nil {
			return b, at(err, keySegment(it.key))
		}
		b = endLength(b, start)
	}
	return b, nil
}

func int32Of(v lua.LValue) (int32, error) {
	n, ok := v.(lua.LNumber)
	if !ok {
		return 0, wantType("number", v)
	}
	x, err := integer(n, math.MinInt32, math.MaxInt32)
	return int32(x), err
}

// integer converts n when it is integral and within [lo, hi], which are exact as float64.
func integer(n lua.LNumber, lo, hi int64) (int64, error) {
	f := float64(n)
	if f != math.Trunc(f) || math.IsInf(f, 0) {
		return 0, errorf("want an integer, got %s", describe(n))
	}
	if f < float64(lo) || f > float64(hi) {
		return 0, errorf("%s out of range [%d, %d]", describe(n), lo, hi)
	}
	return int64(f), nil
}

// int64Of accepts an integral number in range or a decimal string.
func int64Of(v lua.LValue) (int64, error) {
	switch x := v.(type) {
	case lua.LNumber:
		f := float64(x)
		if f != math.Trunc(f) || math.IsInf(f, 0) {
			return 0, errorf("want an integer, got %s", describe(x))
		}
		if f < -(1<<63) || f >= 1<<63 {
			return 0, errorf("%s out of range for a signed 64-bit integer", describe(x))
		}
		return int64(f), nil
	case lua.LString:
		n, err := strconv.ParseInt(string(x), 10, 64)
		if err != nil {
			return 0, stringIntError(x, err)
		}
		return n, nil
	default:
		return 0, wantType("number or decimal string", v)
	}
}

func uint64Of(v lua.LValue) (uint64, error) {
	switch x := v.(type) {
	case lua.LNumber:
		f := float64(x)
		if f != math.Trunc(f) || math.IsInf(f, 0) {
			return 0, errorf("want an integer, got %s", describe(x))
		}
		if f < 0 || f >= 1<<64 {
			return 0, errorf("%s out of range for an unsigned 64-bit integer", describe(x))
		}
		return uint64(f), nil
	case lua.LString:
		n, err := strconv.ParseUint(string(x), 10, 64)
		if err != nil {
			return 0, stringIntError(x, err)
		}
		return n, nil
	default:
		return 0, wantType("number or decimal string", v)
	}
}

func stringIntError(s lua.LString, err error) error {
	if errors.Is(err, strconv.ErrRange) {
		return errorf("%s out of range for a 64-bit integer", describe(s))
	}
	return errorf("want a number or decimal string, got %s", describe(s))
}

func wantType(want string, got lua.LValue) error {
	if got == nil {
		return errorf("want %s, got nil", want)
	}
	return errorf("want %s, got %s", want, got.Type())
}
