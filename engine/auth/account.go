package auth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/moonforge/moonforge/engine/config"
	"github.com/moonforge/moonforge/engine/ident"
	"github.com/moonforge/moonforge/engine/store"
)

// Defaults and limits of Config.
const (
	DefaultMaxAccountLen = 64
	DefaultMaxSecretLen  = 256
	// MaxAccountLenLimit caps Config.MaxAccountLen so that every account
	// key fits in store.MaxKeyLen.
	MaxAccountLenLimit = 900
	// MaxMethodLen is the longest external login method name.
	MaxMethodLen = 64
	// MinDeviceIDLen and MaxDeviceIDLen bound a guest's device id in bytes (PROTOCOL.md).
	MinDeviceIDLen = 16
	MaxDeviceIDLen = 128
)

// Config configures Accounts. A zero (or negative) field takes its default.
type Config struct {
	// MinPasswordLen is the fewest characters (not bytes) of a new password.
	// Default: config.Default. Login does not check it, so raising it locks no one out.
	MinPasswordLen int
	// MaxAccountLen is the longest account name, device id or external
	// account id in bytes; at most MaxAccountLenLimit. Default 64.
	MaxAccountLen int
	// MaxSecretLen is the longest password in bytes, checked before any
	// hashing. Default 256.
	MaxSecretLen int
	// HashConcurrency is how many argon2id computations may run at once;
	// callers beyond that wait, honouring ctx. Default half the cores (at
	// least 1), so that a password flood leaves cores to logged-in players.
	HashConcurrency int
	// Argon2 are the parameters of new password hashes. Zero fields take
	// DefaultArgon2Params' values; others are clamped to sane ranges.
	Argon2 Argon2Params
}

func (c Config) withDefaults() Config {
	if c.MinPasswordLen <= 0 {
		c.MinPasswordLen = config.Default().Auth.MinPasswordLen
	}
	if c.MaxAccountLen <= 0 {
		c.MaxAccountLen = DefaultMaxAccountLen
	}
	c.MaxAccountLen = min(c.MaxAccountLen, MaxAccountLenLimit)
	if c.MaxSecretLen <= 0 {
		c.MaxSecretLen = DefaultMaxSecretLen
	}
	if c.HashConcurrency <= 0 {
		c.HashConcurrency = max(1, runtime.NumCPU()/2)
	}
	c.Argon2 = c.Argon2.withDefaults()
	return c
}

// Store key prefixes; see the package doc.
const (
	guestPrefix    = "account/guest/"
	passwordPrefix = "account/password/"
	extPrefix      = "account/ext/"
	playerPrefix   = "player/"
)

func profileKey(playerID string) string { return playerPrefix + playerID + "/profile" }

// profile is the record at player/<id>/profile.
type profile struct {
	CreatedAt time.Time `json:"created_at"`
	Login     string    `json:"login"`            // "guest", "password" or "external"
	Method    string    `json:"method,omitempty"` // the external method's name
}

// passwordRecord is the record at account/password/<name>.
type passwordRecord struct {
	PlayerID string `json:"player_id"`
	Hash     string `json:"hash"` // PHC string, see parsePHC
}

// Accounts maps logins to player ids, creating players on first sight. It
// is safe for concurrent use. Its methods block on the store and, for
// passwords, on an argon2id computation (tens of milliseconds, and a wait
// for a free hashing slot): call them from a login handler, never from a
// connection's read loop.
type Accounts struct {
	store     store.Store
	cfg       Config
	hashSlots chan struct{} // one token per argon2id computation running
	locks     keyLocks      // per account key, for race-free creation
	dummy     phc           // hashed against for unknown accounts
}

// NewAccounts returns Accounts over s, which the caller keeps owning (and
// closes after the last call).
func NewAccounts(s store.Store, cfg Config) *Accounts {
	cfg = cfg.withDefaults()
	return &Accounts{
		store:     s,
		cfg:       cfg,
		hashSlots: make(chan struct{}, cfg.HashConcurrency),
		dummy: phc{
			memory:      cfg.Argon2.Memory,
			iterations:  cfg.Argon2.Iterations,
			parallelism: cfg.Argon2.Parallelism,
			salt:        make([]byte, cfg.Argon2.SaltLen),
			hash:        make([]byte, cfg.Argon2.KeyLen),
		},
	}
}

// Guest maps a device id (MinDeviceIDLen to MaxDeviceIDLen bytes) to a player
// id, creating the player on first sight (created=true). mayCreate, if not
// nil, is asked just before a player would be created; false makes Guest
// fail with ErrCreationLimited.
func (a *Accounts) Guest(ctx context.Context, deviceID string, mayCreate func() bool) (playerID string, created bool, err error) {
	if n := len(deviceID); n < MinDeviceIDLen || n > MaxDeviceIDLen {
		return "", false, fmt.Errorf("%w: a device id is %d to %d bytes, not %d", ErrInvalidAccount, MinDeviceIDLen, MaxDeviceIDLen, n)
	}
	if err := checkText("device id", deviceID); err != nil {
		return "", false, err
	}
	return a.findOrCreate(ctx, guestPrefix+deviceID, profile{Login: "guest"}, mayCreate)
}

// External maps an account id that a custom (Lua-registered) login method
// vouched for, under that method's name, to a player id, creating the
// player on first sight. Method names are 1..MaxMethodLen ASCII letters,
// digits, '_', '-' or '.'.
func (a *Accounts) External(ctx context.Context, method, accountID string) (playerID string, created bool, err error) {
	if err := checkMethod(method); err != nil {
		return "", false, err
	}
	if err := a.checkName("account id", accountID); err != nil {
		return "", false, err
	}
	return a.findOrCreate(ctx, extPrefix+method+"/"+accountID, profile{Login: "external", Method: method}, nil)
}

// Password logs in with account and secret, or with register=true creates
// the account (ErrAccountExists if it exists). An unknown account and a
// wrong secret both give ErrBadCredentials, after the same argon2id work.
func (a *Accounts) Password(ctx context.Context, account, secret string, register bool) (playerID string, created bool, err error) {
	if err := a.checkName("account name", account); err != nil {
		return "", false, err
	}
	switch {
	case secret == "":
		return "", false, fmt.Errorf("%w: empty password", ErrInvalidAccount)
	case len(secret) > a.cfg.MaxSecretLen:
		return "", false, fmt.Errorf("%w: password longer than %d bytes", ErrInvalidAccount, a.cfg.MaxSecretLen)
	}
	key := passwordPrefix + account
	if register {
		return a.register(ctx, key, secret)
	}
	return a.login(ctx, key, secret)
}

func (a *Accounts) login(ctx context.Context, key, secret string) (string, bool, error) {
	raw, err := a.store.Get(ctx, key)
	if errors.Is(err, store.ErrNotFound) {
		if _, err := a.verify(ctx, a.dummy, secret); err != nil {
			return "", false, err
		}
		return "", false, ErrBadCredentials
	}
	if err != nil {
		return "", false, err
	}
	var rec passwordRecord
	if err := json.Unmarshal(raw, &rec); err != nil || !validPlayerID(rec.PlayerID) {
		return "", false, fmt.Errorf("auth: corrupt password record at %q", key)
	}
	h, err := parsePHC(rec.Hash)
	if err != nil {
		return "", false, fmt.Errorf("auth: corrupt password hash at %q: %w", key, err)
	}
	ok, err := a.verify(ctx, h, secret)
	if err != nil {
		return "", false, err
	}
	if !ok {
		return "", false, ErrBadCredentials
	}
	return rec.PlayerID, false, nil
}

func (a *Accounts) register(ctx context.Context, key, secret string) (string, bool, error) {
	if n := utf8.RuneCountInString(secret); n < a.cfg.MinPasswordLen {
		return "", false, fmt.Errorf("%w: password shorter than %d characters", ErrInvalidAccount, a.cfg.MinPasswordLen)
	}
	if err := a.checkAbsent(ctx, key); err != nil {
		return "", false, err
	}
	// Hash before taking the key's lock, which then is held only briefly.
	var hash string
	if err := a.withHashSlot(ctx, func() { hash = hashPassword(secret, a.cfg.Argon2) }); err != nil {
		return "", false, err
	}
	unlock, err := a.locks.lock(ctx, key)
	if err != nil {
		return "", false, err
	}
	defer unlock()
	if err := a.checkAbsent(ctx, key); err != nil {
		return "", false, err
	}
	id, err := a.create(ctx, profile{Login: "password"}, func(id string) (store.Op, error) {
		rec, err := json.Marshal(passwordRecord{PlayerID: id, Hash: hash})
		return store.Op{Key: key, Value: rec}, err
	})
	if errors.Is(err, store.ErrConflict) { // another process registered it meanwhile
		return "", false, ErrAccountExists
	}
	if err != nil {
		return "", false, err
	}
	return id, true, nil
}

// checkAbsent returns ErrAccountExists if key is in the store.
func (a *Accounts) checkAbsent(ctx context.Context, key string) error {
	_, err := a.store.Get(ctx, key)
	switch {
	case err == nil:
		return ErrAccountExists
	case errors.Is(err, store.ErrNotFound):
		return nil
	}
	return err
}

// verify checks secret against h in a hashing slot.
func (a *Accounts) verify(ctx context.Context, h phc, secret string) (bool, error) {
	var ok bool
	err := a.withHashSlot(ctx, func() { ok = h.matches(secret) })
	return ok, err
}

// withHashSlot runs fn once one of the HashConcurrency slots is free, or
// returns ctx's error if ctx is done first.
func (a *Accounts) withHashSlot(ctx context.Context, fn func()) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	select {
	case a.hashSlots <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-a.hashSlots }()
	fn()
	return nil
}

// findOrCreate returns the player id stored at key, or creates a player
// with prof and stores its id at key if mayCreate (nil: always) allows it.
func (a *Accounts) findOrCreate(ctx context.Context, key string, prof profile, mayCreate func() bool) (string, bool, error) {
	if id, err := a.readPlayerID(ctx, key); !errors.Is(err, store.ErrNotFound) {
		return id, false, err
	}
	unlock, err := a.locks.lock(ctx, key)
	if err != nil {
		return "", false, err
	}
	defer unlock()
	if id, err := a.readPlayerID(ctx, key); !errors.Is(err, store.ErrNotFound) {
		return id, false, err
	}
	if mayCreate != nil && !mayCreate() {
		return "", false, ErrCreationLimited
	}
	id, err := a.create(ctx, prof, func(id string) (store.Op, error) {
		return store.Op{Key: key, Value: []byte(id)}, nil
	})
	if errors.Is(err, store.ErrConflict) { // another process created it meanwhile
		id, err := a.readPlayerID(ctx, key)
		return id, false, err
	}
	if err != nil {
		return "", false, err
	}
	return id, true, nil
}

// readPlayerID returns the player id stored at key, or store.ErrNotFound.
func (a *Accounts) readPlayerID(ctx context.Context, key string) (string, error) {
	raw, err := a.store.Get(ctx, key)
	if err != nil {
		return "", err
	}
	if id := string(raw); validPlayerID(id) {
		return id, nil
	}
	return "", fmt.Errorf("auth: corrupt player id at %q", key)
}

// create writes a new player's profile and the account record that mapping
// makes for its id, both only if absent, so that processes sharing the store
// never both create an account: the loser gets an error wrapping
// store.ErrConflict. The caller holds the account key's lock (within this
// process). Where the store cannot make one batch of both keys atomic, the
// profile is written first, then the record; a profile left without a
// record by a loser is deleted.
func (a *Accounts) create(ctx context.Context, prof profile, mapping func(id string) (store.Op, error)) (string, error) {
	id, err := a.freshPlayerID(ctx)
	if err != nil {
		return "", err
	}
	op, err := mapping(id)
	if err != nil {
		return "", fmt.Errorf("auth: encode account record: %w", err)
	}
	prof.CreatedAt = time.Now().UTC()
	rec, err := json.Marshal(prof)
	if err != nil {
		return "", fmt.Errorf("auth: encode profile: %w", err)
	}
	op.Match, op.Version = true, 0
	prof1 := store.Op{Key: profileKey(id), Value: rec, Match: true}
	if a.store.Capabilities().AtomicBatch {
		if err := a.store.Batch(ctx, []store.Op{prof1, op}); err != nil {
			return "", fmt.Errorf("auth: create player: %w", err)
		}
		return id, nil
	}
	if err := a.store.Batch(ctx, []store.Op{prof1}); err != nil {
		return "", fmt.Errorf("auth: create player: %w", err)
	}
	if err := a.store.Batch(ctx, []store.Op{op}); err != nil {
		_ = a.store.Delete(ctx, profileKey(id))
		return "", fmt.Errorf("auth: create player: %w", err)
	}
	return id, nil
}

// freshPlayerID returns a random player id that has no profile yet.
func (a *Accounts) freshPlayerID(ctx context.Context) (string, error) {
	for range 3 {
		id := ident.New("p", playerIDLen-1)
		_, err := a.store.Get(ctx, profileKey(id))
		if errors.Is(err, store.ErrNotFound) {
			return id, nil
		}
		if err != nil {
			return "", err
		}
	}
	return "", errors.New("auth: no unused player id after 3 tries")
}

const playerIDLen = 21

func validPlayerID(id string) bool {
	if len(id) != playerIDLen || id[0] != 'p' {
		return false
	}
	for _, c := range []byte(id[1:]) {
		if !('a' <= c && c <= 'z' || '2' <= c && c <= '7') {
			return false
		}
	}
	return true
}

// checkName checks an account name, device id or external account id:
// 1..MaxAccountLen bytes of valid UTF-8 without control characters.
func (a *Accounts) checkName(what, s string) error {
	switch {
	case s == "":
		return fmt.Errorf("%w: empty %s", ErrInvalidAccount, what)
	case len(s) > a.cfg.MaxAccountLen:
		return fmt.Errorf("%w: %s longer than %d bytes", ErrInvalidAccount, what, a.cfg.MaxAccountLen)
	}
	return checkText(what, s)
}

// checkText refuses invalid UTF-8 and control characters.
func checkText(what, s string) error {
	switch {
	case !utf8.ValidString(s):
		return fmt.Errorf("%w: %s is not valid UTF-8", ErrInvalidAccount, what)
	case strings.ContainsFunc(s, unicode.IsControl):
		return fmt.Errorf("%w: %s contains a control character", ErrInvalidAccount, what)
	}
	return nil
}

// checkMethod checks an external login method's name.
func checkMethod(method string) error {
	if method == "" || len(method) > MaxMethodLen {
		return fmt.Errorf("%w: login method name must be 1 to %d bytes", ErrInvalidAccount, MaxMethodLen)
	}
	for _, c := range []byte(method) {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '-' || c == '.') {
			return fmt.Errorf("%w: login method name %q may hold only letters, digits, '_', '-' and '.'", ErrInvalidAccount, method)
		}
	}
	return nil
}
