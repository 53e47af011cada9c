// Package auth owns credentials: password hashing, opaque tokens (sessions,
// API tokens, agent credentials) stored only as hashes, CSRF tokens bound to
// a session, and the sign-in throttle.
package auth

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"strings"
	"sync"

	"golang.org/x/crypto/bcrypt"
)

// MinPasswordLength is the shortest password accepted.
const MinPasswordLength = 10

// ErrWeakPassword is returned for passwords that are too short.
var ErrWeakPassword = errors.New("password must be at least 10 characters")

// HashPassword returns a bcrypt hash of password.
func HashPassword(password string) (string, error) {
	if len(password) < MinPasswordLength {
		return "", ErrWeakPassword
	}
	if len(password) > 72 {
		return "", errors.New("password must be at most 72 bytes")
	}
	h, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.DefaultCost)
	return string(h), err
}

// dummyHash keeps sign-in for unknown emails as slow as for known ones. It is
// computed on first use: every ferry subcommand (the agent too) links this
// package and must not pay a bcrypt at start-up.
var dummyHash = sync.OnceValue(func() []byte {
	h, _ := bcrypt.GenerateFromPassword([]byte("ferry-dummy-password"), bcrypt.DefaultCost)
	return h
})

// CheckPassword reports whether password matches hash. An empty hash (no
// password set, unknown user) is compared against a dummy to keep timing flat.
func CheckPassword(hash, password string) bool {
	if hash == "" {
		_ = bcrypt.CompareHashAndPassword(dummyHash(), []byte(password))
		return false
	}
	return bcrypt.CompareHashAndPassword([]byte(hash), []byte(password)) == nil
}

// NewToken returns a random opaque token with a readable prefix
// (e.g. "fst_" for sessions, "fat_" for API tokens).
func NewToken(prefix string) string {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return prefix + base64.RawURLEncoding.EncodeToString(b)
}

// HashToken returns the SHA-256 of a token: tokens are random, so a fast hash
// is enough and lets the database look them up by hash.
func HashToken(token string) []byte {
	h := sha256.Sum256([]byte(token))
	return h[:]
}

// RandomPassword returns a password for one-time use.
func RandomPassword() string {
	b := make([]byte, 15)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// CSRFToken derives the CSRF token of a session: HMAC(key, session token).
// It needs no storage and is useless without the session cookie.
func CSRFToken(key []byte, sessionToken string) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte("csrf:" + sessionToken))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// CheckCSRF compares a presented CSRF token with the session's in constant time.
func CheckCSRF(key []byte, sessionToken, presented string) bool {
	want := CSRFToken(key, sessionToken)
	return presented != "" && subtle.ConstantTimeCompare([]byte(want), []byte(presented)) == 1
}

// NormalizeEmail lower-cases and trims an email for lookups.
func NormalizeEmail(s string) string { return strings.ToLower(strings.TrimSpace(s)) }
