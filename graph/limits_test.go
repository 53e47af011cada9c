package graph

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/99designs/gqlgen/complexity"
	"github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/executor"
	"github.com/google/go-cmp/cmp"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/formatter"
	"github.com/vektah/gqlparser/v2/gqlerror"
	"github.com/vektah/gqlparser/v2/parser"

	"github.com/ferry-migrate/ferry/graph/generated"
	"github.com/ferry-migrate/ferry/internal/topology"
)

// prepare runs what a request goes through before its resolvers: the
// limits, parsing, validation and complexity, as NewHandler sets them up.
func prepare(q string, vars map[string]any) (*graphql.OperationContext, gqlerror.List) {
	return prepareIn(context.Background(), q, vars)
}

// prepareIn is prepare in ctx (withSocket for a subscription).
func prepareIn(ctx context.Context, q string, vars map[string]any) (*graphql.OperationContext, gqlerror.List) {
	exec := executor.New(executableSchema(&Resolver{}))
	useLimits(exec)
	return exec.CreateOperationContext(graphql.StartOperationTrace(ctx), &graphql.RawParams{Query: q, Variables: vars})
}

// refusal is what a limit error tells a client.
type refusal struct {
	Code, Limit string
	Value, Max  int
}

func refusalOf(errs gqlerror.List) refusal {
	if len(errs) == 0 {
		return refusal{}
	}
	e := errs[0].Extensions
	r := refusal{}
	r.Code, _ = e["code"].(string)
	r.Limit, _ = e["limit"].(string)
	r.Value, _ = e["value"].(int)
	r.Max, _ = e["max"].(int)
	return r
}

// doubling is n fragments each spreading the next twice: 2ⁿ fields expanded
// from a document of a few hundred bytes.
func doubling(n int) string {
	var b strings.Builder
	b.WriteString("{ viewer { ...F0 } }\n")
	for i := 0; i < n; i++ {
		fmt.Fprintf(&b, "fragment F%d on Viewer { ...F%d ...F%d }\n", i, i+1, i+1)
	}
	fmt.Fprintf(&b, "fragment F%d on Viewer { role }\n", n)
	return b.String()
}

// aliasList is "a0: field a1: field …", n times.
func aliasList(n int, field string) string {
	var b strings.Builder
	for i := 0; i < n; i++ {
		fmt.Fprintf(&b, "a%d: %s ", i, field)
	}
	return b.String()
}

func aliases(n int, field string) string { return "{ " + aliasList(n, field) + "}" }

func mutations(n int, field string) string { return "mutation " + aliases(n, field) }

const planInput = `generatePlan(input: {name: "p", constraints: {bandwidth: "1Gbps"}}) { id }`

// TestLimitsRefuse feeds each attack of issue 9 (items 2 and 3) to the
// limits: each is refused with INVALID, the limit's name, the request's value
// and the limit, before gqlgen validates it.
func TestLimitsRefuse(t *testing.T) {
	deep := "name"
	for range 6 {
		deep = "application { hosts { edges { node { " + deep + " } } } }"
	}
	cases := []struct {
		name, query string
		want        refusal
		msg         string
	}{
		{"repeated field (100,000 in the issue)", "{ viewer { " + strings.Repeat("role ", 600) + "} }",
			refusal{"INVALID", "fields", 601, maxFields}, "query selects 601 fields (fragments expanded); the limit is 500"},
		{"repeated field past the token limit", "{ viewer { " + strings.Repeat("role ", 3000) + "} }",
			refusal{"INVALID", "tokens", 3005, maxTokens}, "query has 3005 tokens; the limit is 2000"},
		{"query text too long", "{ viewer { role } }" + strings.Repeat(" ", maxQueryBytes),
			refusal{"INVALID", "queryBytes", maxQueryBytes + 19, maxQueryBytes}, "the limit is 16384"},
		{"huge alias count", aliases(51, "viewer { role }"),
			refusal{"INVALID", "aliases", 51, maxAliases}, "query has 51 aliases (fragments expanded); the limit is 50"},
		{"aliases through a fragment", "{ viewer { ...A ...A } } fragment A on Viewer { " + aliasList(30, "role") + "}",
			refusal{"INVALID", "aliases", 60, maxAliases}, "query has 60 aliases"},
		{"24 fragments each spreading the next twice", doubling(24),
			refusal{"INVALID", "fields", 1<<24 + 1, maxFields}, "query selects 16777217 fields"},
		{"64 fragments each spreading the next twice", doubling(64),
			refusal{"INVALID", "fields", saturation, maxFields}, "the limit is 500"},
		{"wide fragments", "{ viewer { ...W } } fragment W on Viewer { " + strings.Repeat("...V ", 300) + "} fragment V on Viewer { role platform }",
			refusal{"INVALID", "fields", 601, maxFields}, "query selects 601 fields"},
		{"deep through fragments", "{ hosts { edges { node { ...D } } } } fragment D on Host { " + deep + " }",
			refusal{"INVALID", "depth", 28, maxDepth}, "query is nested 28 levels deep; the limit is 12"},
		{"aliased generatePlan", mutations(2, planInput),
			refusal{"INVALID", "mutations", 2 * expensive, maxMutationWeight}, "mutations in this request weigh 20 (generatePlan ×2); the limit is 10"},
		{"one generatePlan with a createHost", "mutation { " + planInput + ` createHost(input: {name: "x"}) { id } }`,
			refusal{"INVALID", "mutations", expensive + 1, maxMutationWeight}, "(createHost, generatePlan)"},
		{"11 createHost", mutations(11, `createHost(input: {name: "x"}) { id }`),
			refusal{"INVALID", "mutations", 11, maxMutationWeight}, "weigh 11 (createHost ×11); the limit is 10"},
		{"mutations through root fragments", "mutation { ...M ...M } fragment M on Mutation { " + strings.Join([]string{"a: " + planInput, "b: " + planInput}, " ") + " }",
			refusal{"INVALID", "mutations", 4 * expensive, maxMutationWeight}, "(generatePlan ×4)"},
		{"password guesses", mutations(2, `changePassword(current: "guess", new: "new-password-1")`),
			refusal{"INVALID", "mutations", 2 * expensive, maxMutationWeight}, "changePassword ×2"},
		{"nested plain lists (the 479-byte query)", "{ plans { edges { node { waves { members { host { waveMemberships { wave { plan { waves { members { reason } } } } } } } } } } } }",
			refusal{"INVALID", "complexity", 0, maxComplexity}, "the limit is 250000"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, errs := prepare(tc.query, nil)
			got := refusalOf(errs)
			if tc.want.Limit == "complexity" {
				got.Value = 0 // the figure is checked below
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Fatalf("refusal (-want +got):\n%s\nerrors: %v", diff, errs)
			}
			if !strings.Contains(errs[0].Message, tc.msg) {
				t.Fatalf("message %q does not contain %q", errs[0].Message, tc.msg)
			}
		})
	}
}

// TestLimitsBoundaries: a request exactly at each limit passes; one over is
// refused.
func TestLimitsBoundaries(t *testing.T) {
	atTokens := "{ viewer { " + strings.Repeat("role ", maxTokens-5) + "} }" // { viewer { … } } is 5 tokens
	if n, _ := countTokens(atTokens); n != maxTokens {
		t.Fatalf("the boundary query has %d tokens", n)
	}
	for _, tc := range []struct {
		name      string
		at, over  string
		overLimit string
	}{
		{"fields", "{ viewer { " + strings.Repeat("role ", maxFields-1) + "} }", "{ viewer { " + strings.Repeat("role ", maxFields) + "} }", "fields"},
		{"aliases", aliases(maxAliases, "viewer { role }"), aliases(maxAliases+1, "viewer { role }"), "aliases"},
		{"mutations", mutations(maxMutationWeight, `createHost(input: {name: "x"}) { id }`), mutations(maxMutationWeight+1, `createHost(input: {name: "x"}) { id }`), "mutations"},
		{"one expensive mutation", mutations(1, planInput), mutations(2, planInput), "mutations"},
		{"depth", "{ hosts(first: 1) { edges { node { application { hosts(first: 1) { edges { node { application { hosts(first: 1) { edges { node { name } } } } } } } } } } } }",
			"{ hosts(first: 1) { edges { node { application { hosts(first: 1) { edges { node { application { hosts(first: 1) { edges { node { application { name } } } } } } } } } } } } }", "depth"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, errs := prepare(tc.at, nil); refusalOf(errs).Limit != "" {
				t.Fatalf("at the limit: refused %v", errs)
			}
			if _, errs := prepare(tc.over, nil); refusalOf(errs).Limit != tc.overLimit {
				t.Fatalf("over the limit: %v", errs)
			}
		})
	}
	// The token boundary is checked on the text alone (600 fields would be
	// refused next).
	if err := checkQuery(atTokens); err == nil || err.Extensions["limit"] != "fields" {
		t.Fatalf("at the token limit: %v", err)
	}
	if err := checkQuery(atTokens[:len(atTokens)-3] + "role } }"); err == nil || err.Extensions["limit"] != "tokens" {
		t.Fatalf("one token over: %v", err)
	}
}

// TestLimitsLeaveErrorsToGqlgen: a document that does not parse, or whose
// fragments form a cycle, passes the limits (quickly) and gqlgen reports it
// as before.
func TestLimitsLeaveErrorsToGqlgen(t *testing.T) {
	for q, want := range map[string]string{
		`{ viewer { role `:                  "Expected Name",
		`{ viewer { role } } "unterminated`: "Unexpected <Invalid>",
		`{ viewer { ...A } } fragment A on Viewer { ...B role } fragment B on Viewer { ...A ...A }`: "Cannot spread fragment",
		`mutation { ...A } fragment A on Mutation { ...A ...A }`:                                    "Cannot spread fragment",
	} {
		_, errs := prepare(q, nil)
		if len(errs) == 0 || refusalOf(errs).Limit != "" || !strings.Contains(errs.Error(), want) {
			t.Errorf("%s: %v, want gqlgen's %q", q, errs, want)
		}
	}
}

// TestMutationWeights: every mutation of the schema is priced, and every
// priced name is a mutation. A new mutation fails here until it is given a
// weight (rule 7: it enters the cost limits in the same commit).
func TestMutationWeights(t *testing.T) {
	schema := generated.NewExecutableSchema(generated.Config{}).Schema()
	var missing, stale []string
	for _, f := range schema.Mutation.Fields {
		if _, ok := mutationWeights[f.Name]; !ok {
			missing = append(missing, f.Name)
		}
	}
	for name := range mutationWeights {
		if schema.Mutation.Fields.ForName(name) == nil {
			stale = append(stale, name)
		}
	}
	if len(missing)+len(stale) > 0 {
		t.Fatalf("mutationWeights: no weight for %v; not mutations: %v", missing, stale)
	}
}

// listFields returns every field of an object type that returns a list, as
// "Type.field", apart from connections' edges.
func listFields(schema *ast.Schema) []string {
	var out []string
	for _, def := range schema.Types {
		if def.Kind != ast.Object || strings.HasPrefix(def.Name, "__") {
			continue
		}
		for _, f := range def.Fields {
			if f.Type.Elem != nil && !(strings.HasSuffix(def.Name, "Connection") && f.Name == "edges") {
				out = append(out, def.Name+"."+f.Name)
			}
		}
	}
	sort.Strings(out)
	return out
}

// TestEveryListFieldPriced: each field that returns a list (found from the
// schema, so a new one is covered) is priced by weighLists, its children
// multiplied by a bound above 1, and listBounds names no field that is not a
// list. Connections' edges are covered by the connection's page size.
func TestEveryListFieldPriced(t *testing.T) {
	schema := generated.NewExecutableSchema(generated.Config{}).Schema()
	var root generated.ComplexityRoot
	priced := map[string]bool{}
	for _, name := range weighLists(&root, schema) {
		priced[name] = true
	}
	es := generated.NewExecutableSchema(generated.Config{Complexity: root})
	ctx := context.Background()
	lists := listFields(schema)
	if len(lists) < 30 {
		t.Fatalf("only %d list fields found: %v", len(lists), lists)
	}
	for _, name := range lists {
		typ, field, _ := strings.Cut(name, ".")
		if !priced[name] {
			t.Errorf("%s returns a list but is not priced", name)
			continue
		}
		args := map[string]any{}
		for _, a := range schema.Types[typ].Fields.ForName(field).Arguments {
			if a.Type.Elem != nil {
				args[a.Name] = []any{"1", "2", "3", "4", "5"}
			}
		}
		c, ok := es.Complexity(ctx, typ, field, 10, args)
		if !ok || c < 1+10*2 {
			t.Errorf("%s costs %d for 10 children: not priced as a list", name, c)
		}
	}
	for name := range listBounds {
		if !priced[name] {
			t.Errorf("listBounds names %s, which is not a list field", name)
		}
	}
	// Wave.members under Plan.waves is priced at the most hosts of a tenant.
	if got := listBounds["Plan.waves"] * listBounds["Wave.members"]; got != 20000 {
		t.Errorf("waves × members = %d, want 20,000", got)
	}
}

// frontendDocuments returns every GraphQL document the UI ships, from the
// generated frontend/src/gql/gql.ts (make check-generated keeps it in step
// with the .ts and .vue sources).
func frontendDocuments(t *testing.T) map[string]string {
	b, err := os.ReadFile("../frontend/src/gql/gql.ts")
	if err != nil {
		t.Fatal(err)
	}
	docs := map[string]string{}
	for _, line := range strings.Split(string(b), "\n") {
		key, _, ok := strings.Cut(strings.TrimSpace(line), `": typeof types.`)
		if !ok || !strings.HasPrefix(key, `"`) {
			continue
		}
		var q string
		if err := json.Unmarshal([]byte(key+`"`), &q); err != nil {
			t.Fatalf("gql.ts: %v: %s", err, line)
		}
		_, name, _ := strings.Cut(strings.TrimSpace(line), `typeof types.`)
		docs[strings.TrimSuffix(name, ",")] = q
	}
	if len(docs) < 40 {
		t.Fatalf("found only %d documents in gql.ts", len(docs))
	}
	return docs
}

// asUrqlSends adds __typename to every selection set but an operation's
// root, as the UI's urql client (its cacheExchange) does to each document
// before sending it.
func asUrqlSends(t *testing.T, q string) string {
	doc, err := parser.ParseQuery(&ast.Source{Input: q})
	if err != nil {
		t.Fatalf("parse: %v\n%s", err, q)
	}
	var add func(set ast.SelectionSet) ast.SelectionSet
	add = func(set ast.SelectionSet) ast.SelectionSet {
		has := false
		for _, sel := range set {
			switch x := sel.(type) {
			case *ast.Field:
				has = has || (x.Name == "__typename" && (x.Alias == "" || x.Alias == x.Name))
				if len(x.SelectionSet) > 0 {
					x.SelectionSet = add(x.SelectionSet)
				}
			case *ast.InlineFragment:
				x.SelectionSet = add(x.SelectionSet)
			}
		}
		if !has {
			set = append(set, &ast.Field{Name: "__typename", Alias: "__typename"})
		}
		return set
	}
	for _, op := range doc.Operations {
		for _, sel := range op.SelectionSet {
			switch x := sel.(type) {
			case *ast.Field:
				if len(x.SelectionSet) > 0 {
					x.SelectionSet = add(x.SelectionSet)
				}
			case *ast.InlineFragment:
				x.SelectionSet = add(x.SelectionSet)
			}
		}
	}
	for _, f := range doc.Fragments {
		f.SelectionSet = add(f.SelectionSet)
	}
	var b strings.Builder
	formatter.NewFormatter(&b).FormatQueryDocument(doc)
	return b.String()
}

// placeholder returns a value of type t for a required variable.
func placeholder(schema *ast.Schema, t *ast.Type) any {
	if t.Elem != nil {
		return []any{}
	}
	def := schema.Types[t.NamedType]
	switch {
	case def.Kind == ast.Enum:
		return def.EnumValues[0].Name
	case def.Kind == ast.InputObject:
		obj := map[string]any{}
		for _, f := range def.Fields {
			if f.Type.NonNull && f.DefaultValue == nil {
				obj[f.Name] = placeholder(schema, f.Type)
			}
		}
		return obj
	}
	switch t.NamedType {
	case "Int":
		return 1
	case "Float":
		return 1.0
	case "Boolean":
		return false
	case "Time":
		return "2026-01-01T00:00:00Z"
	case "Cursor":
		return nil
	}
	return "1"
}

// screenVariables are the variables a screen always sets that lower a
// document's cost below its worst case (an unset first is a 1,000-row page).
var screenVariables = map[string]map[string]any{
	"MigrationsDocument": {"first": 50}, // frontend/src/screens/migrations/Migrations.vue
}

// TestFrontendDocumentsWithinLimits runs every document the UI sends (as
// urql sends it, __typename added) through the limits with the worst variables the server allows (optional ones
// unset, so each connection's page is maxPage, unless screenVariables says
// what the screen sends): none may be refused.
func TestFrontendDocumentsWithinLimits(t *testing.T) {
	schema := generated.NewExecutableSchema(generated.Config{}).Schema()
	docs := frontendDocuments(t)
	names := make([]string, 0, len(docs))
	for n := range docs {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, name := range names {
		q := asUrqlSends(t, docs[name])
		vars := map[string]any{}
		for k, v := range screenVariables[name] {
			vars[k] = v
		}
		ctx := context.Background()
		if strings.HasPrefix(strings.TrimSpace(q), "subscription") {
			ctx = withSocket(ctx) // the UI subscribes over the websocket
		}
		oc, errs := prepareIn(ctx, q, vars)
		if oc != nil && oc.Operation != nil && len(errs) > 0 && strings.Contains(errs.Error(), "must be defined") {
			for _, v := range oc.Operation.VariableDefinitions {
				if _, set := vars[v.Variable]; v.Type.NonNull && !set {
					vars[v.Variable] = placeholder(schema, v.Type)
				}
			}
			oc, errs = prepareIn(ctx, q, vars)
		}
		if len(errs) > 0 {
			t.Errorf("%s refused: %v", name, errs)
			continue
		}
		c := complexity.Calculate(context.Background(), executableSchema(&Resolver{}), oc.Operation, oc.Variables)
		n, _ := countTokens(q)
		t.Logf("%-36s complexity %7d (%3.0f%%), %3d tokens, %4d bytes", name, c, 100*float64(c)/maxComplexity, n, len(q))
	}
}

// worstShapes are documents built to be as expensive to validate as the
// limits allow, each grown to the largest size checkQuery still accepts.
func worstShapes(t testing.TB) map[string]string {
	gens := map[string]func(k int) string{
		"repeated field": func(k int) string { return "{ viewer { " + strings.Repeat("role ", k) + "} }" },
		"repeated subselection": func(k int) string {
			return "{ viewer { " + strings.Repeat("user { email } ", k) + "} }"
		},
		"repeated wide subselection": func(k int) string {
			return "{ viewer { " + strings.Repeat("user { "+strings.Repeat("email ", 20)+"} ", k) + "} }"
		},
		"repeated deep path": func(k int) string {
			return "{ " + strings.Repeat("hosts { edges { node { application { hosts { edges { node { application { hosts { edges { node { name } } } } } } } } } } } ", k) + "}"
		},
		"inline fragments": func(k int) string {
			return "{ viewer { " + strings.Repeat("... on Viewer { role } ", k) + "} }"
		},
		"distinct fragments": func(k int) string {
			var b strings.Builder
			b.WriteString("{ viewer { ")
			for i := 0; i < k; i++ {
				fmt.Fprintf(&b, "...F%d ", i)
			}
			b.WriteString("} } ")
			for i := 0; i < k; i++ {
				fmt.Fprintf(&b, "fragment F%d on Viewer { user { email } } ", i)
			}
			return b.String()
		},
		"one fragment spread often": func(k int) string {
			return "{ viewer { " + strings.Repeat("...F ", k) + "} } fragment F on Viewer { role user { email } }"
		},
		"doubling fragments": doubling,
		"operations": func(k int) string {
			var b strings.Builder
			for i := 0; i < k; i++ {
				fmt.Fprintf(&b, "query q%d { viewer { ...F } } ", i)
			}
			return b.String() + "fragment F on Viewer { role user { email } }"
		},
		"unused variables": func(k int) string {
			var b strings.Builder
			b.WriteString("query(")
			for i := 0; i < k; i++ {
				fmt.Fprintf(&b, "$v%d: Int ", i)
			}
			return b.String() + ") { viewer { role } }"
		},
		"repeated directives": func(k int) string {
			return "{ viewer { role " + strings.Repeat("@include(if: true) ", k) + "} }"
		},
		"repeated arguments": func(k int) string {
			return "{ hosts(" + strings.Repeat("first: 1 ", k) + ") { totalCount } }"
		},
		"aliases over repeated fields": func(k int) string {
			return "{ viewer { " + aliasList(maxAliases, "role") + strings.Repeat("role ", k) + "} }"
		},
	}
	out := map[string]string{}
	for name, gen := range gens {
		k := 1
		for checkQuery(gen(k*2)) == nil && k < 1<<20 {
			k *= 2
		}
		lo, hi := k, k*2 // gen(lo) passes, gen(hi) is refused
		for hi-lo > 1 {
			mid := (lo + hi) / 2
			if checkQuery(gen(mid)) == nil {
				lo = mid
			} else {
				hi = mid
			}
		}
		out[name] = gen(lo)
	}
	return out
}

// TestWorstPermittedValidatesQuickly proves the limits make validation
// cheap: every worst-case document they let through is parsed, validated
// and priced in a small part of the request's 60 s deadline. The bound is
// generous (a tenth of the deadline) so that a loaded machine does not
// fail it; the measured times, milliseconds, are in docs/benchmarks.md
// (BenchmarkWorstPermitted). Before the limits, 20,000 repeated fields took
// 14 s and 24 doubling fragments 3.6 s.
func TestWorstPermittedValidatesQuickly(t *testing.T) {
	const bound = 6 * time.Second
	for name, q := range worstShapes(t) {
		start := time.Now()
		_, errs := prepare(q, nil)
		d := time.Since(start)
		if r := refusalOf(errs); r.Limit != "" && r.Limit != "complexity" {
			t.Errorf("%s: the worst permitted document is refused by %s", name, r.Limit)
		}
		n, _ := countTokens(q)
		t.Logf("%-28s %6d bytes %5d tokens: %v", name, len(q), n, d.Round(time.Microsecond))
		if d > bound {
			t.Errorf("%s took %v to prepare; the bound is %v", name, d, bound)
		}
	}
}

// BenchmarkWorstPermitted measures parse + validation + complexity of each
// worst-case document the limits let through (docs/benchmarks.md).
func BenchmarkWorstPermitted(b *testing.B) {
	shapes := worstShapes(b)
	names := make([]string, 0, len(shapes))
	for n := range shapes {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, name := range names {
		q := shapes[name]
		b.Run(strings.ReplaceAll(name, " ", "_"), func(b *testing.B) {
			b.ReportMetric(float64(len(q)), "bytes")
			for b.Loop() {
				prepare(q, nil)
			}
		})
	}
}

// BenchmarkLimitsOverhead measures what the limits add to a screen's query
// (lexing and parsing it once more before gqlgen's cached parse).
func BenchmarkLimitsOverhead(b *testing.B) {
	q := `query HostDetail($id: ID!) { node(id: $id) { __typename ... on Host { id name fqdn os disks { id name } software { id name } outgoing(first: 100) { totalCount edges { node { id port dst { id name } } } } } } }`
	for b.Loop() {
		if err := checkQuery(q); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(len(q)), "bytes")
}

// introspectionQuery is the query GraphiQL and graphql-js's
// getIntrospectionQuery send.
const introspectionQuery = `query IntrospectionQuery {
  __schema {
    queryType { name } mutationType { name } subscriptionType { name }
    types { ...FullType }
    directives { name description locations args { ...InputValue } }
  }
}
fragment FullType on __Type {
  kind name description
  fields(includeDeprecated: true) { name description args { ...InputValue } type { ...TypeRef } isDeprecated deprecationReason }
  inputFields { ...InputValue }
  interfaces { ...TypeRef }
  enumValues(includeDeprecated: true) { name description isDeprecated deprecationReason }
  possibleTypes { ...TypeRef }
}
fragment InputValue on __InputValue { name description type { ...TypeRef } defaultValue }
fragment TypeRef on __Type {
  kind name
  ofType { kind name ofType { kind name ofType { kind name ofType { kind name ofType { kind name ofType { kind name ofType { kind name } } } } } } }
}`

// TestIntrospection: one standard introspection passes (its ofType chain is
// deeper than maxDepth, which does not apply inside __schema); repeating it
// by aliases, outside or inside, is refused.
func TestIntrospection(t *testing.T) {
	if _, errs := prepare(introspectionQuery, nil); len(errs) > 0 {
		t.Fatalf("the standard introspection query is refused: %v", errs)
	}
	for q, want := range map[string]refusal{
		"{ a: __schema { queryType { name } } b: __schema { queryType { name } } }":           {"INVALID", "introspection", 2, maxIntrospection},
		`{ __schema { queryType { name } } __type(name: "Host") { name } }`:                   {"INVALID", "introspection", 2, maxIntrospection},
		"{ __schema { a: types { name } b: types { name } c: types { fields { name } } } }":   {"INVALID", "introspectionAliases", 3, 0},
		"{ __schema { types { ...T } } } fragment T on __Type { n: name fields { f: name } }": {"INVALID", "introspectionAliases", 2, 0},
		"{ ...Q ...Q } fragment Q on Query { __schema { queryType { name } } }":               {"INVALID", "introspection", 2, maxIntrospection},
	} {
		_, errs := prepare(q, nil)
		if diff := cmp.Diff(want, refusalOf(errs)); diff != "" {
			t.Errorf("%s (-want +got):\n%s", q, diff)
		}
	}
}

// TestTransportsCarryTheirOperations: subscriptions only over the websocket,
// queries and mutations only elsewhere.
func TestTransportsCarryTheirOperations(t *testing.T) {
	sock := withSocket(context.Background())
	for _, tc := range []struct {
		ctx   context.Context
		query string
		want  string
	}{
		{context.Background(), "subscription { migrationProgress { id } }", "subscriptions need the websocket"},
		{sock, "{ viewer { role } }", "the websocket carries subscriptions only; send queries and mutations with POST /graphql"},
		{sock, `mutation { createHost(input: {name: "x"}) { id } }`, "the websocket carries subscriptions only; send queries and mutations with POST /graphql"},
	} {
		_, errs := prepareIn(tc.ctx, tc.query, nil)
		if len(errs) == 0 || errs[0].Extensions["code"] != "INVALID" || !strings.Contains(errs[0].Message, tc.want) {
			t.Errorf("%s: %v, want %q", tc.query, errs, tc.want)
		}
	}
	if _, errs := prepareIn(sock, "subscription { migrationProgress { id } }", nil); len(errs) > 0 {
		t.Errorf("subscription over the websocket: %v", errs)
	}
}

// TestTopologyBoundsMatchItsCaps: the cost of Query.topology is priced with
// the caps internal/topology and the resolver enforce, so a larger cap
// cannot slip past the cost limit unpriced.
func TestTopologyBoundsMatchItsCaps(t *testing.T) {
	for field, want := range map[string]int{
		"Topology.nodes": topology.MaxNodes + 1, // the page and the node standing for the rest
		"Topology.edges": topology.MaxEdges, "TopologyEdge.ports": topology.MaxPorts,
		"Topology.cycles": topology.MaxCycles, "TopologyCycle.nodes": topology.MaxCycleKeys,
	} {
		if got := listBounds[field]; got != want {
			t.Errorf("listBounds[%q] = %d; internal/topology caps it at %d", field, got, want)
		}
	}
}
