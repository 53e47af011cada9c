package app_test

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/ferry-migrate/ferry/ent"
	"github.com/ferry-migrate/ferry/ent/auditevent"
	"github.com/ferry-migrate/ferry/ent/cloudaccount"
	"github.com/ferry-migrate/ferry/ent/user"
	"github.com/ferry-migrate/ferry/graph"
	"github.com/ferry-migrate/ferry/internal/app"
	"github.com/ferry-migrate/ferry/internal/viewer"
)

const updateTenant = `mutation($id: ID!, $in: UpdateTenantInput!) { updateTenant(id: $id, input: $in) { id name slug disabled } }`

// TestTenantWrites is issue 9 item 1: an owner writes only its own tenant,
// reads nothing of another through a mutation's answer, and nobody can
// disable the platform operator's home tenant.
func TestTenantWrites(t *testing.T) {
	tt := setupTenants(t)
	sys := viewer.SystemContext(t.Context())
	db := tt.ts.App.DB.Client
	defID, bID := tenantID(t, tt.ts, "default"), tenantID(t, tt.ts, "bank-b")
	tenantRow := func(id int) *ent.Tenant {
		t.Helper()
		return db.Tenant.GetX(sys, id)
	}
	before := tenantRow(defID)

	// B's owner against the Default tenant: every form is refused, and no
	// answer carries the Default tenant's name or slug.
	for _, in := range []map[string]any{{"disabled": true}, {}, {"name": "pwned"}, {"slug": "pwned"}} {
		r := tt.b.gql(updateTenant, map[string]any{"id": defID, "in": in})
		if len(r.Errors) == 0 || (r.code() != "NOT_FOUND" && r.code() != "FORBIDDEN") {
			t.Fatalf("owner of B updated the Default tenant with %v: %s", in, r.raw)
		}
		if strings.Contains(r.raw, `"Default"`) || strings.Contains(r.raw, `"default"`) || dig(r.Data, "updateTenant") != nil {
			t.Fatalf("the answer to %v leaks the Default tenant: %s", in, r.raw)
		}
	}
	if got := tenantRow(defID); got.Name != before.Name || got.Slug != before.Slug || got.Disabled || !got.UpdatedAt.Equal(before.UpdatedAt) {
		t.Fatalf("the Default tenant changed: %+v", got)
	}
	// Its own tenant: renaming is the owner's, disabling the platform operator's.
	if d := tt.b.mustGQL(updateTenant, map[string]any{"id": bID, "in": map[string]any{"name": "Bank B Ltd"}}); dig(d, "updateTenant", "name") != "Bank B Ltd" {
		t.Fatalf("owner renames its tenant: %v", d)
	}
	if r := tt.b.gql(updateTenant, map[string]any{"id": bID, "in": map[string]any{"disabled": true}}); r.code() != "FORBIDDEN" {
		t.Fatalf("owner disables its own tenant: %s", r.raw)
	}
	// A consultant of the Default tenant is no owner.
	if r := tt.a.gql(updateTenant, map[string]any{"id": defID, "in": map[string]any{"name": "x"}}); r.code() != "FORBIDDEN" {
		t.Fatalf("consultant renames its tenant: %s", r.raw)
	}

	// The platform operator cannot lock itself out.
	r := tt.admin.gql(updateTenant, map[string]any{"id": defID, "in": map[string]any{"disabled": true}})
	if r.code() != "CONFLICT" || !strings.Contains(r.Errors[0].Message, "platform operator") {
		t.Fatalf("platform operator disabled its home tenant: %s", r.raw)
	}
	if tenantRow(defID).Disabled {
		t.Fatalf("the Default tenant is disabled")
	}
	// It can suspend another tenant: B's owner is signed out and refused.
	tt.admin.mustGQL(updateTenant, map[string]any{"id": bID, "in": map[string]any{"disabled": true}})
	if r := tt.b.gql(`{ viewer { role } }`, nil); r.status != 401 {
		t.Fatalf("owner of a disabled tenant: %d %s", r.status, r.raw)
	}
	if status, _ := tt.ts.anon(t).post("/auth/login", `{"email":"bob@b.example","password":"bob-password-12"}`); status != 401 {
		t.Fatalf("sign-in into a disabled tenant: %d", status)
	}
	tt.admin.mustGQL(updateTenant, map[string]any{"id": bID, "in": map[string]any{"disabled": false}})

	// Audit: the platform operator's change of B is in its own log and in B's.
	for _, tid := range []int{defID, bID} {
		n := db.AuditEvent.Query().Where(auditevent.TenantID(tid), auditevent.Action("updateTenant"), auditevent.Actor("admin@example.com")).CountX(sys)
		if n != 2 {
			t.Fatalf("tenant %d has %d updateTenant events by the platform operator, want 2", tid, n)
		}
	}
	// B's owner renaming its own tenant is in B's log once, and in no other.
	if n := db.AuditEvent.Query().Where(auditevent.Action("updateTenant"), auditevent.Actor("bob@b.example")).CountX(sys); n != 1 {
		t.Fatalf("owner's updateTenant recorded %d times, want 1", n)
	}

	// Below the API: the last enabled tenant stays enabled even for the system.
	ctx := context.Background()
	// (Written in SQL: the User hook would keep the platform operator.)
	if _, err := tt.ts.App.DB.SQL.ExecContext(ctx, `UPDATE users SET role = 'owner' WHERE role = 'platform'`); err != nil {
		t.Fatal(err)
	}
	db.Tenant.UpdateOneID(bID).SetDisabled(true).ExecX(sys)
	err := db.Tenant.UpdateOneID(defID).SetDisabled(true).Exec(sys)
	if err == nil || !strings.Contains(err.Error(), "at least one tenant must stay enabled") {
		t.Fatalf("the last enabled tenant was disabled: %v", err)
	}
	// Tenants are never deleted, except by the system.
	if err := db.Tenant.DeleteOneID(bID).Exec(viewer.TenantContext(ctx, bID)); err == nil || !strings.Contains(err.Error(), "not deleted") {
		t.Fatalf("a tenant viewer deleted its tenant: %v", err)
	}
}

// TestUserRoleRules is issue 9 item 4: an actor changes only users whose
// current role it manages, grants only roles it manages, never changes its
// own role, and a tenant keeps an enabled owner.
func TestUserRoleRules(t *testing.T) {
	ts := mustStart(t)
	sys := viewer.SystemContext(t.Context())
	db := ts.App.DB.Client
	platform := ts.login(t, "admin@example.com", adminPassword)
	platformID := db.User.Query().Where(user.Email("admin@example.com")).OnlyIDX(sys)
	pw := "role-rules-password"
	mk := func(email, role string) int {
		t.Helper()
		d := platform.mustGQL(`mutation($in: CreateUserInput!, $pw: String!) { createUser(input: $in, password: $pw) { id } }`,
			map[string]any{"in": map[string]any{"email": email, "role": role}, "pw": pw})
		var id int
		fmt.Sscan(dig(d, "createUser", "id").(string), &id)
		return id
	}
	ids := map[string]int{}
	for _, r := range []string{"owner", "owner2", "admin", "admin2", "consultant", "operator", "viewer"} {
		ids[r] = mk(r+"@a.example", strings.TrimSuffix(r, "2"))
	}
	as := map[string]*client{}
	for _, r := range []string{"owner", "admin", "consultant"} {
		as[r] = ts.login(t, r+"@a.example", pw)
	}
	as["platform"] = platform

	// createUser grants only managed roles.
	for _, c := range []struct{ actor, role, want string }{
		{"admin", "admin", "FORBIDDEN"}, {"admin", "owner", "FORBIDDEN"}, {"admin", "operator", ""},
		{"owner", "owner", ""}, {"owner", "platform", "FORBIDDEN"},
	} {
		email := fmt.Sprintf("new-%s-%s@a.example", c.actor, c.role)
		r := as[c.actor].gql(`mutation($in: CreateUserInput!) { createUser(input: $in, password: "long-enough-pw") { id } }`,
			map[string]any{"in": map[string]any{"email": email, "role": c.role}})
		exists := db.User.Query().Where(user.Email(email)).ExistX(sys)
		if (c.want == "") != (len(r.Errors) == 0 && exists) || (c.want != "" && r.code() != c.want) {
			t.Errorf("%s creates a %s: want %q, got %s", c.actor, c.role, c.want, r.raw)
		}
	}

	const upd = `mutation($id: ID!, $in: UpdateUserInput!, $pw: String) { updateUser(id: $id, input: $in, password: $pw) { id role disabled } }`
	type change struct {
		in map[string]any
		pw any
	}
	demote := change{in: map[string]any{"role": "viewer"}}
	disable := change{in: map[string]any{"disabled": true}}
	email := change{in: map[string]any{"email": "changed@a.example"}}
	reset := change{in: map[string]any{}, pw: "a-new-password-12"}
	cases := []struct {
		actor, target string
		c             change
		want          string // "" = allowed, else the error code
	}{
		// Below admin, nobody manages anybody.
		{"consultant", "viewer", disable, "FORBIDDEN"},
		// An admin never touches an owner, another admin or the platform operator...
		{"admin", "owner", demote, "FORBIDDEN"},
		{"admin", "owner", disable, "FORBIDDEN"},
		{"admin", "owner", email, "FORBIDDEN"},
		{"admin", "owner", reset, "FORBIDDEN"},
		{"admin", "admin2", disable, "FORBIDDEN"},
		{"admin", "platform", demote, "FORBIDDEN"},
		{"admin", "platform", disable, "FORBIDDEN"},
		// ... nor grants a role above consultant, operator and viewer.
		{"admin", "consultant", change{in: map[string]any{"role": "admin"}}, "FORBIDDEN"},
		{"admin", "consultant", change{in: map[string]any{"role": "owner"}}, "FORBIDDEN"},
		{"admin", "consultant", change{in: map[string]any{"role": "operator"}}, ""},
		{"admin", "operator", reset, ""},
		{"admin", "viewer", disable, ""},
		// An owner manages everyone in its tenant but the platform operator.
		{"owner", "platform", demote, "FORBIDDEN"},
		{"owner", "platform", disable, "FORBIDDEN"},
		{"owner", "platform", reset, "FORBIDDEN"},
		{"owner", "owner", change{in: map[string]any{"role": "platform"}}, "FORBIDDEN"},
		{"owner", "admin2", demote, ""},
		{"owner", "owner2", disable, ""},
		{"owner", "consultant", change{in: map[string]any{"role": "owner"}}, ""},
		// Nobody changes its own role or disables itself, or resets its own
		// password without the current one.
		{"owner", "owner", demote, "FORBIDDEN"},
		{"owner", "owner", disable, "FORBIDDEN"},
		{"platform", "platform", demote, "FORBIDDEN"},
		{"owner", "owner", reset, "INVALID"},
		{"owner", "owner", change{in: map[string]any{"name": "Olga"}}, ""},
		// The platform operator manages every role.
		{"platform", "admin", demote, ""},
	}
	for _, c := range cases {
		target := platformID
		if c.target != "platform" {
			target = ids[c.target]
		}
		before := db.User.GetX(sys, target)
		r := as[c.actor].gql(upd, map[string]any{"id": target, "in": c.c.in, "pw": c.c.pw})
		after := db.User.GetX(sys, target)
		changed := after.Role != before.Role || after.Disabled != before.Disabled || after.Email != before.Email || after.PasswordHash != before.PasswordHash || after.Name != before.Name
		switch {
		case c.want == "" && (len(r.Errors) > 0 || !changed):
			t.Errorf("%s → %s %v: want allowed, got %s", c.actor, c.target, c.c, r.raw)
		case c.want != "" && (r.code() != c.want || changed):
			t.Errorf("%s → %s %v: want %s and no change, got %s (changed %v)", c.actor, c.target, c.c, c.want, r.raw, changed)
		}
	}

	// A tenant keeps an enabled owner: B has one, and the platform operator
	// cannot demote or disable it until there is another.
	d := platform.mustGQL(`mutation { createTenant(input: {name: "Solo", slug: "solo"}, ownerEmail: "solo@s.example", ownerPassword: "solo-password-1") { owner { id } } }`, nil)
	solo := dig(d, "createTenant", "owner", "id")
	for _, in := range []map[string]any{{"role": "admin"}, {"disabled": true}} {
		if r := platform.gql(upd, map[string]any{"id": solo, "in": in}); r.code() != "CONFLICT" || !strings.Contains(r.Errors[0].Message, "at least one enabled owner") {
			t.Errorf("the only owner of a tenant lost it with %v: %s", in, r.raw)
		}
	}
	soloOwner := ts.login(t, "solo@s.example", "solo-password-1")
	soloOwner.mustGQL(`mutation { createUser(input: {email: "solo2@s.example", role: owner}, password: "solo-password-2") { id } }`, nil)
	platform.mustGQL(upd, map[string]any{"id": solo, "in": map[string]any{"role": "admin"}})

	// The installation keeps a platform operator: a second one may demote the
	// first, and the last one cannot be demoted even by the system.
	second := mk("platform2@a.example", "platform")
	p2 := ts.login(t, "platform2@a.example", pw)
	p2.mustGQL(upd, map[string]any{"id": platformID, "in": map[string]any{"role": "owner"}})
	err := db.User.UpdateOneID(second).SetRole(user.RoleOwner).Exec(sys)
	if err == nil || !strings.Contains(err.Error(), "at least one enabled platform operator") {
		t.Fatalf("the last platform operator was demoted: %v", err)
	}
}

// TestPasswordChangeEndsCredentials: changing a password (or an admin
// resetting it) revokes the user's API tokens and ends its other sessions;
// the session the change came from stays signed in.
func TestPasswordChangeEndsCredentials(t *testing.T) {
	ts := mustStart(t)
	admin := ts.login(t, "admin@example.com", adminPassword)
	admin.mustGQL(`mutation { createUser(input: {email: "carol@a.example", role: consultant}, password: "carol-password-1") { id } }`, nil)
	here, there := ts.login(t, "carol@a.example", "carol-password-1"), ts.login(t, "carol@a.example", "carol-password-1")
	token := func(c *client) *client {
		t.Helper()
		s := ts.anon(t)
		s.token = dig(c.mustGQL(`mutation { createAPIToken(name: "ci") { secret } }`, nil), "createAPIToken", "secret").(string)
		return s
	}
	script, adminScript := token(here), token(admin)
	signedIn := func(c *client) bool {
		t.Helper()
		r := c.gql(`{ viewer { role } }`, nil)
		return r.status == 200 && len(r.Errors) == 0
	}
	for _, c := range []*client{here, there, script} {
		if !signedIn(c) {
			t.Fatalf("not signed in before the change")
		}
	}
	here.mustGQL(`mutation { changePassword(current: "carol-password-1", new: "carol-password-2") }`, nil)
	if !signedIn(here) {
		t.Fatalf("the session that changed the password was signed out")
	}
	if signedIn(there) {
		t.Fatalf("another session survived the password change")
	}
	if r := script.gql(`{ viewer { role } }`, nil); r.status != 401 || !strings.Contains(r.raw, "revoked") {
		t.Fatalf("an API token survived the password change: %d %s", r.status, r.raw)
	}
	if !signedIn(admin) || !signedIn(adminScript) {
		t.Fatalf("another user's credentials ended")
	}

	// An admin resetting the password: every session and token of the user ends.
	script = token(here)
	var id int
	fmt.Sscan(dig(admin.mustGQL(`{ users(where: {email: "carol@a.example"}) { edges { node { id } } } }`, nil), "users", "edges", 0, "node", "id").(string), &id)
	admin.mustGQL(`mutation($id: ID!) { updateUser(id: $id, input: {}, password: "carol-password-3") { id } }`, map[string]any{"id": id})
	if signedIn(here) || signedIn(script) {
		t.Fatalf("a session or token survived the password reset")
	}
	if !signedIn(admin) || !signedIn(adminScript) {
		t.Fatalf("the admin's own credentials ended with the reset")
	}
	ts.login(t, "carol@a.example", "carol-password-3")
}

// TestCloudSecretsBoundToRow: a sealed secret opens only on its own row, and
// a database holding secrets sealed the old way (tenant only) keeps working:
// they are re-sealed to their row at start-up.
func TestCloudSecretsBoundToRow(t *testing.T) {
	dir := t.TempDir()
	// An old server's database: a secret sealed with the tenant alone as
	// associated data, and one no key opens.
	old, err := app.New(t.Context(), app.Config{DataDir: dir, DatabaseURL: databaseFor(t, dir), AdminEmail: "admin@example.com", AdminPassword: adminPassword, Migrate: true,
		Log: slog.New(slog.DiscardHandler), Banner: &strings.Builder{}})
	if err != nil {
		t.Fatal(err)
	}
	sys := viewer.SystemContext(t.Context())
	defID := old.DB.Client.Tenant.Query().OnlyIDX(sys)
	legacy := old.DB.Client.CloudAccount.Create().SetTenantID(defID).SetName("legacy").SetProvider(cloudaccount.ProviderAlibaba).
		SetAccessKeyID("LTAIold").SetSecretCiphertext(old.Secrets.Seal([]byte("old-secret"), []byte(fmt.Sprintf("cloud_account:tenant:%d", defID)))).SaveX(sys)
	broken := old.DB.Client.CloudAccount.Create().SetTenantID(defID).SetName("broken").SetProvider(cloudaccount.ProviderAlibaba).
		SetAccessKeyID("LTAIbad").SetSecretCiphertext([]byte("not a ciphertext at all, not at all")).SaveX(sys)
	old.Close()

	ts := mustStart(t, func(c *app.Config) { c.DataDir = dir })
	db := ts.App.DB.Client
	got := db.CloudAccount.GetX(sys, legacy.ID)
	if plain, err := ts.App.Secrets.Open(got.SecretCiphertext, []byte(fmt.Sprintf("cloud_account:%d:tenant:%d", legacy.ID, defID))); err != nil || string(plain) != "old-secret" {
		t.Fatalf("the old secret was not re-sealed to its row: %v", err)
	}
	if _, err := ts.App.Secrets.Open(got.SecretCiphertext, []byte(fmt.Sprintf("cloud_account:tenant:%d", defID))); err == nil {
		t.Fatalf("the old form still opens after re-sealing")
	}
	if string(db.CloudAccount.GetX(sys, broken.ID).SecretCiphertext) != "not a ciphertext at all, not at all" {
		t.Fatalf("an unreadable secret was changed")
	}
	logs := ts.Logs.String()
	if !strings.Contains(logs, "cloud secrets re-sealed to their rows") || !strings.Contains(logs, "cloud secrets that this server's key cannot open") {
		t.Fatalf("re-sealing is not logged: %.2000s", logs)
	}
	admin := ts.login(t, "admin@example.com", adminPassword)
	credentials := func(id int) bool {
		t.Helper()
		d := admin.mustGQL(checkAccountMutation, map[string]any{"id": id})
		return dig(d, "checkCloudAccount", "checks", 0, "name") == "credentials" && dig(d, "checkCloudAccount", "checks", 0, "ok") == true
	}
	if !credentials(legacy.ID) {
		t.Fatalf("the re-sealed account's secret does not open")
	}
	if credentials(broken.ID) {
		t.Fatalf("an unreadable secret passed the check")
	}

	// A ciphertext copied onto another account of the same tenant no longer opens.
	var other int
	fmt.Sscan(dig(admin.mustGQL(`mutation { createCloudAccount(input: {name: "other", provider: alibaba, region: "cn-hangzhou", accessKeyID: "LTAIo", secret: "other-secret"}) { id } }`, nil), "createCloudAccount", "id").(string), &other)
	if !credentials(other) {
		t.Fatalf("a fresh account's secret does not open")
	}
	db.CloudAccount.UpdateOneID(other).SetSecretCiphertext(got.SecretCiphertext).ExecX(sys)
	if credentials(other) {
		t.Fatalf("a secret moved to another row still opens")
	}

	// A restart leaves row-bound secrets alone.
	before := db.CloudAccount.GetX(sys, legacy.ID).SecretCiphertext
	moved, _, err := graph.ResealCloudSecrets(t.Context(), db, ts.App.Secrets)
	if err != nil || moved != 0 || string(db.CloudAccount.GetX(sys, legacy.ID).SecretCiphertext) != string(before) {
		t.Fatalf("a second pass re-sealed %d secrets (%v)", moved, err)
	}
}
