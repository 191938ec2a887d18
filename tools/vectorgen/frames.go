package main

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"

	"google.golang.org/protobuf/proto"

	"github.com/moonforge/moonforge/engine/protocol"
	"github.com/moonforge/moonforge/engine/wire"
)

// frameVector is a valid entry of frames.json: Hex is the stream form (with the length prefix)
// of the frame whose header fields and payload follow.
type frameVector struct {
	Name       string `json:"name"`
	Hex        string `json:"hex"`
	MsgID      uint16 `json:"msg_id"`
	Flags      uint16 `json:"flags"`
	Seq        uint32 `json:"seq"`
	PayloadHex string `json:"payload_hex"`
	Valid      bool   `json:"valid"`
}

// badFrameVector is an invalid entry: a receiver with the default maximum frame size (1 MiB)
// rejects Hex with the protocol error named by Error, as soon as it has read the bytes given.
type badFrameVector struct {
	Name  string `json:"name"`
	Hex   string `json:"hex"`
	Valid bool   `json:"valid"`
	Error string `json:"error"`
}

// workedExample is the request of the worked example in docs/protocol.md, as printed there.
const workedExample = "00000022 000a 0000 00000001 0a0567756573741211 6465766963652d37663361396332316535"

func frameVectors() ([]any, error) {
	msg := func(m proto.Message) []byte {
		b, err := proto.MarshalOptions{Deterministic: true}.Marshal(m)
		if err != nil {
			panic(err) // the framework messages always marshal
		}
		return b
	}
	valid := []struct {
		name string
		f    wire.Frame
	}{
		{"worked_example_login_req", wire.Frame{MsgID: protocol.MsgLoginReq, Seq: 1, Payload: msg(&protocol.LoginReq{Method: "guest", Account: "device-7f3a9c21e5"})}},
		{"login_ack_reply", wire.Frame{MsgID: protocol.MsgLoginAck, Flags: wire.FlagReply, Seq: 1, Payload: msg(&protocol.LoginAck{PlayerId: "p-1", Token: "t", ExpiresAtMs: 1700000000000, SessionId: "s-1", Created: true})}},
		{"error_reply", wire.Frame{MsgID: protocol.MsgError, Flags: wire.FlagReply, Seq: 9, Payload: msg(&protocol.Error{Code: 1001, Message: "empty message"})}},
		{"ping_request", wire.Frame{MsgID: protocol.MsgPing, Seq: 2, Payload: msg(&protocol.Ping{ClientTimeMs: 1700000000123, AckPushSeq: 42})}},
		{"kick_push_seq_0", wire.Frame{MsgID: protocol.MsgKick, Payload: msg(&protocol.Kick{Code: uint32(protocol.IdleTimeout), Reason: "idle"})}},
		{"push", wire.Frame{MsgID: 2003, Seq: 7, Payload: []byte{0x08, 0x03, 0x12, 0x01, 0x61}}},
		{"one_way_seq_0", wire.Frame{MsgID: 2001, Payload: []byte{0x0a, 0x02, 0x68, 0x69}}},
		{"empty_payload", wire.Frame{MsgID: 3003, Seq: 3}},
		{"empty_reply", wire.Frame{MsgID: 3004, Flags: wire.FlagReply, Seq: 3}},
		{"max_header_values", wire.Frame{MsgID: 65535, Flags: wire.FlagReply, Seq: 4294967295, Payload: []byte{0xff}}},
		{"payload_300_bytes", wire.Frame{MsgID: 1001, Seq: 256, Payload: bytes.Repeat([]byte{0x5a}, 300)}},
	}
	var out []any
	for _, v := range valid {
		b := wire.AppendStream(nil, v.f)
		got, err := wire.NewReader(bytes.NewReader(b), 64<<10, wire.DefaultMaxLength).Next()
		if err != nil || got.MsgID != v.f.MsgID || got.Flags != v.f.Flags || got.Seq != v.f.Seq || !bytes.Equal(got.Payload, v.f.Payload) {
			return nil, fmt.Errorf("frame %s does not read back: %v", v.name, err)
		}
		out = append(out, frameVector{
			Name: v.name, Hex: hex.EncodeToString(b), MsgID: v.f.MsgID, Flags: v.f.Flags, Seq: v.f.Seq,
			PayloadHex: hex.EncodeToString(v.f.Payload), Valid: true,
		})
	}
	if out[0].(frameVector).Hex != strings.ReplaceAll(workedExample, " ", "") {
		return nil, errors.New("the worked example frame does not match")
	}
	invalid := []struct {
		name, hex string
		kind      wire.ViolationKind
	}{
		{"length_0", "00000000", wire.Malformed},
		{"length_7", "00000007 000a 0000 000000", wire.Malformed},
		{"length_above_max", "00100001 000a 0000 00000001", wire.TooLarge},
		{"length_max_uint32", "ffffffff 000a 0000 00000001", wire.TooLarge},
		{"unknown_flag_0002", "00000008 000a 0002 00000001", wire.Malformed},
		{"unknown_flag_8000", "00000009 000a 8000 00000001 00", wire.Malformed},
		{"reply_and_unknown_flag", "00000008 000b 0003 00000001", wire.Malformed},
	}
	for _, v := range invalid {
		b, err := hex.DecodeString(strings.ReplaceAll(v.hex, " ", ""))
		if err != nil {
			return nil, err
		}
		_, err = wire.NewReader(bytes.NewReader(b), 64<<10, wire.DefaultMaxLength).Next()
		viol, ok := wire.AsViolation(err)
		if !ok || viol.Kind != v.kind {
			return nil, fmt.Errorf("frame %s: want violation %d, got %v", v.name, v.kind, err)
		}
		code := protocol.MalformedFrame
		if v.kind == wire.TooLarge {
			code = protocol.FrameTooLarge
		}
		out = append(out, badFrameVector{Name: v.name, Hex: hex.EncodeToString(b), Error: code.String()})
	}
	return out, nil
}
