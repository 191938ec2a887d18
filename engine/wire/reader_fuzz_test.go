package wire

import (
	"bytes"
	"testing"
)

// FuzzReaderLimits: Next never panics on any stream and any limit; the frames it returns re-encode to
// exactly the bytes they were read from, and each respects the limit in force (raised after the
// first frame, as the gateway does after login).
func FuzzReaderLimits(f *testing.F) {
	f.Add(AppendStream(nil, Frame{MsgID: 10, Seq: 1, Payload: []byte("guest")}), uint16(64))
	f.Add(append(AppendStream(nil, Frame{MsgID: 1}), AppendStream(nil, Frame{MsgID: 2, Payload: make([]byte, 300)})...), uint16(16))
	f.Add([]byte{0, 0x10, 0, 0, 0, 1, 0, 0, 0, 0, 0, 1}, uint16(4096))
	f.Fuzz(func(t *testing.T, stream []byte, first uint16) {
		r := NewReader(bytes.NewReader(stream), 64, int(first))
		var out []byte
		limit := int(first)
		for {
			fr, err := r.Next()
			if err != nil {
				break
			}
			if n := HeaderSize + len(fr.Payload); n > limit {
				t.Fatalf("frame of length %d passed the limit %d", n, limit)
			}
			out = AppendStream(out, fr)
			limit = DefaultMaxLength
			r.SetMaxLength(limit)
		}
		if !bytes.HasPrefix(stream, out) {
			t.Fatalf("frames re-encode to % x, not a prefix of the stream", out)
		}
	})
}
