package luapb

import (
	"slices"

	lua "github.com/yuin/gopher-lua"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// maxDepth bounds the nesting of messages in Decode and Encode (the top message is level 0).
const maxDepth = 100

// maxHoles bounds the nil slots one Decode may create in Lua array parts. gopher-lua stores every
// integer key from 1 to lua.MaxArrayIndex in a table's array part, so a map entry with key 10^7
// would allocate ten million slots; a map whose keys leave more holes than this is rejected.
const maxHoles = 1 << 16

// lowFields is the count of field numbers looked up by index rather than by map.
const lowFields = 128

// codec is the precomputed field table of one message type. It is built at Load and never
// modified afterwards, so any goroutine may use it.
type codec struct {
	name   string   // full name
	fields []*field // ascending field number; field.index is the position here
	low    []*field // by field number, for numbers below lowFields
	high   map[protowire.Number]*field
	byName map[string]*field
	oneofs []string // names of real (non-synthetic) oneofs, by field.oneof
}

// fieldNamed returns the field called name, or nil. A small message's fields are compared in turn:
// cheaper than hashing the name.
func (c *codec) fieldNamed(name string) *field {
	if len(c.fields) > 8 {
		return c.byName[name]
	}
	for _, f := range c.fields {
		if f.name == name {
			return f
		}
	}
	return nil
}

// field describes one field of a message, or the key or value of a map entry.
type field struct {
	name     string
	key      lua.LValue // name as a Lua string, boxed once: a table key that costs no allocation
	num      protowire.Number
	index    int
	kind     protoreflect.Kind
	wire     protowire.Type // wire type of one element
	list     bool           // repeated, not a map
	packed   bool           // list encoded packed
	packable bool           // list of a scalar kind: the packed form is accepted when decoding
	implicit bool           // scalar with implicit presence: always present in decoded tables
	oneof    int            // index into codec.oneofs, or -1
	msg      *codec         // message kind
	enum     *enumCodec     // enum kind
	mapKey   *field         // map fields only
	mapVal   *field         // map fields only
	zero     lua.LValue     // the Lua value of the default, for implicit-presence scalars and map values
}

func (f *field) isMap() bool { return f.mapKey != nil }

// lookup returns the field with number num, or nil.
func (c *codec) lookup(num protowire.Number) *field {
	if num < lowFields {
		if int(num) < len(c.low) {
			return c.low[num]
		}
		return nil
	}
	return c.high[num]
}

// enumCodec maps the numbers of one enum to the Lua names and back.
type enumCodec struct {
	name    string // full name
	dense   []lua.LValue
	sparse  map[protoreflect.EnumNumber]lua.LValue
	numbers map[string]protoreflect.EnumNumber
}

// value returns the name of n as a Lua string when it is declared, else n as a number.
func (e *enumCodec) value(n protoreflect.EnumNumber) lua.LValue {
	if n >= 0 && int(n) < len(e.dense) {
		if v := e.dense[n]; v != nil {
			return v
		}
	}
	if v, ok := e.sparse[n]; ok {
		return v
	}
	return lua.LNumber(n)
}

// codecBuilder builds the codecs of a schema, sharing one codec per message type.
type codecBuilder struct {
	codecs map[protoreflect.FullName]*codec
	enums  map[protoreflect.FullName]*enumCodec
}

func newCodecBuilder() *codecBuilder {
	return &codecBuilder{
		codecs: make(map[protoreflect.FullName]*codec),
		enums:  make(map[protoreflect.FullName]*enumCodec),
	}
}

// message returns the codec of md, building it and the codecs of every type it refers to.
func (b *codecBuilder) message(md protoreflect.MessageDescriptor) *codec {
	if c := b.codecs[md.FullName()]; c != nil {
		return c
	}
	fds := md.Fields()
	c := &codec{
		name:   string(md.FullName()),
		fields: make([]*field, 0, fds.Len()),
		byName: make(map[string]*field, fds.Len()),
	}
	b.codecs[md.FullName()] = c
	oneofIndex := make(map[protoreflect.FullName]int)
	for i := 0; i < md.Oneofs().Len(); i++ {
		od := md.Oneofs().Get(i)
		if od.IsSynthetic() {
			continue
		}
		oneofIndex[od.FullName()] = len(c.oneofs)
		c.oneofs = append(c.oneofs, string(od.Name()))
	}
	for i := 0; i < fds.Len(); i++ {
		fd := fds.Get(i)
		f := b.field(fd)
		if f == nil {
			continue
		}
		if od := fd.ContainingOneof(); od != nil && !od.IsSynthetic() {
			f.oneof = oneofIndex[od.FullName()]
		}
		c.fields = append(c.fields, f)
	}
	slices.SortFunc(c.fields, func(x, y *field) int { return int(x.num) - int(y.num) })
	maxLow := -1
	for i, f := range c.fields {
		f.index = i
		c.byName[f.name] = f
		if f.num < lowFields {
			maxLow = int(f.num)
		} else {
			if c.high == nil {
				c.high = make(map[protowire.Number]*field)
			}
			c.high[f.num] = f
		}
	}
	c.low = make([]*field, maxLow+1)
	for _, f := range c.fields {
		if f.num < lowFields {
			c.low[f.num] = f
		}
	}
	return c
}

// field builds the description of fd; nil for a field the schema refuses (a group, a type that is
// not proto3), which a loaded schema does not have.
func (b *codecBuilder) field(fd protoreflect.FieldDescriptor) *field {
	f := &field{
		name:  string(fd.Name()),
		key:   lua.LString(fd.Name()),
		num:   fd.Number(),
		kind:  fd.Kind(),
		oneof: -1,
	}
	if fd.IsMap() {
		f.mapKey = b.field(fd.MapKey())
		f.mapVal = b.field(fd.MapValue())
		if f.mapKey == nil || f.mapVal == nil {
			return nil
		}
		f.wire = protowire.BytesType
		return f
	}
	switch fd.Kind() {
	case protoreflect.GroupKind:
		return nil
	case protoreflect.MessageKind:
		md := fd.Message()
		if md.ParentFile().Syntax() != protoreflect.Proto3 {
			return nil
		}
		f.msg = b.message(md)
	case protoreflect.EnumKind:
		f.enum = b.enum(fd.Enum())
	}
	f.wire = wireType(fd.Kind())
	switch {
	case fd.IsList():
		f.list = true
		f.packable = f.wire != protowire.BytesType
		f.packed = f.packable && fd.IsPacked()
	case fd.Kind() == protoreflect.MessageKind:
	case !fd.HasPresence() || fd.ContainingMessage().IsMapEntry():
		f.implicit = !fd.HasPresence()
		f.zero = zeroValue(fd, f.enum)
	}
	return f
}

func (b *codecBuilder) enum(ed protoreflect.EnumDescriptor) *enumCodec {
	if e := b.enums[ed.FullName()]; e != nil {
		return e
	}
	e := &enumCodec{
		name:    string(ed.FullName()),
		sparse:  make(map[protoreflect.EnumNumber]lua.LValue),
		numbers: make(map[string]protoreflect.EnumNumber),
	}
	vals := ed.Values()
	for i := 0; i < vals.Len(); i++ {
		vd := vals.Get(i)
		n := vd.Number()
		e.numbers[string(vd.Name())] = n
		if first := vals.ByNumber(n); first != nil && first.Name() != vd.Name() {
			continue // an alias: the first declared name is the one decoded
		}
		name := lua.LString(vd.Name())
		if n >= 0 && n < 64 {
			for len(e.dense) <= int(n) {
				e.dense = append(e.dense, nil)
			}
			e.dense[n] = name
		} else {
			e.sparse[n] = name
		}
	}
	b.enums[ed.FullName()] = e
	return e
}

func wireType(k protoreflect.Kind) protowire.Type {
	switch k {
	case protoreflect.Fixed32Kind, protoreflect.Sfixed32Kind, protoreflect.FloatKind:
		return protowire.Fixed32Type
	case protoreflect.Fixed64Kind, protoreflect.Sfixed64Kind, protoreflect.DoubleKind:
		return protowire.Fixed64Type
	case protoreflect.StringKind, protoreflect.BytesKind, protoreflect.MessageKind:
		return protowire.BytesType
	default:
		return protowire.VarintType
	}
}

// zeroValue is the Lua value of a scalar's default: "", 0, false, or the name of enum value 0.
func zeroValue(fd protoreflect.FieldDescriptor, e *enumCodec) lua.LValue {
	switch fd.Kind() {
	case protoreflect.BoolKind:
		return lua.LFalse
	case protoreflect.StringKind, protoreflect.BytesKind:
		return lua.LString("")
	case protoreflect.EnumKind:
		return e.value(fd.Default().Enum())
	case protoreflect.MessageKind:
		return nil
	default:
		return lua.LNumber(0)
	}
}
