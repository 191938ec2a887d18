package protocol

import (
	"testing"

	"google.golang.org/protobuf/proto"
)

func TestMessageIDsMatchProto(t *testing.T) {
	for want, m := range map[uint16]proto.Message{
		MsgPing: &Ping{}, MsgPong: &Pong{}, MsgError: &Error{}, MsgKick: &Kick{},
		MsgLoginReq: &LoginReq{}, MsgLoginAck: &LoginAck{}, MsgResumeReq: &ResumeReq{}, MsgResumeAck: &ResumeAck{},
	} {
		opts := m.ProtoReflect().Descriptor().Options()
		got := proto.GetExtension(opts, E_MsgId).(uint32)
		if uint32(want) != got {
			t.Errorf("%s: constant %d, proto says %d", m.ProtoReflect().Descriptor().FullName(), want, got)
		}
	}
}

func TestCodes(t *testing.T) {
	names := map[Code]string{1: "MALFORMED_FRAME", 2: "FRAME_TOO_LARGE", 3: "UNKNOWN_MESSAGE", 4: "DECODE_FAILED",
		5: "UNAUTHENTICATED", 6: "FORBIDDEN", 7: "RATE_LIMITED", 8: "UNAVAILABLE", 9: "TIMEOUT", 10: "INTERNAL",
		11: "RESUME_FAILED", 12: "KICKED_DUPLICATE_LOGIN", 13: "IDLE_TIMEOUT", 14: "SERVER_SHUTDOWN", 15: "BAD_REQUEST"}
	if len(Codes()) != len(names) {
		t.Fatalf("Codes() has %d entries, docs/protocol.md lists %d", len(Codes()), len(names))
	}
	for c, n := range names {
		if c.String() != n {
			t.Errorf("code %d: %s, want %s", c, c, n)
		}
	}
	closing := map[Code]bool{1: true, 2: true, 12: true, 13: true, 14: true}
	for c := range names {
		if c.ClosesConnection() != closing[c] {
			t.Errorf("%s: ClosesConnection %v", c, c.ClosesConnection())
		}
	}
	if Code(1001).String() != "APP_1001" || !Code(1001).Raisable() || Code(1).Raisable() {
		t.Error("application codes")
	}
}
