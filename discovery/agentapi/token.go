// Package agentapi owns the agent protocol under /agent/v1/: registration
// tokens, the request and response bodies, the HTTP handler the control
// plane mounts, and the Store interface the handler persists through. The
// agent only ever calls up; the handler never calls an agent.
package agentapi

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Token errors. VerifyRegistrationToken returns exactly one of the first
// three; a Store returns the others from RegisterAgent.
var (
	ErrTokenMalformed = errors.New("registration token is malformed")
	ErrTokenForged    = errors.New("registration token signature is invalid")
	ErrTokenExpired   = errors.New("registration token has expired")
	// ErrTokenExhausted: the token's use count is spent.
	ErrTokenExhausted = errors.New("registration token has no uses left")
	// ErrTokenRevoked: unknown token id, revoked, or tenant mismatch.
	ErrTokenRevoked = errors.New("registration token is revoked or unknown")
	// ErrUnauthenticated: the agent credential is unknown or revoked.
	ErrUnauthenticated = errors.New("agent credential is unknown or revoked")
	// ErrBusy: the Store could not write now (other writers hold the
	// database); the request is worth sending again shortly. Any Store
	// method may return it.
	ErrBusy = errors.New("the control plane is busy")
	// ErrSuspended: the agent's tenant is suspended; the agent keeps its
	// credential and is served again once the tenant is resumed.
	ErrSuspended = errors.New("the agent's tenant is suspended")
)

const tokenPrefix = "frt_"

// Claims are what a registration token asserts. The signature proves the
// control plane issued them; use counts and revocation live in the Store.
type Claims struct {
	TenantID  string `json:"tenant_id"`
	TokenID   string `json:"token_id"`
	ExpiresAt int64  `json:"expires_at"` // unix seconds
}

// Expiry returns ExpiresAt as a time.
func (c Claims) Expiry() time.Time { return time.Unix(c.ExpiresAt, 0).UTC() }

var b64 = base64.RawURLEncoding

// SignRegistrationToken returns frt_<base64url(payload)>.<base64url(HMAC-SHA256(payload))>.
func SignRegistrationToken(key []byte, c Claims) (string, error) {
	if len(key) < 16 {
		return "", errors.New("sign registration token: key must be at least 16 bytes")
	}
	if c.TenantID == "" || c.TokenID == "" || c.ExpiresAt == 0 {
		return "", errors.New("sign registration token: tenant id, token id and expiry are required")
	}
	payload, err := json.Marshal(c)
	if err != nil {
		return "", fmt.Errorf("sign registration token: %w", err)
	}
	p := b64.EncodeToString(payload)
	return tokenPrefix + p + "." + b64.EncodeToString(mac(key, p)), nil
}

// mac signs the encoded payload, so verification never has to re-encode.
func mac(key []byte, encodedPayload string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(encodedPayload))
	return m.Sum(nil)
}

// VerifyRegistrationToken checks a token's shape, signature and expiry, in
// that order, and returns ErrTokenMalformed, ErrTokenForged or
// ErrTokenExpired (wrapped) when one fails.
func VerifyRegistrationToken(key []byte, token string, now time.Time) (Claims, error) {
	var c Claims
	rest, ok := strings.CutPrefix(strings.TrimSpace(token), tokenPrefix)
	if !ok {
		return c, fmt.Errorf("%w: missing %q prefix", ErrTokenMalformed, tokenPrefix)
	}
	p, sig, ok := strings.Cut(rest, ".")
	if !ok || p == "" || sig == "" || strings.Contains(sig, ".") {
		return c, fmt.Errorf("%w: want payload.signature", ErrTokenMalformed)
	}
	payload, err := b64.DecodeString(p)
	if err != nil {
		return c, fmt.Errorf("%w: payload is not base64url", ErrTokenMalformed)
	}
	got, err := b64.DecodeString(sig)
	if err != nil || len(got) != sha256.Size {
		return c, fmt.Errorf("%w: signature is not a base64url HMAC-SHA256", ErrTokenMalformed)
	}
	if !hmac.Equal(got, mac(key, p)) {
		return c, ErrTokenForged
	}
	if err := json.Unmarshal(payload, &c); err != nil || c.TenantID == "" || c.TokenID == "" || c.ExpiresAt == 0 {
		return Claims{}, fmt.Errorf("%w: payload lacks tenant, token id or expiry", ErrTokenMalformed)
	}
	if !now.Before(c.Expiry()) {
		return c, fmt.Errorf("%w (expired %s)", ErrTokenExpired, c.Expiry().Format(time.RFC3339))
	}
	return c, nil
}

// NewCredential returns a fresh agent credential: "fra_" and 32 random
// bytes. The agent keeps it; the Store keeps only HashCredential of it.
func NewCredential() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("new agent credential: %w", err)
	}
	return "fra_" + b64.EncodeToString(b), nil
}

// HashCredential is what a Store persists and looks credentials up by. A
// plain SHA-256 suffices: the credential is 256 random bits, not a
// password, so there is nothing to brute-force.
func HashCredential(credential string) string {
	h := sha256.Sum256([]byte(credential))
	return hex.EncodeToString(h[:])
}
