// Package protocol holds the framework messages of protocol v1 (generated from
// proto/moonforge/protocol.proto by tools/protogen), their message ids, and the one table of error
// codes that every part of Moonforge answers with.
package protocol

import (
	"errors"
	"fmt"
)

// Framework message ids, as declared in proto/moonforge/protocol.proto.
const (
	MsgPing       uint16 = 1
	MsgPong       uint16 = 2
	MsgError      uint16 = 3
	MsgKick       uint16 = 4
	MsgLoginReq   uint16 = 10
	MsgLoginAck   uint16 = 11
	MsgResumeReq  uint16 = 12
	MsgResumeAck  uint16 = 13
	MsgLogoutReq  uint16 = 14
	MsgLogoutAck  uint16 = 15
	MsgRefreshReq uint16 = 16
	MsgRefreshAck uint16 = 17

	// FirstAppMsgID is the lowest id an application message may have.
	FirstAppMsgID uint16 = 1000
)

// Code is an error code of docs/protocol.md, carried by Error and Kick. Codes from 1000 up belong to
// the application.
type Code uint32

// The framework's codes.
const (
	MalformedFrame       Code = 1
	FrameTooLarge        Code = 2
	UnknownMessage       Code = 3
	DecodeFailed         Code = 4
	Unauthenticated      Code = 5
	Forbidden            Code = 6
	RateLimited          Code = 7
	Unavailable          Code = 8
	Timeout              Code = 9
	Internal             Code = 10
	ResumeFailed         Code = 11
	KickedDuplicateLogin Code = 12
	IdleTimeout          Code = 13
	ServerShutdown       Code = 14
	BadRequest           Code = 15

	// FirstAppCode is the lowest code gameplay code may raise with its own meaning.
	FirstAppCode Code = 1000
)

var codeNames = [...]string{
	MalformedFrame:       "MALFORMED_FRAME",
	FrameTooLarge:        "FRAME_TOO_LARGE",
	UnknownMessage:       "UNKNOWN_MESSAGE",
	DecodeFailed:         "DECODE_FAILED",
	Unauthenticated:      "UNAUTHENTICATED",
	Forbidden:            "FORBIDDEN",
	RateLimited:          "RATE_LIMITED",
	Unavailable:          "UNAVAILABLE",
	Timeout:              "TIMEOUT",
	Internal:             "INTERNAL",
	ResumeFailed:         "RESUME_FAILED",
	KickedDuplicateLogin: "KICKED_DUPLICATE_LOGIN",
	IdleTimeout:          "IDLE_TIMEOUT",
	ServerShutdown:       "SERVER_SHUTDOWN",
	BadRequest:           "BAD_REQUEST",
}

// String returns the code's name in docs/protocol.md, "APP_<n>" for application codes.
func (c Code) String() string {
	if int(c) < len(codeNames) && codeNames[c] != "" {
		return codeNames[c]
	}
	if c >= FirstAppCode {
		return fmt.Sprintf("APP_%d", uint32(c))
	}
	return fmt.Sprintf("CODE_%d", uint32(c))
}

// Codes returns the framework's codes in order, for tables such as the Lua constants.
func Codes() []Code {
	out := make([]Code, 0, len(codeNames))
	for c := range codeNames {
		if codeNames[c] != "" {
			out = append(out, Code(c))
		}
	}
	return out
}

// ClosesConnection reports whether docs/protocol.md says a connection ends with this code.
func (c Code) ClosesConnection() bool {
	switch c {
	case MalformedFrame, FrameTooLarge, KickedDuplicateLogin, IdleTimeout, ServerShutdown:
		return true
	}
	return false
}

// Raisable reports whether gameplay code may answer a request with this code: an application
// code, or a framework code that leaves the connection open and describes a refusal.
func (c Code) Raisable() bool {
	if c >= FirstAppCode {
		return true
	}
	switch c {
	case Unauthenticated, Forbidden, RateLimited, Unavailable, Timeout, Internal, BadRequest:
		return true
	}
	return false
}

// CodeError is an error that carries the protocol code to answer with.
type CodeError struct {
	Code         Code
	Message      string
	RetryAfterMs uint32
}

func (e *CodeError) Error() string { return e.Code.String() + ": " + e.Message }

// Errorf returns a *CodeError with a formatted message.
func Errorf(code Code, format string, args ...any) *CodeError {
	return &CodeError{Code: code, Message: fmt.Sprintf(format, args...)}
}

// AsCodeError returns the *CodeError in err's chain, or INTERNAL with err's text; nil for nil.
func AsCodeError(err error) *CodeError {
	if err == nil {
		return nil
	}
	var ce *CodeError
	if errors.As(err, &ce) {
		return ce
	}
	return &CodeError{Code: Internal, Message: err.Error()}
}
