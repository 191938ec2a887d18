package schema

import (
	"errors"

	lua "github.com/yuin/gopher-lua"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// Message is a message that carries a message id. It is immutable and safe for concurrent use;
// Decode and Encode may be called from any goroutine, each with tables of an LState that the
// calling goroutine owns.
type Message struct {
	ID       uint16
	Name     string // short name, e.g. "ChatSendReq"
	FullName string // e.g. "demo.ChatSendReq"
	Desc     protoreflect.MessageDescriptor

	codec *codec
}

// Decode converts the wire bytes b into a new table created in L, as the package documentation
// describes. It does not keep b. It never panics: malformed input returns an error naming the
// field path.
func (m *Message) Decode(L *lua.LState, b []byte) (*lua.LTable, error) {
	if L == nil {
		return nil, errors.New("schema: Decode " + m.FullName + ": nil LState")
	}
	return decode(L, m.codec, b)
}

// Encode appends the wire encoding of t to dst and returns the extended slice. Tables are read
// raw (metatables are ignored) and not modified. On error it returns dst unchanged and an error
// naming the field path, e.g. "demo.ArenaState.players[2].x: want number, got string".
func (m *Message) Encode(dst []byte, t *lua.LTable) ([]byte, error) {
	return encode(dst, m.codec, t)
}
