package auth

import "errors"

// Errors of Accounts and Tokens; test them with errors.Is, as some are
// wrapped with a detail that is safe to show to the client.
var (
	// ErrBadCredentials: an unknown account or a wrong secret (the same
	// error for both, so that it tells nothing about which accounts exist).
	ErrBadCredentials = errors.New("auth: wrong account or password")
	// ErrAccountExists: registration of an account name that is taken.
	ErrAccountExists = errors.New("auth: account already exists")
	// ErrInvalidAccount: a malformed account name, device id, login method
	// name or secret, or a password too short to register.
	ErrInvalidAccount = errors.New("auth: invalid account")
	// ErrBadToken: a token that is malformed or not signed by our key.
	ErrBadToken = errors.New("auth: invalid token")
	// ErrExpiredToken: a genuine token past its expiry.
	ErrExpiredToken = errors.New("auth: token expired")
	// ErrRevokedToken: a genuine token revoked by a logout, or a refresh
	// token used before.
	ErrRevokedToken = errors.New("auth: token revoked")
	// ErrCreationLimited: a new account refused by a creation rate limit.
	ErrCreationLimited = errors.New("auth: too many new accounts from this address: try again later")
)
