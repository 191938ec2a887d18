// Command protogen generates code from the .proto files under proto/ with the same loader the
// server uses (engine/schema): the Go types of the framework messages in engine/protocol, and for
// every .proto file under proto/ a Lua SDK module and a C# SDK file, named after the file. A new
// .proto needs no change here; generated files whose .proto is gone are removed.
//
//	go run ./tools/protogen            # regenerate
//	go run ./tools/protogen -check     # fail if a generated file is stale
package main

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"

	"github.com/moonforge/moonforge/engine/schema"
)

// output is one generated file.
type output struct {
	path  string
	proto string // schema directory relative to the root; "" is the -proto directory
	gen   func(sch *schema.Schema) ([]byte, error)
}

// outputs lists every generated file for the schema of proto/.
func outputs(sch *schema.Schema) ([]output, error) {
	files, err := protoFiles(sch)
	if err != nil {
		return nil, err
	}
	return append([]output{{
		path: "engine/protocol/protocol.pb.go",
		gen: func(sch *schema.Schema) ([]byte, error) {
			return generateGo(sch, "moonforge/protocol.proto", "github.com/moonforge/moonforge/engine/protocol;protocol")
		},
	}, {
		path:  "engine/bus/envelope.pb.go",
		proto: "engine/bus/schema",
		gen: func(sch *schema.Schema) ([]byte, error) {
			return generateGo(sch, "moonforge/bus/envelope.proto", "github.com/moonforge/moonforge/engine/bus;bus")
		},
	}}, append(luaOutputs(files), csharpOutputs(files)...)...), nil
}

// protoFile is one .proto file of proto/ and the base name its SDK outputs take.
type protoFile struct {
	path string // in the schema, such as "demo/demo.proto"
	name string // "demo"
}

// protoFiles returns the .proto files of sch sorted by path. Two files with one base name would
// generate the same SDK file, so that is an error.
func protoFiles(sch *schema.Schema) ([]protoFile, error) {
	var out []protoFile
	byName := map[string]string{}
	for _, f := range sch.Files() {
		name := strings.TrimSuffix(path.Base(f.Path()), ".proto")
		if prev, ok := byName[strings.ToLower(name)]; ok {
			return nil, fmt.Errorf("protogen: %s and %s would generate the same SDK files; rename one", prev, f.Path())
		}
		byName[strings.ToLower(name)] = f.Path()
		out = append(out, protoFile{path: f.Path(), name: name})
	}
	slices.SortFunc(out, func(a, b protoFile) int { return strings.Compare(a.path, b.path) })
	return out, nil
}

// generatedDirs hold only files written by protogen: a file there that no output names is stale.
var generatedDirs = []string{luaGeneratedDir, csharpRuntimeDir}

func main() {
	protoDir := flag.String("proto", "proto", "directory of .proto files")
	root := flag.String("root", ".", "repository root the output paths are relative to")
	check := flag.Bool("check", false, "only report stale generated files (exit 1 if any)")
	flag.Parse()
	if err := run(*protoDir, *root, *check); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

func run(protoDir, root string, check bool) error {
	sch, err := schema.Load(protoDir)
	if err != nil {
		return err
	}
	outs, err := outputs(sch)
	if err != nil {
		return err
	}
	schemas := map[string]*schema.Schema{"": sch}
	stale := 0
	written := map[string]bool{}
	for _, o := range outs {
		written[o.path] = true
		s, ok := schemas[o.proto]
		if !ok {
			if s, err = schema.Load(root + "/" + o.proto); err != nil {
				return err
			}
			schemas[o.proto] = s
		}
		want, err := o.gen(s)
		if err != nil {
			return err
		}
		path := root + "/" + o.path
		have, _ := os.ReadFile(path)
		if bytes.Equal(have, want) {
			continue
		}
		if check {
			fmt.Fprintf(os.Stderr, "%s is stale: run `make generate`\n", o.path)
			stale++
			continue
		}
		if err := os.WriteFile(path, want, 0o644); err != nil {
			return err
		}
		fmt.Println("wrote", o.path)
	}
	for _, dir := range generatedDirs {
		entries, err := os.ReadDir(filepath.Join(root, dir))
		if err != nil {
			return err
		}
		for _, e := range entries {
			p := path.Join(dir, e.Name())
			if e.IsDir() || written[p] {
				continue
			}
			if check {
				fmt.Fprintf(os.Stderr, "%s has no .proto under proto/ any more: run `make generate`\n", p)
				stale++
				continue
			}
			if err := os.Remove(filepath.Join(root, p)); err != nil {
				return err
			}
			fmt.Println("removed", p)
		}
	}
	if stale > 0 {
		return fmt.Errorf("%d generated file(s) are stale", stale)
	}
	return nil
}
