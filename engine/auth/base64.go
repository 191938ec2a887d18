package auth

import (
	"encoding/base64"
	"errors"
	"strings"
)

// Canonical base64 forms: unpadded, rejecting stray trailing bits.
var (
	// b64 encodes token parts (base64url).
	b64 = base64.RawURLEncoding.Strict()
	// b64PHC encodes the salt and hash of a PHC string (standard alphabet).
	b64PHC = base64.RawStdEncoding.Strict()
)

var errNotCanonical = errors.New("not canonical base64")

// decodeCanonical decodes s, which must be exactly enc's encoding of the
// result: unlike enc.DecodeString it also rejects '\r' and '\n', which the
// standard decoder skips.
func decodeCanonical(enc *base64.Encoding, s string) ([]byte, error) {
	if strings.ContainsAny(s, "\r\n") {
		return nil, errNotCanonical
	}
	return enc.DecodeString(s)
}
