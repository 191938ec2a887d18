package schema

import (
	"fmt"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/moonforge/moonforge/engine/source"
)

const (
	// msgIDOption is the full name of the message option that declares a message id.
	msgIDOption = "moonforge.msg_id"
	// frameworkPackage is the only package whose messages may use framework ids.
	frameworkPackage = "moonforge"
	// firstAppID is the lowest application id; 1 to firstAppID-1 belong to the framework.
	firstAppID = 1000
	maxID      = 65535
	// descriptorOptionsField is the number of the options field in DescriptorProto, for source paths.
	descriptorOptionsField = 7
)

// idRules reads message ids and checks them against the rules of docs/protocol.md, collecting every
// problem rather than stopping at the first.
type idRules struct {
	option   protowire.Number // field number of (moonforge.msg_id) in MessageOptions; 0 if not declared
	owners   map[uint16]protoreflect.MessageDescriptor
	problems []source.Problem
}

func newIDRules(files []protoreflect.FileDescriptor) *idRules {
	r := &idRules{owners: make(map[uint16]protoreflect.MessageDescriptor)}
	seen := make(map[string]bool)
	var find func(f protoreflect.FileDescriptor)
	find = func(f protoreflect.FileDescriptor) {
		if seen[f.Path()] || r.option != 0 {
			return
		}
		seen[f.Path()] = true
		if xd := f.Extensions().ByName("msg_id"); xd != nil && xd.FullName() == msgIDOption &&
			xd.ContainingMessage().FullName() == "google.protobuf.MessageOptions" {
			r.option = xd.Number()
			return
		}
		for i := 0; i < f.Imports().Len(); i++ {
			find(f.Imports().Get(i).FileDescriptor)
		}
	}
	for _, f := range files {
		find(f)
	}
	return r
}

// check returns md's id when it declares a valid one; otherwise it records any problem and
// reports false.
func (r *idRules) check(md protoreflect.MessageDescriptor) (uint16, bool) {
	raw, ok := r.declared(md)
	if !ok {
		return 0, false
	}
	pkg := string(md.ParentFile().Package())
	switch {
	case raw == 0:
		r.problem(md, fmt.Sprintf("message %s: msg_id 0 is invalid; ids are 1 to %d", md.FullName(), maxID))
	case raw > maxID:
		r.problem(md, fmt.Sprintf("message %s: msg_id %d is above %d; ids are 16-bit", md.FullName(), raw, maxID))
	case raw < firstAppID && pkg != frameworkPackage:
		r.problem(md, fmt.Sprintf("message %s: msg_id %d is in the framework range 1 to %d, which only package %s may use; application ids start at %d",
			md.FullName(), raw, firstAppID-1, frameworkPackage, firstAppID))
	default:
		id := uint16(raw)
		if prev := r.owners[id]; prev != nil {
			r.problem(md, fmt.Sprintf("message %s: msg_id %d is already used by message %s (%s); ids must be unique",
				md.FullName(), id, prev.FullName(), r.where(prev)))
			return 0, false
		}
		r.owners[id] = md
		return id, true
	}
	return 0, false
}

// declared reads the msg_id option of md from its encoded options, where the parser leaves
// custom options it has no Go type for.
func (r *idRules) declared(md protoreflect.MessageDescriptor) (uint64, bool) {
	if r.option == 0 {
		return 0, false
	}
	b, err := proto.MarshalOptions{AllowPartial: true, Deterministic: true}.Marshal(md.Options())
	if err != nil {
		return 0, false
	}
	var id uint64
	found := false
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return 0, false
		}
		b = b[n:]
		if num == r.option && typ == protowire.VarintType {
			id, n = protowire.ConsumeVarint(b)
			found = true
		} else {
			n = protowire.ConsumeFieldValue(num, typ, b)
		}
		if n < 0 {
			return 0, false
		}
		b = b[n:]
	}
	return id, found
}

func (r *idRules) problem(md protoreflect.MessageDescriptor, msg string) {
	p := source.Problem{File: md.ParentFile().Path(), Message: msg}
	p.Line, p.Column = r.position(md)
	r.problems = append(r.problems, p)
}

// position is the 1-based line and column of md's msg_id option, else of md; 0, 0 if unknown.
func (r *idRules) position(md protoreflect.MessageDescriptor) (line, col int) {
	locs := md.ParentFile().SourceLocations()
	loc := locs.ByDescriptor(md)
	if loc.Path == nil {
		return 0, 0
	}
	opt := append(append(protoreflect.SourcePath(nil), loc.Path...), descriptorOptionsField, int32(r.option))
	if l := locs.ByPath(opt); l.Path != nil {
		loc = l
	}
	return loc.StartLine + 1, loc.StartColumn + 1
}

func (r *idRules) where(md protoreflect.MessageDescriptor) string {
	line, _ := r.position(md)
	if line == 0 {
		return md.ParentFile().Path()
	}
	return fmt.Sprintf("%s:%d", md.ParentFile().Path(), line)
}
