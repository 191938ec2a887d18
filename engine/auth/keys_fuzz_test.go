package auth

import (
	"strings"
	"testing"
)

// FuzzParseKeys: ParseKeys never panics; what it accepts has at least one key, unique valid ids
// and secrets of at least MinKeyLen bytes, and the keys sign and verify tokens.
func FuzzParseKeys(f *testing.F) {
	for _, s := range []string{NewKeyLine("k1"), NewKeyLine("a") + "," + NewKeyLine("b"), "# c\n" + NewKeyLine("x"), "k1:", ":AAAA", "k1:" + strings.Repeat("A", 43) + "=", "k 1:abc", "k1:%%%"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		keys, err := ParseKeys(s)
		if err != nil {
			return
		}
		seen := map[string]bool{}
		for _, k := range keys {
			if checkKeyID(k.ID) != nil || seen[k.ID] || len(k.Secret) < MinKeyLen {
				t.Fatalf("ParseKeys(%q) accepted %+v", s, k)
			}
			seen[k.ID] = true
		}
		tok, err := NewTokens(keys, 1000000000, 1000000000)
		if err != nil {
			t.Fatalf("NewTokens on parsed keys: %v", err)
		}
		token, _ := tok.Issue("p", "s")
		if _, err := tok.Verify(token); err != nil {
			t.Fatalf("a token of parsed keys: %v", err)
		}
	})
}
