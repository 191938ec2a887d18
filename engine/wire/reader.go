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
		f.Payload = make([]byte, n)
		if _, err := io.ReadFull(r.br, f.Payload); err != nil {
			return Frame{}, endOfStream(err, 1)
		}
	}
	return f, nil
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
