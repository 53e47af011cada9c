package app_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ferry-migrate/ferry/engine/cloud/alibaba"
	"github.com/ferry-migrate/ferry/ent/cloudrecord"
	"github.com/ferry-migrate/ferry/internal/app"
	"github.com/ferry-migrate/ferry/internal/viewer"
)

func postJSON(t *testing.T, url string, v any) (int, []byte) {
	t.Helper()
	b, _ := json.Marshal(v)
	resp, err := http.Post(url, "application/json", bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out bytes.Buffer
	out.ReadFrom(resp.Body)
	return resp.StatusCode, out.Bytes()
}

// TestCloudCallbacks: the routes the provider's instances call back on
// take one-time, expiring tickets bound to one account's record; the
// gateway's later calls take the bearer its registration returned; the
// records are sealed in the database and confined to their tenant.
func TestCloudCallbacks(t *testing.T) {
	clock := &testClock{t: time.Now()}
	ts := mustStart(t, func(c *app.Config) { c.PublicURL = "https://ferry.example.com"; c.Now = clock.Now })
	admin := ts.login(t, "admin@example.com", adminPassword)
	create := func(c *client, name string) string {
		return dig(c.mustGQL(`mutation($n: String!) { createCloudAccount(input: {name: $n, provider: alibaba, region: "cn-hangzhou", accessKeyID: "LTAIx", secret: "y"}) { id } }`,
			map[string]any{"n": name}), "createCloudAccount", "id").(string)
	}
	acctA := create(admin, "a")
	admin.mustGQL(`mutation { createTenant(input: {name: "Other", slug: "other"}, ownerEmail: "o@other.example", ownerPassword: "other-password-1") { tenant { id } } }`, nil)
	acctB := create(ts.login(t, "o@other.example", "other-password-1"), "b")

	p := ts.App.Alibaba
	if p.CallbackURL != "https://ferry.example.com/cloud/v1/alibaba" {
		t.Fatalf("callback URL %q", p.CallbackURL)
	}
	ctx := context.Background()
	stA, err := p.Stores(ctx, acctA)
	if err != nil {
		t.Fatal(err)
	}
	gw, _ := json.Marshal(map[string]any{"migration_id": "m1", "nonce": "n1", "disks": map[string]string{"m1-sda": "d-bp1abc"}})
	if err := stA.Put(ctx, "gateway/m1", gw); err != nil {
		t.Fatal(err)
	}
	ticket, err := p.Tickets.Mint(ctx, acctA, "gateway/m1/n1", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if again, _ := p.Tickets.Mint(ctx, acctA, "gateway/m1/n1", time.Hour); again != ticket {
		t.Error("minting an unused ticket again gave another token (the gateway's user data would change)")
	}
	base := ts.URL + "/cloud/v1/alibaba"
	key := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{7}, 32))
	reg := alibaba.Registration{Token: ticket, Fingerprint: "ab12", CredentialKey: key, Port: 8443}
	status, body := postJSON(t, base+"/register", reg)
	if status != 200 {
		t.Fatalf("registration: %d %s", status, body)
	}
	var got alibaba.Registered
	json.Unmarshal(body, &got)
	if status, body := postJSON(t, base+"/register", reg); status != http.StatusConflict {
		t.Errorf("the ticket a second time: %d %s", status, body)
	}
	reg.Token = "frc_" + strings.Repeat("A", 43)
	if status, _ := postJSON(t, base+"/register", reg); status != http.StatusUnauthorized {
		t.Errorf("a made-up ticket: %d", status)
	}
	// A ticket of tenant B's account names B's records, never A's.
	tb, _ := p.Tickets.Mint(ctx, acctB, "gateway/m1/n1", time.Hour)
	reg.Token = tb
	if status, _ := postJSON(t, base+"/register", reg); status != http.StatusConflict {
		t.Errorf("another tenant's ticket registering a gateway its account has not: %d", status)
	}
	// Expiry.
	late, _ := p.Tickets.Mint(ctx, acctA, "report/x", time.Minute)
	clock.Add(2 * time.Minute)
	if _, _, err := p.Tickets.Redeem(ctx, late); err == nil {
		t.Error("an expired ticket was redeemed")
	}

	disks := func(bearer string) int {
		req, _ := http.NewRequest("GET", base+"/disks", nil)
		req.Header.Set("Authorization", "Bearer "+bearer)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if resp.StatusCode == 200 {
			var ds []alibaba.GatewayDisk
			json.NewDecoder(resp.Body).Decode(&ds)
			if len(ds) != 1 || ds[0].ID != "m1-sda" || ds[0].Serial != "bp1abc" {
				t.Errorf("disks %+v", ds)
			}
		}
		return resp.StatusCode
	}
	if s := disks(got.Bearer); s != 200 {
		t.Errorf("the gateway's bearer: %d", s)
	}
	parts := strings.Split(got.Bearer, ".")
	b64 := base64.RawURLEncoding.EncodeToString
	if s := disks(b64([]byte(acctB)) + "." + parts[1] + "." + parts[2]); s != http.StatusUnauthorized {
		t.Errorf("the bearer's secret under another account: %d", s)
	}
	if s := disks(parts[0] + "." + parts[1] + ".wrong"); s != http.StatusUnauthorized {
		t.Errorf("a wrong bearer: %d", s)
	}

	// Sealed at rest: the credential key is not in the database as such.
	c := ts.App.DB.Client
	idA, _ := strconv.Atoi(acctA)
	rows := c.CloudRecord.Query().Where(cloudrecord.AccountID(idA)).AllX(viewer.SystemContext(ctx))
	if len(rows) != 2 {
		t.Fatalf("%d records of account A, want the gateway's and its registration", len(rows))
	}
	for _, r := range rows {
		if bytes.Contains(r.Value, bytes.Repeat([]byte{7}, 32)) || bytes.Contains(r.Value, []byte(key)) || bytes.Contains(r.Value, []byte("m1-sda")) {
			t.Errorf("record %s is stored in the clear", r.Key)
		}
	}
	// Confined to the tenant: B's viewer sees none of A's records.
	var tenantB int
	for _, u := range c.Tenant.Query().AllX(viewer.SystemContext(ctx)) {
		if u.Slug == "other" {
			tenantB = u.ID
		}
	}
	if n := c.CloudRecord.Query().CountX(viewer.TenantContext(ctx, tenantB)); n != 0 {
		t.Errorf("tenant B sees %d records", n)
	}
}
