package schema

import (
	"google.golang.org/protobuf/reflect/protoreflect"
)

// Schema is a loaded set of .proto files: the messages that carry a message id, and a codec for
// every message they can contain. It is immutable after Load and safe for concurrent use; a hot
// reload builds a new Schema and swaps the pointer.
type Schema struct {
	files    []protoreflect.FileDescriptor
	hash     string
	messages []*Message // sorted by id
	byID     []*Message // by id, up to the highest: a request's lookup is an index
	byName   map[string]*Message
	descs    map[protoreflect.FullName]protoreflect.MessageDescriptor
}

// ByID returns the message with the given id, or nil if the schema (or s) has none.
func (s *Schema) ByID(id uint16) *Message {
	if s != nil && int(id) < len(s.byID) {
		return s.byID[id]
	}
	return nil
}

// ByName returns a message that has an id by its full name ("demo.ChatSendReq") or by its short
// name ("ChatSendReq") when no other message with an id shares that short name; nil if none.
func (s *Schema) ByName(name string) *Message {
	return s.byName[name]
}

// Messages returns every message that has an id, sorted by id (none for a nil s). The caller must
// not modify the slice.
func (s *Schema) Messages() []*Message {
	if s == nil {
		return nil
	}
	return s.messages
}

// Files returns every .proto file loaded from the schema directory, sorted by path, for code
// generators. The caller must not modify the slice.
func (s *Schema) Files() []protoreflect.FileDescriptor {
	return s.files
}

// Hash is the hex SHA-256 over the sorted (path, content) pairs of the source files: two schemas
// with the same hash were loaded from identical sources.
func (s *Schema) Hash() string {
	return s.hash
}

// Describe returns the descriptor of any message by full name, with or without an id, declared
// in a loaded file or in a file they import (google.protobuf.* included); nil if there is none.
func (s *Schema) Describe(name string) protoreflect.MessageDescriptor {
	return s.descs[protoreflect.FullName(name)]
}
