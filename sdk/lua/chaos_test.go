package lua_test

import (
	"context"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/moonforge/moonforge/sdk/internal/relay"
)

// chaosSeed returns the relay's seed and logs how to replay it.
func chaosSeed(t *testing.T) int64 {
	seed, err := relay.Seed()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("relay seed %d (MOONFORGE_CHAOS_SEED=%d replays the faults)", seed, seed)
	return seed
}

// TestChaos plays the demo game with the Lua SDK on each interpreter through a relay that resets,
// stalls and cuts its connections 1000 times (test/chaos_test.lua says what the game checks).
func TestChaos(t *testing.T) {
	interps := lua(t)
	port := startServer(t)
	seed := chaosSeed(t)
	for _, interp := range interps {
		t.Run(filepath.Base(interp), func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
			defer cancel()
			res, err := relay.Run(ctx, "127.0.0.1:"+port, seed, relay.Faults, func(port int, stop string) *exec.Cmd {
				return exec.CommandContext(ctx, interp, "test/chaos_test.lua", "127.0.0.1", strconv.Itoa(port), stop)
			})
			if err != nil || !regexp.MustCompile(`(?m)^chaos: [1-9]\d* passed, 0 failed$`).MatchString(res.Output) {
				t.Fatalf("after %s: %v\n%s", res.Summary(), err, res.Output)
			}
			t.Logf("%s\n%s", res.Summary(), res.Output)
		})
	}
}
