package auth

import (
	"crypto/rand"
	"crypto/subtle"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"golang.org/x/crypto/argon2"
)

// Argon2Params are the argon2id cost parameters of new password hashes.
// Verification always uses the parameters recorded in the stored hash, so
// they can change without locking anyone out.
type Argon2Params struct {
	Memory      uint32 // KiB
	Iterations  uint32
	Parallelism uint8
	SaltLen     uint32 // bytes
	KeyLen      uint32 // bytes
}

// DefaultArgon2Params is OWASP's recommendation: argon2id with 19 MiB,
// 2 iterations, parallelism 1, a 16-byte salt and a 32-byte hash.
func DefaultArgon2Params() Argon2Params {
	return Argon2Params{Memory: 19456, Iterations: 2, Parallelism: 1, SaltLen: 16, KeyLen: 32}
}

// Ranges of the parameters that a stored hash may have; configured ones are
// clamped into them.
const (
	minArgonMemory = 8
	maxArgonMemory = 1 << 20 // KiB: 1 GiB
	maxArgonIters  = 64
	minSaltLen     = 8
	maxSaltLen     = 64
	minKeyLen      = 16
	maxKeyLen      = 64
)

// withDefaults takes each zero field from the defaults and clamps the others
// into the accepted ranges.
func (p Argon2Params) withDefaults() Argon2Params {
	d := DefaultArgon2Params()
	if p.Memory == 0 {
		p.Memory = d.Memory
	}
	if p.Iterations == 0 {
		p.Iterations = d.Iterations
	}
	if p.Parallelism == 0 {
		p.Parallelism = d.Parallelism
	}
	if p.SaltLen == 0 {
		p.SaltLen = d.SaltLen
	}
	if p.KeyLen == 0 {
		p.KeyLen = d.KeyLen
	}
	p.Memory = clamp(p.Memory, minArgonMemory, maxArgonMemory)
	p.Iterations = clamp(p.Iterations, 1, maxArgonIters)
	p.SaltLen = clamp(p.SaltLen, minSaltLen, maxSaltLen)
	p.KeyLen = clamp(p.KeyLen, minKeyLen, maxKeyLen)
	return p
}

func clamp(v, lo, hi uint32) uint32 {
	return max(lo, min(v, hi))
}

// phc is a parsed argon2id hash string.
type phc struct {
	memory, iterations uint32
	parallelism        uint8
	salt, hash         []byte
}

var errBadPHC = errors.New("auth: malformed argon2id hash")

// hashPassword hashes secret with p (already defaulted) and a fresh random
// salt, as a PHC string. It computes argon2id: CPU and memory heavy.
func hashPassword(secret string, p Argon2Params) string {
	salt := make([]byte, p.SaltLen)
	rand.Read(salt) // never fails
	h := phc{
		memory:      p.Memory,
		iterations:  p.Iterations,
		parallelism: p.Parallelism,
		salt:        salt,
		hash:        argon2.IDKey([]byte(secret), salt, p.Iterations, p.Memory, p.Parallelism, p.KeyLen),
	}
	return h.String()
}

// String formats h as "$argon2id$v=19$m=<KiB>,t=<iterations>,p=<parallelism>$<salt>$<hash>".
func (h phc) String() string {
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s",
		argon2.Version, h.memory, h.iterations, h.parallelism,
		b64PHC.EncodeToString(h.salt), b64PHC.EncodeToString(h.hash))
}

// matches recomputes the hash of secret with h's own parameters and salt
// and compares in constant time. CPU and memory heavy.
func (h phc) matches(secret string) bool {
	got := argon2.IDKey([]byte(secret), h.salt, h.iterations, h.memory, h.parallelism, uint32(len(h.hash)))
	return subtle.ConstantTimeCompare(got, h.hash) == 1
}

// parsePHC parses an argon2id PHC string as hashPassword writes it, with
// every parameter within the accepted ranges, so that verifying it can
// neither panic nor exhaust memory.
func parsePHC(s string) (phc, error) {
	parts := strings.Split(s, "$")
	if len(parts) != 6 || parts[0] != "" || parts[1] != "argon2id" || parts[2] != "v="+strconv.Itoa(argon2.Version) {
		return phc{}, errBadPHC
	}
	params := strings.Split(parts[3], ",")
	if len(params) != 3 {
		return phc{}, errBadPHC
	}
	m, okM := phcParam(params[0], "m=", minArgonMemory, maxArgonMemory)
	t, okT := phcParam(params[1], "t=", 1, maxArgonIters)
	p, okP := phcParam(params[2], "p=", 1, 255)
	if !okM || !okT || !okP {
		return phc{}, errBadPHC
	}
	salt, err := decodeCanonical(b64PHC, parts[4])
	if err != nil || len(salt) < minSaltLen || len(salt) > maxSaltLen {
		return phc{}, errBadPHC
	}
	hash, err := decodeCanonical(b64PHC, parts[5])
	if err != nil || len(hash) < minKeyLen || len(hash) > maxKeyLen {
		return phc{}, errBadPHC
	}
	return phc{memory: m, iterations: t, parallelism: uint8(p), salt: salt, hash: hash}, nil
}

// phcParam parses "<name><decimal>" with the value in [lo, hi].
func phcParam(s, name string, lo, hi uint32) (uint32, bool) {
	digits, ok := strings.CutPrefix(s, name)
	if !ok || digits == "" || len(digits) > 10 || (len(digits) > 1 && digits[0] == '0') {
		return 0, false
	}
	v, err := strconv.ParseUint(digits, 10, 32)
	if err != nil || uint32(v) < lo || uint32(v) > hi {
		return 0, false
	}
	return uint32(v), true
}
