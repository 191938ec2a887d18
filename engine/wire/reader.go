package wire

import (
	"bufio"
	"encoding/binary"
	"errors"
	"io"
)

// Reader decodes length-prefixed frames from a byte stream. It is owned by one goroutine.
type Reader struct {
	br        *bufio.Reader
	maxLength int
	pace      func(payload int)
}

// NewReader reads frames from r through a buffer of bufSize bytes, refusing frames whose length
// field exceeds maxLength.
func NewReader(r io.Reader, bufSize, maxLength int) *Reader {
	return &Reader{br: bufio.NewReaderSize(r, bufSize), maxLength: maxLength}
}

// Next blocks until a whole frame has arrived. The payload is freshly allocated and belongs to
// the caller. It returns io.EOF at a clean end of stream, io.ErrUnexpectedEOF inside a frame, and
// a *Violation when the frame breaks the format (the stream cannot be resynchronised after that).
func (r *Reader) Next() (Frame, error) {
	prefix, err := r.br.Peek(LengthSize)
	if err != nil {
		return Frame{}, endOfStream(err, len(prefix))
	}
	length := binary.BigEndian.Uint32(prefix)
	if err := CheckLength(length, r.maxLength); err != nil {
		return Frame{}, err
	}
	head, err := r.br.Peek(LengthSize + HeaderSize)
	if err != nil {
		return Frame{}, endOfStream(err, len(head))
	}
	f, err := ParseBare(head[LengthSize:], r.maxLength)
	if err != nil {
		return Frame{}, err
	}
	if _, err := r.br.Discard(LengthSize + HeaderSize); err != nil {
		return Frame{}, err
	}
	if n := int(length) - HeaderSize; n > 0 {
		if r.pace != nil {
			r.pace(n)
		}
		if f.Payload, err = readGrowing(r.br, n); err != nil {
			return Frame{}, endOfStream(err, 1)
		}
	}
	return f, nil
}

// SetMaxLength changes the largest length field accepted from the next frame on (the gateway
// raises it after login).
func (r *Reader) SetMaxLength(maxLength int) { r.maxLength = maxLength }

// SetPace makes Next call pace with a frame's payload size once its header is read and before
// its payload is; pace may block, leaving the payload in the stream (over TCP, the peer then
// meets backpressure). nil: no pacing. Called on the reader's goroutine.
func (r *Reader) SetPace(pace func(payload int)) { r.pace = pace }

// growStep is the payload size allocated at once; a longer payload's buffer doubles as its bytes
// arrive, so that a peer announcing a large frame and sending nothing holds no large buffer.
const growStep = 64 << 10

// readGrowing reads exactly n bytes.
func readGrowing(r io.Reader, n int) ([]byte, error) {
	buf := make([]byte, min(n, growStep))
	got := 0
	for {
		m, err := io.ReadFull(r, buf[got:])
		got += m
		if err != nil {
			return nil, err
		}
		if got == n {
			return buf, nil
		}
		buf = append(buf, make([]byte, min(n-got, len(buf)))...)
	}
}

// Buffered reports how many bytes are already read from the stream but not yet decoded.
func (r *Reader) Buffered() int { return r.br.Buffered() }

// endOfStream turns an EOF after partial input into io.ErrUnexpectedEOF.
func endOfStream(err error, partial int) error {
	if errors.Is(err, io.EOF) && partial > 0 {
		return io.ErrUnexpectedEOF
	}
	return err
}
