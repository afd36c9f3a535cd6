package auth

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"unicode/utf8"

	"golang.org/x/crypto/argon2"
)

// Password rules: long enough that guessing is slow even with a weak
// choice of words, short enough that hashing stays cheap.
const (
	MinPasswordLen   = 10   // characters (runes)
	MaxPasswordBytes = 1024 // bytes
)

// PasswordParams are the argon2id parameters new hashes are made with.
// Stored hashes carry their own, so these can change later without
// invalidating a password.
type PasswordParams struct {
	Memory  uint32 // KiB
	Time    uint32 // passes
	Threads uint8
}

// DefaultPasswordParams are OWASP's first recommendation for argon2id
// (Password Storage Cheat Sheet): 19 MiB, two passes, one thread.
var DefaultPasswordParams = PasswordParams{Memory: 19456, Time: 2, Threads: 1}

const (
	saltLen = 16
	keyLen  = 32
)

// Bounds on the parameters a stored hash may ask for, so a damaged or
// planted hash cannot make a login take the process's memory.
const (
	maxMemory  = 1 << 20 // KiB: 1 GiB
	maxTime    = 64
	maxThreads = 16
)

// argonSlots bounds the argon2id computations running at once in the
// process: each takes Memory KiB, and a burst of logins must not take the
// node's memory with it. It is per process, not per Store, because memory
// is.
var argonSlots = make(chan struct{}, 2)

// argonRuns counts argon2id computations, so tests can check that every
// way a login fails costs the same.
var argonRuns atomic.Int64

// argon2id hashes password with p and salt, waiting for a slot first.
func argon2id(ctx context.Context, password, salt []byte, p PasswordParams, n uint32) ([]byte, error) {
	select {
	case argonSlots <- struct{}{}:
	case <-ctx.Done():
		return nil, context.Cause(ctx)
	}
	defer func() { <-argonSlots }()
	argonRuns.Add(1)
	return argon2.IDKey(password, salt, p.Time, p.Memory, p.Threads, n), nil
}

// checkPasswordRule says why password is not acceptable for the account
// name, or nil.
func checkPasswordRule(name, password string) error {
	if !utf8.ValidString(password) {
		return fmt.Errorf("%w: password: not valid UTF-8", ErrInvalid)
	}
	if utf8.RuneCountInString(password) < MinPasswordLen {
		return fmt.Errorf("%w: password: want at least %d characters", ErrInvalid, MinPasswordLen)
	}
	if len(password) > MaxPasswordBytes {
		return fmt.Errorf("%w: password: want at most %d bytes", ErrInvalid, MaxPasswordBytes)
	}
	if strings.EqualFold(password, name) {
		return fmt.Errorf("%w: password: must not be the user name", ErrInvalid)
	}
	return nil
}

// hashPassword returns password's argon2id hash in the PHC string form,
// $argon2id$v=19$m=<KiB>,t=<passes>,p=<threads>$<salt>$<key>, salt and key
// in unpadded standard base64.
func hashPassword(ctx context.Context, password string, p PasswordParams) (string, error) {
	salt := make([]byte, saltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("auth: salt: %w", err)
	}
	key, err := argon2id(ctx, []byte(password), salt, p, keyLen)
	if err != nil {
		return "", err
	}
	return encodePHC(p, salt, key), nil
}

func encodePHC(p PasswordParams, salt, key []byte) string {
	b64 := base64.RawStdEncoding
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s",
		argon2.Version, p.Memory, p.Time, p.Threads, b64.EncodeToString(salt), b64.EncodeToString(key))
}

var errPHC = errors.New("auth: stored password hash is not argon2id in PHC form")

// decodePHC reads a hash made by encodePHC, with any parameters within
// the bounds.
func decodePHC(s string) (p PasswordParams, salt, key []byte, err error) {
	parts := strings.Split(s, "$")
	if len(parts) != 6 || parts[0] != "" || parts[1] != "argon2id" {
		return p, nil, nil, errPHC
	}
	var v int
	if _, err := fmt.Sscanf(parts[2], "v=%d", &v); err != nil || v != argon2.Version {
		return p, nil, nil, errPHC
	}
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &p.Memory, &p.Time, &p.Threads); err != nil {
		return p, nil, nil, errPHC
	}
	if p.Memory < 8*uint32(p.Threads) || p.Memory > maxMemory || p.Time < 1 || p.Time > maxTime || p.Threads < 1 || p.Threads > maxThreads {
		return p, nil, nil, errPHC
	}
	b64 := base64.RawStdEncoding
	if salt, err = b64.DecodeString(parts[4]); err != nil || len(salt) < 8 {
		return p, nil, nil, errPHC
	}
	if key, err = b64.DecodeString(parts[5]); err != nil || len(key) < 16 || len(key) > 64 {
		return p, nil, nil, errPHC
	}
	return p, salt, key, nil
}

// verifyPassword reports whether password matches the PHC hash, with the
// parameters the hash names.
func verifyPassword(ctx context.Context, hash, password string) (bool, error) {
	p, salt, key, err := decodePHC(hash)
	if err != nil {
		return false, err
	}
	got, err := argon2id(ctx, []byte(password), salt, p, uint32(len(key)))
	if err != nil {
		return false, err
	}
	return subtle.ConstantTimeCompare(got, key) == 1, nil
}

// dummyHash is a hash no password matches, with the store's parameters:
// verifying against it costs what verifying a real one does, so a login
// for an unknown account, or one without a password, takes as long as a
// wrong password.
func dummyHash(p PasswordParams) string {
	salt := make([]byte, saltLen)
	_, _ = rand.Read(salt)
	return encodePHC(p, salt, make([]byte, keyLen))
}
