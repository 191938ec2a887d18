// Command moonforge is the Moonforge game server.
//
//	moonforge run [flags]      run every role in one process (embedded store, hot reload)
//	moonforge reload [flags]   ask a running node to reload its scripts and schema
//	moonforge version          print the version
//
// The commands are in engine/cli, so that a studio's own binary can run them with its Go
// extensions (docs/extensions.md).
package main

import (
	"os"

	"github.com/moonforge/moonforge/engine/cli"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	os.Exit(cli.Main(os.Args[1:], cli.Options{Version: version}))
}
