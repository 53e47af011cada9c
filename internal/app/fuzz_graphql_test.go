package app_test

import (
	"encoding/json"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"
)

// Bounds every GraphQL request must answer within, whatever its text. The
// limits make the worst permitted document cost milliseconds (graph's
// BenchmarkWorstPermitted); these bounds are far above that so that a busy
// machine does not fail them, and far below what the attacks took
// (14 s and 441 s of CPU, 2.45 GiB).
const (
	fuzzTimeBound  = 5 * time.Second
	fuzzAllocBound = 64 << 20 // bytes allocated by the whole process during one request
)

// screenDocuments returns the GraphQL documents the UI ships, from the
// generated frontend/src/gql/gql.ts.
func screenDocuments(t testing.TB) []string {
	b, err := os.ReadFile("../../frontend/src/gql/gql.ts")
	if err != nil {
		t.Fatal(err)
	}
	var docs []string
	for _, line := range strings.Split(string(b), "\n") {
		key, _, ok := strings.Cut(strings.TrimSpace(line), `": typeof types.`)
		if !ok || !strings.HasPrefix(key, `"`) {
			continue
		}
		var q string
		if json.Unmarshal([]byte(key+`"`), &q) == nil {
			docs = append(docs, q)
		}
	}
	return docs
}

// FuzzGraphQLQuery sends random and mutated documents to the real server
// (SQLite, the whole middleware chain) as a viewer, the attacker:
// each must be answered with JSON, never a 500 or a panic, within
// fuzzTimeBound and fuzzAllocBound. Seeds: every screen's document and the
// attacks of issue 9.
func FuzzGraphQLQuery(f *testing.F) {
	ts := mustStart(f)
	seedEstate(f, ts, 30, 3)
	admin := ts.login(f, "admin@example.com", adminPassword)
	admin.mustGQL(generatePlanMutation, map[string]any{"in": planInput("fuzz", nil)})
	admin.mustGQL(`mutation { createUser(input: {email: "vera@a.example", role: viewer}, password: "vera-password-1") { id } }`, nil)
	v := ts.login(f, "vera@a.example", "vera-password-1")

	for _, q := range screenDocuments(f) {
		f.Add(q)
	}
	for _, q := range []string{
		"{ viewer { " + repeat(499, "role") + "} }",
		"{ viewer { " + repeat(20000, "role") + "} }",
		doublingFragments(24),
		"{ " + aliased(50, "viewer { role }") + "}",
		`{ plans { edges { node { waves { members { host { waveMemberships { wave { plan { waves { members { reason } } } } } } } } } } } }`,
		`{ __schema { types { name fields { name type { name ofType { name } } } } } }`,
		`{ hosts { edges { node { name software { name } disks { name } outgoing { edges { node { dst { name } } } } } } } }`,
		`{ viewer { ...A } } fragment A on Viewer { ...B } fragment B on Viewer { ...A }`,
		`{ nodes(ids: ["1", "2", "34359738369"]) { id ... on Host { name waveMemberships { wave { name } } } } }`,
		"mutation { " + aliased(10, `createHost(input: {name: "x"}) { id }`) + "}",
	} {
		f.Add(q)
	}

	_, seen := ts.Logs.Since(0)
	f.Fuzz(func(t *testing.T, q string) {
		c := *v
		c.t = t
		body, _ := json.Marshal(map[string]any{"query": q})
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		start := time.Now()
		status, out := c.post("/graphql", string(body))
		took := time.Since(start)
		runtime.ReadMemStats(&after)
		alloc := after.TotalAlloc - before.TotalAlloc
		if status >= 500 || !json.Valid(out) {
			t.Fatalf("status %d, body %.300s", status, out)
		}
		if took > fuzzTimeBound {
			t.Fatalf("answered in %v; the bound is %v", took, fuzzTimeBound)
		}
		if alloc > fuzzAllocBound {
			t.Fatalf("the request allocated %d MiB; the bound is %d MiB", alloc>>20, fuzzAllocBound>>20)
		}
		var logs string
		logs, seen = ts.Logs.Since(seen)
		if strings.Contains(logs, `"level":"ERROR"`) {
			t.Fatalf("an error was logged for %q:\n%s", q, logs)
		}
	})
}
