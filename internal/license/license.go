// Package license reads Ferry's licence file: a JSON document signed with
// Ed25519 by the vendor (whose private key never ships with the product;
// the installation is configured with the public key) that sets an expiry
// and per-tenant quotas. Check is what the action that would exceed a quota
// calls — starting migrations — so a licence never stops work in progress.
package license

import (
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/ferry-migrate/ferry"
)

// Quota limits one tenant. Zero means no limit.
type Quota struct {
	// MaxHostsUnderMigration caps the hosts with a migration that is not
	// finished (cut over, rolled back or failed).
	MaxHostsUnderMigration int `json:"max_hosts_under_migration,omitempty"`
	// MaxConcurrentMigrations caps the migrations moving data at once
	// (pending, preparing, initial sync, syncing, cutting over, rolling back).
	MaxConcurrentMigrations int `json:"max_concurrent_migrations,omitempty"`
}

// Terms is the signed part of a licence.
type Terms struct {
	ID        string           `json:"id"`
	Licensee  string           `json:"licensee"`
	IssuedAt  time.Time        `json:"issued_at"`
	ExpiresAt time.Time        `json:"expires_at"`
	Default   Quota            `json:"default"`
	Tenants   map[string]Quota `json:"tenants,omitempty"` // by tenant slug
}

// File is the licence file's shape: the terms exactly as signed, and the
// signature over those bytes.
type File struct {
	Terms     json.RawMessage `json:"terms"`
	Signature string          `json:"signature"` // base64 Ed25519 signature of Terms
}

// License is a licence whose signature checked out.
type License struct {
	Terms
	now func() time.Time
}

// ParsePublicKey reads a base64 (standard or URL) Ed25519 public key.
func ParsePublicKey(s string) (ed25519.PublicKey, error) {
	s = strings.TrimSpace(s)
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(s); err == nil && len(b) == ed25519.PublicKeySize {
			return ed25519.PublicKey(b), nil
		}
	}
	return nil, errors.New("licence key: want a base64 Ed25519 public key (32 bytes)")
}

// Sign makes a licence file of terms with the issuer's private key. It
// belongs to the issuer's tooling and the tests; an installation only
// verifies.
func Sign(priv ed25519.PrivateKey, t Terms) ([]byte, error) {
	raw, err := json.Marshal(t)
	if err != nil {
		return nil, err
	}
	// Not indented: MarshalIndent would re-indent the signed bytes too.
	return json.Marshal(File{Terms: raw, Signature: base64.StdEncoding.EncodeToString(ed25519.Sign(priv, raw))})
}

// Parse checks data's signature with pub and returns the licence. It does
// not check the expiry: an expired licence still reads (Check refuses new
// work under it).
func Parse(data []byte, pub ed25519.PublicKey) (*License, error) {
	var f File
	if err := json.Unmarshal(data, &f); err != nil {
		return nil, fmt.Errorf("licence file is not JSON: %w", err)
	}
	if len(f.Terms) == 0 || f.Signature == "" {
		return nil, errors.New("licence file: want {\"terms\": {...}, \"signature\": \"...\"}")
	}
	sig, err := base64.StdEncoding.DecodeString(f.Signature)
	if err != nil {
		return nil, fmt.Errorf("licence signature is not base64: %w", err)
	}
	if !ed25519.Verify(pub, f.Terms, sig) {
		return nil, errors.New("licence signature does not match: the file was altered or signed by another issuer")
	}
	var t Terms
	if err := json.Unmarshal(f.Terms, &t); err != nil {
		return nil, fmt.Errorf("licence terms: %w", err)
	}
	if t.ExpiresAt.IsZero() {
		return nil, errors.New("licence terms: no expires_at")
	}
	return &License{Terms: t, now: time.Now}, nil
}

// Load reads and verifies the licence file at path.
func Load(path string, pub ed25519.PublicKey) (*License, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("licence: %w", err)
	}
	l, err := Parse(b, pub)
	if err != nil {
		return nil, fmt.Errorf("licence %s: %w", path, err)
	}
	return l, nil
}

// WithClock returns l reading the time from now (tests).
func (l *License) WithClock(now func() time.Time) *License {
	c := *l
	c.now = now
	return &c
}

// Expired reports whether the licence has run out.
func (l *License) Expired() bool { return !l.now().Before(l.ExpiresAt) }

// QuotaFor returns the quota of the tenant with this slug.
func (l *License) QuotaFor(slug string) Quota {
	if q, ok := l.Tenants[slug]; ok {
		return q
	}
	return l.Default
}

// Usage is what a tenant has running now.
type Usage struct {
	HostsUnderMigration  int
	ConcurrentMigrations int
}

// Check says whether tenant slug, using u, may start adding migrations (of
// as many hosts). A nil licence allows everything: an installation without
// a licence file has no quotas. The error is ferry.EFORBIDDEN with what
// was refused, the limit and what to do.
func (l *License) Check(slug string, u Usage, adding int) error {
	if l == nil {
		return nil
	}
	if l.Expired() {
		return ferry.Errorf(ferry.EFORBIDDEN, "the licence for %s expired on %s: no new migration can start (running migrations continue); install a renewed licence file",
			l.Licensee, l.ExpiresAt.UTC().Format("2006-01-02"))
	}
	q := l.QuotaFor(slug)
	if q.MaxHostsUnderMigration > 0 && u.HostsUnderMigration+adding > q.MaxHostsUnderMigration {
		return ferry.Errorf(ferry.EFORBIDDEN, "starting %d migration(s) would put %d hosts of tenant %q under migration; the licence allows %d (%d now; running migrations are not affected)",
			adding, u.HostsUnderMigration+adding, slug, q.MaxHostsUnderMigration, u.HostsUnderMigration)
	}
	if q.MaxConcurrentMigrations > 0 && u.ConcurrentMigrations+adding > q.MaxConcurrentMigrations {
		return ferry.Errorf(ferry.EFORBIDDEN, "starting %d migration(s) would make %d migrations of tenant %q move data at once; the licence allows %d (%d now): wait for some to finish their initial sync",
			adding, u.ConcurrentMigrations+adding, slug, q.MaxConcurrentMigrations, u.ConcurrentMigrations)
	}
	return nil
}

// Describe renders the licence for `ferry license inspect`.
func (l *License) Describe() string {
	var b strings.Builder
	state := "valid"
	if l.Expired() {
		state = "EXPIRED"
	}
	fmt.Fprintf(&b, "licence %s for %s: signature ok, %s\n", l.ID, l.Licensee, state)
	fmt.Fprintf(&b, "  issued  %s\n  expires %s\n", l.IssuedAt.UTC().Format(time.RFC3339), l.ExpiresAt.UTC().Format(time.RFC3339))
	quota := func(q Quota) string {
		lim := func(n int) string {
			if n == 0 {
				return "unlimited"
			}
			return fmt.Sprint(n)
		}
		return fmt.Sprintf("hosts under migration %s, concurrent migrations %s", lim(q.MaxHostsUnderMigration), lim(q.MaxConcurrentMigrations))
	}
	fmt.Fprintf(&b, "  default: %s\n", quota(l.Default))
	for _, slug := range slices.Sorted(maps.Keys(l.Tenants)) {
		fmt.Fprintf(&b, "  tenant %s: %s\n", slug, quota(l.Tenants[slug]))
	}
	return b.String()
}
