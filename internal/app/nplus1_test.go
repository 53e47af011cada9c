package app_test

import (
	"fmt"
	"testing"

	"github.com/ferry-migrate/ferry/ent/tenant"
	"github.com/ferry-migrate/ferry/internal/viewer"
)

// seedHosts adds n hosts to the default tenant, each with two disks, an
// application, and a connection to the previous host.
func seedHosts(t testing.TB, ts *testServer, n int) {
	t.Helper()
	sys := viewer.SystemContext(t.Context())
	client := ts.App.DB.Client
	tid, err := client.Tenant.Query().Where(tenant.Slug("default")).OnlyID(sys)
	if err != nil {
		t.Fatal(err)
	}
	ctx := viewer.TenantContext(t.Context(), tid)
	start, _ := client.Host.Query().Count(ctx)
	app, err := client.Application.Create().SetName(fmt.Sprintf("app-%d", start)).Save(ctx)
	if err != nil {
		t.Fatal(err)
	}
	prev := 0
	for i := 0; i < n; i++ {
		h, err := client.Host.Create().SetName(fmt.Sprintf("host-%05d", start+i)).SetCpus(4).SetApplication(app).Save(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for d := 0; d < 2; d++ {
			client.Disk.Create().SetName(fmt.Sprintf("sd%c", 'a'+d)).SetSizeBytes(1 << 30).SetHost(h).ExecX(ctx)
		}
		if prev != 0 {
			client.Connection.Create().SetSrcHostID(h.ID).SetDstHostID(prev).SetPort(3306).ExecX(ctx)
		}
		prev = h.ID
	}
}

func TestNestedQueryHasNoNPlusOne(t *testing.T) {
	ts := mustStart(t)
	c := ts.login(t, "admin@example.com", adminPassword)
	const q = `{ hosts(first: 200, orderBy: [{field: NAME}]) { totalCount edges { node { name
		disks { name sizeBytes } application { name }
		outgoing(first: 5) { totalCount edges { node { port dst { name } } } } } } } }`
	count := func() int64 {
		before := ts.SQL.n.Load()
		d := c.mustGQL(q, nil)
		if len(dig(d, "hosts", "edges").([]any)) == 0 {
			t.Fatal("no hosts returned")
		}
		return ts.SQL.n.Load() - before
	}
	seedHosts(t, ts, 20)
	small := count()
	seedHosts(t, ts, 100)
	large := count()
	if large != small {
		t.Fatalf("statements grew with rows: %d for 20 hosts, %d for 120 hosts (N+1)", small, large)
	}
	if small > 12 {
		t.Fatalf("%d statements for one nested page; want a handful", small)
	}
	t.Logf("%d SQL statements for a nested page of 20 and of 120 hosts", small)
}
