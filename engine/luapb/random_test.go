package luapb

import (
	"math"
	"math/rand/v2"

	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/dynamicpb"
)

// randomMessage builds a message of type md with random contents, favouring edge values. Messages
// nest at most depth levels further.
func randomMessage(r *rand.Rand, md protoreflect.MessageDescriptor, depth int) *dynamicpb.Message {
	m := dynamicpb.NewMessage(md)
	fields := md.Fields()
	for i := 0; i < fields.Len(); i++ {
		fd := fields.Get(i)
		if od := fd.ContainingOneof(); od != nil && !od.IsSynthetic() {
			continue
		}
		if r.IntN(3) == 0 {
			continue
		}
		setRandom(r, m, fd, depth)
	}
	oneofs := md.Oneofs()
	for i := 0; i < oneofs.Len(); i++ {
		od := oneofs.Get(i)
		if od.IsSynthetic() || r.IntN(3) == 0 {
			continue
		}
		setRandom(r, m, od.Fields().Get(r.IntN(od.Fields().Len())), depth)
	}
	return m
}

func setRandom(r *rand.Rand, m *dynamicpb.Message, fd protoreflect.FieldDescriptor, depth int) {
	switch {
	case fd.IsMap():
		if fd.MapValue().Kind() == protoreflect.MessageKind && depth <= 0 {
			return
		}
		mp := m.Mutable(fd).Map()
		for n := r.IntN(5); n > 0; n-- {
			mp.Set(randomKey(r, fd.MapKey()), randomValue(r, fd.MapValue(), depth-1))
		}
	case fd.IsList():
		if fd.Kind() == protoreflect.MessageKind && depth <= 0 {
			return
		}
		l := m.Mutable(fd).List()
		for n := r.IntN(5); n > 0; n-- {
			l.Append(randomValue(r, fd, depth-1))
		}
	case fd.Kind() == protoreflect.MessageKind:
		if depth > 0 {
			m.Set(fd, randomValue(r, fd, depth-1))
		}
	default:
		m.Set(fd, randomValue(r, fd, depth))
	}
}

// randomKey is a random map key. Integer keys are small or beyond lua.MaxArrayIndex: Decode
// rejects maps with keys too sparse for a Lua table's array part (see TestDecodeSparseMapKeys).
func randomKey(r *rand.Rand, fd protoreflect.FieldDescriptor) protoreflect.MapKey {
	v := randomValue(r, fd, 0)
	switch x := v.Interface().(type) {
	case int32:
		if x > 5000 && x < 1<<27 {
			v = protoreflect.ValueOfInt32(x % 5000)
		}
	case int64:
		if x > 5000 && x < 1<<27 {
			v = protoreflect.ValueOfInt64(x % 5000)
		}
	case uint32:
		if x > 5000 && x < 1<<27 {
			v = protoreflect.ValueOfUint32(x % 5000)
		}
	case uint64:
		if x > 5000 && x < 1<<27 {
			v = protoreflect.ValueOfUint64(x % 5000)
		}
	}
	return v.MapKey()
}

// randomValue is a random value for a singular field, a list element, or a map key or value.
func randomValue(r *rand.Rand, fd protoreflect.FieldDescriptor, depth int) protoreflect.Value {
	edgeInt32 := []int64{0, 1, -1, 127, 128, -129, math.MinInt32, math.MaxInt32}
	edgeInt64 := []int64{0, 1, -1, math.MinInt64, math.MaxInt64, 1 << 53, -(1 << 53), 1<<53 + 1, -(1<<53 + 1), math.MinInt32 - 1}
	edgeUint64 := []uint64{0, 1, 1 << 53, 1<<53 + 1, math.MaxUint32, math.MaxUint32 + 1, math.MaxUint64}
	edgeFloat := []float64{0, math.Copysign(0, -1), math.NaN(), math.Inf(1), math.Inf(-1), 1.5, -2.25, math.MaxFloat32, math.SmallestNonzeroFloat32}
	edgeDouble := []float64{0, math.Copysign(0, -1), math.NaN(), math.Inf(1), math.Inf(-1), 0.1, math.MaxFloat64, math.SmallestNonzeroFloat64, 1e300}
	edgeString := []string{"", "a", "héllo", "日本語", "\x00nul", "emoji 🎮"}
	edgeBytes := [][]byte{{}, {0}, {0xff, 0xfe, 0x80}, []byte("text"), {0xc3, 0x28}}
	edgeEnum := []protoreflect.EnumNumber{0, 1, 2, 5, -3, 7, 100, -100}
	pick := r.IntN(2) == 0
	switch fd.Kind() {
	case protoreflect.BoolKind:
		return protoreflect.ValueOfBool(r.IntN(2) == 0)
	case protoreflect.EnumKind:
		return protoreflect.ValueOfEnum(edgeEnum[r.IntN(len(edgeEnum))])
	case protoreflect.Int32Kind, protoreflect.Sint32Kind, protoreflect.Sfixed32Kind:
		if pick {
			return protoreflect.ValueOfInt32(int32(edgeInt32[r.IntN(len(edgeInt32))]))
		}
		return protoreflect.ValueOfInt32(int32(r.Uint32()))
	case protoreflect.Uint32Kind, protoreflect.Fixed32Kind:
		if pick {
			return protoreflect.ValueOfUint32(uint32(edgeUint64[r.IntN(5)]))
		}
		return protoreflect.ValueOfUint32(r.Uint32())
	case protoreflect.Int64Kind, protoreflect.Sint64Kind, protoreflect.Sfixed64Kind:
		if pick {
			return protoreflect.ValueOfInt64(edgeInt64[r.IntN(len(edgeInt64))])
		}
		return protoreflect.ValueOfInt64(int64(r.Uint64()) >> r.IntN(64))
	case protoreflect.Uint64Kind, protoreflect.Fixed64Kind:
		if pick {
			return protoreflect.ValueOfUint64(edgeUint64[r.IntN(len(edgeUint64))])
		}
		return protoreflect.ValueOfUint64(r.Uint64() >> r.IntN(64))
	case protoreflect.FloatKind:
		if pick {
			return protoreflect.ValueOfFloat32(float32(edgeFloat[r.IntN(len(edgeFloat))]))
		}
		return protoreflect.ValueOfFloat32(float32(r.NormFloat64() * 1000))
	case protoreflect.DoubleKind:
		if pick {
			return protoreflect.ValueOfFloat64(edgeDouble[r.IntN(len(edgeDouble))])
		}
		return protoreflect.ValueOfFloat64(r.NormFloat64() * 1e6)
	case protoreflect.StringKind:
		return protoreflect.ValueOfString(edgeString[r.IntN(len(edgeString))])
	case protoreflect.BytesKind:
		return protoreflect.ValueOfBytes(edgeBytes[r.IntN(len(edgeBytes))])
	default: // MessageKind
		return protoreflect.ValueOfMessage(randomMessage(r, fd.Message(), depth))
	}
}
