// Command moonforge is the Moonforge game server.
//
//	moonforge run [flags]                  run every role in one process (embedded store, hot reload)
//	moonforge call [flags] Message [JSON]  send one message to a server and print the reply
//	moonforge reload [flags]               ask a running node to reload its scripts and schema
//	moonforge version                      print the version and commit
//	moonforge help [command]               print the commands, or a command's flags
//
// The commands are in engine/cli, so that a studio's own binary runs them with its Go extensions
// (docs/extensions.md).
package main

import (
	"os"

	"github.com/moonforge/moonforge/engine/cli"
)

// version and commit are set by the Makefile's build:
// -ldflags "-X main.version=$(git describe) -X main.commit=$(git rev-parse --short HEAD)".
var (
	version = "dev"
	commit  = "unknown"
)

func main() {
	os.Exit(cli.Main(os.Args[1:], cli.Options{Version: version, Commit: commit}))
}
