package app_test

import (
	"context"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/ferry-migrate/ferry/engine/cloud/alibaba"
	"github.com/ferry-migrate/ferry/engine/cloud/alibaba/ecsemu"
	"github.com/ferry-migrate/ferry/internal/app"
)

type emulator struct {
	srv          *ecsemu.Server
	url, vswitch string
}

// startEmulator runs the ECS emulator (the root key and keys) for the test.
func startEmulator(t *testing.T, keys ...ecsemu.Key) emulator {
	t.Helper()
	srv, err := ecsemu.New(ecsemu.Options{Dir: t.TempDir(), Logf: func(string, ...any) {},
		Keys: append([]ecsemu.Key{{ID: ecsemu.DefaultKeyID, Secret: ecsemu.DefaultKeySecret}}, keys...)})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv)
	t.Cleanup(func() { hs.Close(); srv.Close() })
	c, _ := alibaba.New(alibaba.Config{Region: "cn-hangzhou", Endpoint: strings.TrimPrefix(hs.URL, "http://"), Scheme: "http",
		Credentials: alibaba.Credentials{AccessKeyID: ecsemu.DefaultKeyID, AccessKeySecret: ecsemu.DefaultKeySecret}})
	sws, err := c.VSwitches(context.Background(), "")
	if err != nil || len(sws) == 0 {
		t.Fatalf("vSwitches: %v, %v", sws, err)
	}
	return emulator{srv: srv, url: hs.URL, vswitch: sws[0].ID}
}

const checkAccountMutation = `mutation($id: ID!) { checkCloudAccount(id: $id) {
	ok checks { name ok message } account { id checkedAt checkMessage } } }`

func TestCheckCloudAccount(t *testing.T) {
	ts := mustStart(t, func(c *app.Config) { c.PublicURL = "https://ferry.example.com" })
	admin := ts.login(t, "admin@example.com", adminPassword)

	// The local driver: real checks on the directory it uses.
	local := dig(admin.mustGQL(`mutation { createCloudAccount(input: {name: "lab", provider: local}) { id } }`, nil), "createCloudAccount", "id")
	d := admin.mustGQL(checkAccountMutation, map[string]any{"id": local})
	if dig(d, "checkCloudAccount", "ok") != true {
		t.Fatalf("local account check failed: %v", d)
	}
	names := []string{}
	for _, c := range dig(d, "checkCloudAccount", "checks").([]any) {
		names = append(names, dig(c, "name").(string))
		if dig(c, "ok") != true || dig(c, "message") == "" {
			t.Fatalf("check %v", c)
		}
	}
	if strings.Join(names, ",") != "directory,sparse files,free space" {
		t.Fatalf("local checks: %v", names)
	}
	if dig(d, "checkCloudAccount", "account", "checkedAt") == nil || dig(d, "checkCloudAccount", "account", "checkMessage") != "all checks passed" {
		t.Fatalf("result not recorded on the account: %v", d)
	}

	// Alibaba, against the ECS emulator: the stored secret opens, then the
	// provider really checks: the key, every action the driver calls
	// (harmlessly), the vSwitch.
	emu := startEmulator(t, ecsemu.Key{ID: "LTAIreadonly", Secret: "ro-secret-never-returned", User: "auditor", Allow: []string{"ecs:Describe*"}})
	const secret = ecsemu.DefaultKeySecret
	ali := dig(admin.mustGQL(`mutation($s: Map) { createCloudAccount(input: {name: "hz", provider: alibaba, region: "cn-hangzhou",
		accessKeyID: "`+ecsemu.DefaultKeyID+`", secret: "`+secret+`", settings: $s}) { id settings } }`,
		map[string]any{"s": map[string]any{"endpoint": emu.url, "vswitch_id": emu.vswitch, "source_cidrs": "10.8.0.0/16"}}), "createCloudAccount", "id")
	r := admin.gql(checkAccountMutation, map[string]any{"id": ali})
	if len(r.Errors) > 0 || strings.Contains(r.raw, secret) {
		t.Fatalf("alibaba check: %s", r.raw)
	}
	got := map[string]bool{}
	for _, c := range dig(r.Data, "checkCloudAccount", "checks").([]any) {
		got[dig(c, "name").(string)] = dig(c, "ok").(bool)
	}
	if dig(r.Data, "checkCloudAccount", "ok") != true || !got["credentials"] || !got["cloud API"] || !got["permissions"] || !got["callbacks"] || !got["network"] || !got["source networks"] {
		t.Fatalf("alibaba checks with a root key: %s", r.raw)
	}
	ro := dig(admin.mustGQL(`mutation($s: Map) { createCloudAccount(input: {name: "ro", provider: alibaba, region: "cn-hangzhou",
		accessKeyID: "LTAIreadonly", secret: "ro-secret-never-returned", settings: $s}) { id } }`,
		map[string]any{"s": map[string]any{"endpoint": emu.url, "vswitch_id": emu.vswitch, "source_cidrs": "10.8.0.0/16"}}), "createCloudAccount", "id")
	r = admin.gql(checkAccountMutation, map[string]any{"id": ro})
	if dig(r.Data, "checkCloudAccount", "ok") != false || !strings.Contains(r.raw, "ecs:CreateSnapshot") || !strings.Contains(r.raw, `\"Effect\": \"Allow\"`) ||
		strings.Contains(r.raw, "ro-secret-never-returned") {
		t.Fatalf("a Describe*-only key: want the missing actions and the RAM policy granting them: %s", r.raw)
	}
	if r := admin.gql(`mutation { createCloudAccount(input: {name: "bad", provider: alibaba, accessKeyID: "x", secret: "y", settings: {vswitch_id: 7}}) { id } }`, nil); r.code() != "INVALID" {
		t.Fatalf("a setting that is not text: %s", r.raw)
	}

	// Another tenant cannot check (or learn of) this tenant's account.
	admin.mustGQL(`mutation { createTenant(input: {name: "Other", slug: "other"}, ownerEmail: "o@other.example", ownerPassword: "other-password-1") { tenant { id } } }`, nil)
	other := ts.login(t, "o@other.example", "other-password-1")
	if r := other.gql(checkAccountMutation, map[string]any{"id": local}); r.code() != "NOT_FOUND" {
		t.Fatalf("other tenant checked the account: %s", r.raw)
	}
}
