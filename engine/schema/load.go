package schema

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"

	"github.com/jhump/protoreflect/desc/protoparse"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/moonforge/moonforge/engine/source"
)

// fileSyntaxField is the number of the syntax field in FileDescriptorProto, for source paths.
const fileSyntaxField = 12

// Load parses every *.proto file under dir (recursively, paths relative to dir, sorted) and builds
// a Schema. Imports resolve against dir ("moonforge/protocol.proto" is dir/moonforge/protocol.proto);
// google/protobuf/*.proto come built in. Names starting with "." are skipped (editor lock files,
// .git, Kubernetes ConfigMap "..data" directories); symlinks are followed. A schema problem is
// returned as a *LoadError listing every problem found, each with its file and line when known.
// Load blocks on file I/O; it may be called from any goroutine.
func Load(dir string) (*Schema, error) {
	info, err := os.Stat(dir)
	if err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			pe.Path = filepath.ToSlash(pe.Path) // the same message on every OS
		}
		return nil, fmt.Errorf("schema: %w", err)
	}
	if !info.IsDir() {
		return nil, fmt.Errorf("schema: %s is not a directory", filepath.ToSlash(dir))
	}
	s, err := LoadFS(os.DirFS(dir))
	var le *LoadError
	if errors.As(err, &le) {
		le.Root = dir
	}
	return s, err
}

// LoadFS is Load reading from fsys, whose root is the import root.
func LoadFS(fsys fs.FS) (*Schema, error) {
	paths, err := source.Files(fsys, ".proto")
	if err != nil {
		return nil, fmt.Errorf("schema: %w", err)
	}
	if len(paths) == 0 {
		return nil, &LoadError{Problems: []source.Problem{{Message: "no .proto files found"}}}
	}
	sources := make(map[string][]byte, len(paths))
	for _, p := range paths {
		b, err := fs.ReadFile(fsys, p)
		if err != nil {
			return nil, fmt.Errorf("schema: %w", err)
		}
		sources[p] = b
	}
	files, problems := parse(paths, sources)
	if len(problems) > 0 {
		return nil, &LoadError{Problems: problems}
	}
	s, problems := build(files)
	if len(problems) > 0 {
		return nil, &LoadError{Problems: problems}
	}
	s.hash = hashSources(paths, sources)
	return s, nil
}

// parse compiles the sources, collecting every syntax and link error the parser reports.
func parse(paths []string, sources map[string][]byte) (files []protoreflect.FileDescriptor, problems []source.Problem) {
	defer func() {
		if r := recover(); r != nil {
			files, problems = nil, append(problems, source.Problem{Message: fmt.Sprintf("internal error in the proto parser: %v", r)})
		}
	}()
	p := protoparse.Parser{
		Accessor: func(name string) (io.ReadCloser, error) {
			if b, ok := sources[name]; ok {
				return io.NopCloser(bytes.NewReader(b)), nil
			}
			return nil, fmt.Errorf("%s: %w", name, fs.ErrNotExist)
		},
		IncludeSourceCodeInfo: true,
		ErrorReporter: func(err protoparse.ErrorWithPos) error {
			pos := err.GetPosition()
			problems = append(problems, source.Problem{File: pos.Filename, Line: pos.Line, Column: pos.Col, Message: err.Unwrap().Error()})
			return nil
		},
	}
	fds, err := p.ParseFiles(paths...)
	if len(problems) > 0 {
		return nil, problems
	}
	if err != nil {
		return nil, []source.Problem{{Message: err.Error()}}
	}
	files = make([]protoreflect.FileDescriptor, len(fds))
	for i, fd := range fds {
		files[i] = fd.UnwrapFile()
	}
	return files, nil
}

// hashSources hashes each file as its path, a NUL, its length in decimal, a NUL and its content.
func hashSources(paths []string, sources map[string][]byte) string {
	h := sha256.New()
	for _, p := range paths {
		io.WriteString(h, p)
		h.Write([]byte{0})
		io.WriteString(h, strconv.Itoa(len(sources[p])))
		h.Write([]byte{0})
		h.Write(sources[p])
	}
	return hex.EncodeToString(h.Sum(nil))
}

// build indexes the compiled files and builds the codecs.
func build(files []protoreflect.FileDescriptor) (*Schema, []source.Problem) {
	s := &Schema{
		files:  files,
		byName: make(map[string]*Message),
		descs:  make(map[protoreflect.FullName]protoreflect.MessageDescriptor),
	}
	var problems []source.Problem
	seenFiles := make(map[string]bool)
	for _, f := range files {
		indexDescriptors(f, s.descs, seenFiles)
	}
	ids := newIDRules(files)
	for _, f := range files {
		if f.Syntax() != protoreflect.Proto3 {
			p := source.Problem{File: f.Path(), Message: fmt.Sprintf("only proto3 files are supported, this one is %s", f.Syntax())}
			if loc := f.SourceLocations().ByPath(protoreflect.SourcePath{fileSyntaxField}); loc.Path != nil {
				p.Line, p.Column = loc.StartLine+1, loc.StartColumn+1
			}
			problems = append(problems, p)
			continue
		}
		eachMessage(f.Messages(), func(md protoreflect.MessageDescriptor) {
			problems = append(problems, checkFields(md)...)
			if id, ok := ids.check(md); ok {
				s.messages = append(s.messages, &Message{
					ID:       id,
					Name:     string(md.Name()),
					FullName: string(md.FullName()),
					Desc:     md,
				})
			}
		})
	}
	problems = append(problems, ids.problems...)
	if len(problems) > 0 {
		return nil, problems
	}
	slices.SortFunc(s.messages, func(x, y *Message) int { return int(x.ID) - int(y.ID) })
	shortCount := make(map[string]int)
	if n := len(s.messages); n > 0 {
		s.byID = make([]*Message, int(s.messages[n-1].ID)+1)
	}
	for i, m := range s.messages {
		m.Index = i
		s.byID[m.ID] = m
		s.byName[m.FullName] = m
		shortCount[m.Name]++
	}
	for _, m := range s.messages {
		if _, taken := s.byName[m.Name]; !taken && shortCount[m.Name] == 1 {
			s.byName[m.Name] = m
		}
	}
	return s, nil
}

// eachMessage calls fn for every message in mds and their nested messages, depth first, in
// declaration order. Map entry types are skipped: map fields describe them.
func eachMessage(mds protoreflect.MessageDescriptors, fn func(protoreflect.MessageDescriptor)) {
	for i := 0; i < mds.Len(); i++ {
		md := mds.Get(i)
		if md.IsMapEntry() {
			continue
		}
		fn(md)
		eachMessage(md.Messages(), fn)
	}
}

// indexDescriptors adds every message of f and of the files it imports, transitively, to descs.
func indexDescriptors(f protoreflect.FileDescriptor, descs map[protoreflect.FullName]protoreflect.MessageDescriptor, seen map[string]bool) {
	if seen[f.Path()] {
		return
	}
	seen[f.Path()] = true
	eachMessage(f.Messages(), func(md protoreflect.MessageDescriptor) { descs[md.FullName()] = md })
	for i := 0; i < f.Imports().Len(); i++ {
		indexDescriptors(f.Imports().Get(i).FileDescriptor, descs, seen)
	}
}

// checkFields reports the fields of md that no Lua codec can carry: groups, and message types
// declared in a file that is not proto3.
func checkFields(md protoreflect.MessageDescriptor) []source.Problem {
	var problems []source.Problem
	fds := md.Fields()
	for i := 0; i < fds.Len(); i++ {
		fd := fds.Get(i)
		if fd.IsMap() {
			fd = fd.MapValue()
		}
		var msg string
		switch {
		case fd.Kind() == protoreflect.GroupKind:
			msg = fmt.Sprintf("field %s: groups are not supported", fd.FullName())
		case fd.Kind() == protoreflect.MessageKind && fd.Message().ParentFile().Syntax() != protoreflect.Proto3:
			msg = fmt.Sprintf("field %s: type %s is declared in %s, which is not proto3; only proto3 types are supported",
				fd.FullName(), fd.Message().FullName(), fd.Message().ParentFile().Path())
		default:
			continue
		}
		p := source.Problem{File: fd.ParentFile().Path(), Message: msg}
		if loc := fd.ParentFile().SourceLocations().ByDescriptor(fd); loc.Path != nil {
			p.Line, p.Column = loc.StartLine+1, loc.StartColumn+1
		}
		problems = append(problems, p)
	}
	return problems
}
