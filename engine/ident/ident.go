// Package ident makes the random ids of sessions, rooms and players.
package ident

import (
	"crypto/rand"
	"encoding/base32"
)

// idEncoding is lowercase base32 without padding.
var idEncoding = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// New returns prefix followed by n random lowercase base32 characters: the form of session,
// room and player ids. Safe for concurrent use.
func New(prefix string, n int) string {
	b := make([]byte, (n*5+7)/8)
	rand.Read(b) // never fails
	return prefix + idEncoding.EncodeToString(b)[:n]
}
