// Command protogen generates code from the .proto files under proto/ with the same loader the
// server uses (engine/schema): the Go types of the framework messages in engine/protocol.
//
//	go run ./tools/protogen            # regenerate
//	go run ./tools/protogen -check     # fail if a generated file is stale
package main

import (
	"bytes"
	"flag"
	"fmt"
	"os"

	"github.com/moonforge/moonforge/engine/schema"
)

// output is one generated file.
type output struct {
	path  string
	proto string // schema directory relative to the root; "" is the -proto directory
	gen   func(sch *schema.Schema) ([]byte, error)
}

func outputs() []output {
	return append([]output{{
		path: "engine/protocol/protocol.pb.go",
		gen: func(sch *schema.Schema) ([]byte, error) {
			return generateGo(sch, "moonforge/protocol.proto", "github.com/moonforge/moonforge/engine/protocol;protocol")
		},
	}}, append(luaOutputs(), csharpOutputs()...)...)
}

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
	schemas := map[string]*schema.Schema{"": sch}
	stale := 0
	for _, o := range outputs() {
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
	if stale > 0 {
		return fmt.Errorf("%d generated file(s) are stale", stale)
	}
	return nil
}
