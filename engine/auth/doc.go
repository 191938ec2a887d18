// Package auth holds Moonforge's accounts and login tokens: the built-in
// login methods of the wire protocol (guest, password, token) and the
// mapping of accounts that custom, Lua-registered methods vouch for.
//
// # Storage layout
//
// Accounts live in a store.Store under these keys:
//
//	account/guest/<device id>        player id
//	account/password/<account name>  JSON {"player_id": ..., "hash": "$argon2id$v=19$m=19456,t=2,p=1$<salt>$<hash>"}
//	account/ext/<method>/<account>   player id (method names contain no '/')
//	player/<player id>/profile       JSON {"created_at": RFC 3339, "login": "guest"|"password"|"external", "method": ...}
//	revoked/session/<session id>     expiry: every token of the session is revoked (Revocations)
//	revoked/player/<player id>       expiry, then the time up to which the player's tokens are revoked
//	revoked/refresh/<hex token id>   expiry: a refresh token already used
//
// The token signing keys are not in the store: they come from a file or the
// environment (LoadKeys).
//
// Player ids are "p" and 20 characters of lowercase base32 (100 random
// bits). Account names and device ids are compared byte for byte: no case
// folding or Unicode normalisation.
//
// Creating an account is race-free within one process: Accounts serialises
// work on each account key. Two processes sharing one store could still both
// create the same account; the store's compare-and-set, when it comes, will
// make creation safe across a cluster.
//
// # Errors
//
// The gateway maps ErrBadCredentials, ErrBadToken and ErrExpiredToken to
// UNAUTHENTICATED, and ErrInvalidAccount and ErrAccountExists to BAD_REQUEST;
// any other error is INTERNAL.
package auth
