package schema

import "google.golang.org/protobuf/reflect/protoreflect"

// Message is a message that carries a message id. It is immutable and safe for concurrent use.
// Its Lua table codec is in package luapb.
type Message struct {
	ID       uint16
	Index    int    // its place in Schema.Messages
	Name     string // short name, e.g. "ChatSendReq"
	FullName string // e.g. "demo.ChatSendReq"
	Desc     protoreflect.MessageDescriptor
}
