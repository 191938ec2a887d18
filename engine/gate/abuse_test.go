package gate

import (
	"path/filepath"
	"testing"

	"github.com/moonforge/moonforge/engine/protocol"
	"github.com/moonforge/moonforge/engine/store"
)

// TestFailedLoginsCountOnEveryGateway: two gateways sharing a store lock an account out after the
// failures made through both, as one gateway would; a gateway counting alone would let a guesser
// through its share again.
func TestFailedLoginsCountOnEveryGateway(t *testing.T) {
	db, err := store.OpenBolt(store.BoltConfig{Path: filepath.Join(t.TempDir(), "db")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	cfg := Config{LoginLockoutFailures: 3}
	shared := func(d *Deps) { d.LoginFailures = db }
	gateways := []*fixture{startWith(t, cfg, shared), startWith(t, cfg, shared)}
	attempt := func(i int) protocol.Code {
		c := gateways[i].dial(t)
		defer c.Close()
		_, err := c.Login(ctx(t), "bad", "ann", "guess", nil)
		return code(err)
	}
	for i, via := range []int{0, 1, 0} { // three failures: the third locks the account out
		if got := attempt(via); got != protocol.Unauthenticated {
			t.Fatalf("failure %d through gateway %d: %s, want UNAUTHENTICATED", i+1, via, got)
		}
	}
	for _, via := range []int{1, 0} {
		if got := attempt(via); got != protocol.RateLimited {
			t.Errorf("after 3 failures through both gateways, a login through gateway %d: %s, want RATE_LIMITED", via, got)
		}
	}
}
