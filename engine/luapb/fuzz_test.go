package luapb

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"

	lua "github.com/yuin/gopher-lua"
	"google.golang.org/protobuf/encoding/prototext"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/dynamicpb"
)

// FuzzDecode feeds arbitrary bytes to Decode and holds it to protobuf-go (into dynamicpb):
// Decode never panics; it accepts exactly what protobuf-go accepts, except for the differences
// below; and whenever it accepts, Encode of its table reads back in protobuf-go as protobuf-go's
// own decoding of the input, without its unknown fields.
//
// The differences, all rejections by Decode of input protobuf-go accepts:
//   - a known field with a wire type its kind does not use (protobuf-go keeps it as an unknown
//     field, or drops it silently inside a map entry); wireMismatch confirms each such case;
//   - messages nested deeper than maxDepth (protobuf-go allows 10000);
//   - integer map keys so sparse that the Lua array part would need more than maxHoles nil slots.
//
// Decode also quiets signaling NaNs of float fields (float32 to float64 and back), which
// proto.Equal does not see.
func FuzzDecode(f *testing.F) {
	s := testSchema(f)
	var msgs []*Message
	for _, name := range []string{"Scalars", "Repeats", "Maps", "Nested", "Choice", "Optionals", "Small", "Sparse", "Everything"} {
		msgs = append(msgs, testMessage(f, s, "test."+name))
	}
	r := rand.New(rand.NewPCG(7, 8))
	for i, m := range msgs {
		for j := 0; j < 6; j++ {
			b, err := proto.MarshalOptions{Deterministic: true}.Marshal(randomMessage(r, m.Desc, 2))
			if err != nil {
				f.Fatal(err)
			}
			f.Add(uint8(i), b)
			f.Add(uint8(i), b[:len(b)/2])
		}
	}
	for _, seed := range []string{"\x0a\x05\x0a\x01\x61\x08\x00", "", "\x00", "\x0a\x01\xff", "\x10\xff\xff\xff\xff\xff\xff\xff\xff\xff\x02", "\x0c", "\xfb\x01\xfc\x01", "\x4a\x04\x10\x14\x08\x18"} {
		for i := range msgs {
			f.Add(uint8(i), []byte(seed))
		}
	}
	L := lua.NewState(lua.Options{SkipOpenLibs: true})
	defer L.Close()
	f.Fuzz(func(t *testing.T, which uint8, b []byte) {
		m := msgs[int(which)%len(msgs)]
		tbl, err := m.Decode(L, b)
		ref, refErr := referenceDecode(m, b)
		if err != nil {
			if refErr == nil && !knownDifference(err, m.Desc, b) {
				t.Fatalf("Decode(%s, %x) = %v, but protobuf-go accepts %s", m.FullName, b, err, prototext.Format(ref))
			}
			return
		}
		if refErr != nil {
			t.Fatalf("Decode(%s, %x) accepted what protobuf-go rejects: %v", m.FullName, b, refErr)
		}
		out, err := m.Encode(nil, tbl)
		if err != nil {
			t.Fatalf("Encode(Decode(%s, %x)): %v", m.FullName, b, err)
		}
		got := dynamicpb.NewMessage(m.Desc)
		if err := proto.Unmarshal(out, got); err != nil {
			t.Fatalf("protobuf-go cannot read Encode(Decode(%s, %x)) = %x: %v", m.FullName, b, out, err)
		}
		dropUnknown(ref.ProtoReflect())
		if !proto.Equal(ref, got) {
			t.Fatalf("%s %x:\nprotobuf-go %s\nthrough Lua %s", m.FullName, b, prototext.Format(ref), prototext.Format(got))
		}
	})
}

// referenceDecode is protobuf-go's decoding of b. protobuf-go v1.36.12 panics on some input
// (a map entry whose key occurs twice, the second time with a wrong wire type: 0a050a016108 00
// as test.Maps); that counts as a rejection.
func referenceDecode(m *Message, b []byte) (ref *dynamicpb.Message, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("protobuf-go panicked: %v", r)
		}
	}()
	ref = dynamicpb.NewMessage(m.Desc)
	return ref, proto.Unmarshal(b, ref)
}

// knownDifference reports whether Decode's err is one of the documented rejections of b.
func knownDifference(err error, md protoreflect.MessageDescriptor, b []byte) bool {
	switch {
	case errors.Is(err, errTooDeep), errors.Is(err, errSparseKeys), errors.Is(err, errTooBig):
		return true
	case errors.Is(err, errWrongWire):
		return wireMismatch(md, b)
	}
	return false
}

// wireMismatch reports whether b, read as a message md, has a known field, at any depth, whose
// wire type its kind does not use. It is written apart from the decoder, from the descriptors.
func wireMismatch(md protoreflect.MessageDescriptor, b []byte) bool {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return false
		}
		b = b[n:]
		n = protowire.ConsumeFieldValue(num, typ, b)
		if n < 0 {
			return false
		}
		val := b[:n]
		b = b[n:]
		fd := md.Fields().ByNumber(num)
		if fd == nil {
			continue
		}
		want := protowire.BytesType
		switch fd.Kind() {
		case protoreflect.StringKind, protoreflect.BytesKind, protoreflect.MessageKind:
		case protoreflect.FloatKind, protoreflect.Fixed32Kind, protoreflect.Sfixed32Kind:
			want = protowire.Fixed32Type
		case protoreflect.DoubleKind, protoreflect.Fixed64Kind, protoreflect.Sfixed64Kind:
			want = protowire.Fixed64Type
		default:
			want = protowire.VarintType
		}
		packed := fd.IsList() && typ == protowire.BytesType
		if typ != want && !packed {
			return true
		}
		if fd.Kind() == protoreflect.MessageKind {
			inner, _ := protowire.ConsumeBytes(val)
			if wireMismatch(fd.Message(), inner) {
				return true
			}
		}
	}
	return false
}

// eachNested calls fn for m and every message inside it.
func eachNested(m protoreflect.Message, fn func(protoreflect.Message)) {
	fn(m)
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		switch {
		case fd.IsMap():
			if fd.MapValue().Kind() == protoreflect.MessageKind {
				v.Map().Range(func(_ protoreflect.MapKey, mv protoreflect.Value) bool {
					eachNested(mv.Message(), fn)
					return true
				})
			}
		case fd.IsList():
			if fd.Kind() == protoreflect.MessageKind {
				for i := 0; i < v.List().Len(); i++ {
					eachNested(v.List().Get(i).Message(), fn)
				}
			}
		case fd.Kind() == protoreflect.MessageKind:
			eachNested(v.Message(), fn)
		}
		return true
	})
}

func dropUnknown(m protoreflect.Message) {
	eachNested(m, func(m protoreflect.Message) { m.SetUnknown(nil) })
}
