// Command studio is an example of a studio's own Moonforge binary: the moonforge commands (run,
// call, reload, version, help) with Go code of the studio's for its Lua gameplay — here a
// path-finder on a grid, which scripts call as mf.ext.paths. docs/extensions.md walks through it.
//
//	go build -o studio ./examples/studio
//	./studio run -dev -lua examples/studio/lua -proto examples/studio/proto
package main

import (
	"os"

	"github.com/moonforge/moonforge/engine/cli"
	"github.com/moonforge/moonforge/engine/script"
)

func main() {
	paths := NewPaths(16, 16)
	paths.Block(3, 0, 3, 12) // a wall with a gap at the bottom
	os.Exit(cli.Main(os.Args[1:], cli.Options{
		Version:    "studio-example",
		Extensions: script.Extensions{"paths": paths},
	}))
}
