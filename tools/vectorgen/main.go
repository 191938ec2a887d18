// Command vectorgen writes the SDK conformance vectors in tests/vectors from protobuf-go: codec
// vectors for every field kind of tests/vectors/conformance.proto (messages.json) and frame
// vectors for protocol v1 (frames.json). Every SDK decodes each valid vector and encodes it back
// to exactly the same bytes, and reports an error for each invalid one.
//
//	go run ./tools/vectorgen            # regenerate
//	go run ./tools/vectorgen -check     # fail if the committed vectors are stale
package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"github.com/moonforge/moonforge/engine/schema"
)

func main() {
	dir := flag.String("dir", "tests/vectors", "directory of conformance.proto and the vector files")
	check := flag.Bool("check", false, "only report stale vector files (exit 1 if any)")
	flag.Parse()
	if err := run(*dir, *check); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

// run builds every vector file from the schema in dir and writes it there, or with check only
// compares it with the file on disk.
func run(dir string, check bool) error {
	sch, err := schema.Load(dir)
	if err != nil {
		return err
	}
	msgs, err := messageVectors(sch)
	if err != nil {
		return err
	}
	frames, err := frameVectors()
	if err != nil {
		return err
	}
	files := []struct {
		name    string
		entries []any
	}{
		{"messages.json", msgs},
		{"frames.json", frames},
	}
	stale := 0
	for _, f := range files {
		want, err := render(f.entries)
		if err != nil {
			return fmt.Errorf("%s: %w", f.name, err)
		}
		path := filepath.Join(dir, f.name)
		have, _ := os.ReadFile(path)
		if bytes.Equal(have, want) {
			continue
		}
		if check {
			fmt.Fprintf(os.Stderr, "%s is stale: run `make sdk`\n", path)
			stale++
			continue
		}
		if err := os.WriteFile(path, want, 0o644); err != nil {
			return err
		}
		fmt.Println("wrote", path)
	}
	if stale > 0 {
		return fmt.Errorf("%d vector file(s) are stale", stale)
	}
	return nil
}

// render writes a JSON array with one compact entry per line, so that a diff shows which vector
// changed.
func render(entries []any) ([]byte, error) {
	var out bytes.Buffer
	out.WriteString("[\n")
	for i, e := range entries {
		var line bytes.Buffer
		enc := json.NewEncoder(&line)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(e); err != nil {
			return nil, err
		}
		out.WriteString("  ")
		out.Write(bytes.TrimSuffix(line.Bytes(), []byte("\n")))
		if i < len(entries)-1 {
			out.WriteString(",")
		}
		out.WriteString("\n")
	}
	out.WriteString("]\n")
	return out.Bytes(), nil
}
