package main

import (
	"fmt"

	gengo "google.golang.org/protobuf/cmd/protoc-gen-go/internal_gengo"
	"google.golang.org/protobuf/compiler/protogen"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/pluginpb"

	"github.com/moonforge/moonforge/engine/schema"
)

// generateGo runs protoc-gen-go's generator in process on one file of the schema and returns the
// Go source. goPackage is the import path of the package the code goes into.
func generateGo(sch *schema.Schema, file, goPackage string) ([]byte, error) {
	var target protoreflect.FileDescriptor
	for _, f := range sch.Files() {
		if f.Path() == file {
			target = f
		}
	}
	if target == nil {
		return nil, fmt.Errorf("protogen: %s is not in the schema", file)
	}
	req := &pluginpb.CodeGeneratorRequest{
		FileToGenerate: []string{file},
		Parameter:      proto.String("M" + file + "=" + goPackage),
	}
	seen := map[string]bool{}
	var add func(f protoreflect.FileDescriptor)
	add = func(f protoreflect.FileDescriptor) {
		if seen[f.Path()] {
			return
		}
		seen[f.Path()] = true
		imports := f.Imports()
		for i := 0; i < imports.Len(); i++ {
			add(imports.Get(i).FileDescriptor)
		}
		req.ProtoFile = append(req.ProtoFile, protodesc.ToFileDescriptorProto(f))
	}
	add(target)
	// Files that declare no Go package (descriptor.proto does) need one for the generator.
	for _, fd := range req.ProtoFile {
		if fd.GetName() != file && fd.GetOptions().GetGoPackage() == "" {
			return nil, fmt.Errorf("protogen: %s imports %s, which has no go_package", file, fd.GetName())
		}
	}
	plugin, err := protogen.Options{}.New(req)
	if err != nil {
		return nil, err
	}
	for _, f := range plugin.Files {
		if f.Generate {
			gengo.GenerateFile(plugin, f)
		}
	}
	resp := plugin.Response()
	if resp.Error != nil {
		return nil, fmt.Errorf("protogen: %s", resp.GetError())
	}
	if len(resp.File) != 1 {
		return nil, fmt.Errorf("protogen: expected one generated file, got %d", len(resp.File))
	}
	return []byte(resp.File[0].GetContent()), nil
}
