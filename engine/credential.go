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
	"strconv"
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
	Subject string `json:"sub,omitempty"`
	Expires int64  `json:"exp"`
	Nonce   string `json:"n"`
	// Tenant scopes the gateway's content index: a block one tenant's disks
	// hold is never offered to, or copied for, another tenant. Empty is the
	// single tenant of a standalone gateway.
	Tenant string `json:"t,omitempty"`
}

// Credential is what a verified credential says.
type Credential struct {
	Disk string
	// Subject names whom the credential was issued to (AgentSubject for a
	// registered agent); empty for credentials issued by hand.
	Subject string
	// Tenant is the tenant the disk belongs to (see IssueScoped).
	Tenant  string
	Expires time.Time
}

const agentSubjectPrefix = "agent:"

// ControlPlaneSubject names the short credentials the control plane issues
// itself to read a remote gateway's sessions (RemoteGateway.Session): no
// agent's, so nothing the revocation feed lists.
const ControlPlaneSubject = "ferry:control-plane"

// AgentSubject is the subject of credentials issued to the agent with
// this (control-plane) id.
func AgentSubject(agentID int) string { return agentSubjectPrefix + strconv.Itoa(agentID) }

// AgentID returns the agent a credential was issued to, if any.
func (c Credential) AgentID() (int, bool) {
	s, ok := strings.CutPrefix(c.Subject, agentSubjectPrefix)
	if !ok {
		return 0, false
	}
	id, err := strconv.Atoi(s)
	return id, err == nil && id > 0
}

const credentialPrefix = "fc1."

// Issue returns a credential that lets its bearer sync disk until now+ttl:
// "fc1." + base64url(claims) + "." + base64url(HMAC-SHA256(key, claims)).
func (k CredentialKey) Issue(disk string, now time.Time, ttl time.Duration) (string, error) {
	return k.IssueFor(disk, "", now, ttl)
}

// IssueFor is Issue for a credential that names its subject, so that a
// gateway's Authorize hook can refuse it once the subject is revoked.
func (k CredentialKey) IssueFor(disk, subject string, now time.Time, ttl time.Duration) (string, error) {
	return k.IssueScoped(disk, subject, "", now, ttl)
}

// IssueScoped is IssueFor for a disk of tenant: the gateway binds the disk
// to the tenant on its first session and shares blocks (its content index)
// only among one tenant's disks.
func (k CredentialKey) IssueScoped(disk, subject, tenant string, now time.Time, ttl time.Duration) (string, error) {
	if disk == "" || ttl <= 0 {
		return "", fmt.Errorf("%w: a credential needs a disk id and a positive ttl", ErrInvalid)
	}
	if len(tenant) > 128 {
		return "", fmt.Errorf("%w: tenant %q is longer than 128 bytes", ErrInvalid, tenant)
	}
	n := make([]byte, 9)
	rand.Read(n)
	body, _ := json.Marshal(credentialClaims{Disk: disk, Subject: subject, Tenant: tenant, Expires: now.Add(ttl).Unix(), Nonce: base64.RawURLEncoding.EncodeToString(n)})
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
	_, err := k.Parse(cred, disk, now)
	return err
}

// Parse is Verify that also returns what the credential says.
func (k CredentialKey) Parse(cred, disk string, now time.Time) (Credential, error) {
	rest, ok := strings.CutPrefix(cred, credentialPrefix)
	p, sig, ok2 := strings.Cut(rest, ".")
	if !ok || !ok2 {
		return Credential{}, fmt.Errorf("%w: credential is not a Ferry sync credential (want fc1.<claims>.<signature>)", ErrUnauthorized)
	}
	got, err := base64.RawURLEncoding.Strict().DecodeString(sig)
	if err != nil || !hmac.Equal(got, k.sign(p)) {
		return Credential{}, fmt.Errorf("%w: credential signature does not verify (issued by another gateway key, or altered)", ErrUnauthorized)
	}
	body, err := base64.RawURLEncoding.DecodeString(p)
	var c credentialClaims
	if err != nil || json.Unmarshal(body, &c) != nil {
		return Credential{}, fmt.Errorf("%w: credential claims unreadable", ErrUnauthorized)
	}
	if c.Disk != disk {
		return Credential{}, fmt.Errorf("%w: credential is for disk %q, not %q", ErrUnauthorized, c.Disk, disk)
	}
	if exp := time.Unix(c.Expires, 0); !now.Before(exp) {
		return Credential{}, fmt.Errorf("%w: credential for disk %q expired at %s: issue a new one", ErrUnauthorized, disk, exp.UTC().Format(time.RFC3339))
	}
	return Credential{Disk: c.Disk, Subject: c.Subject, Tenant: c.Tenant, Expires: time.Unix(c.Expires, 0)}, nil
}
