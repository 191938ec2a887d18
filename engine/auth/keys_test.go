package auth

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestParseKeys(t *testing.T) {
	a, b := NewKeyLine("old"), NewKeyLine("new")
	keys, err := ParseKeys("# comment\n" + b + "\n\n" + a + "\n")
	if err != nil || len(keys) != 2 || keys[0].ID != "new" || keys[1].ID != "old" || len(keys[0].Secret) != MinKeyLen {
		t.Fatalf("ParseKeys = %+v, %v", keys, err)
	}
	if keys, err := ParseKeys(a + "," + b); err != nil || len(keys) != 2 {
		t.Fatalf("comma separated: %+v, %v", keys, err)
	}
	for name, bad := range map[string]string{
		"empty":        "",
		"only comment": "# nothing",
		"no colon":     "k1",
		"bad id":       "k/1:" + strings.Repeat("A", 43),
		"long id":      strings.Repeat("k", MaxKeyIDLen+1) + ":" + strings.Repeat("A", 43),
		"short secret": "k1:AAAA",
		"not base64":   "k1:" + strings.Repeat("!", 43),
		"duplicate id": a + "\n" + a,
	} {
		if _, err := ParseKeys(bad); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestLoadKeys(t *testing.T) {
	t.Setenv(KeyEnv, "")
	file := filepath.Join(t.TempDir(), "sub", "token_keys")
	if _, _, err := LoadKeys(file, false); err == nil || !strings.Contains(err.Error(), KeyEnv) {
		t.Fatalf("missing file without create: %v", err)
	}
	keys, source, err := LoadKeys(file, true)
	if err != nil || len(keys) != 1 || source != file {
		t.Fatalf("created: %+v %q %v", keys, source, err)
	}
	if fi, err := os.Stat(file); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode: %v %v", fi.Mode(), err)
	}
	again, _, err := LoadKeys(file, true)
	if err != nil || string(again[0].Secret) != string(keys[0].Secret) {
		t.Fatalf("second load gave another key: %v", err)
	}
	t.Setenv(KeyEnv, NewKeyLine("env"))
	if keys, source, err := LoadKeys(file, true); err != nil || keys[0].ID != "env" || source != "$"+KeyEnv {
		t.Fatalf("from the environment: %+v %q %v", keys, source, err)
	}
	t.Setenv(KeyEnv, "k1:short")
	if _, _, err := LoadKeys(file, true); err == nil || !strings.Contains(err.Error(), KeyEnv) {
		t.Fatalf("bad environment: %v", err)
	}
}

// Rotation: a new key signs, tokens of the old one verify while it is listed.
func TestKeyRotation(t *testing.T) {
	oldKeys, _ := ParseKeys(NewKeyLine("k1"))
	newKeys, _ := ParseKeys(NewKeyLine("k2"))
	tok, err := NewTokens(oldKeys, time.Hour, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	old, _ := tok.Issue("p1", "s1")
	if err := tok.SetKeys(append(newKeys, oldKeys...)); err != nil {
		t.Fatal(err)
	}
	fresh, _ := tok.Issue("p1", "s1")
	if !strings.HasPrefix(fresh, "v2.k2.") {
		t.Fatalf("new token %q is not signed by k2", fresh)
	}
	for _, token := range []string{old, fresh} {
		if _, err := tok.Verify(token); err != nil {
			t.Fatalf("during rotation: %v", err)
		}
	}
	if err := tok.SetKeys(newKeys); err != nil {
		t.Fatal(err)
	}
	if _, err := tok.Verify(old); !errors.Is(err, ErrBadToken) {
		t.Fatalf("old key removed: %v", err)
	}
}

func TestRevocations(t *testing.T) {
	s := openStore(t, filepath.Join(t.TempDir(), "db"))
	ctx := context.Background()
	tok, now := testTokens(t, time.Minute)
	r := NewRevocations(s, tok.RefreshTTL())
	r.now = func() time.Time { return *now }
	claims := func(token string, refresh bool) Claims {
		verify := tok.Verify
		if refresh {
			verify = tok.VerifyRefresh
		}
		c, err := verify(token)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	a, _ := tok.Issue("p1", "s1")
	b, _ := tok.Issue("p1", "s2")
	ra, _ := tok.IssueRefresh("p1", "s1")
	for _, token := range []string{a, b} {
		if err := r.Check(ctx, claims(token, false)); err != nil {
			t.Fatalf("before any revocation: %v", err)
		}
	}
	if err := r.UseRefresh(ctx, claims(ra, true)); err != nil {
		t.Fatalf("first use: %v", err)
	}
	if err := r.UseRefresh(ctx, claims(ra, true)); !errors.Is(err, ErrRevokedToken) {
		t.Fatalf("second use: %v", err)
	}
	if err := r.UseRefresh(ctx, claims(a, false)); !errors.Is(err, ErrBadToken) {
		t.Fatalf("access token as refresh: %v", err)
	}
	if err := r.RevokeSession(ctx, "s1"); err != nil {
		t.Fatal(err)
	}
	if err := r.Check(ctx, claims(a, false)); !errors.Is(err, ErrRevokedToken) {
		t.Fatalf("revoked session: %v", err)
	}
	if err := r.Check(ctx, claims(b, false)); err != nil {
		t.Fatalf("other session: %v", err)
	}
	rb, _ := tok.IssueRefresh("p1", "s2")
	*now = now.Add(time.Millisecond)
	if err := r.RevokePlayer(ctx, "p1"); err != nil {
		t.Fatal(err)
	}
	if err := r.UseRefresh(ctx, claims(rb, true)); !errors.Is(err, ErrRevokedToken) {
		t.Fatalf("all sessions revoked, refresh: %v", err)
	}
	*now = now.Add(time.Millisecond)
	later, _ := tok.Issue("p1", "s3")
	if err := r.Check(ctx, claims(later, false)); err != nil {
		t.Fatalf("token issued after the revocation: %v", err)
	}
	if n, err := r.Sweep(ctx); err != nil || n != 0 {
		t.Fatalf("sweep before expiry: %d %v", n, err)
	}
	*now = now.Add(tok.RefreshTTL() + time.Second)
	if n, err := r.Sweep(ctx); err != nil || n != 3 {
		t.Fatalf("sweep after expiry: %d %v, want 3", n, err)
	}
}

// Two processes sharing a store (here two lists over one store, each with nothing in memory the
// other sees) are given the same refresh token at once: exactly one use passes.
func TestRefreshTokenUsedOnceAcrossProcesses(t *testing.T) {
	s := openStore(t, filepath.Join(t.TempDir(), "db"))
	ctx := context.Background()
	tok, _ := testTokens(t, time.Minute)
	lists := []*Revocations{NewRevocations(s, tok.RefreshTTL()), NewRevocations(s, tok.RefreshTTL())}
	for i := range 40 {
		token, _ := tok.IssueRefresh("p1", fmt.Sprintf("s%d", i))
		c, err := tok.VerifyRefresh(token)
		if err != nil {
			t.Fatal(err)
		}
		var passed atomic.Int32
		var wg sync.WaitGroup
		start := make(chan struct{})
		for _, r := range lists {
			wg.Go(func() {
				<-start
				switch err := r.UseRefresh(ctx, c); {
				case err == nil:
					passed.Add(1)
				case !errors.Is(err, ErrRevokedToken):
					t.Error(err)
				}
			})
		}
		close(start)
		wg.Wait()
		if n := passed.Load(); n != 1 {
			t.Fatalf("token %d: %d uses passed, want 1", i, n)
		}
	}
}
