package app_test

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"hash"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vektah/gqlparser/v2/ast"

	"github.com/ferry-migrate/ferry"
	"github.com/ferry-migrate/ferry/ent/applicationsuggestion"
	"github.com/ferry-migrate/ferry/ent/assessment"
	"github.com/ferry-migrate/ferry/ent/cloudaccount"
	"github.com/ferry-migrate/ferry/ent/host"
	"github.com/ferry-migrate/ferry/ent/launch"
	"github.com/ferry-migrate/ferry/ent/plan"
	"github.com/ferry-migrate/ferry/ent/user"
	"github.com/ferry-migrate/ferry/ent/wave"
	"github.com/ferry-migrate/ferry/ent/wavemember"
	"github.com/ferry-migrate/ferry/graph/generated"
	"github.com/ferry-migrate/ferry/internal/auth"
	"github.com/ferry-migrate/ferry/internal/viewer"
)

// The authorization matrix (issue 9, docs/security.md "Authorization
// matrix"): every query, mutation and subscription field of the schema ×
// every role and anonymous × an object of the actor's own tenant and one of
// another tenant, each cell with the answer declared in authzMatrix below,
// run for real against one server on a real SQLite file, and the database
// compared before and after every cell.
//
// Answers, one per actor in matrixActors order:
//
//	A  allowed: answered without an error (a read's answer holds the object)
//	F  FORBIDDEN: the role may not do this
//	U  UNAUTHENTICATED: no sign-in
//	N  NOT_FOUND: the object is invisible to the actor (an error, or absent from a list)
//	I  INVALID: refused because a reference names nothing the actor can see
//	-  the operation names no object, so it has no other-tenant variant
//
// "own" targets tenant A (the Default tenant: the actors' tenant and the
// platform operator's home), "other" targets tenant B. A leak is a cell
// refused in the table but allowed by the server, an answer to anyone but
// the platform operator holding tenant B's names or ids, or a change in the
// database that the cell's answer does not allow (any change after a refused
// cell or a read; a change to tenant B after anything but the platform
// operator's allowed write to it).
var matrixActors = []string{"owner", "admin", "consultant", "operator", "viewer", "platform", "anonymous"}

const (
	//          owner admin consultant operator viewer platform anonymous
	everyone  = "A A A A A A U" // every signed-in role
	hidden    = "N N N N N A U" // another tenant's object: only the platform operator sees it
	consUp    = "A A A F F A U" // consultant, admin, owner (operators and consultants are peers)
	consUpB   = "N N N F F A U" // ... on another tenant's object
	consLinkB = "N N N F F N U" // ... linking another tenant's object: nobody, the platform operator included
	consRefB  = "I I I F F I U" // ... naming another tenant's host in a rule
	operUp    = "A A F A F A U" // operator, admin, owner
	operUpB   = "N N F N F A U"
	adminUp   = "A A F F F A U"
	adminUpB  = "N N F F F A U"
	ownerUp   = "A F F F F A U"
	ownerUpB  = "N F F F F A U"
	platOnly  = "F F F F F A U"
	none      = "-"
)

// authzMatrix is the one table of expected answers. A schema field without
// a row here fails the test, naming it; so does a row naming no field.
var authzMatrix = []struct{ op, own, other string }{
	{"Query.viewer", everyone, none},
	{"Query.assessmentSummary", everyone, none},
	{"Query.priceCatalog", everyone, none},
	{"Query.businessCase", everyone, "N N N N N N U"}, // the platform operator's business case is its home tenant's
	{"Query.topology", everyone, "N N N N N N U"},     // so is its topology: another tenant's plan is not found
	{"Query.discoverySources", everyone, hidden},
	{"Query.node(DiscoverySource)", everyone, hidden},
	{"Query.nodes(DiscoverySource)", everyone, hidden},
	{"Query.apiTokens", everyone, hidden},
	{"Query.agents", everyone, hidden},
	{"Query.applications", everyone, hidden},
	{"Query.applicationSuggestions", everyone, hidden},
	{"Query.assessments", everyone, hidden},
	{"Query.auditEvents", everyone, hidden},
	{"Query.cloudAccounts", everyone, hidden},
	{"Query.connections", everyone, hidden},
	{"Query.hosts", everyone, hidden},
	{"Query.importRuns", everyone, hidden},
	{"Query.migrations", everyone, hidden},
	{"Query.plans", everyone, hidden},
	{"Query.registrationTokens", everyone, hidden},
	{"Query.tenants", everyone, hidden},
	{"Query.users", everyone, hidden},

	{"Query.node(APIToken)", everyone, hidden},
	{"Query.node(Agent)", everyone, hidden},
	{"Query.node(Application)", everyone, hidden},
	{"Query.node(ApplicationSuggestion)", everyone, hidden},
	{"Query.node(Assessment)", everyone, hidden},
	{"Query.node(AuditEvent)", everyone, hidden},
	{"Query.node(CloudAccount)", everyone, hidden},
	{"Query.node(Connection)", everyone, hidden},
	{"Query.node(Disk)", everyone, hidden},
	{"Query.node(Host)", everyone, hidden},
	{"Query.node(ImportRun)", everyone, hidden},
	{"Query.node(Launch)", everyone, hidden},
	{"Query.node(Migration)", everyone, hidden},
	{"Query.node(NetworkInterface)", everyone, hidden},
	{"Query.node(Plan)", everyone, hidden},
	{"Query.node(RecoveryPoint)", everyone, hidden},
	{"Query.node(RegistrationToken)", everyone, hidden},
	{"Query.node(Software)", everyone, hidden},
	{"Query.node(Tenant)", everyone, hidden},
	{"Query.node(User)", everyone, hidden},
	{"Query.node(Wave)", everyone, hidden},
	{"Query.node(WaveMember)", everyone, hidden},

	{"Query.nodes(APIToken)", everyone, hidden},
	{"Query.nodes(Agent)", everyone, hidden},
	{"Query.nodes(Application)", everyone, hidden},
	{"Query.nodes(ApplicationSuggestion)", everyone, hidden},
	{"Query.nodes(Assessment)", everyone, hidden},
	{"Query.nodes(AuditEvent)", everyone, hidden},
	{"Query.nodes(CloudAccount)", everyone, hidden},
	{"Query.nodes(Connection)", everyone, hidden},
	{"Query.nodes(Disk)", everyone, hidden},
	{"Query.nodes(Host)", everyone, hidden},
	{"Query.nodes(ImportRun)", everyone, hidden},
	{"Query.nodes(Launch)", everyone, hidden},
	{"Query.nodes(Migration)", everyone, hidden},
	{"Query.nodes(NetworkInterface)", everyone, hidden},
	{"Query.nodes(Plan)", everyone, hidden},
	{"Query.nodes(RecoveryPoint)", everyone, hidden},
	{"Query.nodes(RegistrationToken)", everyone, hidden},
	{"Query.nodes(Software)", everyone, hidden},
	{"Query.nodes(Tenant)", everyone, hidden},
	{"Query.nodes(User)", everyone, hidden},
	{"Query.nodes(Wave)", everyone, hidden},
	{"Query.nodes(WaveMember)", everyone, hidden},

	{"Mutation.createTenant", platOnly, none},
	{"Mutation.updateTenant", ownerUp, ownerUpB},
	{"Mutation.createUser", adminUp, none},
	{"Mutation.updateUser", adminUp, adminUpB},
	{"Mutation.changePassword", everyone, none},
	{"Mutation.createAPIToken", everyone, none},
	{"Mutation.revokeAPIToken", adminUp, hidden},
	{"Mutation.createHost", consUp, consLinkB},
	{"Mutation.updateHost", consUp, consUpB},
	{"Mutation.deleteHost", adminUp, adminUpB},
	{"Mutation.createApplication", consUp, consLinkB},
	{"Mutation.updateApplication", consUp, consUpB},
	{"Mutation.createCloudAccount", adminUp, none},
	{"Mutation.deleteCloudAccount", adminUp, adminUpB},
	{"Mutation.checkCloudAccount", operUp, operUpB},
	{"Mutation.createRegistrationToken", adminUp, none},
	{"Mutation.revokeRegistrationToken", adminUp, adminUpB},
	{"Mutation.revokeAgent", adminUp, adminUpB},
	{"Mutation.startMigration", operUp, operUpB},
	{"Mutation.testLaunch", operUp, operUpB},
	{"Mutation.cutover", operUp, operUpB},
	{"Mutation.rollback", operUp, operUpB},
	{"Mutation.startWave", operUp, operUpB},
	{"Mutation.pauseWave", operUp, operUpB},
	{"Mutation.resumeWave", operUp, operUpB},
	{"Mutation.approveWave", operUp, operUpB},
	{"Mutation.setHostCutoverTime", operUp, operUpB},
	{"Mutation.setMigrationSettings", operUp, operUpB},
	{"Mutation.tickWaveStep", operUp, operUpB},
	{"Mutation.generatePlan", consUp, consRefB},
	{"Mutation.movePlanHost", consUp, consUpB},
	{"Mutation.runAssessment", consUp, none},
	{"Mutation.createDiscoverySource", adminUp, none},
	{"Mutation.updateDiscoverySource", adminUp, adminUpB},
	{"Mutation.deleteDiscoverySource", adminUp, adminUpB},
	{"Mutation.runDiscoverySource", consUp, consUpB},
	{"Mutation.suggestApplications", consUp, none},
	{"Mutation.acceptApplicationSuggestion", consUp, consUpB},
	{"Mutation.renameApplicationSuggestion", consUp, consUpB},
	{"Mutation.splitApplicationSuggestion", consUp, consUpB},

	{"Subscription.migrationProgress", everyone, hidden},
	{"Subscription.waveProgress", everyone, hidden},
}

// matrixSide is the tenant a cell's objects belong to.
type matrixSide struct {
	name   string // own or other
	tenant int
	marker string         // in every name of the tenant's rows
	seed   map[string]int // Node type → a row of that type in the tenant
	setup  *client        // a signed-in owner-level user of the tenant, for setups through the API
}

// matrixCell is one request: a GraphQL operation, and the id its answer
// holds when it is allowed.
type matrixCell struct {
	query  string
	vars   map[string]any
	target int
	sub    bool
	// check, when set, inspects an allowed answer (and the database) for
	// rows of another tenant that the operation must not have touched.
	check func(data map[string]any) string
}

type matrixRun struct {
	t          *testing.T
	ts         *testServer
	sys        context.Context
	actors     map[string]*client
	passwords  map[string]string
	own, other *matrixSide
	foreign    map[int]bool // every id of tenant B's rows
	sentinel   int          // a migration of tenant A newer than tenant B's
	n          int
	tables     []matrixTable
}

type matrixTable struct {
	name   string
	tenant string // the column naming the row's tenant ("" for none)
}

func TestAuthorizationMatrix(t *testing.T) {
	start := time.Now()
	m := newMatrixRun(t)
	sch := generated.NewExecutableSchema(generated.Config{}).Schema()

	// The operations of the schema, with node and nodes once per Node type.
	var ops []string
	hasIDs := map[string]bool{}
	for _, obj := range []*ast.Definition{sch.Query, sch.Mutation, sch.Subscription} {
		for _, f := range obj.Fields {
			if strings.HasPrefix(f.Name, "__") {
				continue
			}
			names := []string{obj.Name + "." + f.Name}
			if obj == sch.Query && (f.Name == "node" || f.Name == "nodes") {
				names = nil
				for _, d := range sch.GetPossibleTypes(sch.Types["Node"]) {
					names = append(names, fmt.Sprintf("Query.%s(%s)", f.Name, d.Name))
				}
			}
			for _, n := range names {
				ops = append(ops, n)
				hasIDs[n] = argsNameIDs(sch, f.Arguments)
			}
		}
	}
	rows := map[string]int{}
	for i, r := range authzMatrix {
		if _, dup := rows[r.op]; dup {
			t.Errorf("authzMatrix: %s has two rows", r.op)
		}
		rows[r.op] = i
	}
	for _, op := range ops {
		i, ok := rows[op]
		if !ok {
			t.Errorf("authzMatrix: the schema's %s has no row: add its expected answer per role and tenant (docs/security.md)", op)
			continue
		}
		if hasIDs[op] && authzMatrix[i].other == none {
			t.Errorf("authzMatrix: %s takes ids, so it needs an answer for another tenant's ids", op)
		}
		delete(rows, op)
	}
	for op := range rows {
		t.Errorf("authzMatrix: %s names no field of the schema", op)
	}
	if t.Failed() {
		t.FailNow()
	}

	var cells, allowed, na, leaks, mismatches int
	refused := map[string]int{}
	// changePassword runs last: it ends the actor's other credentials, so
	// a regression there would otherwise turn every later cell into noise.
	order := slices.Clone(authzMatrix)
	slices.SortStableFunc(order, func(a, b struct{ op, own, other string }) int {
		last := func(op string) int {
			if op == "Mutation.changePassword" {
				return 1
			}
			return 0
		}
		return last(a.op) - last(b.op)
	})
	for _, row := range order {
		for _, side := range []*matrixSide{m.own, m.other} {
			want := row.own
			if side == m.other {
				want = row.other
			}
			if want == none {
				na += len(matrixActors)
				continue
			}
			answers := strings.Fields(want)
			if len(answers) != len(matrixActors) {
				t.Fatalf("authzMatrix: %s (%s) has %d answers for %d actors", row.op, side.name, len(answers), len(matrixActors))
			}
			for i, actor := range matrixActors {
				cells++
				got, leak, detail := m.runCell(row.op, side, actor, answers[i])
				switch {
				case leak != "":
					leaks++
					t.Errorf("LEAK %s as %s on %s tenant's ids: %s", row.op, actor, side.name, leak)
				case got != answers[i]:
					mismatches++
					t.Errorf("%s as %s on %s tenant's ids: want %s, got %s %s", row.op, actor, side.name, answers[i], got, detail)
				case got == "A":
					allowed++
				default:
					refused[got]++
				}
			}
		}
	}
	total := 0
	for _, n := range refused {
		total += n
	}
	t.Logf("authorization matrix: %d operations × %d actors × 2 tenants = %d cells (%d not applicable: the operation names no object); ran %d: %d allowed, %d refused as expected (FORBIDDEN %d, NOT_FOUND %d, UNAUTHENTICATED %d, INVALID %d), %d mismatches, leaks = %d; %s",
		len(authzMatrix), len(matrixActors), (cells + na), na, cells, allowed, total, refused["F"], refused["N"], refused["U"], refused["I"], mismatches, leaks, time.Since(start).Round(100*time.Millisecond))
}

// argsNameIDs reports whether any argument, or any field of an input type
// below one, is an ID: then the operation can name another tenant's object.
func argsNameIDs(sch *ast.Schema, args ast.ArgumentDefinitionList) bool {
	seen := map[string]bool{}
	var typeHasID func(t *ast.Type) bool
	typeHasID = func(t *ast.Type) bool {
		name := t.Name()
		if name == "ID" {
			return true
		}
		def := sch.Types[name]
		if def == nil || def.Kind != ast.InputObject || seen[name] {
			return false
		}
		seen[name] = true
		for _, f := range def.Fields {
			if typeHasID(f.Type) {
				return true
			}
		}
		return false
	}
	for _, a := range args {
		if typeHasID(a.Type) {
			return true
		}
	}
	return false
}

func newMatrixRun(t *testing.T) *matrixRun {
	ts := mustStart(t)
	m := &matrixRun{t: t, ts: ts, sys: viewer.SystemContext(t.Context()), actors: map[string]*client{}, passwords: map[string]string{}, foreign: map[int]bool{}}
	platform := ts.login(t, "admin@example.com", adminPassword)
	m.actors["platform"], m.passwords["platform"] = platform, adminPassword
	for _, r := range matrixActors[:5] {
		pw := r + "-matrix-password"
		platform.mustGQL(`mutation($in: CreateUserInput!, $pw: String!) { createUser(input: $in, password: $pw) { id } }`,
			map[string]any{"in": map[string]any{"email": r + "@zza.example", "name": "zza " + r, "role": r}, "pw": pw})
		m.actors[r], m.passwords[r] = ts.login(t, r+"@zza.example", pw), pw
	}
	m.actors["anonymous"] = ts.anon(t)
	d := platform.mustGQL(`mutation { createTenant(input: {name: "zzb Bank", slug: "zzb-bank"}, ownerEmail: "owner@zzb.example", ownerPassword: "zzb-owner-password") { tenant { id } } }`, nil)
	bID, _ := strconv.Atoi(dig(d, "createTenant", "tenant", "id").(string))
	aID := tenantID(t, ts, "default")
	m.own = &matrixSide{name: "own", tenant: aID, marker: "zza", setup: platform}
	m.other = &matrixSide{name: "other", tenant: bID, marker: "zzb", setup: ts.login(t, "owner@zzb.example", "zzb-owner-password")}
	for _, s := range []*matrixSide{m.other, m.own} { // B first: A's rows get the newer ids
		s.seed = m.seed(s)
	}
	m.sentinel = m.newMigration(m.own, ferry.MigrationSyncing, false)
	for _, id := range m.other.seed {
		m.foreign[id] = true
	}
	m.foreign[bID] = true
	for _, id := range m.ts.App.DB.Client.User.Query().Where(user.TenantID(bID)).IDsX(m.sys) {
		m.foreign[id] = true
	}
	m.tables = m.listTables()
	return m
}

// seed writes one row of every Node type into the side's tenant.
func (m *matrixRun) seed(s *matrixSide) map[string]int {
	t, db := m.t, m.ts.App.DB.Client
	ctx := viewer.TenantContext(m.sys, s.tenant)
	out := map[string]int{"Tenant": s.tenant}
	h := db.Host.Create().SetName(s.marker + "-host").SetOs("linux").SetCpus(2).SetMemoryMib(4096).SaveX(ctx)
	h2 := db.Host.Create().SetName(s.marker + "-peer").SetOs("linux").SetCpus(2).SetMemoryMib(4096).SaveX(ctx)
	out["Host"] = h.ID
	out["Disk"] = db.Disk.Create().SetHost(h).SetName(s.marker + "-sda").SetSizeBytes(10 << 30).SaveX(ctx).ID
	out["NetworkInterface"] = db.NetworkInterface.Create().SetHost(h).SetName(s.marker + "-eth0").SaveX(ctx).ID
	out["Software"] = db.Software.Create().SetHost(h).SetName(s.marker + "-postgres").SaveX(ctx).ID
	out["Connection"] = db.Connection.Create().SetSrcHostID(h.ID).SetDstHostID(h2.ID).SetPort(5432).SaveX(ctx).ID
	out["Application"] = db.Application.Create().SetName(s.marker + "-app").SaveX(ctx).ID
	// Accepted, so suggestApplications (which replaces open ones) keeps it.
	out["ApplicationSuggestion"] = db.ApplicationSuggestion.Create().SetName(s.marker + "-suggestion").SetStatus(applicationsuggestion.StatusAccepted).
		SetMembers([]map[string]any{{"id": h2.ID, "name": h2.Name}}).SetHostCount(1).SaveX(ctx).ID
	rt := db.RegistrationToken.Create().SetName(s.marker + "-regtoken").SetTokenID(s.marker + "-token-id").SetExpiresAt(time.Now().Add(time.Hour)).SaveX(ctx)
	out["RegistrationToken"] = rt.ID
	out["Agent"] = db.Agent.Create().SetName(s.marker + "-agent").SetCredentialHash(auth.HashToken(s.marker + "-agent")).SetRegistrationToken(rt).SaveX(ctx).ID
	out["ImportRun"] = db.ImportRun.Create().SetKind("csv").SetFilename(s.marker + ".csv").SaveX(ctx).ID
	out["CloudAccount"] = db.CloudAccount.Create().SetName(s.marker + "-local").SetProvider(cloudaccount.ProviderLocal).SaveX(ctx).ID
	mig := db.Migration.Create().SetHostID(h.ID).SetState(ferry.MigrationSyncing).SaveX(ctx)
	out["Migration"] = mig.ID
	rp := db.RecoveryPoint.Create().SetMigration(mig).SetExternalID(s.marker + "-rp").SaveX(ctx)
	out["RecoveryPoint"] = rp.ID
	out["Launch"] = db.Launch.Create().SetMigration(mig).SetRecoveryPoint(rp).SetKind(launch.KindTest).SaveX(ctx).ID
	out["DiscoverySource"] = db.DiscoverySource.Create().SetName(s.marker + "-vcenter").SetURL("https://" + s.marker + ".example/sdk").SaveX(ctx).ID
	out["AuditEvent"] = db.AuditEvent.Create().SetActor(s.marker + "-actor").SetAction("seed").SaveX(ctx).ID
	out["Assessment"] = db.Assessment.Create().SetHostID(h.ID).SetTarget("alibaba").SaveX(ctx).ID
	holder := db.User.Create().SetEmail(s.marker + "-holder@" + s.marker + ".example").SetName(s.marker + " holder").SaveX(ctx)
	out["User"] = holder.ID
	out["APIToken"] = db.APIToken.Create().SetUser(holder).SetName(s.marker + "-token").SetPrefix(s.marker + "-prefix").
		SetTokenHash(auth.HashToken(s.marker + "-api-token")).SaveX(ctx).ID
	planID := m.newPlan(s)
	out["Plan"] = planID
	wm := db.WaveMember.Query().Where(wavemember.HasWaveWith(wave.HasPlanWith(plan.ID(planID)))).WithWave().FirstX(ctx)
	out["WaveMember"], out["Wave"] = wm.ID, wm.Edges.Wave.ID
	if db.WaveMember.GetX(m.sys, wm.ID).TenantID != s.tenant {
		t.Fatalf("seeded wave member of the wrong tenant")
	}
	return out
}

// newPlan generates a plan through the API as the side's owner-level user
// (waves and members written by the real planner).
func (m *matrixRun) newPlan(s *matrixSide) int {
	m.n++
	d := s.setup.mustGQL(`mutation($in: GeneratePlanInput!) { generatePlan(input: $in) { id status } }`,
		map[string]any{"in": map[string]any{"name": fmt.Sprintf("%s-plan-%d", s.marker, m.n), "constraints": map[string]any{"bandwidth": "1Gbps"}}})
	id, _ := strconv.Atoi(dig(d, "generatePlan", "id").(string))
	m.keep(s, id)
	return id
}

// newWave writes a plan with one wave in status of one fresh host without
// an agent (a wave's run starts no migration for it), as the plan job
// would, and returns the wave and the host.
func (m *matrixRun) newWave(s *matrixSide, status wave.Status, approver string) (int, int) {
	db := m.ts.App.DB.Client
	ctx := m.ctx(s)
	p := db.Plan.Create().SetName(m.name(s, "plan")).SetStatus(plan.StatusReady).SaveX(ctx)
	m.keep(s, p.ID)
	w := db.Wave.Create().SetPlan(p).SetOrdinal(1).SetName(m.name(s, "wave")).SetStatus(status).SetApproverRole(approver).
		SetRunCutoverAt(time.Now().Add(24 * time.Hour)).SaveX(ctx)
	h := m.newHost(s)
	m.keep(s, db.WaveMember.Create().SetWave(w).SetHostID(h).SaveX(ctx).ID)
	return m.keep(s, w.ID), h
}

func (m *matrixRun) keep(s *matrixSide, id int) int {
	if s == m.other {
		m.foreign[id] = true
	}
	return id
}

func (m *matrixRun) name(s *matrixSide, what string) string {
	m.n++
	return fmt.Sprintf("%s-%s-%d", s.marker, what, m.n)
}

func (m *matrixRun) ctx(s *matrixSide) context.Context { return viewer.TenantContext(m.sys, s.tenant) }

func (m *matrixRun) newHost(s *matrixSide) int {
	return m.keep(s, m.ts.App.DB.Client.Host.Create().SetName(m.name(s, "host")).SetOs("linux").SetCpus(1).SetMemoryMib(1024).SaveX(m.ctx(s)).ID)
}

// newSuggestion writes an open application suggestion of n fresh hosts.
func (m *matrixRun) newSuggestion(s *matrixSide, n int) int {
	var members []map[string]any
	for i := 0; i < n; i++ {
		id := m.newHost(s)
		members = append(members, map[string]any{"id": id, "name": m.ts.App.DB.Client.Host.GetX(m.sys, id).Name})
	}
	return m.keep(s, m.ts.App.DB.Client.ApplicationSuggestion.Create().SetName(m.name(s, "suggestion")).SetMembers(members).SetHostCount(n).SaveX(m.ctx(s)).ID)
}

func (m *matrixRun) newMigration(s *matrixSide, state ferry.MigrationState, withPoint bool) int {
	db := m.ts.App.DB.Client
	mig := db.Migration.Create().SetHostID(m.newHost(s)).SetState(state).SaveX(m.ctx(s))
	if withPoint {
		m.keep(s, db.RecoveryPoint.Create().SetMigration(mig).SetExternalID(m.name(s, "rp")).SaveX(m.ctx(s)).ID)
	}
	return m.keep(s, mig.ID)
}

// cellOf builds the request of one cell, with fresh rows where the
// operation consumes its object, so every cell means the same whatever ran
// before it.
func (m *matrixRun) cellOf(op string, s *matrixSide, actor string) matrixCell {
	db := m.ts.App.DB.Client
	ctx := m.ctx(s)
	own := s == m.own
	if typ, ok := strings.CutPrefix(op, "Query.node("); ok {
		id := s.seed[strings.TrimSuffix(typ, ")")]
		return matrixCell{query: `query($id: ID!) { node(id: $id) { id } }`, vars: map[string]any{"id": id}, target: id}
	}
	if typ, ok := strings.CutPrefix(op, "Query.nodes("); ok {
		id := s.seed[strings.TrimSuffix(typ, ")")]
		return matrixCell{query: `query($ids: [ID!]!) { nodes(ids: $ids) { id } }`, vars: map[string]any{"ids": []int{id}}, target: id}
	}
	if field, ok := strings.CutPrefix(op, "Query."); ok && listType[field] != "" {
		id := s.seed[listType[field]]
		return matrixCell{query: fmt.Sprintf(`query($id: ID!) { %s(where: {id: $id}) { edges { node { id } } } }`, field), vars: map[string]any{"id": id}, target: id}
	}
	switch op {
	case "Query.viewer":
		return matrixCell{query: `{ viewer { role user { id } tenant { id name } } }`, target: s.tenant}
	case "Query.assessmentSummary":
		return matrixCell{query: `{ assessmentSummary(target: "alibaba") { hosts ready } }`, check: func(d map[string]any) string {
			want := db.Assessment.Query().Where(assessment.TenantID(m.own.tenant), assessment.Target("alibaba")).CountX(m.sys)
			if got := dig(d, "assessmentSummary", "hosts"); got != float64(want) {
				return fmt.Sprintf("the summary counts %v hosts; tenant A has %d assessed", got, want)
			}
			return ""
		}}
	case "Mutation.createTenant":
		n := m.name(s, "tenant")
		return matrixCell{query: `mutation($in: CreateTenantInput!, $e: String!) { createTenant(input: $in, ownerEmail: $e, ownerPassword: "new-tenant-password") { tenant { id } } }`,
			vars: map[string]any{"in": map[string]any{"name": n, "slug": n}, "e": n + "@new.example"}}
	case "Mutation.updateTenant":
		return matrixCell{query: `mutation($id: ID!, $in: UpdateTenantInput!) { updateTenant(id: $id, input: $in) { id name } }`,
			vars: map[string]any{"id": s.tenant, "in": map[string]any{"name": m.name(s, "tenant")}}, target: s.tenant}
	case "Mutation.createUser":
		return matrixCell{query: `mutation($in: CreateUserInput!) { createUser(input: $in, password: "matrix-new-user-pw") { id } }`,
			vars: map[string]any{"in": map[string]any{"email": m.name(s, "user") + "@zza.example", "role": "viewer"}}}
	case "Mutation.updateUser":
		id := m.keep(s, db.User.Create().SetEmail(m.name(s, "user")+"@"+s.marker+".example").SaveX(ctx).ID)
		return matrixCell{query: `mutation($id: ID!) { updateUser(id: $id, input: {name: "renamed"}) { id name } }`, vars: map[string]any{"id": id}, target: id}
	case "Mutation.changePassword":
		cur, next := m.passwords[actor], fmt.Sprintf("%s-changed-%d", actor, m.n)
		m.n++
		if actor != "anonymous" {
			m.passwords[actor] = next // the cell changes it when it is allowed; a refused one leaves it
		}
		return matrixCell{query: `mutation($c: String!, $n: String!) { changePassword(current: $c, new: $n) }`, vars: map[string]any{"c": cur, "n": next}}
	case "Mutation.createAPIToken":
		return matrixCell{query: `mutation { createAPIToken(name: "matrix") { token { id } } }`}
	case "Mutation.revokeAPIToken":
		holder := s.seed["User"]
		id := m.keep(s, db.APIToken.Create().SetUserID(holder).SetName(m.name(s, "token")).SetPrefix(m.name(s, "prefix")).
			SetTokenHash(auth.HashToken(m.name(s, "secret"))).SaveX(ctx).ID)
		return matrixCell{query: `mutation($id: ID!) { revokeAPIToken(id: $id) { id } }`, vars: map[string]any{"id": id}, target: id}
	case "Mutation.createHost":
		in := map[string]any{"name": m.name(m.own, "host")}
		if !own {
			in["applicationID"] = s.seed["Application"]
		}
		return matrixCell{query: `mutation($in: CreateHostInput!) { createHost(input: $in) { id } }`, vars: map[string]any{"in": in}}
	case "Mutation.updateHost":
		id := s.seed["Host"]
		return matrixCell{query: `mutation($id: ID!, $n: String!) { updateHost(id: $id, input: {name: $n}) { id } }`, vars: map[string]any{"id": id, "n": m.name(s, "host")}, target: id}
	case "Mutation.deleteHost":
		id := m.newHost(s)
		return matrixCell{query: `mutation($id: ID!) { deleteHost(id: $id) }`, vars: map[string]any{"id": id}, target: id}
	case "Mutation.createApplication":
		return matrixCell{query: `mutation($n: String!, $h: ID!) { createApplication(input: {name: $n, hostIDs: [$h]}) { id } }`,
			vars: map[string]any{"n": m.name(m.own, "app"), "h": m.newHost(s)}}
	case "Mutation.updateApplication":
		id := s.seed["Application"]
		return matrixCell{query: `mutation($id: ID!, $n: String!) { updateApplication(id: $id, input: {name: $n}) { id } }`, vars: map[string]any{"id": id, "n": m.name(s, "app")}, target: id}
	case "Mutation.createCloudAccount":
		return matrixCell{query: `mutation($n: String!) { createCloudAccount(input: {name: $n, provider: local}) { id } }`, vars: map[string]any{"n": m.name(s, "cloud")}}
	case "Mutation.deleteCloudAccount":
		id := m.keep(s, db.CloudAccount.Create().SetName(m.name(s, "cloud")).SetProvider(cloudaccount.ProviderLocal).SaveX(ctx).ID)
		return matrixCell{query: `mutation($id: ID!) { deleteCloudAccount(id: $id) }`, vars: map[string]any{"id": id}, target: id}
	case "Mutation.checkCloudAccount":
		id := s.seed["CloudAccount"]
		return matrixCell{query: `mutation($id: ID!) { checkCloudAccount(id: $id) { ok account { id } } }`, vars: map[string]any{"id": id}, target: id}
	case "Mutation.createRegistrationToken":
		return matrixCell{query: `mutation($n: String!) { createRegistrationToken(input: {name: $n}) { registrationToken { id } } }`, vars: map[string]any{"n": m.name(s, "regtoken")}}
	case "Mutation.revokeRegistrationToken":
		id := m.keep(s, db.RegistrationToken.Create().SetName(m.name(s, "regtoken")).SetTokenID(m.name(s, "tid")).SetExpiresAt(time.Now().Add(time.Hour)).SaveX(ctx).ID)
		return matrixCell{query: `mutation($id: ID!) { revokeRegistrationToken(id: $id) { id } }`, vars: map[string]any{"id": id}, target: id}
	case "Mutation.revokeAgent":
		id := m.keep(s, db.Agent.Create().SetName(m.name(s, "agent")).SetCredentialHash(auth.HashToken(m.name(s, "cred"))).SaveX(ctx).ID)
		return matrixCell{query: `mutation($id: ID!) { revokeAgent(id: $id) { id } }`, vars: map[string]any{"id": id}, target: id}
	case "Mutation.startMigration":
		return matrixCell{query: `mutation($h: ID!) { startMigration(hostIds: [$h]) { id } }`, vars: map[string]any{"h": m.newHost(s)}}
	case "Mutation.testLaunch":
		return matrixCell{query: `mutation($id: ID!) { testLaunch(migrationId: $id) { id } }`, vars: map[string]any{"id": m.newMigration(s, ferry.MigrationSyncing, true)}}
	case "Mutation.cutover":
		id := m.newMigration(s, ferry.MigrationCutoverReady, true)
		return matrixCell{query: `mutation($id: ID!) { cutover(migrationId: $id) { id } }`, vars: map[string]any{"id": id}, target: id}
	case "Mutation.rollback":
		id := m.newMigration(s, ferry.MigrationTestLaunched, true)
		return matrixCell{query: `mutation($id: ID!) { rollback(migrationId: $id) { id } }`, vars: map[string]any{"id": id}, target: id}
	case "Mutation.startWave":
		id, _ := m.newWave(s, wave.StatusPlanned, "")
		return matrixCell{query: `mutation($id: ID!, $at: Time!) { startWave(waveId: $id, input: {cutoverAt: $at}) { wave { id } noAgent } }`,
			vars: map[string]any{"id": id, "at": time.Now().Add(24 * time.Hour).UTC().Format(time.RFC3339)}, target: id}
	case "Mutation.pauseWave":
		id, _ := m.newWave(s, wave.StatusReplicating, "")
		return matrixCell{query: `mutation($id: ID!) { pauseWave(waveId: $id) { id } }`, vars: map[string]any{"id": id}, target: id}
	case "Mutation.resumeWave":
		id, _ := m.newWave(s, wave.StatusPaused, "")
		return matrixCell{query: `mutation($id: ID!) { resumeWave(waveId: $id) { id } }`, vars: map[string]any{"id": id}, target: id}
	case "Mutation.approveWave":
		id, _ := m.newWave(s, wave.StatusReplicating, "operator")
		return matrixCell{query: `mutation($id: ID!) { approveWave(waveId: $id) { id approvedBy } }`, vars: map[string]any{"id": id}, target: id}
	case "Mutation.setHostCutoverTime":
		id, host := m.newWave(s, wave.StatusReplicating, "")
		return matrixCell{query: `mutation($id: ID!, $h: ID!, $at: Time) { setHostCutoverTime(waveId: $id, hostId: $h, at: $at) { id } }`,
			vars: map[string]any{"id": id, "h": host, "at": time.Now().Add(24 * time.Hour).UTC().Format(time.RFC3339)}, target: id}
	case "Mutation.tickWaveStep":
		id, _ := m.newWave(s, wave.StatusReplicating, "")
		m.ts.App.DB.Client.Wave.UpdateOneID(id).SetManualSteps([]map[string]any{{"name": "freeze changes"}}).ExecX(m.ctx(s))
		return matrixCell{query: `mutation($id: ID!) { tickWaveStep(waveId: $id, index: 0) { id } }`, vars: map[string]any{"id": id}, target: id}
	case "Mutation.setMigrationSettings":
		id := m.newMigration(s, ferry.MigrationSyncing, false)
		return matrixCell{query: `mutation($id: ID!) { setMigrationSettings(migrationId: $id, rpoMinutes: 30, keepLast: 5) { id } }`, vars: map[string]any{"id": id}, target: id}
	case "Mutation.generatePlan":
		in := map[string]any{"name": m.name(m.own, "plan"), "constraints": map[string]any{"bandwidth": "1Gbps"}}
		if !own {
			in["rules"] = map[string]any{"pins": []any{map[string]any{"host": strconv.Itoa(s.seed["Host"]), "wave": 1}}}
		}
		return matrixCell{query: `mutation($in: GeneratePlanInput!) { generatePlan(input: $in) { id } }`, vars: map[string]any{"in": in}, check: func(d map[string]any) string {
			id, _ := strconv.Atoi(fmt.Sprint(dig(d, "generatePlan", "id")))
			for _, wm := range db.WaveMember.Query().Where(wavemember.HasWaveWith(wave.HasPlanWith(plan.ID(id)))).WithHost().AllX(m.sys) {
				if wm.TenantID != m.own.tenant || wm.Edges.Host.TenantID != m.own.tenant {
					return fmt.Sprintf("plan %d places host %d of tenant %d", id, wm.Edges.Host.ID, wm.Edges.Host.TenantID)
				}
			}
			return ""
		}}
	case "Mutation.movePlanHost":
		plan := m.newPlan(s)
		return matrixCell{query: `mutation($p: ID!, $h: ID!) { movePlanHost(planId: $p, hostId: $h, toWave: 1, confirm: true) { plan { id } saved } }`,
			vars: map[string]any{"p": plan, "h": s.seed["Host"]}, target: plan}
	case "Mutation.runAssessment":
		return matrixCell{query: `mutation { runAssessment(target: "alibaba") { hosts } }`, check: func(d map[string]any) string {
			want := db.Host.Query().Where(host.TenantID(m.own.tenant)).CountX(m.sys)
			if got := dig(d, "runAssessment", "hosts"); got != float64(want) {
				return fmt.Sprintf("assessed %v hosts; tenant A has %d", got, want)
			}
			for _, a := range db.Assessment.Query().Where(assessment.TenantID(m.own.tenant)).WithHost().AllX(m.sys) {
				if a.Edges.Host.TenantID != m.own.tenant {
					return fmt.Sprintf("tenant A holds an assessment of host %d of tenant %d", a.Edges.Host.ID, a.Edges.Host.TenantID)
				}
			}
			return ""
		}}
	case "Query.priceCatalog":
		return matrixCell{query: `{ priceCatalog(target: "alibaba") { date types } }`}
	case "Query.businessCase":
		vars := map[string]any{}
		q := `{ businessCase { hosts } }`
		if !own {
			q, vars = `query($p: ID) { businessCase(planId: $p) { hosts plan { id } } }`, map[string]any{"p": s.seed["Plan"]}
		}
		return matrixCell{query: q, vars: vars, check: func(d map[string]any) string {
			want := db.Host.Query().Where(host.TenantID(m.own.tenant)).CountX(m.sys)
			if got := dig(d, "businessCase", "hosts"); got != float64(want) {
				return fmt.Sprintf("the business case counts %v hosts; tenant A has %d", got, want)
			}
			return ""
		}}
	case "Query.topology":
		id := s.seed["Plan"]
		return matrixCell{query: `query($p: ID) { topology(planId: $p) { plan { id } hosts nodes { key hosts } } }`, vars: map[string]any{"p": id}, target: id,
			check: func(d map[string]any) string {
				want := db.Host.Query().Where(host.TenantID(m.own.tenant)).CountX(m.sys)
				sum := 0.0
				nodes, _ := dig(d, "topology", "nodes").([]any)
				for _, n := range nodes {
					sum += n.(map[string]any)["hosts"].(float64)
				}
				if got := dig(d, "topology", "hosts"); got != float64(want) || sum != float64(want) {
					return fmt.Sprintf("the topology counts %v hosts in nodes of %v; tenant A has %d", got, sum, want)
				}
				return ""
			}}
	case "Mutation.createDiscoverySource":
		return matrixCell{query: `mutation($n: String!) { createDiscoverySource(input: {name: $n, url: "https://vc.example/sdk", username: "u", password: "matrix-vc-secret"}) { id } }`,
			vars: map[string]any{"n": m.name(s, "vcenter")}}
	case "Mutation.updateDiscoverySource":
		id := s.seed["DiscoverySource"]
		return matrixCell{query: `mutation($id: ID!, $n: String!) { updateDiscoverySource(id: $id, input: {name: $n}) { id } }`, vars: map[string]any{"id": id, "n": m.name(s, "vcenter")}, target: id}
	case "Mutation.deleteDiscoverySource":
		id := m.keep(s, db.DiscoverySource.Create().SetName(m.name(s, "vcenter")).SetURL("https://x.example/sdk").SaveX(ctx).ID)
		return matrixCell{query: `mutation($id: ID!) { deleteDiscoverySource(id: $id) }`, vars: map[string]any{"id": id}, target: id}
	case "Mutation.runDiscoverySource":
		id := m.keep(s, db.DiscoverySource.Create().SetName(m.name(s, "vcenter")).SetURL("https://x.example/sdk").SaveX(ctx).ID)
		return matrixCell{query: `mutation($id: ID!) { runDiscoverySource(id: $id) { id lastStatus } }`, vars: map[string]any{"id": id}, target: id}
	case "Mutation.suggestApplications":
		return matrixCell{query: `mutation { suggestApplications { suggestions } }`, check: func(d map[string]any) string {
			for _, sg := range db.ApplicationSuggestion.Query().Where(applicationsuggestion.TenantID(m.own.tenant)).AllX(m.sys) {
				for _, mb := range sg.Members {
					id := int(mb["id"].(float64))
					if h := db.Host.GetX(m.sys, id); h.TenantID != m.own.tenant {
						return fmt.Sprintf("tenant A's suggestion %q holds host %d of tenant %d", sg.Name, id, h.TenantID)
					}
				}
			}
			return ""
		}}
	case "Mutation.acceptApplicationSuggestion":
		id := m.newSuggestion(s, 1)
		return matrixCell{query: `mutation($id: ID!) { acceptApplicationSuggestion(id: $id) { id name } }`, vars: map[string]any{"id": id}, check: func(d map[string]any) string {
			app := db.Application.GetX(m.sys, mustID(m.t, dig(d, "acceptApplicationSuggestion", "id")))
			for _, h := range db.Host.Query().Where(host.ApplicationID(app.ID)).AllX(m.sys) {
				if h.TenantID != app.TenantID {
					return fmt.Sprintf("application %d of tenant %d labels host %d of tenant %d", app.ID, app.TenantID, h.ID, h.TenantID)
				}
			}
			if want := db.ApplicationSuggestion.GetX(m.sys, id).TenantID; app.TenantID != want {
				return fmt.Sprintf("accepting tenant %d's suggestion made an application in tenant %d", want, app.TenantID)
			}
			return ""
		}}
	case "Mutation.renameApplicationSuggestion":
		id := m.newSuggestion(s, 1)
		return matrixCell{query: `mutation($id: ID!, $n: String!) { renameApplicationSuggestion(id: $id, name: $n) { id name } }`,
			vars: map[string]any{"id": id, "n": m.name(s, "renamed")}, target: id}
	case "Mutation.splitApplicationSuggestion":
		id := m.newSuggestion(s, 2)
		first := int(db.ApplicationSuggestion.GetX(m.sys, id).Members[0]["id"].(float64))
		return matrixCell{query: `mutation($id: ID!, $h: [ID!]!) { splitApplicationSuggestion(id: $id, hostIds: $h, name: "split") { id hostCount } }`,
			vars: map[string]any{"id": id, "h": []int{first}}}
	case "Subscription.waveProgress":
		id := s.seed["Wave"]
		return matrixCell{query: `subscription($id: ID!) { waveProgress(waveId: $id) { id } }`, vars: map[string]any{"id": id}, target: id, sub: true}
	case "Subscription.migrationProgress":
		ids := []int{s.seed["Migration"]}
		if !own {
			ids = append(ids, m.sentinel) // newer than B's: the first event proves B's was not sent
		}
		return matrixCell{query: `subscription($ids: [ID!]) { migrationProgress(ids: $ids) { id } }`, vars: map[string]any{"ids": ids}, target: ids[0], sub: true}
	}
	m.t.Fatalf("the matrix has no request for %s", op)
	return matrixCell{}
}

// listType names the Node type each Relay list query returns.
var listType = map[string]string{
	"apiTokens": "APIToken", "agents": "Agent", "applications": "Application", "assessments": "Assessment",
	"auditEvents": "AuditEvent", "cloudAccounts": "CloudAccount", "connections": "Connection", "hosts": "Host",
	"importRuns": "ImportRun", "migrations": "Migration", "plans": "Plan", "registrationTokens": "RegistrationToken",
	"tenants": "Tenant", "users": "User", "discoverySources": "DiscoverySource",
	"applicationSuggestions": "ApplicationSuggestion",
}

// runCell runs one cell and returns the answer observed, the leaks found
// (if any) and details of an unexpected answer.
func (m *matrixRun) runCell(op string, s *matrixSide, actor, want string) (string, string, string) {
	c := m.cellOf(op, s, actor)
	before := m.snapshot()
	var got, detail string
	var data any
	var leaks []string
	if c.sub {
		got, detail = m.subscribe(m.actors[actor], c)
	} else {
		r := m.actors[actor].gql(c.query, c.vars)
		got, detail = outcomeOf(r, c.target)
		data = r.Data
		if c.check != nil && got == "A" {
			if leak := c.check(r.Data); leak != "" {
				leaks = append(leaks, leak)
			}
		}
		if actor != "platform" && strings.Contains(strings.ToLower(r.raw), m.other.marker) {
			leaks = append(leaks, fmt.Sprintf("the answer holds tenant B's names: %.300s", r.raw))
		}
	}
	if actor != "platform" {
		if id := m.foreignID(data); id != 0 {
			leaks = append(leaks, fmt.Sprintf("the answer holds tenant B's id %d", id))
		}
	}
	if want != "A" && got == "A" {
		leaks = append(leaks, "allowed, but the table refuses it")
	}
	after := m.snapshot()
	changed := diffSnapshots(before, after)
	read := !strings.HasPrefix(op, "Mutation.")
	bKey := strconv.Itoa(m.other.tenant)
	for _, k := range changed {
		tenant := strings.SplitN(k, "/", 2)[0]
		switch {
		case want != "A" || got != "A":
			leaks = append(leaks, "a request the table refuses changed "+k+counts(before, after, k))
		case read:
			leaks = append(leaks, "a read changed "+k+counts(before, after, k))
		case tenant == bKey && !(actor == "platform" && s == m.other):
			leaks = append(leaks, "tenant B changed: "+k+counts(before, after, k))
		}
	}
	if got == "A" && want == "A" && !read {
		// An allowed write leaves its mark (at least the audit event) in the tenant it targeted.
		key := strconv.Itoa(s.tenant) + "/"
		if !slices.ContainsFunc(changed, func(k string) bool { return strings.HasPrefix(k, key) }) {
			detail += " (allowed, but nothing changed in the tenant it targeted)"
			got = "A?"
		}
	}
	return got, strings.Join(leaks, "; "), detail
}

func counts(before, after map[string]string, k string) string {
	n := func(s string) string { return strings.SplitN(s, ":", 2)[0] }
	return fmt.Sprintf(" (rows %s → %s)", n(before[k]), n(after[k]))
}

// outcomeOf reads an HTTP GraphQL answer as one of the matrix's letters.
func outcomeOf(r gqlResp, target int) (string, string) {
	if r.status == 401 {
		return "U", ""
	}
	if len(r.Errors) > 0 {
		switch r.code() {
		case "FORBIDDEN":
			return "F", ""
		case "NOT_FOUND":
			return "N", ""
		case "UNAUTHENTICATED":
			return "U", ""
		case "INVALID":
			return "I", r.raw
		}
		return "E", r.raw
	}
	if target != 0 && !containsID(r.Data, target) {
		return "N", r.raw
	}
	return "A", ""
}

func containsID(v any, id int) bool {
	found := false
	walkStrings(v, func(s string) {
		if s == strconv.Itoa(id) {
			found = true
		}
	})
	return found
}

func walkStrings(v any, fn func(string)) {
	switch x := v.(type) {
	case string:
		fn(x)
	case []any:
		for _, e := range x {
			walkStrings(e, fn)
		}
	case map[string]any:
		for _, e := range x {
			walkStrings(e, fn)
		}
	}
}

// foreignID returns an id of tenant B found in an answer, or 0.
func (m *matrixRun) foreignID(v any) int {
	out := 0
	walkStrings(v, func(s string) {
		if id, err := strconv.Atoi(s); err == nil && m.foreign[id] {
			out = id
		}
	})
	return out
}

// subscribe runs a subscription cell: the first event names the first
// migration the actor may see among the ids.
func (m *matrixRun) subscribe(c *client, cell matrixCell) (string, string) {
	w, status, err := dialWS(m.t, c, c.base)
	if err != nil {
		if status == 401 {
			return "U", ""
		}
		return "E", fmt.Sprintf("dial: %d %v", status, err)
	}
	defer w.conn.CloseNow()
	w.subscribe("1", cell.query, cell.vars)
	msg := w.next()
	if msg.Type != "next" {
		return "E", fmt.Sprintf("%s %s", msg.Type, msg.Payload)
	}
	var p struct {
		Data   map[string]any `json:"data"`
		Errors []struct {
			Extensions map[string]any `json:"extensions"`
		} `json:"errors"`
	}
	json.Unmarshal(msg.Payload, &p)
	if len(p.Errors) > 0 {
		switch p.Errors[0].Extensions["code"] {
		case "FORBIDDEN":
			return "F", ""
		case "UNAUTHENTICATED":
			return "U", ""
		case "NOT_FOUND":
			return "N", ""
		}
		return "E", string(msg.Payload)
	}
	if id := m.foreignID(p.Data); id != 0 && c != m.actors["platform"] {
		return "A", "" // reported as a leak by the caller's id check
	}
	for _, field := range []string{"migrationProgress", "waveProgress"} {
		if dig(p.Data, field, "id") == strconv.Itoa(cell.target) {
			return "A", ""
		}
	}
	return "N", ""
}

// listTables finds every table and the column that names a row's tenant.
func (m *matrixRun) listTables() []matrixTable {
	db := m.ts.App.DB.SQL
	rows, err := db.QueryContext(m.sys, `SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name`)
	if err != nil {
		m.t.Fatal(err)
	}
	var names []string
	for rows.Next() {
		var n string
		rows.Scan(&n)
		names = append(names, n)
	}
	rows.Close()
	var out []matrixTable
	for _, n := range names {
		col := ""
		if n == "tenants" {
			col = "id"
		} else if hasColumn(m.t, db, n, "tenant_id") {
			col = "tenant_id"
		}
		out = append(out, matrixTable{name: n, tenant: col})
	}
	return out
}

func hasColumn(t *testing.T, db *sql.DB, table, col string) bool {
	rows, err := db.Query(`SELECT name FROM pragma_table_info(?)`, table)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var n string
		rows.Scan(&n)
		if n == col {
			return true
		}
	}
	return false
}

// snapshot digests every row of the database, grouped by tenant and table:
// "tenant/table" → "rows:sha256".
func (m *matrixRun) snapshot() map[string]string {
	db := m.ts.App.DB.SQL
	out := map[string]string{}
	for _, tb := range m.tables {
		group := "'global'"
		if tb.tenant != "" {
			group = tb.tenant
		}
		rows, err := db.QueryContext(m.sys, fmt.Sprintf(`SELECT %s, * FROM %q ORDER BY 1, rowid`, group, tb.name))
		if err != nil {
			m.t.Fatalf("snapshot %s: %v", tb.name, err)
		}
		cols, _ := rows.Columns()
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		type digest struct {
			rows int
			h    hash.Hash
		}
		groups := map[string]*digest{}
		for rows.Next() {
			if err := rows.Scan(ptrs...); err != nil {
				m.t.Fatal(err)
			}
			key := fmt.Sprint(vals[0]) + "/" + tb.name
			g, ok := groups[key]
			if !ok {
				g = &digest{h: sha256.New()}
				groups[key] = g
			}
			g.rows++
			fmt.Fprintf(g.h, "%v\x00", vals[1:])
		}
		rows.Close()
		for k, g := range groups {
			out[k] = fmt.Sprintf("%d:%s", g.rows, hex.EncodeToString(g.h.Sum(nil)))
		}
	}
	return out
}

func diffSnapshots(before, after map[string]string) []string {
	var out []string
	for k, v := range after {
		if before[k] != v {
			out = append(out, k)
		}
	}
	for k := range before {
		if _, ok := after[k]; !ok {
			out = append(out, k)
		}
	}
	sort.Strings(out)
	return out
}
