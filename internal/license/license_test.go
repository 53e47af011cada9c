package license_test

import (
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/ferry-migrate/ferry"
	"github.com/ferry-migrate/ferry/internal/license"
)

func issue(t *testing.T, terms license.Terms) ([]byte, ed25519.PublicKey, ed25519.PrivateKey) {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	b, err := license.Sign(priv, terms)
	if err != nil {
		t.Fatal(err)
	}
	return b, pub, priv
}

var now = time.Date(2027, 1, 10, 12, 0, 0, 0, time.UTC)

func terms() license.Terms {
	return license.Terms{ID: "L-1", Licensee: "Acme", IssuedAt: now.AddDate(0, -1, 0), ExpiresAt: now.AddDate(0, 6, 0),
		Default: license.Quota{MaxHostsUnderMigration: 10, MaxConcurrentMigrations: 4},
		Tenants: map[string]license.Quota{"big": {MaxHostsUnderMigration: 1000}}}
}

func TestSignatureChecked(t *testing.T) {
	file, pub, _ := issue(t, terms())
	if _, err := license.Parse(file, pub); err != nil {
		t.Fatalf("a good licence: %v", err)
	}
	otherPub, _, _ := ed25519.GenerateKey(nil)
	if _, err := license.Parse(file, otherPub); err == nil || !strings.Contains(err.Error(), "signed by another issuer") {
		t.Fatalf("another issuer's key: %v", err)
	}
	// Raise the quota in the file without re-signing.
	var f license.File
	json.Unmarshal(file, &f)
	f.Terms = json.RawMessage(strings.Replace(string(f.Terms), `"max_hosts_under_migration":10`, `"max_hosts_under_migration":10000`, 1))
	forged, _ := json.Marshal(f)
	if _, err := license.Parse(forged, pub); err == nil || !strings.Contains(err.Error(), "altered") {
		t.Fatalf("an edited licence: %v", err)
	}
	for _, bad := range []string{`not json`, `{}`, `{"terms":{},"signature":"%%%"}`} {
		if _, err := license.Parse([]byte(bad), pub); err == nil {
			t.Errorf("Parse(%s) accepted", bad)
		}
	}
	if k, err := license.ParsePublicKey(base64.StdEncoding.EncodeToString(pub)); err != nil || !k.Equal(pub) {
		t.Fatalf("ParsePublicKey: %v", err)
	}
	if _, err := license.ParsePublicKey("c2hvcnQ="); err == nil {
		t.Fatal("a short key was accepted")
	}
}

func TestCheck(t *testing.T) {
	file, pub, _ := issue(t, terms())
	l, _ := license.Parse(file, pub)
	l = l.WithClock(func() time.Time { return now })
	for _, tc := range []struct {
		slug   string
		u      license.Usage
		adding int
		err    string
	}{
		{slug: "small", u: license.Usage{HostsUnderMigration: 6, ConcurrentMigrations: 1}, adding: 3},
		{slug: "small", u: license.Usage{HostsUnderMigration: 8}, adding: 3, err: "would put 11 hosts of tenant \"small\" under migration; the licence allows 10"},
		{slug: "small", u: license.Usage{ConcurrentMigrations: 3}, adding: 2, err: "the licence allows 4 (3 now)"},
		{slug: "big", u: license.Usage{HostsUnderMigration: 900, ConcurrentMigrations: 500}, adding: 100},
		{slug: "big", u: license.Usage{HostsUnderMigration: 901}, adding: 100, err: "allows 1000"},
	} {
		err := l.Check(tc.slug, tc.u, tc.adding)
		if tc.err == "" {
			if err != nil {
				t.Errorf("%+v: %v", tc, err)
			}
			continue
		}
		if ferry.ErrorCode(err) != ferry.EFORBIDDEN || !strings.Contains(err.Error(), tc.err) {
			t.Errorf("%+v: %v, want FORBIDDEN %q", tc, err, tc.err)
		}
	}
	expired := l.WithClock(func() time.Time { return now.AddDate(1, 0, 0) })
	if err := expired.Check("small", license.Usage{}, 1); err == nil || !strings.Contains(err.Error(), "expired on 2027-07-10") || !strings.Contains(err.Error(), "running migrations continue") {
		t.Fatalf("expired: %v", err)
	}
	var none *license.License
	if err := none.Check("x", license.Usage{HostsUnderMigration: 1 << 20}, 1); err != nil {
		t.Fatalf("no licence: %v", err)
	}
	if d := l.Describe(); !strings.Contains(d, "signature ok, valid") || !strings.Contains(d, "tenant big: hosts under migration 1000, concurrent migrations unlimited") {
		t.Fatalf("Describe:\n%s", d)
	}
}

func FuzzParse(f *testing.F) {
	pub, priv, _ := ed25519.GenerateKey(nil)
	good, _ := license.Sign(priv, terms())
	f.Add(good)
	f.Add([]byte(`{"terms":{"expires_at":"2030-01-01T00:00:00Z"},"signature":"AAAA"}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		l, err := license.Parse(b, pub)
		if err == nil && l.ExpiresAt.IsZero() {
			t.Fatal("a licence without an expiry was accepted")
		}
	})
}
