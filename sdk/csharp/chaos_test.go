package csharp_test

import (
	"context"
	"os/exec"
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

// TestChaos plays the demo game with the C# SDK on mono through a relay that resets, stalls and
// cuts its connections 1000 times (ChaosTests.cs says what the game checks).
func TestChaos(t *testing.T) {
	_, mono := toolchain(t)
	mcs, _ := exec.LookPath("mcs")
	dir := t.TempDir()
	_, exe := build(t, mcs, dir)
	tcp, _ := startServer(t, dir)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	res, err := relay.Run(ctx, "127.0.0.1:"+tcp, chaosSeed(t), relay.Faults, func(port int, stop string) *exec.Cmd {
		return exec.CommandContext(ctx, mono, "--debug", exe, "chaos", "127.0.0.1", strconv.Itoa(port), stop)
	})
	if err != nil || !regexp.MustCompile(`(?m)^chaos: [1-9]\d* passed, 0 failed$`).MatchString(res.Output) {
		t.Fatalf("after %s: %v\n%s", res.Summary(), err, res.Output)
	}
	t.Logf("%s\n%s", res.Summary(), res.Output)
}
