package bus

import (
	"errors"
	"fmt"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/moonforge/moonforge/engine/protocol"
)

// EnvelopeOverhead is room kept above gate.max_frame for an envelope's own fields, so that a frame
// of max_frame bytes plus its envelope fits the bus's max_payload.
const EnvelopeOverhead = 16 << 10

// ErrFormat, ErrKind and ErrDecode are the ways an envelope from the bus can be refused.
var (
	ErrDecode = errors.New("envelope does not decode")
	ErrFormat = errors.New("envelope format not supported")
	ErrKind   = errors.New("envelope kind not known")
)

// Encode returns e's bytes with Format set.
func Encode(e *Envelope) []byte {
	e.Format = Format
	b, err := proto.Marshal(e)
	if err != nil { // only invalid UTF-8 in a string field: never from the engine's own values
		panic(fmt.Sprintf("bus: encoding an envelope: %v", err))
	}
	return b
}

// Decode parses bytes from the bus. It never panics: bytes that do not decode, an unknown format
// or an unknown kind are errors (ErrDecode, ErrFormat, ErrKind).
func Decode(b []byte) (*Envelope, error) {
	e := &Envelope{}
	if err := proto.Unmarshal(b, e); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrDecode, err)
	}
	if e.Format != Format {
		return nil, fmt.Errorf("%w: %d", ErrFormat, e.Format)
	}
	if _, ok := Kind_name[int32(e.Kind)]; !ok || e.Kind == Kind_KIND_UNSPECIFIED {
		return nil, fmt.Errorf("%w: %d", ErrKind, e.Kind)
	}
	return e, nil
}

// SetDeadline stores t (zero: none) in e.
func (e *Envelope) SetDeadline(t time.Time) {
	if t.IsZero() {
		e.DeadlineUnixMs = 0
		return
	}
	e.DeadlineUnixMs = t.UnixMilli()
}

// Deadline returns e's deadline, or the zero time.
func (e *Envelope) Deadline() time.Time {
	if e.DeadlineUnixMs == 0 {
		return time.Time{}
	}
	return time.UnixMilli(e.DeadlineUnixMs)
}

// Expired reports whether e's deadline has passed at now.
func (e *Envelope) Expired(now time.Time) bool {
	return e.DeadlineUnixMs != 0 && now.UnixMilli() > e.DeadlineUnixMs
}

// SetError stores err (nil: none) in an answer.
func (e *Envelope) SetError(err *protocol.CodeError) {
	if err == nil {
		return
	}
	e.Code, e.Error, e.RetryAfterMs = uint32(err.Code), err.Message, err.RetryAfterMs
}

// Err returns an answer's error, or nil.
func (e *Envelope) Err() *protocol.CodeError {
	if e.Code == 0 {
		return nil
	}
	return &protocol.CodeError{Code: protocol.Code(e.Code), Message: e.Error, RetryAfterMs: e.RetryAfterMs}
}
