package wire

import (
	"bytes"
	"encoding/hex"
	"errors"
	"io"
	"runtime"
	"strings"
	"sync"
	"testing"
)

// The worked example of docs/protocol.md: a guest login, request seq 1.
const workedExample = "00000022" + "000a" + "0000" + "00000001" + "0a0567756573741211" + "6465766963652d376633613963323165 35"

func exampleBytes(t testing.TB) []byte {
	b, err := hex.DecodeString(strings.ReplaceAll(workedExample, " ", ""))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestWorkedExample(t *testing.T) {
	raw := exampleBytes(t)
	payload := raw[12:]
	got := AppendStream(nil, Frame{MsgID: 10, Seq: 1, Payload: payload})
	if !bytes.Equal(got, raw) {
		t.Fatalf("encode: got %x want %x", got, raw)
	}
	f, err := NewReader(bytes.NewReader(raw), 4096, DefaultMaxLength).Next()
	if err != nil {
		t.Fatal(err)
	}
	if f.MsgID != 10 || f.Flags != 0 || f.Seq != 1 || !bytes.Equal(f.Payload, payload) {
		t.Fatalf("decode: %+v", f)
	}
	bare, err := ParseBare(raw[4:], DefaultMaxLength)
	if err != nil || bare.MsgID != 10 || !bytes.Equal(bare.Payload, payload) {
		t.Fatalf("bare: %+v %v", bare, err)
	}
	if got := AppendBare(nil, f); !bytes.Equal(got, raw[4:]) {
		t.Fatalf("bare encode: %x", got)
	}
}

func TestReaderSequence(t *testing.T) {
	var stream []byte
	frames := []Frame{
		{MsgID: 1, Seq: 7},
		{MsgID: 3, Flags: FlagReply, Seq: 7, Payload: []byte{8, 1}},
		{MsgID: 65535, Seq: 1<<32 - 1, Payload: bytes.Repeat([]byte{0xab}, 10000)},
	}
	for _, f := range frames {
		stream = AppendStream(stream, f)
	}
	r := NewReader(bytes.NewReader(stream), 64, DefaultMaxLength)
	for i, want := range frames {
		got, err := r.Next()
		if err != nil {
			t.Fatalf("frame %d: %v", i, err)
		}
		if got.MsgID != want.MsgID || got.Flags != want.Flags || got.Seq != want.Seq || !bytes.Equal(got.Payload, want.Payload) {
			t.Fatalf("frame %d: got %+v", i, got)
		}
	}
	if _, err := r.Next(); err != io.EOF {
		t.Fatalf("end: %v", err)
	}
}

func TestReaderViolations(t *testing.T) {
	cases := []struct {
		name  string
		input []byte
		kind  ViolationKind
	}{
		{"length below 8", []byte{0, 0, 0, 3, 1, 2, 3}, Malformed},
		{"length zero", []byte{0, 0, 0, 0}, Malformed},
		{"length over maximum", []byte{0, 0x10, 0, 1, 0, 1, 0, 0, 0, 0, 0, 1}, TooLarge},
		{"length 2^32-1", []byte{0xff, 0xff, 0xff, 0xff}, TooLarge},
		{"unknown flag", []byte{0, 0, 0, 8, 0, 1, 0, 2, 0, 0, 0, 1}, Malformed},
		{"high flag", []byte{0, 0, 0, 8, 0, 1, 0x80, 0, 0, 0, 0, 1}, Malformed},
	}
	for _, c := range cases {
		_, err := NewReader(bytes.NewReader(c.input), 4096, DefaultMaxLength).Next()
		v, ok := AsViolation(err)
		if !ok || v.Kind != c.kind {
			t.Errorf("%s: got %v, want violation kind %d", c.name, err, c.kind)
		}
	}
	// Exactly the maximum is allowed.
	max := AppendStream(nil, Frame{MsgID: 5, Payload: make([]byte, DefaultMaxLength-HeaderSize)})
	if _, err := NewReader(bytes.NewReader(max), 4096, DefaultMaxLength).Next(); err != nil {
		t.Fatalf("maximum frame: %v", err)
	}
}

func TestReaderTruncated(t *testing.T) {
	full := AppendStream(nil, Frame{MsgID: 5, Seq: 1, Payload: []byte("hello")})
	for n := 1; n < len(full); n++ {
		_, err := NewReader(bytes.NewReader(full[:n]), 4096, DefaultMaxLength).Next()
		if err != io.ErrUnexpectedEOF {
			t.Fatalf("cut at %d: %v", n, err)
		}
	}
}

func TestReaderLargePayload(t *testing.T) {
	payload := bytes.Repeat([]byte("0123456789abcdef"), 20000) // 320 000 bytes: several growth steps
	stream := AppendStream(nil, Frame{MsgID: 9, Seq: 2, Payload: payload})
	f, err := NewReader(bytes.NewReader(stream), 4096, DefaultMaxLength).Next()
	if err != nil || !bytes.Equal(f.Payload, payload) {
		t.Fatalf("large payload: %v, %d bytes", err, len(f.Payload))
	}
}

// A frame announced at the maximum whose bytes never come holds a small buffer, not the
// announced size.
func TestReaderAnnouncedNotSent(t *testing.T) {
	head := AppendStream(nil, Frame{MsgID: 9, Seq: 1})
	head[3] = 0 // length 1 MiB
	head[1] = 0x10
	stream := append(head, make([]byte, 100)...)
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	_, err := NewReader(bytes.NewReader(stream), 4096, DefaultMaxLength).Next()
	runtime.ReadMemStats(&after)
	if err != io.ErrUnexpectedEOF {
		t.Fatalf("got %v, want io.ErrUnexpectedEOF", err)
	}
	if grown := after.TotalAlloc - before.TotalAlloc; grown > 512<<10 {
		t.Fatalf("allocated %d bytes for 100 bytes received", grown)
	}
}

func TestReaderSetMaxLength(t *testing.T) {
	big := AppendStream(nil, Frame{MsgID: 9, Payload: make([]byte, 5000)})
	r := NewReader(bytes.NewReader(append(big, big...)), 4096, 4096)
	if _, err := r.Next(); err == nil {
		t.Fatal("a 5008-byte frame passed a 4096-byte limit")
	}
	r = NewReader(bytes.NewReader(append(big, big...)), 4096, 4096)
	r.SetMaxLength(DefaultMaxLength)
	if _, err := r.Next(); err != nil {
		t.Fatalf("after raising the limit: %v", err)
	}
}

// SetPace's function learns each payload's size once the header is read, before the payload
// is: what the stream has delivered then is the header and one buffer's worth at most.
func TestReaderPace(t *testing.T) {
	payload := make([]byte, 100000)
	stream := append(AppendStream(nil, Frame{MsgID: 9, Seq: 1, Payload: payload}), AppendStream(nil, Frame{MsgID: 9, Seq: 2})...)
	src := bytes.NewReader(stream)
	r := NewReader(src, 4096, DefaultMaxLength)
	var paced []int
	r.SetPace(func(n int) {
		paced = append(paced, n)
		if read := len(stream) - src.Len(); read > 4096 {
			t.Errorf("pace called after %d bytes were read", read)
		}
	})
	for range 2 {
		if _, err := r.Next(); err != nil {
			t.Fatal(err)
		}
	}
	if len(paced) != 1 || paced[0] != len(payload) {
		t.Fatalf("paced %v, want [%d] (an empty payload is not paced)", paced, len(payload))
	}
}

func TestParseBareViolations(t *testing.T) {
	if _, err := ParseBare([]byte{0, 1, 0, 0}, DefaultMaxLength); err == nil {
		t.Fatal("short message accepted")
	}
	if _, err := ParseBare(make([]byte, 101), 100); err == nil {
		t.Fatal("oversized message accepted")
	}
	if _, err := ParseBare([]byte{0, 1, 0, 4, 0, 0, 0, 0}, DefaultMaxLength); err == nil {
		t.Fatal("unknown flag accepted")
	}
}

func TestQueueCoalesces(t *testing.T) {
	q := NewQueue(1 << 20)
	var mu sync.Mutex
	var out bytes.Buffer
	writes := 0
	block := make(chan struct{})
	done := make(chan error)
	go func() {
		done <- q.Run(func(b []byte) error {
			<-block
			mu.Lock()
			defer mu.Unlock()
			writes++
			out.Write(b)
			return nil
		})
	}()
	for i := 0; i < 100; i++ {
		if err := q.Push(Frame{MsgID: 1000, Seq: uint32(i + 1), Payload: []byte{byte(i)}}); err != nil {
			t.Fatal(err)
		}
	}
	close(block)
	q.Close(nil)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if writes > 2 {
		t.Fatalf("100 frames queued while the writer was busy took %d writes", writes)
	}
	r := NewReader(&out, 4096, DefaultMaxLength)
	for i := 0; i < 100; i++ {
		f, err := r.Next()
		if err != nil || f.Seq != uint32(i+1) {
			t.Fatalf("frame %d: %+v %v", i, f, err)
		}
	}
	if err := q.Push(Frame{MsgID: 1}); err != ErrQueueClosed {
		t.Fatalf("push after close: %v", err)
	}
}

func TestQueueLimitAndWriteError(t *testing.T) {
	q := NewQueue(100)
	if err := q.Push(Frame{MsgID: 1, Payload: make([]byte, 80)}); err != nil {
		t.Fatal(err)
	}
	if err := q.Push(Frame{MsgID: 1, Payload: make([]byte, 80)}); err != ErrQueueFull {
		t.Fatalf("over limit: %v", err)
	}
	boom := errors.New("boom")
	if err := q.Run(func([]byte) error { return boom }); err != boom {
		t.Fatalf("run: %v", err)
	}
	if err := q.Push(Frame{MsgID: 1}); err != ErrQueueClosed {
		t.Fatalf("push after failed write: %v", err)
	}
}

func TestFrames(t *testing.T) {
	var batch []byte
	batch = AppendStream(batch, Frame{MsgID: 1, Seq: 1})
	batch = AppendStream(batch, Frame{MsgID: 2, Seq: 2, Payload: []byte("x")})
	var got []Frame
	err := Frames(batch, func(b []byte) error {
		f, err := ParseBare(b, DefaultMaxLength)
		got = append(got, f)
		return err
	})
	if err != nil || len(got) != 2 || got[1].MsgID != 2 || string(got[1].Payload) != "x" {
		t.Fatalf("%v %+v", err, got)
	}
}

// FuzzReader feeds arbitrary bytes to the stream decoder: it never panics, every frame it returns
// obeys the format, and re-encoding the frames reproduces the consumed input.
func FuzzReader(f *testing.F) {
	f.Add(exampleBytes(f))
	f.Add([]byte{0, 0, 0, 3})
	f.Add([]byte{0, 0, 0, 8, 0, 1, 0, 2, 0, 0, 0, 1})
	f.Add(AppendStream(AppendStream(nil, Frame{MsgID: 1, Seq: 1}), Frame{MsgID: 3, Flags: FlagReply, Payload: []byte{1}}))
	f.Fuzz(func(t *testing.T, data []byte) {
		r := NewReader(bytes.NewReader(data), 16, 1024)
		var again []byte
		for {
			fr, err := r.Next()
			if err != nil {
				if err == io.EOF && !bytes.Equal(again, data) {
					t.Fatalf("clean EOF but re-encoding differs")
				}
				if _, ok := AsViolation(err); !ok && err != io.EOF && err != io.ErrUnexpectedEOF {
					t.Fatalf("unexpected error %v", err)
				}
				return
			}
			if fr.Flags&^FlagReply != 0 || len(fr.Payload)+HeaderSize > 1024 {
				t.Fatalf("invalid frame accepted: %+v", fr)
			}
			again = AppendStream(again, fr)
			if !bytes.HasPrefix(data, again) {
				t.Fatalf("re-encoding is not a prefix of the input")
			}
		}
	})
}

// FuzzParseBare does the same for WebSocket messages.
func FuzzParseBare(f *testing.F) {
	f.Add(exampleBytes(f)[4:])
	f.Add([]byte{0, 1, 0, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		fr, err := ParseBare(data, 1024)
		if err != nil {
			if _, ok := AsViolation(err); !ok {
				t.Fatalf("error is not a violation: %v", err)
			}
			return
		}
		if !bytes.Equal(AppendBare(nil, fr), data) {
			t.Fatalf("re-encoding differs")
		}
	})
}

func BenchmarkReader(b *testing.B) {
	var stream []byte
	for i := 0; i < 1000; i++ {
		stream = AppendStream(stream, Frame{MsgID: 2001, Seq: uint32(i + 1), Payload: []byte("0123456789abcdef")})
	}
	b.SetBytes(int64(len(stream)))
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		r := NewReader(bytes.NewReader(stream), 4096, DefaultMaxLength)
		for {
			if _, err := r.Next(); err != nil {
				break
			}
		}
	}
}

func BenchmarkQueuePush(b *testing.B) {
	q := NewQueue(64 << 20)
	go q.Run(func([]byte) error { return nil })
	payload := []byte("0123456789abcdef")
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			_ = q.Push(Frame{MsgID: 2001, Flags: FlagReply, Seq: 1, Payload: payload})
		}
	})
	q.Close(nil)
}

// TestQueuePushNow pushes from several goroutines, half through PushNow with a write that takes
// only part of some batches, and checks that every frame arrives once, each goroutine's in order,
// and that idle pushes are written by the pusher.
func TestQueuePushNow(t *testing.T) {
	q := NewQueue(1 << 20)
	var mu sync.Mutex
	var out bytes.Buffer
	tries, direct := 0, 0
	q.SetTry(func(b []byte) (int, error) {
		mu.Lock()
		defer mu.Unlock()
		tries++
		n := len(b)
		if tries%3 == 0 {
			n = len(b) / 2 // the peer's buffer is full after half
		}
		if n == len(b) {
			direct++
		}
		out.Write(b[:n])
		return n, nil
	})
	done := make(chan error)
	go func() {
		done <- q.Run(func(b []byte) error {
			mu.Lock()
			defer mu.Unlock()
			out.Write(b)
			return nil
		})
	}()
	const senders, each = 4, 500
	var wg sync.WaitGroup
	for s := 0; s < senders; s++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < each; i++ {
				f := Frame{MsgID: uint16(s), Seq: uint32(i), Payload: []byte{byte(i), 1, 2, 3}}
				var err error
				if i%2 == 0 {
					_, err = q.PushNow(f)
				} else {
					err = q.Push(f)
				}
				if err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	q.Close(nil)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	next := make([]uint32, senders)
	r := NewReader(&out, 4096, DefaultMaxLength)
	for n := 0; n < senders*each; n++ {
		f, err := r.Next()
		if err != nil {
			t.Fatalf("frame %d: %v", n, err)
		}
		if f.Seq != next[f.MsgID] || f.Payload[0] != byte(f.Seq) {
			t.Fatalf("sender %d: frame %d, want %d", f.MsgID, f.Seq, next[f.MsgID])
		}
		next[f.MsgID]++
	}
	if _, err := r.Next(); err == nil {
		t.Fatal("more frames than were pushed")
	}
	if direct == 0 {
		t.Fatal("no frame was written by its pusher")
	}
}

func TestQueuePushNowIdleAndClosed(t *testing.T) {
	q := NewQueue(1 << 20)
	var got []byte
	q.SetTry(func(b []byte) (int, error) { got = append(got, b...); return len(b), nil })
	if n, err := q.PushNow(Frame{MsgID: 1, Payload: []byte("x")}); err != nil || n != len(got) || n == 0 {
		t.Fatalf("idle push: %d %v, wrote %d", n, err, len(got))
	}
	q.Close(nil)
	if err := q.Run(func([]byte) error { t.Fatal("nothing was left for the writer"); return nil }); err != nil {
		t.Fatal(err)
	}
	if _, err := q.PushNow(Frame{MsgID: 1}); err != ErrQueueClosed {
		t.Fatalf("push after close: %v", err)
	}
}
