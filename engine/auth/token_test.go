package auth

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/moonforge/moonforge/engine/store"
)

var testKey = bytes.Repeat([]byte("k"), MinKeyLen)

func testKeys(secret []byte) []Key { return []Key{{ID: "k1", Secret: secret}} }

// testTokens returns Tokens with a clock that the test sets through *now.
func testTokens(t testing.TB, ttl time.Duration) (*Tokens, *time.Time) {
	t.Helper()
	tok, err := NewTokens(testKeys(testKey), ttl, 10*ttl)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2030, 1, 2, 3, 4, 5, 678_901_234, time.UTC)
	tok.now = func() time.Time { return now }
	return tok, &now
}

func TestNewTokensRejects(t *testing.T) {
	if _, err := NewTokens(testKeys(testKey[:MinKeyLen-1]), time.Hour, time.Hour); err == nil {
		t.Error("accepted a 31-byte key")
	}
	if _, err := NewTokens(testKeys(testKey), 0, time.Hour); err == nil {
		t.Error("accepted a zero ttl")
	}
	if _, err := NewTokens(nil, time.Hour, time.Hour); err == nil {
		t.Error("accepted no key")
	}
	if _, err := NewTokens([]Key{{ID: "a b", Secret: testKey}}, time.Hour, time.Hour); err == nil {
		t.Error("accepted a key id with a space")
	}
	if _, err := NewTokens([]Key{{ID: "a", Secret: testKey}, {ID: "a", Secret: testKey}}, time.Hour, time.Hour); err == nil {
		t.Error("accepted a key id twice")
	}
	key := bytes.Clone(testKey)
	tok, err := NewTokens(testKeys(key), time.Hour, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	token, _ := tok.Issue("p1", "s1")
	key[0] ^= 1 // the caller's slice is not Tokens'
	if _, err := tok.Verify(token); err != nil {
		t.Fatalf("Verify after the caller changed its key slice: %v", err)
	}
}

func TestIssueVerify(t *testing.T) {
	tok, now := testTokens(t, time.Hour)
	ids := []string{"", "p", "a.b.c", "v1.x.y", "\x00\xff", "é/🙂", "=+/ ", strings.Repeat("x", MaxIDLen)}
	for _, player := range ids {
		for _, session := range ids {
			token, exp := tok.Issue(player, session)
			if len(token) > MaxTokenLen {
				t.Fatalf("token of %d bytes, over MaxTokenLen", len(token))
			}
			if want := now.Add(time.Hour).Truncate(time.Millisecond); !exp.Equal(want) {
				t.Fatalf("expiresAt = %v, want %v", exp, want)
			}
			c, err := tok.Verify(token)
			if err != nil {
				t.Fatalf("Verify(Issue(%q, %q)): %v", player, session, err)
			}
			if c.PlayerID != player || c.SessionID != session || !c.ExpiresAt.Equal(exp) {
				t.Fatalf("claims = %+v, want %q %q %v", c, player, session, exp)
			}
		}
	}
}

func TestIssueDistinguishesIDs(t *testing.T) {
	tok, _ := testTokens(t, time.Hour)
	a, _ := tok.Issue("ab", "c")
	b, _ := tok.Issue("a", "bc")
	if a == b {
		t.Fatal("(ab, c) and (a, bc) give the same token")
	}
}

func TestIssuePanicsOnLongID(t *testing.T) {
	tok, _ := testTokens(t, time.Hour)
	defer func() {
		if r := recover(); r == nil || !strings.Contains(r.(string), "longer than 255") {
			t.Fatalf("recover() = %v", r)
		}
	}()
	tok.Issue(strings.Repeat("x", MaxIDLen+1), "s")
}

func TestVerifyExpired(t *testing.T) {
	tok, now := testTokens(t, time.Minute)
	token, exp := tok.Issue("p1", "s1")
	*now = exp.Add(-time.Millisecond)
	if _, err := tok.Verify(token); err != nil {
		t.Fatalf("1 ms before expiry: %v", err)
	}
	*now = exp
	if _, err := tok.Verify(token); !errors.Is(err, ErrExpiredToken) {
		t.Fatalf("at expiry: %v, want ErrExpiredToken", err)
	}
	*now = exp.Add(24 * time.Hour)
	if _, err := tok.Verify(token); !errors.Is(err, ErrExpiredToken) {
		t.Fatalf("a day later: %v, want ErrExpiredToken", err)
	}
}

func TestVerifyTampered(t *testing.T) {
	tok, _ := testTokens(t, time.Hour)
	token, _ := tok.Issue("p1", "s1")
	other, _ := tok.Issue("p2", "s1")
	const head = tokenPrefix + "k1."
	payload, sig, _ := strings.Cut(strings.TrimPrefix(token, head), ".")
	otherPayload, otherSig, _ := strings.Cut(strings.TrimPrefix(other, head), ".")

	forged, _ := testTokens(t, time.Hour)
	if err := forged.SetKeys(testKeys(bytes.Repeat([]byte("f"), MinKeyLen))); err != nil {
		t.Fatal(err)
	}
	forgedToken, _ := forged.Issue("p1", "s1")
	refresh, _ := tok.IssueRefresh("p1", "s1")

	flip := func(s string, i int) string {
		b := []byte(s)
		b[i] ^= 0x01
		return string(b)
	}
	bad := map[string]string{
		"payload byte flipped":   head + flip(payload, 3) + "." + sig,
		"signature byte flipped": head + payload + "." + flip(sig, 10),
		"other payload":          head + otherPayload + "." + sig,
		"other signature":        head + payload + "." + otherSig,
		"other key":              forgedToken,
		"unknown key id":         tokenPrefix + "k2." + payload + "." + sig,
		"no key id":              tokenPrefix + payload + "." + sig,
		"refresh token":          refresh,
		"signature truncated":    token[:len(token)-1],
		"signature extended":     token + "A",
		"version changed":        "v1.k1." + payload + "." + sig,
		"empty":                  "",
		"prefix only":            "v2.",
		"no signature":           head + payload,
		"empty parts":            "v2...",
		"extra part":             token + ".x",
		"padding":                token + "=",
		"too long":               token + strings.Repeat("A", MaxTokenLen),
		"garbage":                "not a token at all",
		"spaces":                 " " + token,
		"newline in signature":   token[:len(token)-3] + "\n" + token[len(token)-3:],
		"CR in payload":          head + payload[:4] + "\r" + payload[4:] + "." + sig,
	}
	for name, s := range bad {
		if c, err := tok.Verify(s); !errors.Is(err, ErrBadToken) {
			t.Errorf("%s: Verify = %+v, %v; want ErrBadToken", name, c, err)
		}
	}
}

// TestVerifyRejectsBadPayload: a payload that is correctly signed but does
// not decode to claims is still ErrBadToken.
func TestVerifyRejectsBadPayload(t *testing.T) {
	tok, _ := testTokens(t, time.Hour)
	times := make([]byte, 16)
	for _, payload := range [][]byte{
		nil,
		{1, 0, 0, 0, 0, 0, 0},
		append([]byte{1}, times...), // no ids
		append(append([]byte{1}, times...), 5, 'a', 0, 0),      // player id shorter than its length
		append(append([]byte{1}, times...), 1, 'a', 0, 0, 'x'), // trailing byte
		append(append([]byte{3}, times...), 1, 'a', 0, 0),      // unknown kind
	} {
		signed := tokenPrefix + "k1." + b64.EncodeToString(payload)
		token := signed + "." + b64.EncodeToString(mac(testKey, signed))
		if _, err := tok.Verify(token); !errors.Is(err, ErrBadToken) {
			t.Errorf("payload %x: %v, want ErrBadToken", payload, err)
		}
	}
}

// FuzzVerify: Verify never panics and accepts only tokens that Issue makes;
// a token from Issue verifies; changing any one byte of it breaks it.
func FuzzVerify(f *testing.F) {
	tok, _ := testTokens(f, 1000*time.Hour)
	valid, _ := tok.Issue("p0123456789abcdefghij", "s-42")
	f.Add(valid, "p1", "s1", uint(0), byte('x'))
	f.Add(valid, "", "", uint(5), byte('.'))
	f.Add(valid[:len(valid)-1]+"B", "a.b", "\xff", uint(40), byte(0))
	f.Add(valid[:len(valid)-5]+"\n"+valid[len(valid)-5:], "p", "s", uint(7), byte('\r'))
	f.Add("v2.k1..", "é", "🙂", uint(2), byte('2'))
	f.Add("v2.k1.AAAAAAAAAAE.AAAA", strings.Repeat("p", MaxIDLen), "s", uint(1000), byte('A'))
	f.Add(strings.Repeat("v2.", 400), "x", "y", uint(3), byte('='))
	f.Fuzz(func(t *testing.T, token, player, session string, pos uint, b byte) {
		if c, err := tok.Verify(token); err == nil {
			if again := tok.sign(tok.keys.Load().signer, c); again != token {
				t.Fatalf("Verify accepted %q, which Issue would write as %q", token, again)
			}
		} else if !errors.Is(err, ErrBadToken) && !errors.Is(err, ErrExpiredToken) {
			t.Fatalf("Verify(%q) = %v", token, err)
		}

		if len(player) > MaxIDLen || len(session) > MaxIDLen {
			return
		}
		issued, exp := tok.Issue(player, session)
		c, err := tok.Verify(issued)
		if err != nil || c.PlayerID != player || c.SessionID != session || !c.ExpiresAt.Equal(exp) {
			t.Fatalf("Verify(Issue(%q, %q)) = %+v, %v", player, session, c, err)
		}
		i := int(pos % uint(len(issued)))
		if issued[i] == b {
			return
		}
		changed := issued[:i] + string([]byte{b}) + issued[i+1:]
		if c, err := tok.Verify(changed); !errors.Is(err, ErrBadToken) {
			t.Fatalf("byte %d of %q changed to %q: Verify = %+v, %v", i, issued, b, c, err)
		}
	})
}

func openStore(t *testing.T, path string) *store.BoltStore {
	t.Helper()
	s, err := store.OpenBolt(store.BoltConfig{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil && !errors.Is(err, store.ErrClosed) {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}
