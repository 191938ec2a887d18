package main

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"strings"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/dynamicpb"

	"github.com/moonforge/moonforge/engine/schema"
)

// messageVector is one entry of messages.json. A valid vector's Hex is protobuf-go's
// deterministic encoding and JSON its protojson form (proto names, unpopulated fields left out);
// an invalid one is bytes that protobuf-go refuses to decode as Type.
type messageVector struct {
	Name  string          `json:"name"`
	Type  string          `json:"type"`
	Hex   string          `json:"hex"`
	JSON  json.RawMessage `json:"json,omitempty"`
	Valid bool            `json:"valid"`
}

// The canonical quiet NaNs: SDKs write these bits for any NaN, so the vectors use them.
var (
	nan64 = math.Float64frombits(0x7ff8000000000000)
	nan32 = math.Float32frombits(0x7fc00000)
)

// vectorSpec describes one vector. A valid vector comes from JSON (protojson text of Type, or of
// From when set: encoded as From and decoded as Type, which keeps From's extra fields as unknown
// fields), optionally adjusted by fix, or from Raw bytes. An invalid one is Raw alone.
type vectorSpec struct {
	name, typ string
	json      string
	from      string
	fix       func(m *dynamicpb.Message)
	raw       string // hex, spaces allowed
	invalid   bool
}

func messageVectors(sch *schema.Schema) ([]any, error) {
	var out []any
	for _, s := range messageSpecs() {
		v, err := buildMessage(sch, s)
		if err != nil {
			return nil, fmt.Errorf("vector %s: %w", s.name, err)
		}
		out = append(out, v)
	}
	return out, nil
}

func buildMessage(sch *schema.Schema, s vectorSpec) (messageVector, error) {
	full := "conformance." + s.typ
	md := sch.Describe(full)
	if md == nil {
		return messageVector{}, fmt.Errorf("no message %s", full)
	}
	v := messageVector{Name: s.name, Type: full, Valid: !s.invalid}
	if s.raw != "" {
		b, err := hex.DecodeString(strings.ReplaceAll(s.raw, " ", ""))
		if err != nil {
			return v, err
		}
		v.Hex = hex.EncodeToString(b)
		m := dynamicpb.NewMessage(md)
		err = proto.Unmarshal(b, m)
		if s.invalid {
			if err == nil {
				return v, fmt.Errorf("protobuf-go accepts %s", v.Hex)
			}
			return v, nil
		}
		if err != nil {
			return v, err
		}
		return finish(v, m, b)
	}
	src := md
	if s.from != "" {
		if src = sch.Describe("conformance." + s.from); src == nil {
			return v, fmt.Errorf("no message conformance.%s", s.from)
		}
	}
	m := dynamicpb.NewMessage(src)
	if err := protojson.Unmarshal([]byte(s.json), m); err != nil {
		return v, err
	}
	if s.fix != nil {
		s.fix(m)
	}
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(m)
	if err != nil {
		return v, err
	}
	if s.from != "" {
		narrow := dynamicpb.NewMessage(md)
		if err := proto.Unmarshal(b, narrow); err != nil {
			return v, err
		}
		if b, err = (proto.MarshalOptions{Deterministic: true}).Marshal(narrow); err != nil {
			return v, err
		}
		m = narrow
	}
	return finish(v, m, b)
}

// finish records b as the vector's bytes after checking that decoding and encoding it again
// gives the same bytes, and adds the protojson form of m.
func finish(v messageVector, m *dynamicpb.Message, b []byte) (messageVector, error) {
	again := dynamicpb.NewMessage(m.Descriptor())
	if err := proto.Unmarshal(b, again); err != nil {
		return v, err
	}
	b2, err := proto.MarshalOptions{Deterministic: true}.Marshal(again)
	if err != nil {
		return v, err
	}
	if !bytes.Equal(b, b2) {
		return v, fmt.Errorf("not canonical: %x encodes again as %x", b, b2)
	}
	j, err := protojson.MarshalOptions{UseProtoNames: true}.Marshal(m)
	if err != nil {
		return v, err
	}
	// protojson varies its whitespace on purpose; compact it so the file is stable.
	var compact bytes.Buffer
	if err := json.Compact(&compact, j); err != nil {
		return v, err
	}
	v.Hex = hex.EncodeToString(b)
	v.JSON = compact.Bytes()
	return v, nil
}

// set returns a fix that sets the named fields (double, float or repeated double) of a message.
func set(values map[string]any) func(m *dynamicpb.Message) {
	return func(m *dynamicpb.Message) {
		fields := m.Descriptor().Fields()
		for name, val := range values {
			fd := fields.ByName(protoreflect.Name(name))
			switch x := val.(type) {
			case float64:
				m.Set(fd, protoreflect.ValueOfFloat64(x))
			case float32:
				m.Set(fd, protoreflect.ValueOfFloat32(x))
			case []float64:
				list := m.Mutable(fd).List()
				for _, f := range x {
					list.Append(protoreflect.ValueOfFloat64(f))
				}
			case []float32:
				list := m.Mutable(fd).List()
				for _, f := range x {
					list.Append(protoreflect.ValueOfFloat32(f))
				}
			}
		}
	}
}
