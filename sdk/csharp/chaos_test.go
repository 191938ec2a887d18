//go:build linux

package csharp_test

import (
	"context"
	"os/exec"
	"strconv"
	"testing"

	"github.com/moonforge/moonforge/sdk/internal/relay"
)

// TestChaos plays the demo game with the C# SDK on mono through a relay that resets, stalls and
// cuts its connections 1000 times (Tests/ChaosTests.cs says what the game checks).
func TestChaos(t *testing.T) {
	_, mono := toolchain(t)
	mcs, _ := exec.LookPath("mcs")
	dir := t.TempDir()
	_, exe := build(t, mcs, dir)
	tcp, _, _, _ := startServer(t, dir)
	relay.Chaos(t, "127.0.0.1:"+tcp, func(ctx context.Context, port int, stop string) *exec.Cmd {
		return exec.CommandContext(ctx, mono, "--debug", exe, "chaos", "127.0.0.1", strconv.Itoa(port), stop)
	})
}
