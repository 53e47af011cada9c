package app_test

import (
	"strings"
	"testing"
)

const checkAccountMutation = `mutation($id: ID!) { checkCloudAccount(id: $id) {
	ok checks { name ok message } account { id checkedAt checkMessage } } }`

func TestCheckCloudAccount(t *testing.T) {
	ts := mustStart(t)
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

	// A cloud provider: the stored secret opens, but no driver verifies it
	// here, and the check says so instead of passing.
	const secret = "s3cr3t-value-never-returned"
	ali := dig(admin.mustGQL(`mutation { createCloudAccount(input: {name: "hz", provider: alibaba, region: "cn-hangzhou", accessKeyID: "LTAIcheck", secret: "`+secret+`"}) { id } }`, nil), "createCloudAccount", "id")
	r := admin.gql(checkAccountMutation, map[string]any{"id": ali})
	if len(r.Errors) > 0 || strings.Contains(r.raw, secret) {
		t.Fatalf("alibaba check: %s", r.raw)
	}
	checks := dig(r.Data, "checkCloudAccount", "checks").([]any)
	if dig(r.Data, "checkCloudAccount", "ok") != false || len(checks) != 2 ||
		dig(checks[0], "name") != "credentials" || dig(checks[0], "ok") != true ||
		dig(checks[1], "ok") != false || !strings.Contains(dig(checks[1], "message").(string), "not part of this build") {
		t.Fatalf("alibaba checks: %s", r.raw)
	}
	if msg := dig(r.Data, "checkCloudAccount", "account", "checkMessage").(string); !strings.HasPrefix(msg, "cloud API: the alibaba driver") {
		t.Fatalf("check message: %q", msg)
	}

	// Another tenant cannot check (or learn of) this tenant's account.
	admin.mustGQL(`mutation { createTenant(input: {name: "Other", slug: "other"}, ownerEmail: "o@other.example", ownerPassword: "other-password-1") { tenant { id } } }`, nil)
	other := ts.login(t, "o@other.example", "other-password-1")
	if r := other.gql(checkAccountMutation, map[string]any{"id": local}); r.code() != "NOT_FOUND" {
		t.Fatalf("other tenant checked the account: %s", r.raw)
	}
}
