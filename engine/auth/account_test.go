package auth

import (
	"context"
	"encoding/json"
	"errors"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/moonforge/moonforge/engine/store"
)

var playerIDPattern = regexp.MustCompile(`^p[a-z2-7]{20}$`)

// testAccounts returns Accounts with fast argon2 parameters over a fresh
// BoltStore, and that store.
func testAccounts(t *testing.T, cfg Config) (*Accounts, store.Store) {
	t.Helper()
	if cfg.Argon2 == (Argon2Params{}) {
		cfg.Argon2 = fastArgon2
	}
	s := openStore(t, filepath.Join(t.TempDir(), "moonforge.db"))
	return NewAccounts(s, cfg), s
}

func readProfile(t *testing.T, s store.Store, playerID string) profile {
	t.Helper()
	raw, err := s.Get(t.Context(), profileKey(playerID))
	if err != nil {
		t.Fatalf("profile of %s: %v", playerID, err)
	}
	var p profile
	if err := json.Unmarshal(raw, &p); err != nil {
		t.Fatalf("profile %s: %v", raw, err)
	}
	if p.CreatedAt.IsZero() {
		t.Fatalf("profile %s has no created_at", raw)
	}
	return p
}

func TestGuest(t *testing.T) {
	a, s := testAccounts(t, Config{})
	ctx := t.Context()
	id, created, err := a.Guest(ctx, "device-1-0123456789", nil)
	if err != nil || !created || !playerIDPattern.MatchString(id) {
		t.Fatalf("first Guest = %q, %v, %v", id, created, err)
	}
	again, created, err := a.Guest(ctx, "device-1-0123456789", nil)
	if err != nil || created || again != id {
		t.Fatalf("second Guest = %q, %v, %v; want %q, false", again, created, err, id)
	}
	other, created, err := a.Guest(ctx, "device-2-0123456789", nil)
	if err != nil || !created || other == id {
		t.Fatalf("other device: %q, %v, %v", other, created, err)
	}
	if p := readProfile(t, s, id); p.Login != "guest" {
		t.Fatalf("profile = %+v", p)
	}
	raw, err := s.Get(ctx, "account/guest/device-1-0123456789")
	if err != nil || string(raw) != id {
		t.Fatalf("guest record = %q, %v", raw, err)
	}
}

func TestInvalidNames(t *testing.T) {
	a, _ := testAccounts(t, Config{MaxAccountLen: 10})
	ctx := t.Context()
	for _, name := range []string{"", "elevenbytes", "bad\xffutf8", "tab\there", "nl\n", "del\x7f", "c1\u0085"} {
		if _, _, err := a.Guest(ctx, name+"-padded-to-16-bytes", nil); !errors.Is(err, ErrInvalidAccount) && name != "elevenbytes" && name != "" {
			t.Errorf("Guest(%q) = %v, want ErrInvalidAccount", name, err)
		}
		if _, _, err := a.Password(ctx, name, "long enough password", true); !errors.Is(err, ErrInvalidAccount) {
			t.Errorf("Password(%q) = %v, want ErrInvalidAccount", name, err)
		}
		if _, _, err := a.External(ctx, "steam", name); !errors.Is(err, ErrInvalidAccount) {
			t.Errorf("External(%q) = %v, want ErrInvalidAccount", name, err)
		}
	}
	for _, name := range []string{"tenbytes!!", "é🙂", "a/b", "x y"} {
		if _, _, err := a.Guest(ctx, name+"-padded-to-16-bytes", nil); err != nil {
			t.Errorf("Guest(%q) = %v", name, err)
		}
	}
}

// TestGuestDeviceIDLength: PROTOCOL.md's 16 to 128 bytes, whatever MaxAccountLen says.
func TestGuestDeviceIDLength(t *testing.T) {
	a, _ := testAccounts(t, Config{MaxAccountLen: 10})
	for n, ok := range map[int]bool{0: false, 15: false, 16: true, 64: true, 128: true, 129: false, 4000: false} {
		_, _, err := a.Guest(t.Context(), strings.Repeat("d", n), nil)
		if ok != (err == nil) || !ok && !errors.Is(err, ErrInvalidAccount) {
			t.Errorf("device id of %d bytes: %v", n, err)
		}
	}
}

func TestGuestCreationLimit(t *testing.T) {
	a, _ := testAccounts(t, Config{})
	ctx := t.Context()
	id, _, err := a.Guest(ctx, "limited-device-0001", nil)
	if err != nil {
		t.Fatal(err)
	}
	refuse := func() bool { return false }
	if got, created, err := a.Guest(ctx, "limited-device-0001", refuse); err != nil || created || got != id {
		t.Fatalf("an existing guest under a refusing limit: %q %v %v", got, created, err)
	}
	if _, _, err := a.Guest(ctx, "limited-device-0002", refuse); !errors.Is(err, ErrCreationLimited) {
		t.Fatalf("a new guest under a refusing limit: %v", err)
	}
}

func TestPassword(t *testing.T) {
	a, s := testAccounts(t, Config{})
	ctx := t.Context()
	id, created, err := a.Password(ctx, "alice", "s3cret-pass", true)
	if err != nil || !created || !playerIDPattern.MatchString(id) {
		t.Fatalf("register = %q, %v, %v", id, created, err)
	}
	if p := readProfile(t, s, id); p.Login != "password" {
		t.Fatalf("profile = %+v", p)
	}
	got, created, err := a.Password(ctx, "alice", "s3cret-pass", false)
	if err != nil || created || got != id {
		t.Fatalf("login = %q, %v, %v; want %q", got, created, err, id)
	}
	_, _, wrong := a.Password(ctx, "alice", "s3cret-pasS", false)
	_, _, unknown := a.Password(ctx, "bob", "s3cret-pass", false)
	if !errors.Is(wrong, ErrBadCredentials) || !errors.Is(unknown, ErrBadCredentials) {
		t.Fatalf("wrong password: %v; unknown account: %v; want ErrBadCredentials", wrong, unknown)
	}
	if wrong.Error() != unknown.Error() {
		t.Fatalf("wrong password (%q) and unknown account (%q) are told apart", wrong, unknown)
	}
	if _, _, err := a.Password(ctx, "alice", "another-pass", true); !errors.Is(err, ErrAccountExists) {
		t.Fatalf("register existing = %v, want ErrAccountExists", err)
	}
	if got, _, err := a.Password(ctx, "alice", "s3cret-pass", false); err != nil || got != id {
		t.Fatalf("login after failed re-register = %q, %v", got, err)
	}
	// Account names are their own namespace: a guest with the same name is
	// another player.
	if g, _, err := a.Guest(ctx, "alice-0123456789ab", nil); err != nil || g == id {
		t.Fatalf("guest alice = %q, %v", g, err)
	}
}

func TestPasswordSecretLimits(t *testing.T) {
	a, _ := testAccounts(t, Config{MinPasswordLen: 4, MaxSecretLen: 12})
	ctx := t.Context()
	for _, secret := range []string{"", "abc", "ééé", strings.Repeat("x", 13)} {
		if _, _, err := a.Password(ctx, "name", secret, true); !errors.Is(err, ErrInvalidAccount) {
			t.Errorf("register with %q = %v, want ErrInvalidAccount", secret, err)
		}
	}
	if _, _, err := a.Password(ctx, "name", "éééé", true); err != nil {
		t.Fatalf("4-character, 8-byte password: %v", err)
	}
	if _, _, err := a.Password(ctx, "name", strings.Repeat("x", 13), false); !errors.Is(err, ErrInvalidAccount) {
		t.Fatalf("login with a too long secret = %v, want ErrInvalidAccount", err)
	}
	// A minimum raised after registration does not lock anyone out.
	b := NewAccounts(a.store, Config{MinPasswordLen: 10, Argon2: fastArgon2})
	if _, _, err := b.Password(ctx, "name", "éééé", false); err != nil {
		t.Fatalf("login with a password now too short to register: %v", err)
	}
}

func TestPasswordStoredHashed(t *testing.T) {
	a, s := testAccounts(t, Config{})
	const secret = "plain-text-password"
	id, _, err := a.Password(t.Context(), "carol", secret, true)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := s.Get(t.Context(), "account/password/carol")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(raw), secret) || strings.Contains(string(raw), "plain-text") {
		t.Fatalf("the record holds the password: %s", raw)
	}
	var rec passwordRecord
	if err := json.Unmarshal(raw, &rec); err != nil {
		t.Fatal(err)
	}
	if rec.PlayerID != id || !phcPattern.MatchString(rec.Hash) || !strings.HasPrefix(rec.Hash, "$argon2id$v=19$m=64,t=1,p=1$") {
		t.Fatalf("record = %+v", rec)
	}
}

// TestPasswordUnknownAccountHashes: a login of an unknown account waits for
// a hashing slot like any other, so it does the same argon2id work.
func TestPasswordUnknownAccountHashes(t *testing.T) {
	a, _ := testAccounts(t, Config{HashConcurrency: 1})
	if _, _, err := a.Password(t.Context(), "dave", "dave-password", true); err != nil {
		t.Fatal(err)
	}
	a.hashSlots <- struct{}{} // take the only slot
	for _, account := range []string{"dave", "nobody"} {
		ctx, cancel := context.WithTimeout(t.Context(), 30*time.Millisecond)
		_, _, err := a.Password(ctx, account, "wrong-password", false)
		cancel()
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("login of %q with no free hashing slot = %v, want DeadlineExceeded", account, err)
		}
	}
	<-a.hashSlots
	if _, _, err := a.Password(t.Context(), "nobody", "wrong-password", false); !errors.Is(err, ErrBadCredentials) {
		t.Fatalf("with the slot free again: %v", err)
	}
}

// TestPasswordParamsChange: logins verify with the parameters stored in
// each hash, not the configured ones.
func TestPasswordParamsChange(t *testing.T) {
	a, s := testAccounts(t, Config{})
	id, _, err := a.Password(t.Context(), "erin", "erin-password", true)
	if err != nil {
		t.Fatal(err)
	}
	b := NewAccounts(s, Config{Argon2: Argon2Params{Memory: 128, Iterations: 2, Parallelism: 2, SaltLen: 8, KeyLen: 16}})
	if got, _, err := b.Password(t.Context(), "erin", "erin-password", false); err != nil || got != id {
		t.Fatalf("login under new parameters = %q, %v", got, err)
	}
	if _, _, err := b.Password(t.Context(), "erin", "erin-passwore", false); !errors.Is(err, ErrBadCredentials) {
		t.Fatalf("wrong password under new parameters = %v", err)
	}
}

func TestPasswordDefaultParams(t *testing.T) {
	s := openStore(t, filepath.Join(t.TempDir(), "moonforge.db"))
	a := NewAccounts(s, Config{})
	id, _, err := a.Password(t.Context(), "frank", "frank-password", true)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := s.Get(t.Context(), "account/password/frank")
	if err != nil {
		t.Fatal(err)
	}
	var rec passwordRecord
	if err := json.Unmarshal(raw, &rec); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(rec.Hash, "$argon2id$v=19$m=19456,t=2,p=1$") || !phcPattern.MatchString(rec.Hash) {
		t.Fatalf("hash with default parameters = %q", rec.Hash)
	}
	if got, _, err := a.Password(t.Context(), "frank", "frank-password", false); err != nil || got != id {
		t.Fatalf("login = %q, %v", got, err)
	}
	if _, _, err := a.Password(t.Context(), "frank", "frank-passwore", false); !errors.Is(err, ErrBadCredentials) {
		t.Fatalf("wrong password = %v", err)
	}
}

func TestConcurrentRegistration(t *testing.T) {
	a, s := testAccounts(t, Config{})
	const n = 20
	type result struct {
		id, secret string
		err        error
	}
	results := make(chan result, n)
	var wg sync.WaitGroup
	for i := range n {
		secret := "password-" + string(rune('a'+i))
		wg.Go(func() {
			id, _, err := a.Password(t.Context(), "grace", secret, true)
			results <- result{id, secret, err}
		})
	}
	wg.Wait()
	close(results)
	var winners []result
	for r := range results {
		switch {
		case r.err == nil:
			winners = append(winners, r)
		case !errors.Is(r.err, ErrAccountExists):
			t.Errorf("registration failed with %v", r.err)
		}
	}
	if len(winners) != 1 {
		t.Fatalf("%d registrations succeeded, want 1", len(winners))
	}
	if got, _, err := a.Password(t.Context(), "grace", winners[0].secret, false); err != nil || got != winners[0].id {
		t.Fatalf("login with the winning password = %q, %v", got, err)
	}
	if n := countKeys(t, s, "player/"); n != 1 {
		t.Fatalf("%d players created, want 1", n)
	}
}

func TestConcurrentGuestAndExternal(t *testing.T) {
	a, s := testAccounts(t, Config{})
	const n = 20
	ids := make([]string, 2*n)
	created := make([]bool, 2*n)
	var wg sync.WaitGroup
	for i := range 2 * n {
		wg.Go(func() {
			var err error
			if i%2 == 0 {
				ids[i], created[i], err = a.Guest(t.Context(), "shared-device-0123", nil)
			} else {
				ids[i], created[i], err = a.External(t.Context(), "steam", "76561198000000000")
			}
			if err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	for kind := range 2 {
		creations := 0
		for i := kind; i < 2*n; i += 2 {
			if ids[i] != ids[kind] {
				t.Fatalf("two player ids for one account: %q and %q", ids[i], ids[kind])
			}
			if created[i] {
				creations++
			}
		}
		if creations != 1 {
			t.Fatalf("created=true %d times, want 1", creations)
		}
	}
	if n := countKeys(t, s, "player/"); n != 2 {
		t.Fatalf("%d players created, want 2", n)
	}
	if a.locks.size() != 0 {
		t.Fatalf("%d account locks left", a.locks.size())
	}
}

func TestExternal(t *testing.T) {
	a, s := testAccounts(t, Config{})
	ctx := t.Context()
	id, created, err := a.External(ctx, "steam", "42")
	if err != nil || !created {
		t.Fatalf("first External = %q, %v, %v", id, created, err)
	}
	if again, created, err := a.External(ctx, "steam", "42"); err != nil || created || again != id {
		t.Fatalf("second External = %q, %v, %v", again, created, err)
	}
	if other, _, err := a.External(ctx, "apple", "42"); err != nil || other == id {
		t.Fatalf("same id under another method = %q, %v", other, err)
	}
	if p := readProfile(t, s, id); p.Login != "external" || p.Method != "steam" {
		t.Fatalf("profile = %+v", p)
	}
	// "a" + "b/c" and "a/b" + "c" must not share a key.
	if _, _, err := a.External(ctx, "a", "b/c"); err != nil {
		t.Fatal(err)
	}
	for _, method := range []string{"", "a/b", "sp ace", "é", strings.Repeat("m", MaxMethodLen+1)} {
		if _, _, err := a.External(ctx, method, "c"); !errors.Is(err, ErrInvalidAccount) {
			t.Errorf("External(%q, ...) = %v, want ErrInvalidAccount", method, err)
		}
	}
}

func TestCorruptRecords(t *testing.T) {
	a, s := testAccounts(t, Config{})
	ctx := t.Context()
	for key, value := range map[string]string{
		"account/guest/broken-0123456789": "not a player id",
		"account/password/broken":         `{"player_id":"pabcdefghijklmnopqrst","hash":"$argon2id$v=19$m=99999999,t=1,p=1$AAAA$AAAA"}`,
		"account/password/notjs":          `{`,
	} {
		if err := s.Put(ctx, key, []byte(value)); err != nil {
			t.Fatal(err)
		}
	}
	if _, _, err := a.Guest(ctx, "broken-0123456789", nil); err == nil || errors.Is(err, ErrBadCredentials) {
		t.Errorf("corrupt guest record: %v", err)
	}
	for _, name := range []string{"broken", "notjs"} {
		if _, _, err := a.Password(ctx, name, "whatever-pw", false); err == nil || errors.Is(err, ErrBadCredentials) {
			t.Errorf("corrupt password record %q: %v", name, err)
		}
	}
}

func TestAccountsSurviveReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "moonforge.db")
	s := openStore(t, path)
	a := NewAccounts(s, Config{Argon2: fastArgon2})
	guest, _, err := a.Guest(t.Context(), "dev-device-012345", nil)
	if err != nil {
		t.Fatal(err)
	}
	member, _, err := a.Password(t.Context(), "heidi", "heidi-password", true)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	a = NewAccounts(openStore(t, path), Config{Argon2: fastArgon2})
	if id, created, err := a.Guest(t.Context(), "dev-device-012345", nil); err != nil || created || id != guest {
		t.Fatalf("guest after reopen = %q, %v, %v", id, created, err)
	}
	if id, _, err := a.Password(t.Context(), "heidi", "heidi-password", false); err != nil || id != member {
		t.Fatalf("login after reopen = %q, %v", id, err)
	}
}

func TestCanceledContext(t *testing.T) {
	a, _ := testAccounts(t, Config{})
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, _, err := a.Guest(ctx, "dev-device-012345", nil); !errors.Is(err, context.Canceled) {
		t.Errorf("Guest = %v", err)
	}
	if _, _, err := a.Password(ctx, "ivan", "ivan-password", true); !errors.Is(err, context.Canceled) {
		t.Errorf("Password = %v", err)
	}
	if _, _, err := a.External(ctx, "steam", "1"); !errors.Is(err, context.Canceled) {
		t.Errorf("External = %v", err)
	}
}

func countKeys(t *testing.T, s store.Store, prefix string) int {
	t.Helper()
	n := 0
	if err := s.Scan(t.Context(), prefix, func(string, []byte) error { n++; return nil }); err != nil {
		t.Fatal(err)
	}
	return n
}
