package client

import (
	"bytes"
	"encoding/json"
	"fmt"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/dynamicpb"

	"github.com/moonforge/moonforge/engine/schema"
)

// Messages encodes and decodes messages by name, from JSON text, with a schema loaded from the
// .proto files: for tools without generated code (the bot, the load tool, tests).
type Messages struct{ Schema *schema.Schema }

// Encode builds the message named name from its protojson text ("" for an empty message) and
// returns its id and encoding.
func (m Messages) Encode(name, json string) (uint16, []byte, error) {
	msg := m.Schema.ByName(name)
	if msg == nil {
		return 0, nil, fmt.Errorf("no message %q with a msg_id", name)
	}
	dm := dynamicpb.NewMessage(msg.Desc)
	if json != "" {
		if err := protojson.Unmarshal([]byte(json), dm); err != nil {
			return 0, nil, fmt.Errorf("%s: %w", name, err)
		}
	}
	b, err := proto.Marshal(dm)
	return msg.ID, b, err
}

// Decode returns the name and protojson text of a message given its id and encoding. The text
// is compact (no spaces), unlike protojson's own output, which varies between builds.
func (m Messages) Decode(id uint16, payload []byte) (string, string, error) {
	msg := m.Schema.ByID(id)
	if msg == nil {
		return "", "", fmt.Errorf("no message with id %d", id)
	}
	dm := dynamicpb.NewMessage(msg.Desc)
	if err := proto.Unmarshal(payload, dm); err != nil {
		return msg.Name, "", fmt.Errorf("%s: %w", msg.Name, err)
	}
	text, err := protojson.MarshalOptions{UseProtoNames: true, EmitUnpopulated: false}.Marshal(dm)
	if err != nil {
		return msg.Name, "", err
	}
	var compact bytes.Buffer
	if err := json.Compact(&compact, text); err != nil {
		return msg.Name, "", err
	}
	return msg.Name, compact.String(), nil
}

// Message decodes a payload into a dynamic message.
func (m Messages) Message(id uint16, payload []byte) (*dynamicpb.Message, error) {
	msg := m.Schema.ByID(id)
	if msg == nil {
		return nil, fmt.Errorf("no message with id %d", id)
	}
	dm := dynamicpb.NewMessage(msg.Desc)
	return dm, proto.Unmarshal(payload, dm)
}
