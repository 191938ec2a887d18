package gate

import (
	"fmt"
	"path/filepath"
	"testing"

	"github.com/moonforge/moonforge/engine/protocol"
	"github.com/moonforge/moonforge/engine/store"
)

// sharedGateways starts two gateways whose failed logins are counted in one store.
func sharedGateways(t *testing.T, cfg Config) []*fixture {
	db, err := store.OpenBolt(store.BoltConfig{Path: filepath.Join(t.TempDir(), "db")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	shared := func(d *Deps) { d.LoginFailures = db }
	return []*fixture{startWith(t, cfg, shared), startWith(t, cfg, shared)}
}

// failLogin tries the refused method "bad" on account through the gateway and returns the code.
func failLogin(t *testing.T, f *fixture, account string) protocol.Code {
	c := f.dial(t)
	defer c.Close()
	_, err := c.Login(ctx(t), "bad", account, "guess", nil)
	return code(err)
}

// TestFailedLoginsCountOnEveryGateway: two gateways sharing a store lock an account out after the
// failures made through both, as one gateway would; a gateway counting alone would let a guesser
// through its share again.
func TestFailedLoginsCountOnEveryGateway(t *testing.T) {
	gateways := sharedGateways(t, Config{LoginLockoutFailures: 3})
	for i, via := range []int{0, 1, 0} { // three failures: the third locks the account out
		if got := failLogin(t, gateways[via], "ann"); got != protocol.Unauthenticated {
			t.Fatalf("failure %d through gateway %d: %s, want UNAUTHENTICATED", i+1, via, got)
		}
	}
	for _, via := range []int{1, 0} {
		if got := failLogin(t, gateways[via], "ann"); got != protocol.RateLimited {
			t.Errorf("after 3 failures through both gateways, a login through gateway %d: %s, want RATE_LIMITED", via, got)
		}
	}
}

// TestFailedLoginsFromOneAddressCountOnEveryGateway: the failures of one address on many
// accounts add up over the gateways too: an address has 15 free failures in all, not 15 per
// gateway.
func TestFailedLoginsFromOneAddressCountOnEveryGateway(t *testing.T) {
	gateways := sharedGateways(t, Config{})
	for i := range 16 { // 15 free, the 16th imposes a wait; each on an account of its own
		if got := failLogin(t, gateways[i%2], fmt.Sprintf("account-%d", i)); got != protocol.Unauthenticated {
			t.Fatalf("failure %d: %s, want UNAUTHENTICATED", i+1, got)
		}
	}
	if got := failLogin(t, gateways[0], "account-new"); got != protocol.RateLimited {
		t.Errorf("after 16 failures from one address through two gateways (8 each): %s, want RATE_LIMITED", got)
	}
}
