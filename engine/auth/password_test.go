package auth

import (
	"regexp"
	"strings"
	"testing"
)

// fastArgon2 keeps tests quick; TestPasswordDefaultParams covers the defaults.
var fastArgon2 = Argon2Params{Memory: 64, Iterations: 1, Parallelism: 1, SaltLen: 16, KeyLen: 32}

var phcPattern = regexp.MustCompile(`^\$argon2id\$v=19\$m=(\d+),t=(\d+),p=(\d+)\$[A-Za-z0-9+/]{22}\$[A-Za-z0-9+/]{43}$`)

func TestHashPassword(t *testing.T) {
	p := fastArgon2.withDefaults()
	a := hashPassword("correct horse", p)
	b := hashPassword("correct horse", p)
	if !phcPattern.MatchString(a) || !strings.HasPrefix(a, "$argon2id$v=19$m=64,t=1,p=1$") {
		t.Fatalf("hash %q is not the expected PHC string", a)
	}
	if a == b {
		t.Fatal("two hashes of one password are equal: the salt is not random")
	}
	h, err := parsePHC(a)
	if err != nil {
		t.Fatal(err)
	}
	if h.String() != a {
		t.Fatalf("parse then format = %q, want %q", h.String(), a)
	}
	if !h.matches("correct horse") {
		t.Fatal("the password does not match its own hash")
	}
	for _, wrong := range []string{"", "correct hors", "correct horse ", "Correct horse"} {
		if h.matches(wrong) {
			t.Fatalf("%q matches the hash of %q", wrong, "correct horse")
		}
	}
}

func TestArgon2ParamsDefaultsAndClamps(t *testing.T) {
	if got := (Argon2Params{}).withDefaults(); got != DefaultArgon2Params() {
		t.Fatalf("zero params = %+v, want the defaults", got)
	}
	got := Argon2Params{Memory: 1, Iterations: 1000, SaltLen: 1, KeyLen: 1000}.withDefaults()
	want := Argon2Params{Memory: minArgonMemory, Iterations: maxArgonIters, Parallelism: 1, SaltLen: minSaltLen, KeyLen: maxKeyLen}
	if got != want {
		t.Fatalf("clamped = %+v, want %+v", got, want)
	}
	// Whatever is configured, the hash it makes parses.
	if _, err := parsePHC(hashPassword("pw", got)); err != nil {
		t.Fatalf("hash with clamped params: %v", err)
	}
}

func TestParsePHCRejects(t *testing.T) {
	good := hashPassword("pw", fastArgon2)
	if _, err := parsePHC(good); err != nil {
		t.Fatal(err)
	}
	salt := "AAAAAAAAAAAAAAAAAAAAAA"
	hash := "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
	for _, s := range []string{
		"",
		"$argon2i$v=19$m=64,t=1,p=1$" + salt + "$" + hash,
		"$argon2id$v=16$m=64,t=1,p=1$" + salt + "$" + hash,
		"$argon2id$v=19$m=64,t=0,p=1$" + salt + "$" + hash,
		"$argon2id$v=19$m=64,t=1,p=0$" + salt + "$" + hash,
		"$argon2id$v=19$m=64,t=1,p=256$" + salt + "$" + hash,
		"$argon2id$v=19$m=4294967295,t=1,p=1$" + salt + "$" + hash,
		"$argon2id$v=19$m=064,t=1,p=1$" + salt + "$" + hash,
		"$argon2id$v=19$m=+64,t=1,p=1$" + salt + "$" + hash,
		"$argon2id$v=19$t=1,m=64,p=1$" + salt + "$" + hash,
		"$argon2id$v=19$m=64,t=1$" + salt + "$" + hash,
		"$argon2id$v=19$m=64,t=1,p=1$" + salt[:8] + "$" + hash,
		"$argon2id$v=19$m=64,t=1,p=1$" + salt + "$" + hash[:20],
		"$argon2id$v=19$m=64,t=1,p=1$" + salt + "=$" + hash,
		"$argon2id$v=19$m=64,t=1,p=1$" + salt + "$" + hash + "$",
		good + "!",
		strings.Replace(good, "$", "", 1),
	} {
		if h, err := parsePHC(s); err == nil {
			t.Errorf("parsePHC(%q) = %+v, want an error", s, h)
		}
	}
}

// FuzzParsePHC: parsePHC never panics, and what it accepts is within the
// ranges that keep verification cheap and formats back to the same string.
func FuzzParsePHC(f *testing.F) {
	f.Add(hashPassword("pw", fastArgon2))
	f.Add("$argon2id$v=19$m=19456,t=2,p=1$AAAAAAAAAAAAAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")
	f.Add("$argon2id$v=19$m=8,t=1,p=255$AAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAA")
	f.Add("$argon2id$v=19$m=99999999999,t=1,p=1$$")
	f.Add("$$$$$")
	f.Add("")
	f.Fuzz(func(t *testing.T, s string) {
		h, err := parsePHC(s)
		if err != nil {
			return
		}
		if h.memory > maxArgonMemory || h.iterations < 1 || h.iterations > maxArgonIters || h.parallelism < 1 ||
			len(h.salt) < minSaltLen || len(h.salt) > maxSaltLen || len(h.hash) < minKeyLen || len(h.hash) > maxKeyLen {
			t.Fatalf("parsePHC(%q) accepted out-of-range %+v", s, h)
		}
		if h.String() != s {
			t.Fatalf("parsePHC(%q) formats back as %q", s, h.String())
		}
	})
}
