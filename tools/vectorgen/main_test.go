package main

import (
	"encoding/hex"
	"encoding/json"
	"os"
	"testing"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/dynamicpb"

	"github.com/moonforge/moonforge/engine/schema"
)

// TestVectorsAreFresh fails when the committed vectors differ from what vectorgen produces.
func TestVectorsAreFresh(t *testing.T) {
	if err := run("../../tests/vectors", true); err != nil {
		t.Fatal(err)
	}
}

// TestCommittedVectorsAgreeWithProtobufGo reads messages.json back, independently of the
// generator: protobuf-go decodes every valid vector and re-encodes it to the same bytes, and
// refuses every invalid one.
func TestCommittedVectorsAgreeWithProtobufGo(t *testing.T) {
	sch, err := schema.Load("../../tests/vectors")
	if err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile("../../tests/vectors/messages.json")
	if err != nil {
		t.Fatal(err)
	}
	var vectors []messageVector
	if err := json.Unmarshal(raw, &vectors); err != nil {
		t.Fatal(err)
	}
	kinds := map[bool]int{}
	for _, v := range vectors {
		md := sch.Describe(v.Type)
		if md == nil {
			t.Fatalf("%s: no type %s", v.Name, v.Type)
		}
		b, err := hex.DecodeString(v.Hex)
		if err != nil {
			t.Fatalf("%s: %v", v.Name, err)
		}
		m := dynamicpb.NewMessage(md)
		err = proto.Unmarshal(b, m)
		kinds[v.Valid]++
		if !v.Valid {
			if err == nil {
				t.Errorf("%s: protobuf-go accepts an invalid vector", v.Name)
			}
			continue
		}
		if err != nil {
			t.Fatalf("%s: %v", v.Name, err)
		}
		again, err := proto.MarshalOptions{Deterministic: true}.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		if hex.EncodeToString(again) != v.Hex {
			t.Errorf("%s: re-encoded as %x, want %s", v.Name, again, v.Hex)
		}
	}
	if kinds[true] < 50 || kinds[false] < 30 {
		t.Errorf("want at least 50 valid and 30 invalid vectors, have %d and %d", kinds[true], kinds[false])
	}
}
