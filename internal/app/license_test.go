package app_test

import (
	"crypto/ed25519"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ferry-migrate/ferry"
	"github.com/ferry-migrate/ferry/internal/app"
	"github.com/ferry-migrate/ferry/internal/license"
)

func signedLicense(t *testing.T, terms license.Terms) *license.License {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	b, err := license.Sign(priv, terms)
	if err != nil {
		t.Fatal(err)
	}
	l, err := license.Parse(b, pub)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// A tenant at its licence's quota cannot start one more migration; the
// refusal says why; migrations already running keep going; an expired
// licence refuses new starts and nothing else.
func TestLicenseQuotaAtStartMigration(t *testing.T) {
	clock := &testClock{t: time.Date(2027, 1, 10, 9, 0, 0, 0, time.UTC)}
	lic := signedLicense(t, license.Terms{ID: "L-7", Licensee: "Acme", IssuedAt: clock.Now().AddDate(0, -1, 0), ExpiresAt: clock.Now().AddDate(0, 0, 30),
		Default: license.Quota{MaxHostsUnderMigration: 3, MaxConcurrentMigrations: 2}}).WithClock(clock.Now)
	ts := mustStart(t, func(c *app.Config) { c.License = lic })
	admin := ts.login(t, "admin@example.com", adminPassword)
	ctx, _ := defaultTenant(t, ts)
	var hosts []string
	for i := range 5 {
		h := ts.App.DB.Client.Host.Create().SetName(fmt.Sprint("lic-", i)).SaveX(ctx)
		hosts = append(hosts, strconv.Itoa(h.ID))
	}
	start := func(ids ...string) gqlResp {
		return admin.gql(`mutation($h: [ID!]!) { startMigration(hostIds: $h) { id state } }`, map[string]any{"h": ids})
	}
	if r := start(hosts[0], hosts[1]); len(r.Errors) > 0 {
		t.Fatalf("two migrations under a quota of two: %s", r.raw)
	}
	r := start(hosts[2])
	if r.code() != "FORBIDDEN" || !strings.Contains(r.raw, "would make 3 migrations of tenant \\\"default\\\" move data at once; the licence allows 2") {
		t.Fatalf("a third concurrent migration: %s", r.raw)
	}
	// One of them finishes its initial sync: a third may start.
	m0 := ts.App.DB.Client.Migration.Query().FirstX(ctx)
	ts.App.DB.Client.Migration.UpdateOneID(m0.ID).SetState(ferry.MigrationCutoverReady).ExecX(ctx)
	if r := start(hosts[2]); len(r.Errors) > 0 {
		t.Fatalf("after one left the moving states: %s", r.raw)
	}
	// Three hosts under migration: the fourth is refused by the other quota.
	ts.App.DB.Client.Migration.Update().SetState(ferry.MigrationTestLaunched).ExecX(ctx)
	if r := start(hosts[3]); r.code() != "FORBIDDEN" || !strings.Contains(r.raw, "would put 4 hosts of tenant \\\"default\\\" under migration; the licence allows 3") {
		t.Fatalf("a fourth host: %s", r.raw)
	}
	// The licence expires: new starts are refused, the running migrations
	// are untouched and still readable.
	ts.App.DB.Client.Migration.Update().SetState(ferry.MigrationCutOver).ExecX(ctx)
	clock.Add(31 * 24 * time.Hour)
	if r := start(hosts[4]); r.code() != "FORBIDDEN" || !strings.Contains(r.raw, "expired on 2027-02-09") || !strings.Contains(r.raw, "running migrations continue") {
		t.Fatalf("under an expired licence: %s", r.raw)
	}
	if n := ts.App.DB.Client.Migration.Query().CountX(ctx); n != 3 {
		t.Fatalf("%d migrations after the refusals, want the 3 started", n)
	}
	admin.mustGQL(`{ migrations { totalCount } }`, nil)
}
