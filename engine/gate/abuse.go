package gate

import (
	"context"
	"fmt"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/moonforge/moonforge/engine/auth"
	"github.com/moonforge/moonforge/engine/protocol"
	"github.com/moonforge/moonforge/engine/store"
)

// ipFactor is how many more failures an IP may have than one account: players share addresses.
const ipFactor = 5

// loginGuard slows down password guessing (failed logins per account and per IP) and guest
// account creation per IP. Safe for concurrent use.
type loginGuard struct {
	accounts *auth.Throttle
	ips      *auth.Throttle
	guests   *ipRates // nil: no limit

	// The failures of logins that name an account, per account and per IP, on every node sharing
	// the store; nil: none.
	sharedAccounts, sharedIPs *auth.Failures
}

// newLoginGuard returns the guard; failures, if not nil, is the store shared with the other nodes
// in which the failures of logins that name an account are counted too.
func newLoginGuard(cfg Config, failures store.Store) *loginGuard {
	per := auth.ThrottleConfig{Delay: cfg.LoginFailureDelay, Failures: cfg.LoginLockoutFailures, Lockout: cfg.LoginLockout}
	g := &loginGuard{accounts: auth.NewThrottle(per)}
	if failures != nil {
		g.sharedAccounts = auth.NewFailures(failures, per)
	}
	per.Free, per.Failures = 3*ipFactor, max(per.Failures, 10)*ipFactor
	g.ips = auth.NewThrottle(per)
	if failures != nil {
		g.sharedIPs = auth.NewFailures(failures, per)
	}
	if cfg.GuestsPerIPMinute > 0 {
		g.guests = &ipRates{every: rate.Every(time.Minute / time.Duration(cfg.GuestsPerIPMinute)), burst: cfg.GuestsPerIPMinute}
	}
	return g
}

// accountKey names the account a login attempt is about; "" for methods without one (token).
func accountKey(method, account string) string {
	if method == "token" || method == "guest" {
		return ""
	}
	return method + "/" + account
}

// loginAllowed refuses an attempt while its account or IP waits after failures. For a login
// that names an account, the counts of every node sharing the store decide too; onRecord tells
// whether they hold failures of the account (loginDone forgets them on a success). A store that
// cannot be read leaves the node's own counts to decide.
func (c *conn) loginAllowed(method, account string) (err *protocol.CodeError, onRecord bool) {
	ip := hostOf(c.remote)
	wait := c.g.guard.ips.Wait(ip)
	if key := accountKey(method, account); key != "" {
		wait = max(wait, c.g.guard.accounts.Wait(key))
		if g := c.g.guard; g.sharedAccounts != nil && wait == 0 {
			ctx, cancel := context.WithTimeout(context.Background(), storeTimeout)
			wait, onRecord = c.sharedWait(ctx, g.sharedAccounts, "account/"+key)
			if wait == 0 {
				wait, _ = c.sharedWait(ctx, g.sharedIPs, "ip/"+ip)
			}
			cancel()
		}
	}
	if wait == 0 {
		return nil, onRecord
	}
	err = protocol.Errorf(protocol.RateLimited, "too many failed logins: try again in %s", wait.Round(time.Second))
	err.RetryAfterMs = uint32(min(wait.Milliseconds()+1, 1<<31))
	return err, onRecord
}

// sharedWait reads a wait from the shared counts; 0 if the store cannot be read.
func (c *conn) sharedWait(ctx context.Context, f *auth.Failures, key string) (time.Duration, bool) {
	wait, seen, err := f.Wait(ctx, key)
	if err != nil {
		c.g.warn("login_failures_store", c.remote, "login failures not read: this node's own counts apply", "conn", c.id, "error", err)
	}
	return wait, seen
}

// loginDone counts a refused login (UNAUTHENTICATED) against its account and IP, and forgets the
// account's failures after a success (in the shared store if they are on record there).
func (c *conn) loginDone(method, account string, cerr *protocol.CodeError, onRecord bool) {
	ip, key, g := hostOf(c.remote), accountKey(method, account), c.g.guard
	ctx, cancel := context.WithTimeout(context.Background(), storeTimeout)
	defer cancel()
	switch {
	case cerr == nil && key != "":
		g.accounts.Succeeded(key)
		if g.sharedAccounts != nil && onRecord {
			if err := g.sharedAccounts.Succeeded(ctx, "account/"+key); err != nil {
				c.g.warn("login_failures_store", c.remote, "login failures not forgotten", "conn", c.id, "error", err)
			}
		}
	case cerr != nil && cerr.Code == protocol.Unauthenticated:
		wait := g.ips.Failed(ip)
		if key != "" {
			wait = max(wait, g.accounts.Failed(key))
			if g.sharedAccounts != nil {
				wait = max(wait, c.sharedFailed(ctx, g.sharedAccounts, "account/"+key), c.sharedFailed(ctx, g.sharedIPs, "ip/"+ip))
			}
		}
		if wait > 0 {
			c.g.warn("login_throttled", c.remote, "failed logins delayed", "conn", c.id, "method", method, "wait", wait)
		}
	}
}

// sharedFailed counts a failure in the shared counts and returns the wait it imposes; 0 if the
// store cannot be written.
func (c *conn) sharedFailed(ctx context.Context, f *auth.Failures, key string) time.Duration {
	wait, err := f.Failed(ctx, key)
	if err != nil {
		c.g.warn("login_failures_store", c.remote, "login failure not counted in the store: this node's own count applies", "conn", c.id, "error", err)
	}
	return wait
}

// MayCreateGuest takes one guest account creation from the budget of a client address
// (auth.guests_per_ip_minute); the login service asks it. Safe for concurrent use.
func (g *Gateway) MayCreateGuest(address string) bool {
	if g.guard.guests == nil || g.guard.guests.allow(address) {
		return true
	}
	g.warn("guest_limit", address, "guest account creation refused")
	return false
}

// ipRates is a token bucket per IP, forgotten when the table grows past ipRatesMax.
type ipRates struct {
	every rate.Limit
	burst int

	mu sync.Mutex
	m  map[string]*rate.Limiter
}

const ipRatesMax = 100_000

func (r *ipRates) allow(ip string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.m == nil || len(r.m) >= ipRatesMax {
		r.m = map[string]*rate.Limiter{}
	}
	l := r.m[ip]
	if l == nil {
		l = rate.NewLimiter(r.every, r.burst)
		r.m[ip] = l
	}
	return l.Allow()
}

// ignoredRetryHint counts a login attempt made while its account or address had to wait: a
// client that keeps trying instead of waiting is kicked like one sending requests before login.
func (c *conn) ignoredRetryHint() {
	if c.sess.Load() != nil {
		return
	}
	c.unauth++
	if c.unauth >= c.g.cfg.MaxUnauthenticated {
		c.Kick(protocol.Unauthenticated, fmt.Sprintf("%d login attempts during a wait for failed logins", c.unauth))
	}
}
