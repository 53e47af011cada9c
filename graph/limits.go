package graph

import (
	"context"
	"fmt"
	"reflect"
	"sort"
	"strings"

	"github.com/99designs/gqlgen/complexity"
	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"
	"github.com/vektah/gqlparser/v2/lexer"
	"github.com/vektah/gqlparser/v2/parser"

	"github.com/ferry-migrate/ferry"
	"github.com/ferry-migrate/ferry/graph/generated"
)

// Limits on what one request may ask for. Every request (POST, GET, an
// operation sent over the websocket, an APQ hash) passes them before it runs;
// docs/security.md ("Request cost limits") gives each one's reason.
//
// The first group is checked on the query text before gqlgen parses and
// validates it: gqlparser's validation is quadratic in the fields of a
// selection set (OverlappingFieldsCanBeMerged compares every pair) and
// gqlgen's complexity walk re-enters a fragment at every spread, so both must
// only ever see documents these limits have already made small. The worst
// document they let through validates in milliseconds (BenchmarkWorstPermitted).
const (
	maxQueryBytes = 16 << 10 // query text; the largest screen's is 1.3 KiB
	maxTokens     = 2000     // lexical tokens (names, punctuation, values); the largest screen's is 198
	maxFields     = 500      // field selections, every fragment spread expanded; the largest screen's is 110
	maxAliases    = 50       // aliased fields, every fragment spread expanded; the largest screen's is 6
	maxDepth      = 12       // deepest selection
	// maxIntrospection caps the __schema and __type fields of a request, and
	// no alias may appear inside them: gqlgen's complexity does not
	// price introspection, and 50 aliased __schema { types { fields { type {
	// fields … } } } } took 2–3 s. One introspection answers any tool.
	maxIntrospection = 1
	// maxMutationWeight caps the mutations of one request: an ordinary
	// mutation weighs 1, an expensive one (see mutationWeights) weighs the
	// whole budget, so it runs alone.
	maxMutationWeight = 10

	// Checked once the operation is validated.
	maxComplexity = 250_000 // ≈ values in the answer; see weighLists
	maxPage       = 1000    // largest first/last of a connection

	// maxSocketMessage caps one websocket message, as internal/web's 1 MiB
	// caps an HTTP body (a subscribe message carries a query and variables).
	maxSocketMessage = 1 << 20
)

// expensive is the weight of a mutation that plans, assesses, talks to a
// cloud, launches machines or hashes a password to check it.
const expensive = maxMutationWeight

// mutationWeights prices every mutation. A mutation missing here weighs as
// an expensive one (TestMutationWeights fails until it is listed).
var mutationWeights = map[string]int{
	"createTenant": 1, "updateTenant": 1, "createUser": 1, "updateUser": 1,
	"createAPIToken": 1, "revokeAPIToken": 1,
	"createHost": 1, "updateHost": 1, "deleteHost": 1,
	"createApplication": 1, "updateApplication": 1,
	"createCloudAccount": 1, "deleteCloudAccount": 1,
	"createRegistrationToken": 1, "revokeRegistrationToken": 1, "revokeAgent": 1,
	"createDiscoverySource": 1, "updateDiscoverySource": 1, "deleteDiscoverySource": 1,
	"runDiscoverySource": 1, // queues a task; the vCenter is read by a worker

	// changePassword checks the current password: aliases of it would be a
	// password guesser that no sign-in limiter sees.
	"changePassword":    expensive,
	"checkCloudAccount": expensive, // calls the cloud
	"generatePlan":      expensive, // plans up to 2,000 hosts inside the request
	"movePlanHost":      expensive, // re-checks every rule of the plan
	"runAssessment":     expensive, // assesses up to 2,000 hosts inside the request
	"startMigration":    expensive, // up to 500 migrations and agent commands
	"testLaunch":        expensive,
	"cutover":           expensive,
	"rollback":          expensive,
	// Suggesting reads the whole estate and infers applications inside the
	// request; a split recomputes two suggestions' evidence from it.
	"suggestApplications":         expensive,
	"splitApplicationSuggestion":  expensive,
	"acceptApplicationSuggestion": 1,
	// A wave's start starts up to its cap of migrations (≤ 500) inside the
	// request; the others change a row or two and enqueue a tick.
	"startWave":                   expensive,
	"pauseWave":                   1,
	"resumeWave":                  1,
	"approveWave":                 1,
	"setHostCutoverTime":          1,
	"setMigrationSettings":        1,
	"tickWaveStep":                1,
	"renameApplicationSuggestion": 1,
}

// executableSchema is the schema with every list field priced (weighLists).
func executableSchema(r *Resolver) graphql.ExecutableSchema {
	cfg := generated.Config{Resolvers: r}
	weighLists(&cfg.Complexity, generated.NewExecutableSchema(generated.Config{}).Schema())
	return generated.NewExecutableSchema(cfg)
}

// useLimits adds the request limits to a server (or, in tests, to a bare
// executor), ahead of any extension that would store or run the query.
// The parser's own token limit is a second lock behind requestLimits, which
// counts first and says more.
func useLimits(srv interface {
	Use(graphql.HandlerExtension)
	SetParserTokenLimit(int)
}) {
	srv.SetParserTokenLimit(maxTokens)
	srv.Use(&requestLimits{})
}

// limitError is the refusal of a request over a limit: code INVALID, a
// message naming the limit and the request's value, and both in extensions
// (limit, value, max) for scripts.
func limitError(limit string, value, max int, format string, args ...any) *gqlerror.Error {
	err := gqlerror.Errorf(format, args...)
	err.Extensions = map[string]any{"code": ferry.EINVALID, "limit": limit, "value": value, "max": max}
	return err
}

// requestLimits is the gqlgen extension that enforces the limits: on the raw
// query before parsing and validation (MutateOperationParameters, registered
// before the APQ extension so that an over-limit query is never stored), and
// on the validated operation (MutateOperationContext: transport, complexity).
type requestLimits struct {
	es graphql.ExecutableSchema
}

var _ interface {
	graphql.HandlerExtension
	graphql.OperationParameterMutator
	graphql.OperationContextMutator
} = (*requestLimits)(nil)

func (*requestLimits) ExtensionName() string { return "RequestLimits" }

func (l *requestLimits) Validate(es graphql.ExecutableSchema) error {
	l.es = es
	return nil
}

// MutateOperationParameters checks the query text. A request that carries
// only an APQ hash has no text yet: the text it names passed this check when
// it was stored.
func (l *requestLimits) MutateOperationParameters(_ context.Context, p *graphql.RawParams) *gqlerror.Error {
	if p.Query == "" {
		return nil
	}
	return checkQuery(p.Query)
}

// MutateOperationContext refuses queries and mutations over the websocket,
// subscriptions anywhere else, and operations that cost more than
// maxComplexity.
func (l *requestLimits) MutateOperationContext(ctx context.Context, oc *graphql.OperationContext) *gqlerror.Error {
	if oc.Operation == nil {
		return nil
	}
	switch sub := oc.Operation.Operation == ast.Subscription; {
	case overSocket(ctx) && !sub:
		err := gqlerror.Errorf("the websocket carries subscriptions only; send queries and mutations with POST /graphql")
		err.Extensions = map[string]any{"code": ferry.EINVALID}
		return err
	case !overSocket(ctx) && sub:
		// Over POST or GET it would hold the request open until the
		// 60 s timeout, waiting for events.
		err := gqlerror.Errorf("subscriptions need the websocket (graphql-transport-ws on /graphql)")
		err.Extensions = map[string]any{"code": ferry.EINVALID}
		return err
	}
	if c := complexity.Calculate(ctx, l.es, oc.Operation, oc.Variables); c > maxComplexity {
		return limitError("complexity", c, maxComplexity,
			"query costs %d (each list's fields counted once per row it may return); the limit is %d", c, maxComplexity)
	}
	return nil
}

// checkQuery measures a query's text against the limits checked before
// parsing. A query that does not lex or parse passes: gqlgen then reports
// the syntax error where it is.
func checkQuery(q string) *gqlerror.Error {
	if len(q) > maxQueryBytes {
		return limitError("queryBytes", len(q), maxQueryBytes, "query text is %d bytes; the limit is %d", len(q), maxQueryBytes)
	}
	n, ok := countTokens(q)
	if !ok {
		return nil
	}
	if n > maxTokens {
		return limitError("tokens", n, maxTokens, "query has %d tokens; the limit is %d", n, maxTokens)
	}
	doc, err := parser.ParseQuery(&ast.Source{Input: q})
	if err != nil {
		return nil
	}
	return measureDoc(doc).check()
}

// countTokens counts q's lexical tokens as the parser does (comments do not
// count). ok is false when q does not lex.
func countTokens(q string) (n int, ok bool) {
	lx := lexer.New(&ast.Source{Input: q})
	for {
		tok, err := lx.ReadToken()
		if err != nil {
			return n, false
		}
		switch tok.Kind {
		case lexer.EOF:
			return n, true
		case lexer.Comment:
		default:
			n++
		}
	}
}

// shape is what a selection set asks for, fragments expanded.
type shape struct {
	fields, aliases, depth int
	// weight sums mutationWeights of the set's own fields (and those of the
	// fragments spread into it at the same level); it means something only
	// for an operation's root.
	weight int
	// intro counts __schema and __type fields, introAliases the aliases
	// under them.
	intro, introAliases int
}

// saturation caps the counts: 24 fragments each spreading the next twice
// expand to 2²⁴ fields, and 64 of them would overflow an int.
const saturation = 1 << 40

func satAdd(a, b int) int {
	if a+b > saturation {
		return saturation
	}
	return a + b
}

// docShape is the shape of a whole document: every operation (only one
// runs, but gqlgen validates them all), fields and aliases summed, the
// deepest depth and the heaviest mutation.
type docShape struct {
	fields, aliases, depth int
	intro, introAliases    int
	weight                 int
	heaviest               ast.SelectionSet // root of the heaviest mutation
	m                      *measurer
}

// check refuses the first limit d is over.
func (d docShape) check() *gqlerror.Error {
	switch {
	case d.fields > maxFields:
		return limitError("fields", d.fields, maxFields, "query selects %d fields (fragments expanded); the limit is %d", d.fields, maxFields)
	case d.aliases > maxAliases:
		return limitError("aliases", d.aliases, maxAliases, "query has %d aliases (fragments expanded); the limit is %d", d.aliases, maxAliases)
	case d.depth > maxDepth:
		return limitError("depth", d.depth, maxDepth, "query is nested %d levels deep; the limit is %d", d.depth, maxDepth)
	case d.intro > maxIntrospection:
		return limitError("introspection", d.intro, maxIntrospection,
			"query asks for __schema or __type %d times; the limit is %d", d.intro, maxIntrospection)
	case d.introAliases > 0:
		return limitError("introspectionAliases", d.introAliases, 0,
			"query has %d aliases inside __schema or __type; the limit is 0", d.introAliases)
	case d.weight > maxMutationWeight:
		return limitError("mutations", d.weight, maxMutationWeight,
			"mutations in this request weigh %d (%s); the limit is %d: up to %d ordinary mutations, or one expensive one alone",
			d.weight, strings.Join(d.m.rootNames(d.heaviest), ", "), maxMutationWeight, maxMutationWeight)
	}
	return nil
}

// measureDoc walks a parsed (not yet validated) document once per fragment:
// each fragment's shape is computed once and reused at every spread, so the
// walk is linear in the document even where the expansion is exponential.
// A fragment that spreads itself counts as empty inside itself; validation
// reports the cycle.
func measureDoc(doc *ast.QueryDocument) docShape {
	m := measurer{frags: map[string]*ast.FragmentDefinition{}, memo: map[string]*shape{}, busy: map[string]bool{}}
	for _, f := range doc.Fragments {
		if _, dup := m.frags[f.Name]; !dup { // the first of duplicates, as gqlparser's walker
			m.frags[f.Name] = f
		}
	}
	d := docShape{m: &m}
	for _, op := range doc.Operations {
		s := m.set(op.SelectionSet)
		d.fields = satAdd(d.fields, s.fields)
		d.aliases = satAdd(d.aliases, s.aliases)
		d.depth = max(d.depth, s.depth)
		d.intro = satAdd(d.intro, s.intro)
		d.introAliases = satAdd(d.introAliases, s.introAliases)
		if op.Operation == ast.Mutation && s.weight > d.weight {
			d.weight, d.heaviest = s.weight, op.SelectionSet
		}
	}
	return d
}

type measurer struct {
	frags map[string]*ast.FragmentDefinition
	memo  map[string]*shape
	busy  map[string]bool
}

func (m *measurer) set(set ast.SelectionSet) *shape {
	s := &shape{}
	add := func(c *shape) {
		s.fields = satAdd(s.fields, c.fields)
		s.aliases = satAdd(s.aliases, c.aliases)
		s.depth = max(s.depth, c.depth)
		s.weight = satAdd(s.weight, c.weight)
		s.intro = satAdd(s.intro, c.intro)
		s.introAliases = satAdd(s.introAliases, c.introAliases)
	}
	for _, sel := range set {
		switch x := sel.(type) {
		case *ast.Field:
			child := m.set(x.SelectionSet)
			f := &shape{fields: satAdd(1, child.fields), aliases: child.aliases, depth: 1 + child.depth,
				intro: child.intro, introAliases: child.introAliases}
			if x.Name == "__schema" || x.Name == "__type" {
				// Bounded by the rules above and gqlparser's
				// MaxIntrospectionDepth (three levels of lists); the
				// standard introspection query nests ofType 13 deep.
				f.intro, f.introAliases, f.depth = satAdd(f.intro, 1), child.aliases, 1
			}
			if x.Alias != "" && x.Alias != x.Name {
				f.aliases = satAdd(f.aliases, 1)
			}
			w, ok := mutationWeights[x.Name]
			if !ok {
				w = expensive
			}
			f.weight = w
			add(f)
		case *ast.InlineFragment:
			add(m.set(x.SelectionSet))
		case *ast.FragmentSpread:
			add(m.fragment(x.Name))
		}
	}
	return s
}

// rootNames lists an operation's root fields with how often each occurs
// ("generatePlan ×2"), fragments spread at the root expanded.
func (m *measurer) rootNames(set ast.SelectionSet) []string {
	memo, busy := map[string]map[string]int{}, map[string]bool{}
	var counts func(set ast.SelectionSet) map[string]int
	counts = func(set ast.SelectionSet) map[string]int {
		n := map[string]int{}
		for _, sel := range set {
			var sub map[string]int
			switch x := sel.(type) {
			case *ast.Field:
				n[x.Name] = satAdd(n[x.Name], 1)
			case *ast.InlineFragment:
				sub = counts(x.SelectionSet)
			case *ast.FragmentSpread:
				f := m.frags[x.Name]
				if sub = memo[x.Name]; sub == nil && f != nil && !busy[x.Name] {
					busy[x.Name] = true
					sub = counts(f.SelectionSet)
					delete(busy, x.Name)
					memo[x.Name] = sub
				}
			}
			for k, v := range sub {
				n[k] = satAdd(n[k], v)
			}
		}
		return n
	}
	var out []string
	for name, c := range counts(set) {
		if c > 1 {
			name = fmt.Sprintf("%s ×%d", name, c)
		}
		out = append(out, name)
	}
	sort.Strings(out)
	return out
}

func (m *measurer) fragment(name string) *shape {
	if s, ok := m.memo[name]; ok {
		return s
	}
	f := m.frags[name]
	if f == nil || m.busy[name] {
		return &shape{} // unknown or cyclic: validation says so
	}
	m.busy[name] = true
	s := m.set(f.SelectionSet)
	delete(m.busy, name)
	m.memo[name] = s
	return s
}

// socketKey marks the context of operations that arrived over the websocket.
type socketKey struct{}

func withSocket(ctx context.Context) context.Context {
	return context.WithValue(ctx, socketKey{}, true)
}

func overSocket(ctx context.Context) bool { return ctx.Value(socketKey{}) != nil }

// listBounds are the realistic largest lengths of the plain lists (every
// list field that is not a Relay connection's edges), by "Type.field". A
// list field not named here is priced at defaultListBound. The bounds come
// from the domain, not from the data of the moment, so that nesting lists
// multiplies into a refusal while each screen's own query stays within
// maxComplexity (TestFrontendDocumentsWithinLimits).
var listBounds = map[string]int{
	// A host is in at most one wave of a plan, so waves × members is the
	// most hosts of a tenant (20,000): one plan's screen asks for all of them.
	"Plan.waves":   100,
	"Wave.members": 200,
	// A wave's runbook is one row per member, each with its migration's
	// steps (prepare, sync, test launches, cutover, rollback) and the
	// newest events and hook deliveries the resolver returns.
	"Wave.runbook":               200,
	"RunbookHost.steps":          10,
	"RunbookStep.events":         20,
	"RunbookHost.hookDeliveries": 20,
	"Wave.hooks":                 20,
	"Wave.manualSteps":           20,
	"WaveProgress.byState":       9,
	"StartWavePayload.started":   500,
	"StartWavePayload.queued":    500,
	"StartWavePayload.noAgent":   500,
	// One membership per plan that holds the host.
	"Host.waveMemberships":       20,
	"Host.software":              2000, // packages and services from agent inventory
	"Host.disks":                 16,
	"Host.nics":                  16,
	"Host.ips":                   16,
	"Host.macs":                  16,
	"Host.tags":                  16,
	"Host.assessments":           10, // one per target and region
	"Host.migrations":            10,
	"NetworkInterface.addresses": 16,
	"Assessment.reasons":         10,
	"Assessment.actions":         10,
	"Assessment.missing":         10,
	"Migration.disks":            16,
	"Migration.launches":         20,
	"Migration.allowedActions":   3,
	"RecoveryPoint.launches":     20,
	"RecoveryPoint.labels":       10,
	"Launch.checks":              20,
	"CloudAccountCheck.checks":   10,
	"Assessment.findings":        20, // reasons, actions, missing data and notes of one host
	"BusinessCase.cashFlow":      10, // one row per year, at most 10 years
	"PriceCatalogInfo.regions":   50,
	// Issue 12: a suggestion lists its members and its three heaviest
	// ports and neighbours; a wave names a handful of rating factors; a
	// plan its shared services (one per 600 hosts on generated estates).
	"ApplicationSuggestion.members":    200,
	"ApplicationSuggestion.ports":      3,
	"ApplicationSuggestion.neighbours": 3,
	"Wave.confidenceFactors":           10,
	"Wave.riskFactors":                 10,
	"Plan.sharedServices":              200,
	// Issue 14: one page of the topology (internal/topology's caps, which
	// the resolver enforces on first and maxEdges): 1,000 nodes and the one
	// standing for the rest, 5,000 edges of at most 5 ports, 200 cycles
	// naming at most 20 nodes each.
	// A member's reason has at most five parts (group, shared, wave,
	// devtest, latency: planner.Member.Reasons).
	"WaveMember.reasons":  5,
	"Topology.nodes":      1001,
	"Topology.edges":      5000,
	"TopologyEdge.ports":  5,
	"Topology.cycles":     200,
	"TopologyCycle.nodes": 20,
}

// defaultListBound prices every other list: Plan's problems and warnings,
// an import's row errors as the discovery screen shows them, a move's
// violations.
const defaultListBound = 100

// weighLists sets the complexity of every field that returns a list, found
// from the schema so that a new list field is priced without a line of code:
//   - a Relay connection (first/last arguments): 1 + children × page size
//     (the page asked for, or maxPage); its edges are then counted once;
//   - a list with a list argument (nodes(ids), startMigration(hostIds)):
//     1 + children × the argument's length;
//   - any other list: 1 + children × its bound (listBounds), a list of
//     scalars counting each value as 1.
//
// Multiplication saturates: gqlgen ignores a negative (overflowed) cost and
// would fall back to children + 1. It returns the "Type.field" names it
// priced.
func weighLists(root *generated.ComplexityRoot, schema *ast.Schema) []string {
	rv := reflect.ValueOf(root).Elem()
	var priced []string
	for i := 0; i < rv.NumField(); i++ {
		obj, objName := rv.Field(i), rv.Type().Field(i).Name
		def := typeByGoName(schema, objName)
		if obj.Kind() != reflect.Struct || def == nil || def.Kind != ast.Object {
			continue
		}
		for j := 0; j < obj.NumField(); j++ {
			f, goName := obj.Field(j), obj.Type().Field(j).Name
			fd := fieldByGoName(def, goName)
			if fd == nil || f.Kind() != reflect.Func || !f.CanSet() {
				continue
			}
			ft := f.Type()
			var price func(args []reflect.Value) int
			switch {
			case isConnection(ft):
				price = func(args []reflect.Value) int {
					n := maxPage
					for _, a := range []reflect.Value{args[2], args[4]} {
						if !a.IsNil() {
							n = int(a.Elem().Int())
						}
					}
					if n < 1 || n > maxPage {
						n = 1 // out of range: let the resolver say so clearly
					}
					return n
				}
			case fd.Type.Elem == nil:
				continue
			case strings.HasSuffix(def.Name, "Connection") && fd.Name == "edges":
				continue // priced by the connection field's page size
			default:
				bound := defaultListBound
				if b, ok := listBounds[def.Name+"."+fd.Name]; ok {
					bound = b
				}
				slice := -1
				for k := 1; k < ft.NumIn(); k++ {
					if ft.In(k).Kind() == reflect.Slice {
						slice = k
						break
					}
				}
				price = func(args []reflect.Value) int {
					if slice > 0 {
						return max(args[slice].Len(), 1)
					}
					return bound
				}
			}
			f.Set(reflect.MakeFunc(ft, func(args []reflect.Value) []reflect.Value {
				return []reflect.Value{reflect.ValueOf(listCost(int(args[0].Int()), price(args)))}
			}))
			priced = append(priced, def.Name+"."+fd.Name)
		}
	}
	return priced
}

// listCost is 1 + max(children, 1) × rows, saturating at maxInt.
func listCost(children, rows int) int {
	children = max(children, 1)
	const maxInt = int(^uint(0) >> 1)
	if rows > 0 && children > (maxInt-1)/rows {
		return maxInt
	}
	return 1 + children*rows
}

var intPtr = reflect.TypeOf((*int)(nil))

// isConnection reports whether a complexity function takes a connection's
// (after, first, before, last) arguments.
func isConnection(ft reflect.Type) bool {
	return ft.NumIn() >= 5 && ft.In(0).Kind() == reflect.Int && ft.In(2) == intPtr && ft.In(4) == intPtr
}

// typeByGoName finds the schema type gqlgen named goName in ComplexityRoot.
func typeByGoName(schema *ast.Schema, goName string) *ast.Definition {
	if d := schema.Types[goName]; d != nil {
		return d
	}
	for name, d := range schema.Types {
		if strings.EqualFold(name, goName) {
			return d
		}
	}
	return nil
}

// fieldByGoName finds the field gqlgen named goName (apiTokens → APITokens).
func fieldByGoName(def *ast.Definition, goName string) *ast.FieldDefinition {
	for _, f := range def.Fields {
		if strings.EqualFold(strings.ReplaceAll(f.Name, "_", ""), goName) {
			return f
		}
	}
	return nil
}
