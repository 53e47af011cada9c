package app_test

import (
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/ferry-migrate/ferry/planner"
)

const topologyQuery = `query($p: ID, $f: String, $first: Int, $offset: Int, $e: Int) {
  topology(planId: $p, focus: $f, first: $first, offset: $offset, maxEdges: $e) {
    plan { id } waves hosts totalNodes totalEdges omittedEdges cycleCount spanCycles noiseConnections offset hasNextPage
    focus { key kind hosts }
    nodes { key kind label refId hosts environment wave waves members cycles }
    edges { source target connections weight bytes crossWeight ports inCycle }
    cycles { chain size betweenGroups nodes spans }
  } }`

// TestTopologyFiguresMatchTheDatabase plans a generated estate and checks
// the aggregated topology against SQL written here, apart from the code
// under test: host counts per node, edge weights between applications,
// the wave of each application, the planner's cycles, a drill-down's hosts
// and external weight, and paging; and that one request costs a constant
// number of statements.
func TestTopologyFiguresMatchTheDatabase(t *testing.T) {
	ts := mustStart(t)
	const hosts = 600
	seedEstate(t, ts, hosts, 3)
	c := ts.login(t, "admin@example.com", adminPassword)
	d := c.mustGQL(generatePlanMutation, map[string]any{"in": planInput("topo", nil)})
	planID := dig(d, "generatePlan", "id").(string)
	pd := c.mustGQL(`query($id: ID!) { node(id: $id) { ... on Plan { status cycles sharedServices } } }`, map[string]any{"id": planID})
	if st := dig(pd, "node", "status"); st != "ready" && st != "infeasible" {
		t.Fatalf("plan %v", st)
	}
	planCycles := dig(pd, "node", "cycles").([]any)
	shared := map[int]bool{}
	for _, s := range dig(pd, "node", "sharedServices").([]any) {
		id, _ := strconv.Atoi(s.(map[string]any)["host_id"].(string))
		shared[id] = true
	}
	db := ts.App.DB.SQL
	var inDB int
	db.QueryRow(`SELECT COUNT(*) FROM hosts`).Scan(&inDB)

	before := ts.SQL.n.Load()
	d = c.mustGQL(topologyQuery, map[string]any{"first": 1000, "e": 5000})
	statements := ts.SQL.n.Load() - before
	top := dig(d, "topology").(map[string]any)
	if dig(top, "plan", "id") != planID {
		t.Fatalf("topology without planId uses plan %v, want the newest ready one %s", dig(top, "plan", "id"), planID)
	}
	// Hosts, connections and each list are read in pages of 5,000 rows:
	// 600 hosts and their connections need one page each.
	if statements > 15 {
		t.Errorf("one topology request sent %d statements; want a constant handful (no query per node)", statements)
	}
	nodes := dig(top, "nodes").([]any)
	byKey := map[string]map[string]any{}
	sum := 0
	for _, n := range nodes {
		m := n.(map[string]any)
		byKey[m["key"].(string)] = m
		sum += int(m["hosts"].(float64))
	}
	if sum != inDB || int(top["hosts"].(float64)) != inDB {
		t.Fatalf("nodes hold %d hosts, topology.hosts %v; the database has %d", sum, top["hosts"], inDB)
	}
	if int(top["totalNodes"].(float64)) != len(nodes) || top["hasNextPage"] != false {
		t.Fatalf("one page of 1,000 holds %d nodes of %v", len(nodes), top["totalNodes"])
	}
	if int(top["cycleCount"].(float64)) != len(planCycles) || len(planCycles) == 0 {
		t.Fatalf("cycleCount %v; the plan stores %d cycles", top["cycleCount"], len(planCycles))
	}

	// Every application node: its hosts that are not shared services, and
	// the wave most of them move in.
	apps := 0
	for key, n := range byKey {
		if n["kind"] != "application" {
			continue
		}
		apps++
		appID, _ := strconv.Atoi(strings.TrimPrefix(key, "a"))
		rows, err := db.Query(`SELECT h.id, COALESCE(w.ordinal, 0) FROM hosts h
			LEFT JOIN wave_members m ON m.host_wave_memberships = h.id
			LEFT JOIN waves w ON w.id = m.wave_members AND w.plan_waves = $1
			WHERE h.application_id = $2`, planID, appID)
		if err != nil {
			t.Fatal(err)
		}
		count, waves := 0, map[int]int{}
		for rows.Next() {
			var id, ord int
			rows.Scan(&id, &ord)
			if shared[id] {
				continue
			}
			count++
			if ord > 0 {
				waves[ord]++
			}
		}
		rows.Close()
		// Hosts of an open suggestion that extends this application join it.
		if got := int(n["hosts"].(float64)); got < count {
			t.Errorf("application %s: %d hosts, the database labels %d", n["label"], got, count)
		}
		best, bn := 0, -1
		for w, c := range waves {
			if c > bn || c == bn && w < best {
				best, bn = w, c
			}
		}
		if got, _ := n["wave"].(float64); best != 0 && int(got) != best && int(n["hosts"].(float64)) == count {
			t.Errorf("application %s: wave %v, the database puts most of its hosts in %d", n["label"], n["wave"], best)
		}
	}
	if apps == 0 {
		t.Fatal("no application nodes")
	}

	// Edges between two applications: the weight from the rows, grouped
	// here: a host's application, or the labelled one its open suggestion
	// extends; shared services and noise ports left out.
	appOf := map[int]int{}
	rows, err := db.Query(`SELECT id, COALESCE(application_id, 0) FROM hosts`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var id, app int
		rows.Scan(&id, &app)
		appOf[id] = app
	}
	rows.Close()
	rows, err = db.Query(`SELECT s.members, a.id FROM application_suggestions s JOIN applications a ON a.name = s.extends AND a.tenant_id = s.tenant_id WHERE s.status = 'open'`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var members string
		var app int
		rows.Scan(&members, &app)
		var ms []struct{ ID int }
		json.Unmarshal([]byte(members), &ms)
		for _, m := range ms {
			if appOf[m.ID] == 0 {
				appOf[m.ID] = app
			}
		}
	}
	rows.Close()
	isNoise := map[int]bool{}
	for _, p := range planner.DefaultNoisePorts {
		isNoise[p] = true
	}
	weight := map[[2]int]int64{}
	rows, err = db.Query(`SELECT src_host_id, dst_host_id, port, process, count FROM connections WHERE dst_host_id IS NOT NULL`)
	if err != nil {
		t.Fatal(err)
	}
	noiseProc := map[string]bool{}
	for _, p := range planner.DefaultNoiseProcesses {
		noiseProc[strings.ToLower(p)] = true
	}
	for rows.Next() {
		var src, dst, port int
		var proc string
		var count int64
		rows.Scan(&src, &dst, &port, &proc, &count)
		a, b := appOf[src], appOf[dst]
		if isNoise[port] || noiseProc[strings.ToLower(proc)] || shared[src] || shared[dst] || a == 0 || b == 0 || a == b {
			continue
		}
		weight[[2]int{a, b}] += max(count, 1)
	}
	rows.Close()
	checked := 0
	for _, e := range dig(top, "edges").([]any) {
		m := e.(map[string]any)
		s, tg := byKey[m["source"].(string)], byKey[m["target"].(string)]
		if s == nil || tg == nil {
			t.Fatalf("edge %v names a node not on the page", m)
		}
		if s["kind"] != "application" || tg["kind"] != "application" {
			continue
		}
		sa, _ := strconv.Atoi(s["refId"].(string))
		ta, _ := strconv.Atoi(tg["refId"].(string))
		if got, want := int64(m["weight"].(float64)), weight[[2]int{sa, ta}]; got != want {
			t.Errorf("edge %s → %s: weight %d, the database sums %d", s["label"], tg["label"], got, want)
		}
		checked++
	}
	if checked < 10 {
		t.Fatalf("only %d edges between applications were checked", checked)
	}
	// Cycle edges run between nodes of the page.
	for _, cy := range dig(top, "cycles").([]any) {
		for _, k := range cy.(map[string]any)["nodes"].([]any) {
			if byKey[k.(string)] == nil {
				t.Fatalf("cycle %v names node %v, not on the page", cy, k)
			}
		}
	}

	// Drill into the largest application: its hosts, and the weight of
	// their calls to and from every other host.
	var focus map[string]any
	for _, n := range nodes {
		if m := n.(map[string]any); m["kind"] == "application" && (focus == nil || m["hosts"].(float64) > focus["hosts"].(float64)) {
			focus = m
		}
	}
	d = c.mustGQL(topologyQuery, map[string]any{"p": planID, "f": focus["key"], "e": 5000})
	dt := dig(d, "topology").(map[string]any)
	var ids []int
	var external int64
	for _, n := range dig(dt, "nodes").([]any) {
		if m := n.(map[string]any); m["kind"] == "host" {
			id, _ := strconv.Atoi(m["refId"].(string))
			ids = append(ids, id)
		}
	}
	if len(ids) != int(focus["hosts"].(float64)) || int(dt["hosts"].(float64)) != len(ids) {
		t.Fatalf("drill-down into %s shows %d hosts (hosts %v); the application node counted %v", focus["label"], len(ids), dt["hosts"], focus["hosts"])
	}
	in := map[int]bool{}
	for _, id := range ids {
		in[id] = true
	}
	for _, e := range dig(dt, "edges").([]any) {
		m := e.(map[string]any)
		if strings.HasPrefix(m["source"].(string), "h") != strings.HasPrefix(m["target"].(string), "h") {
			external += int64(m["weight"].(float64))
		}
	}
	noise := make([]string, 0, len(planner.DefaultNoisePorts))
	for _, p := range planner.DefaultNoisePorts {
		noise = append(noise, strconv.Itoa(p))
	}
	procs := make([]string, 0, len(noiseProc))
	for p := range noiseProc {
		procs = append(procs, "'"+p+"'")
	}
	var noiseRows int
	db.QueryRow(fmt.Sprintf(`SELECT COUNT(*) FROM connections WHERE dst_host_id IS NOT NULL AND (port IN (%s) OR LOWER(process) IN (%s))`,
		strings.Join(noise, ","), strings.Join(procs, ","))).Scan(&noiseRows)
	if got := int(top["noiseConnections"].(float64)); got != noiseRows || noiseRows == 0 {
		t.Errorf("noiseConnections %d; the database holds %d noise rows", got, noiseRows)
	}
	var want int64
	err = db.QueryRow(fmt.Sprintf(`SELECT COALESCE(SUM(CASE WHEN count > 1 THEN count ELSE 1 END), 0) FROM connections
		WHERE dst_host_id IS NOT NULL AND port NOT IN (%[1]s) AND LOWER(process) NOT IN (%[3]s) AND src_host_id != dst_host_id
		AND ((src_host_id IN (%[2]s) AND dst_host_id NOT IN (%[2]s)) OR (dst_host_id IN (%[2]s) AND src_host_id NOT IN (%[2]s)))`,
		strings.Join(noise, ","), idList(in), strings.Join(procs, ","))).Scan(&want)
	if err != nil {
		t.Fatal(err)
	}
	if external != want || want == 0 {
		t.Fatalf("drill-down into %s: external weight %d, the database sums %d", focus["label"], external, want)
	}

	// Pages: 10 nodes and one other node standing for the rest; the next
	// page holds different nodes.
	d = c.mustGQL(topologyQuery, map[string]any{"first": 10})
	p1 := dig(d, "topology").(map[string]any)
	d = c.mustGQL(topologyQuery, map[string]any{"first": 10, "offset": 10})
	p2 := dig(d, "topology").(map[string]any)
	keys := func(p map[string]any) (out []string, other map[string]any) {
		for _, n := range p["nodes"].([]any) {
			m := n.(map[string]any)
			if m["kind"] == "other" {
				other = m
				continue
			}
			out = append(out, m["key"].(string))
		}
		sort.Strings(out)
		return out, other
	}
	k1, o1 := keys(p1)
	k2, _ := keys(p2)
	if len(k1) != 10 || len(k2) != 10 || p1["hasNextPage"] != true {
		t.Fatalf("pages of 10: %d and %d nodes, hasNextPage %v", len(k1), len(k2), p1["hasNextPage"])
	}
	for _, k := range k1 {
		if i := sort.SearchStrings(k2, k); i < len(k2) && k2[i] == k {
			t.Fatalf("node %s is on both pages", k)
		}
	}
	if o1 == nil || int(o1["members"].(float64)) != len(nodes)-10 {
		t.Fatalf("the other node of page 1 is %v; want it to stand for %d nodes", o1, len(nodes)-10)
	}

	// Bad arguments are the client's, named.
	for _, bad := range []map[string]any{{"first": 0}, {"first": 1001}, {"offset": -1}, {"e": 5001}} {
		if r := c.gql(topologyQuery, bad); r.code() != "INVALID" || !strings.Contains(r.Errors[0].Message, "topology.") {
			t.Errorf("%v: %s", bad, r.raw)
		}
	}
	if r := c.gql(topologyQuery, map[string]any{"f": "a999999"}); r.code() != "NOT_FOUND" {
		t.Errorf("unknown focus: %s", r.raw)
	}
}

func idList(m map[int]bool) string {
	if len(m) == 0 {
		return "0"
	}
	out := make([]string, 0, len(m))
	for id := range m {
		out = append(out, strconv.Itoa(id))
	}
	return strings.Join(out, ",")
}
