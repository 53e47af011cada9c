package engine

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"
)

// ErrUnauthorized marks a credential that is malformed, forged, expired or
// for another disk.
var ErrUnauthorized = errors.New("unauthorized")

// CredentialKey signs and verifies per-disk sync credentials. The control
// plane and the gateway share it; the agent only carries the credential.
type CredentialKey []byte

// LoadOrCreateCredentialKey reads the key at path, creating a random 32-byte
// key (mode 0600) on first use.
func LoadOrCreateCredentialKey(path string) (CredentialKey, error) {
	b, err := os.ReadFile(path)
	if err == nil {
		if len(b) < 32 {
			return nil, fmt.Errorf("credential key %s is %d bytes, want 32: remove it to generate a new one (outstanding credentials stop working)", path, len(b))
		}
		return CredentialKey(b), nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	k := make([]byte, 32)
	if _, err := rand.Read(k); err != nil {
		return nil, err
	}
	if err := os.WriteFile(path, k, 0o600); err != nil {
		return nil, fmt.Errorf("write credential key: %w", err)
	}
	return k, nil
}

type credentialClaims struct {
	Disk    string `json:"disk"`
	Expires int64  `json:"exp"`
	Nonce   string `json:"n"`
	// Tenant scopes the gateway's content index: a block one tenant's disks
	// hold is never offered to, or copied for, another tenant. Empty is the
	// single tenant of a standalone gateway.
	Tenant string `json:"t,omitempty"`
}

const credentialPrefix = "fc1."

// Issue returns a credential that lets its bearer sync disk until now+ttl:
// "fc1." + base64url(claims) + "." + base64url(HMAC-SHA256(key, claims)).
func (k CredentialKey) Issue(disk string, now time.Time, ttl time.Duration) (string, error) {
	return k.IssueTenant(disk, "", now, ttl)
}

// IssueTenant is Issue for a disk of tenant: the gateway binds the disk to
// the tenant on its first session and confines content sharing to it.
func (k CredentialKey) IssueTenant(disk, tenant string, now time.Time, ttl time.Duration) (string, error) {
	if disk == "" || ttl <= 0 {
		return "", fmt.Errorf("%w: a credential needs a disk id and a positive ttl", ErrInvalid)
	}
	if len(tenant) > 128 {
		return "", fmt.Errorf("%w: tenant %q is longer than 128 bytes", ErrInvalid, tenant)
	}
	n := make([]byte, 9)
	rand.Read(n)
	body, _ := json.Marshal(credentialClaims{Disk: disk, Expires: now.Add(ttl).Unix(), Nonce: base64.RawURLEncoding.EncodeToString(n), Tenant: tenant})
	p := base64.RawURLEncoding.EncodeToString(body)
	return credentialPrefix + p + "." + base64.RawURLEncoding.EncodeToString(k.sign(p)), nil
}

func (k CredentialKey) sign(payload string) []byte {
	m := hmac.New(sha256.New, k)
	m.Write([]byte(payload))
	return m.Sum(nil)
}

// Verify checks that cred was issued with k for disk and has not expired at
// now. Its errors wrap ErrUnauthorized and say which check failed.
func (k CredentialKey) Verify(cred, disk string, now time.Time) error {
	_, err := k.VerifyTenant(cred, disk, now)
	return err
}

// VerifyTenant is Verify that also returns the tenant the credential was
// issued for.
func (k CredentialKey) VerifyTenant(cred, disk string, now time.Time) (string, error) {
	c, err := k.verify(cred, disk, now)
	return c.Tenant, err
}

func (k CredentialKey) verify(cred, disk string, now time.Time) (credentialClaims, error) {
	var c credentialClaims
	rest, ok := strings.CutPrefix(cred, credentialPrefix)
	p, sig, ok2 := strings.Cut(rest, ".")
	if !ok || !ok2 {
		return c, fmt.Errorf("%w: credential is not a Ferry sync credential (want fc1.<claims>.<signature>)", ErrUnauthorized)
	}
	got, err := base64.RawURLEncoding.DecodeString(sig)
	if err != nil || !hmac.Equal(got, k.sign(p)) {
		return c, fmt.Errorf("%w: credential signature does not verify (issued by another gateway key, or altered)", ErrUnauthorized)
	}
	body, err := base64.RawURLEncoding.DecodeString(p)
	if err != nil || json.Unmarshal(body, &c) != nil {
		return c, fmt.Errorf("%w: credential claims unreadable", ErrUnauthorized)
	}
	if c.Disk != disk {
		return c, fmt.Errorf("%w: credential is for disk %q, not %q", ErrUnauthorized, c.Disk, disk)
	}
	if exp := time.Unix(c.Expires, 0); !now.Before(exp) {
		return c, fmt.Errorf("%w: credential for disk %q expired at %s: issue a new one", ErrUnauthorized, disk, exp.UTC().Format(time.RFC3339))
	}
	return c, nil
}
