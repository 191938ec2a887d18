package lua_test

import (
	"context"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/moonforge/moonforge/sdk/internal/relay"
)

// TestChaos plays the demo game with the Lua SDK on each interpreter, in parallel, through a relay
// that resets, stalls and cuts its connections 1000 times (test/chaos_test.lua says what the game
// checks).
func TestChaos(t *testing.T) {
	interps := lua(t)
	port, _, _, _ := startServer(t)
	for _, interp := range interps {
		t.Run(filepath.Base(interp), func(t *testing.T) {
			t.Parallel()
			relay.Chaos(t, "127.0.0.1:"+port, func(ctx context.Context, p int, stop string) *exec.Cmd {
				return exec.CommandContext(ctx, interp, "test/chaos_test.lua", "127.0.0.1", strconv.Itoa(p), stop)
			})
		})
	}
}
