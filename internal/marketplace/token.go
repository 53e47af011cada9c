package marketplace

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

// AccessClaims are what the marketplace's access token says: who it was
// issued to and until when.
type AccessClaims struct {
	UID       string `json:"uid"` // the aliUid the token was issued to
	IssuedAt  int64  `json:"iat"`
	ExpiresAt int64  `json:"exp"`
}

// Access token errors; each becomes its own envelope code.
var (
	ErrTokenMalformed = errors.New("accessToken is malformed: want base64url(claims).base64url(HMAC-SHA256)")
	ErrTokenForged    = errors.New("accessToken signature does not match the marketplace key")
	ErrTokenExpired   = errors.New("accessToken has expired")
)

// SignAccess makes an access token: base64url(JSON claims) "." base64url(
// HMAC-SHA256 of that part with key). The marketplace issues them; Ferry
// only verifies (tests and the documentation's examples sign).
func SignAccess(c AccessClaims, key []byte) string {
	b, _ := json.Marshal(c)
	p := base64.RawURLEncoding.EncodeToString(b)
	m := hmac.New(sha256.New, key)
	m.Write([]byte(p))
	return p + "." + base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// VerifyAccess checks the token's signature with key and its expiry at now.
func VerifyAccess(token string, key []byte, now time.Time) (AccessClaims, error) {
	var c AccessClaims
	p, sig, ok := strings.Cut(token, ".")
	if !ok || p == "" || sig == "" {
		return c, ErrTokenMalformed
	}
	got, err := base64.RawURLEncoding.Strict().DecodeString(sig)
	if err != nil {
		return c, ErrTokenMalformed
	}
	m := hmac.New(sha256.New, key)
	m.Write([]byte(p))
	if !hmac.Equal(got, m.Sum(nil)) {
		return c, ErrTokenForged
	}
	b, err := base64.RawURLEncoding.DecodeString(p)
	if err != nil || json.Unmarshal(b, &c) != nil || c.UID == "" || c.ExpiresAt == 0 {
		return c, ErrTokenMalformed
	}
	if !now.Before(time.Unix(c.ExpiresAt, 0)) {
		return c, fmt.Errorf("%w (at %s)", ErrTokenExpired, time.Unix(c.ExpiresAt, 0).UTC().Format(time.RFC3339))
	}
	return c, nil
}
