// Package wire is the frame codec of protocol v1 (docs/protocol.md): the 12-byte header, the
// length prefix used on byte streams (TCP, KCP), and the bare frame used in WebSocket messages.
// The gateway, the Go client, the bot and the load tool all use it.
package wire

import (
	"encoding/binary"
	"errors"
	"fmt"
)

const (
	// LengthSize is the size of the length prefix on byte streams.
	LengthSize = 4
	// HeaderSize is msg_id, flags and seq: the part of a frame that length counts before the payload.
	HeaderSize = 8
	// DefaultMaxLength is the server's default maximum for the length field (1 MiB).
	DefaultMaxLength = 1 << 20

	// FlagReply marks a reply to the request with the same seq.
	FlagReply uint16 = 0x0001
	// knownFlags are the flag bits version 1 defines.
	knownFlags = FlagReply
)

// Frame is one protocol message. Payload is the Protocol Buffers encoding of the message MsgID
// names; it may be empty.
type Frame struct {
	MsgID   uint16
	Flags   uint16
	Seq     uint32
	Payload []byte
}

// IsReply reports whether the REPLY flag is set.
func (f Frame) IsReply() bool { return f.Flags&FlagReply != 0 }

// ViolationKind says which rule of the frame format was broken.
type ViolationKind int

const (
	// Malformed: length below 8, an unknown flag bit, or a message that is not a frame.
	Malformed ViolationKind = iota + 1
	// TooLarge: length above the receiver's maximum.
	TooLarge
)

// Violation is a protocol violation found while decoding: the connection must be closed after
// telling the peer which rule it broke.
type Violation struct {
	Kind   ViolationKind
	Detail string
}

func (v *Violation) Error() string { return "wire: " + v.Detail }

// AsViolation returns the violation inside err, if any.
func AsViolation(err error) (*Violation, bool) {
	var v *Violation
	ok := errors.As(err, &v)
	return v, ok
}

// AppendStream appends f with its length prefix, as sent on TCP and KCP.
func AppendStream(dst []byte, f Frame) []byte {
	dst = binary.BigEndian.AppendUint32(dst, uint32(HeaderSize+len(f.Payload)))
	return AppendBare(dst, f)
}

// AppendBare appends f without a length prefix, as carried by one WebSocket message.
func AppendBare(dst []byte, f Frame) []byte {
	dst = binary.BigEndian.AppendUint16(dst, f.MsgID)
	dst = binary.BigEndian.AppendUint16(dst, f.Flags)
	dst = binary.BigEndian.AppendUint32(dst, f.Seq)
	return append(dst, f.Payload...)
}

// CheckLength validates a length field against the limits of version 1.
func CheckLength(length uint32, maxLength int) error {
	if length < HeaderSize {
		return &Violation{Kind: Malformed, Detail: fmt.Sprintf("frame length %d is below %d", length, HeaderSize)}
	}
	if uint64(length) > uint64(maxLength) {
		return &Violation{Kind: TooLarge, Detail: fmt.Sprintf("frame length %d exceeds the maximum %d", length, maxLength)}
	}
	return nil
}

// ParseBare decodes a frame without length prefix (one WebSocket message). The payload aliases b.
func ParseBare(b []byte, maxLength int) (Frame, error) {
	if len(b) < HeaderSize {
		return Frame{}, &Violation{Kind: Malformed, Detail: fmt.Sprintf("message of %d bytes is shorter than a frame header", len(b))}
	}
	if len(b) > maxLength {
		return Frame{}, &Violation{Kind: TooLarge, Detail: fmt.Sprintf("frame length %d exceeds the maximum %d", len(b), maxLength)}
	}
	f := Frame{
		MsgID: binary.BigEndian.Uint16(b[0:2]),
		Flags: binary.BigEndian.Uint16(b[2:4]),
		Seq:   binary.BigEndian.Uint32(b[4:8]),
	}
	if f.Flags&^knownFlags != 0 {
		return Frame{}, &Violation{Kind: Malformed, Detail: fmt.Sprintf("unknown flag bits 0x%04x", f.Flags&^knownFlags)}
	}
	if len(b) > HeaderSize {
		f.Payload = b[HeaderSize:]
	}
	return f, nil
}
