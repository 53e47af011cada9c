package app_test

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/ferry-migrate/ferry/ent"
	"github.com/ferry-migrate/ferry/ent/host"
	"github.com/ferry-migrate/ferry/ent/plan"
	"github.com/ferry-migrate/ferry/ent/tenant"
	"github.com/ferry-migrate/ferry/ent/wave"
	"github.com/ferry-migrate/ferry/ent/wavemember"
	"github.com/ferry-migrate/ferry/internal/planning"
	"github.com/ferry-migrate/ferry/internal/viewer"
	"github.com/ferry-migrate/ferry/jobs"
	"github.com/ferry-migrate/ferry/planner"
	"github.com/ferry-migrate/ferry/planner/estate"
)

// defaultTenant returns a context acting inside the default tenant and its id.
func defaultTenant(t testing.TB, ts *testServer) (context.Context, int) {
	t.Helper()
	tid, err := ts.App.DB.Client.Tenant.Query().Where(tenant.Slug("default")).OnlyID(viewer.SystemContext(t.Context()))
	if err != nil {
		t.Fatal(err)
	}
	return viewer.TenantContext(t.Context(), tid), tid
}

// seedEstate inserts a generated estate (planner/estate) into the default
// tenant with ent bulk inserts, as discovery would, and returns host name → id.
func seedEstate(t testing.TB, ts *testServer, hosts int, seed uint64) map[string]int {
	t.Helper()
	e, _ := estate.Generate(estate.Options{Hosts: hosts, Seed: seed})
	return insertEstate(t, ts, e)
}

// insertEstate writes as the system with the tenant set explicitly, as a
// bulk importer may: the tenant hook's per-edge reference check would cost
// 400,000 queries for a 200,000-connection benchmark estate.
func insertEstate(t testing.TB, ts *testServer, e *planner.Estate) map[string]int {
	t.Helper()
	tctx, tid := defaultTenant(t, ts)
	ctx := viewer.SystemContext(t.Context())
	c := ts.App.DB.Client
	apps := map[string]int{}
	for _, a := range c.Application.Query().AllX(tctx) {
		apps[a.Name] = a.ID
	}
	for _, h := range e.Hosts {
		if h.Application != "" && apps[h.Application] == 0 {
			a, err := c.Application.Create().SetTenantID(tid).SetName(h.Application).Save(ctx)
			if err != nil {
				t.Fatal(err)
			}
			apps[h.Application] = a.ID
		}
	}
	orUnknown := func(s string) string {
		if s == "" {
			return "unknown"
		}
		return s
	}
	ids := map[string]int{}   // estate id → ent id
	names := map[string]int{} // name → ent id
	const step = 500
	for i := 0; i < len(e.Hosts); i += step {
		var b []*ent.HostCreate
		for _, h := range e.Hosts[i:min(i+step, len(e.Hosts))] {
			hc := c.Host.Create().SetTenantID(tid).SetName(h.Name).SetFqdn(h.FQDN).SetOs(h.OS).SetOsFamily(h.OSFamily).SetArch(h.Arch).
				SetBootMode(host.BootMode(orUnknown(h.BootMode))).SetCpus(h.CPUs).SetMemoryMib(h.MemoryMiB).
				SetEnvironment(host.Environment(orUnknown(h.Environment))).SetCriticality(host.Criticality(orUnknown(h.Criticality))).
				SetOwner(h.Owner).SetTags(h.Tags).SetPinnedWave(h.PinnedWave).
				SetDiskProvisionedBytes(h.ProvisionedBytes()).SetDiskUsedBytes(h.UsedBytes())
			if h.CPUP95 > 0 {
				hc.SetCPUP95(h.CPUP95)
			}
			if h.MemoryP95 > 0 {
				hc.SetMemoryP95(h.MemoryP95)
			}
			if a := apps[h.Application]; a != 0 {
				hc.SetApplicationID(a)
			}
			b = append(b, hc)
		}
		hs, err := c.Host.CreateBulk(b...).Save(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for j, h := range hs {
			ids[e.Hosts[i+j].ID] = h.ID
			names[h.Name] = h.ID
		}
	}
	var db []*ent.DiskCreate
	for _, h := range e.Hosts {
		for _, d := range h.Disks {
			db = append(db, c.Disk.Create().SetTenantID(tid).SetName(d.Name).SetSizeBytes(d.ProvisionedBytes).SetUsedBytes(d.UsedBytes).SetHostID(ids[h.ID]))
			if len(db) == step {
				c.Disk.CreateBulk(db...).ExecX(ctx)
				db = db[:0]
			}
		}
	}
	if len(db) > 0 {
		c.Disk.CreateBulk(db...).ExecX(ctx)
	}
	var cb []*ent.ConnectionCreate
	for _, x := range e.Connections {
		cc := c.Connection.Create().SetTenantID(tid).SetSrcHostID(ids[x.Src]).SetDstAddress(x.DstAddress).SetPort(x.Port).
			SetProcess(x.Process).SetCount(x.Count).SetBytes(x.Bytes)
		if x.Protocol == "udp" {
			cc.SetProtocol("udp")
		}
		if x.Dst != "" {
			cc.SetDstHostID(ids[x.Dst])
		}
		cb = append(cb, cc)
		if len(cb) == step {
			c.Connection.CreateBulk(cb...).ExecX(ctx)
			cb = cb[:0]
		}
	}
	if len(cb) > 0 {
		c.Connection.CreateBulk(cb...).ExecX(ctx)
	}
	return names
}

const generatePlanMutation = `mutation($in: GeneratePlanInput!) { generatePlan(input: $in) {
	id status error problems metrics infeasible unplaced warnings } }`

func planInput(name string, extra map[string]any) map[string]any {
	cons := map[string]any{"start": "2026-12-07", "timezone": "Asia/Shanghai", "bandwidth": "1Gbps", "maxHostsPerWave": 40,
		"pilotHosts": 8, "cutoverWindows": []string{"Sat 22:00-04:00"}, "transferWindows": []any{
			map[string]any{"when": "Mon-Thu 19:00-07:00", "rate": "800Mbps"},
			map[string]any{"when": "Sat-Sun 00:00-24:00"},
		}}
	in := map[string]any{"name": name, "constraints": cons}
	for k, v := range extra {
		if k == "rules" {
			in[k] = v
		} else {
			cons[k] = v
		}
	}
	return in
}

// planWaves reads a plan's waves as ordinal → sorted "host|reason" lines,
// through GraphQL.
func planWaves(t testing.TB, c *client, id string) (map[int][]string, int) {
	t.Helper()
	d := c.mustGQL(`query($id: ID!) { node(id: $id) { ... on Plan { status waves { ordinal hostCount members { reason moveGroup manual host { id name } } } } } }`, map[string]any{"id": id})
	out := map[int][]string{}
	n := 0
	for _, w := range dig(d, "node", "waves").([]any) {
		ord := int(dig(w, "ordinal").(float64))
		for _, m := range dig(w, "members").([]any) {
			out[ord] = append(out[ord], fmt.Sprintf("%s|%s", dig(m, "host", "name"), dig(m, "reason")))
			n++
		}
		sort.Strings(out[ord])
		if got := int(dig(w, "hostCount").(float64)); got != len(out[ord]) {
			t.Fatalf("wave %d: hostCount %d but %d members", ord, got, len(out[ord]))
		}
	}
	return out, n
}

func waitPlan(t testing.TB, c *client, id string) map[string]any {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		d := c.mustGQL(`query($id: ID!) { node(id: $id) { ... on Plan { id status error problems unplaced infeasible metrics } } }`, map[string]any{"id": id})
		switch dig(d, "node", "status") {
		case "ready", "infeasible", "failed":
			return dig(d, "node").(map[string]any)
		}
		if time.Now().After(deadline) {
			t.Fatalf("plan %s still %v after 2 minutes", id, dig(d, "node", "status"))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestGeneratePlanInlineAndThroughTheQueue(t *testing.T) {
	ts := mustStart(t)
	ts.App.Config.Workers = 2
	if err := ts.App.StartWorkers(); err != nil {
		t.Fatal(err)
	}
	const hosts = 400
	seedEstate(t, ts, hosts, 7)
	c := ts.login(t, "admin@example.com", adminPassword)

	// Inline (the estate is under the threshold).
	d := c.mustGQL(generatePlanMutation, map[string]any{"in": planInput("first", nil)})
	p1 := dig(d, "generatePlan").(map[string]any)
	if p1["status"] != "ready" && p1["status"] != "infeasible" {
		t.Fatalf("inline plan: %v", p1)
	}
	waves1, placed := planWaves(t, c, p1["id"].(string))
	unplaced := len(p1["unplaced"].([]any))
	if placed+unplaced != hosts {
		t.Fatalf("%d placed + %d unplaced, want %d hosts", placed, unplaced, hosts)
	}
	seen := map[string]bool{}
	for _, lines := range waves1 {
		for _, l := range lines {
			name, reason, _ := strings.Cut(l, "|")
			if seen[name] {
				t.Fatalf("host %s placed twice", name)
			}
			seen[name] = true
			if strings.TrimSpace(reason) == "" || reason == "<nil>" {
				t.Fatalf("host %s has no reason", name)
			}
		}
	}
	if got := dig(p1, "metrics", "placed"); got != float64(placed) {
		t.Fatalf("metrics.placed = %v, want %d", got, placed)
	}

	// Through the queue: same input, same waves and reasons.
	old := planning.InlineHosts
	planning.InlineHosts = 0
	defer func() { planning.InlineHosts = old }()
	d = c.mustGQL(generatePlanMutation, map[string]any{"in": planInput("second", nil)})
	if got := dig(d, "generatePlan", "status"); got != "queued" {
		t.Fatalf("large estate: status %v, want queued", got)
	}
	id2 := dig(d, "generatePlan", "id").(string)
	p2 := waitPlan(t, c, id2)
	if p2["status"] != p1["status"] {
		t.Fatalf("queued plan %v, inline %v: %v", p2["status"], p1["status"], p2)
	}
	waves2, _ := planWaves(t, c, id2)
	if diff := cmp.Diff(waves1, waves2); diff != "" {
		t.Fatalf("two runs differ (-inline +queued):\n%s", diff)
	}

	// Re-running the job on a plan interrupted mid-way (status running,
	// waves half written) gives the same rows, not duplicates.
	ctx, tid := defaultTenant(t, ts)
	client := ts.App.DB.Client
	var planID int
	fmt.Sscan(id2, &planID)
	before, _ := client.WaveMember.Query().Where(wavemember.HasWaveWith(wave.HasPlanWith(plan.ID(planID)))).Count(ctx)
	// The first task writes "ready" just before asynq marks it done; until
	// then its TaskID is taken and a new enqueue would be dropped as a duplicate.
	for deadline := time.Now().Add(time.Minute); ; {
		if _, err := ts.App.Queue.Inspector.GetTaskInfo("default", fmt.Sprintf("plan:%d", planID)); err != nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the first plan task never left the queue")
		}
		time.Sleep(20 * time.Millisecond)
	}
	client.Plan.UpdateOneID(planID).SetStatus(plan.StatusRunning).ExecX(ctx)
	if n, err := jobs.ReconcilePlans(t.Context(), client, ts.App.Queue); err != nil || n != 1 {
		t.Fatalf("reconcile: %d plans, %v", n, err)
	}
	waitPlan(t, c, id2)
	after, _ := client.WaveMember.Query().Where(wavemember.HasWaveWith(wave.HasPlanWith(plan.ID(planID)))).Count(ctx)
	waves3, _ := planWaves(t, c, id2)
	if before != after || cmp.Diff(waves1, waves3) != "" {
		t.Fatalf("re-run changed the plan: %d members before, %d after", before, after)
	}
	_ = tid
}

func TestPlanBadInputSavesNothing(t *testing.T) {
	ts := mustStart(t)
	seedEstate(t, ts, 60, 3)
	c := ts.login(t, "admin@example.com", adminPassword)
	for _, tc := range []struct {
		name  string
		extra map[string]any
		want  []string
	}{
		{"zero bandwidth", map[string]any{"bandwidth": "0"}, []string{"bandwidth"}},
		{"window never opens", map[string]any{"transferWindows": []any{map[string]any{"when": "Mon 10:00-10:00"}}}, []string{"transfer_windows[0]", "never opens"}},
		{"unknown host in a rule", map[string]any{"rules": map[string]any{"keepApart": []any{map[string]any{"a": "no-such-host", "b": "dc01"}}}}, []string{"rules.keepApart[0].a", "no-such-host"}},
		{"unknown application in a rule", map[string]any{"rules": map[string]any{"before": []any{map[string]any{"first": "dc01", "then": "application:nope"}}}}, []string{"rules.before[0].then", "application:nope"}},
		{"bad size", map[string]any{"maxBytesPerWave": "lots"}, []string{"max_bytes_per_wave"}},
	} {
		r := c.gql(generatePlanMutation, map[string]any{"in": planInput(tc.name, tc.extra)})
		if r.code() != "INVALID" {
			t.Fatalf("%s: want INVALID, got %s", tc.name, r.raw)
		}
		for _, w := range tc.want {
			if !strings.Contains(r.Errors[0].Message, w) {
				t.Fatalf("%s: error %q does not name %q", tc.name, r.Errors[0].Message, w)
			}
		}
	}
	if got := dig(c.mustGQL(`{ plans { totalCount } waves: plans { edges { node { waves { id } } } } }`, nil), "plans", "totalCount"); got != float64(0) {
		t.Fatalf("bad input left %v plans behind", got)
	}
	// Bad data in the estate itself: the plan fails, naming the host, and no waves are written.
	ctx, _ := defaultTenant(t, ts)
	h := ts.App.DB.Client.Host.Query().Where(host.Name("dc01")).OnlyX(ctx)
	ts.App.DB.Client.Disk.Create().SetName("sdz").SetSizeBytes(10).SetUsedBytes(20).SetHostID(h.ID).ExecX(ctx)
	r := c.gql(generatePlanMutation, map[string]any{"in": planInput("bad estate", nil)})
	if r.code() != "INVALID" || !strings.Contains(r.Errors[0].Message, fmt.Sprintf("host dc01 (id %d)", h.ID)) {
		t.Fatalf("estate problem: %s", r.raw)
	}
	if !strings.Contains(r.Errors[0].Message, "used_bytes 20 exceeds provisioned_bytes 10") {
		t.Fatalf("estate problem not explained: %s", r.Errors[0].Message)
	}
	if n := ts.App.DB.Client.Wave.Query().CountX(ctx); n != 0 {
		t.Fatalf("%d waves written for a failed plan", n)
	}
}

func TestPlanInfeasibleRulesReportTheChain(t *testing.T) {
	ts := mustStart(t)
	names := seedEstate(t, ts, 120, 5)
	c := ts.login(t, "admin@example.com", adminPassword)
	_ = names
	rules := map[string]any{"before": []any{
		map[string]any{"first": "dc01", "then": "ntp01"},
		map[string]any{"first": "ntp01", "then": "dc01"},
	}}
	p := dig(c.mustGQL(generatePlanMutation, map[string]any{"in": planInput("cycle", map[string]any{"rules": rules})}), "generatePlan").(map[string]any)
	if p["status"] != "infeasible" {
		t.Fatalf("contradicting before rules: status %v", p["status"])
	}
	raw := fmt.Sprint(p["infeasible"])
	for _, w := range []string{"order-cycle", "rules.before[0]", "rules.before[1]", "dc01", "ntp01"} {
		if !strings.Contains(raw, w) {
			t.Fatalf("infeasibility does not name %q: %s", w, raw)
		}
	}
	// The conflict is named with what the planner did instead, and the rest
	// of the estate is still planned: nobody is left unplaced by it.
	if !strings.Contains(raw, "resolution:ignored rules.before") {
		t.Fatalf("infeasibility does not say which rule was ignored: %s", raw)
	}
	if n := len(p["unplaced"].([]any)); n != 0 {
		t.Fatalf("%d hosts left unplaced by two contradicting rules", n)
	}
}

func TestMovePlanHost(t *testing.T) {
	ts := mustStart(t)
	seedEstate(t, ts, 300, 11)
	c := ts.login(t, "admin@example.com", adminPassword)
	p := dig(c.mustGQL(generatePlanMutation, map[string]any{"in": planInput("moves", nil)}), "generatePlan").(map[string]any)
	id := p["id"].(string)
	d := c.mustGQL(`query($id: ID!) { node(id: $id) { ... on Plan { waves { ordinal members { moveGroup host { id name } } } } } }`, map[string]any{"id": id})
	// A host whose move group has other members: moving it alone splits the group.
	var hostID, hostName string
	var from int
	groups := map[string]int{}
	waves := dig(d, "node", "waves").([]any)
	for _, w := range waves {
		for _, m := range dig(w, "members").([]any) {
			groups[dig(m, "moveGroup").(string)]++
		}
	}
	for _, w := range waves {
		for _, m := range dig(w, "members").([]any) {
			if hostID == "" && groups[dig(m, "moveGroup").(string)] > 1 {
				hostID, hostName = dig(m, "host", "id").(string), dig(m, "host", "name").(string)
				from = int(dig(w, "ordinal").(float64))
			}
		}
	}
	if hostID == "" || len(waves) < 2 {
		t.Fatalf("estate gave no multi-host group or a single wave")
	}
	to := 1
	if from == 1 {
		to = 2
	}
	const move = `mutation($p: ID!, $h: ID!, $to: Int!, $confirm: Boolean) { movePlanHost(planId: $p, hostId: $h, toWave: $to, confirm: $confirm) {
		saved violations { kind message hostIDs } plan { id } } }`
	before, _ := planWaves(t, c, id)
	r := dig(c.mustGQL(move, map[string]any{"p": id, "h": hostID, "to": to}), "movePlanHost").(map[string]any)
	vs := r["violations"].([]any)
	if r["saved"] != false || len(vs) == 0 {
		t.Fatalf("splitting a group: %v", r)
	}
	if dig(vs[0], "kind") != "group" && !strings.Contains(fmt.Sprint(vs), "group") {
		t.Fatalf("violations do not mention the group: %v", vs)
	}
	if !strings.Contains(fmt.Sprint(vs), hostName) {
		t.Fatalf("violations do not name %s: %v", hostName, vs)
	}
	if after, _ := planWaves(t, c, id); cmp.Diff(before, after) != "" {
		t.Fatalf("an unconfirmed move changed the plan: %s", cmp.Diff(before, after))
	}
	// A wave that does not exist is refused even when confirmed.
	r = dig(c.mustGQL(move, map[string]any{"p": id, "h": hostID, "to": 99, "confirm": true}), "movePlanHost").(map[string]any)
	if r["saved"] != false || !strings.Contains(fmt.Sprint(r["violations"]), "wave") {
		t.Fatalf("move to wave 99: %v", r)
	}
	// Confirmed: saved, the host is in the new wave, marked manual, and the reason says why.
	r = dig(c.mustGQL(move, map[string]any{"p": id, "h": hostID, "to": to, "confirm": true}), "movePlanHost").(map[string]any)
	if r["saved"] != true {
		t.Fatalf("confirmed move not saved: %v", r)
	}
	after, n := planWaves(t, c, id)
	found := false
	for _, l := range after[to] {
		if strings.HasPrefix(l, hostName+"|moved by hand to wave") {
			found = true
		}
	}
	if !found {
		t.Fatalf("%s not in wave %d after the confirmed move: %v", hostName, to, after[to])
	}
	_, n0 := planWaves(t, c, id)
	if n != n0 {
		t.Fatal("member count changed")
	}
	// Unknown host and plan ids are named.
	if r := c.gql(move, map[string]any{"p": id, "h": "999999", "to": 1}); r.code() != "NOT_FOUND" || !strings.Contains(r.Errors[0].Message, "999999") {
		t.Fatalf("unknown host: %s", r.raw)
	}
	// Tenant B can neither read nor move A's plan.
	c.mustGQL(`mutation { createTenant(input: {name: "Bank B", slug: "bank-b"}, ownerEmail: "bob@b.example", ownerPassword: "bob-password-12") { tenant { id } } }`, nil)
	b := ts.login(t, "bob@b.example", "bob-password-12")
	if r := b.gql(`query($id: ID!) { node(id: $id) { id ... on Plan { name } } }`, map[string]any{"id": id}); dig(r.Data, "node") != nil {
		t.Fatalf("tenant B read A's plan: %s", r.raw)
	}
	if got := dig(b.mustGQL(`{ plans { totalCount } assessmentSummary(target: "alibaba") { hosts } }`, nil), "plans", "totalCount"); got != float64(0) {
		t.Fatalf("tenant B lists %v plans", got)
	}
	if r := b.gql(move, map[string]any{"p": id, "h": hostID, "to": 1, "confirm": true}); r.code() != "NOT_FOUND" {
		t.Fatalf("tenant B moved A's host: %s", r.raw)
	}
	if final, _ := planWaves(t, c, id); cmp.Diff(after, final) != "" {
		t.Fatalf("tenant B changed A's plan")
	}
	// A viewer reads but cannot write.
	c.mustGQL(`mutation { createUser(input: {email: "vic@a.example", role: viewer}, password: "viewer-password-1") { id } }`, nil)
	v := ts.login(t, "vic@a.example", "viewer-password-1")
	planWaves(t, v, id)
	if r := v.gql(move, map[string]any{"p": id, "h": hostID, "to": 1, "confirm": true}); r.code() != "FORBIDDEN" {
		t.Fatalf("viewer moved a host: %s", r.raw)
	}
}

func TestAssessment(t *testing.T) {
	ts := mustStart(t)
	const hosts = 150
	seedEstate(t, ts, hosts, 9)
	c := ts.login(t, "admin@example.com", adminPassword)
	const run = `mutation($t: String!, $r: String) { runAssessment(target: $t, region: $r, bandwidth: "5Mbps") { target region queued hosts } }`
	const sum = `{ assessmentSummary(target: "alibaba") { hosts ready readyWithActions notReady unknown monthlyCostAsIs monthlyCostRightSized transferSeconds offlineSeedingHosts } assessments { totalCount } }`
	for i := 0; i < 2; i++ { // a re-run updates the same rows
		r := c.mustGQL(run, map[string]any{"t": "alibaba", "r": "cn-hangzhou"})
		if dig(r, "runAssessment", "hosts") != float64(hosts) || dig(r, "runAssessment", "queued") != false {
			t.Fatalf("run %d: %v", i, r)
		}
		s := c.mustGQL(sum, nil)
		if got := dig(s, "assessments", "totalCount"); got != float64(hosts) {
			t.Fatalf("run %d: %v assessment rows, want %d", i, got, hosts)
		}
		a := dig(s, "assessmentSummary").(map[string]any)
		total := a["ready"].(float64) + a["readyWithActions"].(float64) + a["notReady"].(float64) + a["unknown"].(float64)
		if a["hosts"] != float64(hosts) || total != hosts {
			t.Fatalf("summary counts: %v", a)
		}
		if a["monthlyCostAsIs"].(float64) <= 0 || a["monthlyCostRightSized"].(float64) > a["monthlyCostAsIs"].(float64) || a["transferSeconds"].(float64) <= 0 {
			t.Fatalf("summary costs/transfer: %v", a)
		}
		if a["notReady"].(float64) == 0 || a["offlineSeedingHosts"].(float64) == 0 {
			t.Fatalf("the generated estate plants old OSes and 30 TB file servers; summary: %v", a)
		}
	}
	// Through the queue (the estate is "large"): queued, then the same totals.
	ts.App.Config.Workers = 1
	if err := ts.App.StartWorkers(); err != nil {
		t.Fatal(err)
	}
	old := planning.InlineHosts
	planning.InlineHosts = 0
	defer func() { planning.InlineHosts = old }()
	const osum = `{ assessmentSummary(target: "openstack") { hosts notReady } }`
	r := c.mustGQL(run, map[string]any{"t": "openstack"})
	if dig(r, "runAssessment", "queued") != true {
		t.Fatalf("large estate: %v", r)
	}
	deadline := time.Now().Add(time.Minute)
	for dig(c.mustGQL(osum, nil), "assessmentSummary", "hosts") != float64(hosts) {
		if time.Now().After(deadline) {
			t.Fatalf("queued assessment never finished: %v", c.mustGQL(osum, nil))
		}
		time.Sleep(50 * time.Millisecond)
	}
	if got := dig(c.mustGQL(sum, nil), "assessments", "totalCount"); got != float64(2*hosts) {
		t.Fatalf("%v rows after assessing two targets, want %d", got, 2*hosts)
	}
	if r := c.gql(run, map[string]any{"t": "aws"}); r.code() != "INVALID" || !strings.Contains(r.Errors[0].Message, "aws") {
		t.Fatalf("unknown target: %s", r.raw)
	}
	if r := c.gql(run, map[string]any{"t": "alibaba", "r": "mars-1"}); r.code() != "INVALID" || !strings.Contains(r.Errors[0].Message, "mars-1") {
		t.Fatalf("unknown region: %s", r.raw)
	}
}

func TestPlanWavesHaveNoNPlusOne(t *testing.T) {
	ts := mustStart(t)
	seedEstate(t, ts, 80, 2)
	c := ts.login(t, "admin@example.com", adminPassword)
	small := dig(c.mustGQL(generatePlanMutation, map[string]any{"in": planInput("small", map[string]any{"maxHostsPerWave": 40})}), "generatePlan", "id")
	seedEstate(t, ts, 400, 4)
	large := dig(c.mustGQL(generatePlanMutation, map[string]any{"in": planInput("large", map[string]any{"maxHostsPerWave": 30})}), "generatePlan", "id")
	const q = `query($id: ID!) { node(id: $id) { ... on Plan { name metrics waves { ordinal startsAt members { reason manual host { name os } } } } } }`
	count := func(id any) (int64, int) {
		before := ts.SQL.n.Load()
		d := c.mustGQL(q, map[string]any{"id": id})
		return ts.SQL.n.Load() - before, len(dig(d, "node", "waves").([]any))
	}
	s, sw := count(small)
	l, lw := count(large)
	if lw <= sw {
		t.Fatalf("the large plan has %d waves, the small %d: the test proves nothing", lw, sw)
	}
	if s != l {
		t.Fatalf("statements grew with waves: %d for %d waves, %d for %d waves (N+1)", s, sw, l, lw)
	}
	t.Logf("%d SQL statements for a plan with its waves, members and hosts", s)
}
