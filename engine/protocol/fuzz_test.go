package protocol

import (
	"testing"

	"google.golang.org/protobuf/proto"
)

// FuzzUnmarshal feeds arbitrary payloads to the framework messages the gateway decodes from
// clients (Ping, LoginReq, ResumeReq): decoding never panics, and what decodes re-encodes to
// something that decodes to the same message.
func FuzzUnmarshal(f *testing.F) {
	f.Add([]byte{0x0a, 0x05, 0x67, 0x75, 0x65, 0x73, 0x74})
	f.Add([]byte{0x22, 0x07, 0x0a, 0x05, 0x0a, 0x01, 0x61, 0x08, 0x00}) // LoginReq.extra, duplicate key of a wrong wire type
	f.Add([]byte{0x0a, 0x05, 0x0a, 0x01, 0x61, 0x08, 0x00})
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, m := range []proto.Message{&Ping{}, &LoginReq{}, &ResumeReq{}} {
			if proto.Unmarshal(b, m) != nil {
				continue
			}
			again, err := proto.Marshal(m)
			if err != nil {
				t.Fatalf("%T: re-encode: %v", m, err)
			}
			n := m.ProtoReflect().New().Interface()
			if err := proto.Unmarshal(again, n); err != nil || !proto.Equal(m, n) {
				t.Fatalf("%T: round trip differs: %v", m, err)
			}
		}
	})
}
