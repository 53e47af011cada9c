package graph

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"sort"
	"strings"
	"time"

	"entgo.io/contrib/entgql"
	"github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/handler"
	"github.com/99designs/gqlgen/graphql/handler/extension"
	"github.com/99designs/gqlgen/graphql/handler/lru"
	"github.com/99designs/gqlgen/graphql/handler/transport"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"github.com/ferry-migrate/ferry"
	"github.com/ferry-migrate/ferry/ent"
	"github.com/ferry-migrate/ferry/ent/schema"
	"github.com/ferry-migrate/ferry/internal/trace"
	"github.com/ferry-migrate/ferry/internal/viewer"
)

// NewHandler returns the /graphql handler: websocket (subscriptions), POST and GET transports, an ent
// transaction around every mutation, limits, the error presenter and the
// audit trail.
func NewHandler(r *Resolver, log *slog.Logger) *handler.Server {
	r.counts = newCountCache()
	r.Client.Host.Use(hostCountInvalidator(r.counts))
	r.Client.Host.Intercept(r.counts.interceptor())
	srv := handler.New(executableSchema(r))
	srv.AddTransport(websocket(log))
	srv.AddTransport(transport.Options{})
	srv.AddTransport(transport.GET{})
	srv.AddTransport(transport.POST{})
	srv.SetQueryCache(lruCache())
	useLimits(srv) // before APQ: an over-limit query is never stored
	srv.Use(extension.AutomaticPersistedQuery{Cache: lru.New[string](1000)})
	srv.Use(extension.Introspection{})
	srv.Use(transactioner{entgql.Transactioner{TxOpener: r.Client}})
	srv.AroundFields(auditMutations(log))
	srv.SetErrorPresenter(presentError(log))
	srv.SetRecoverFunc(func(ctx context.Context, p any) error {
		log.ErrorContext(ctx, "panic in resolver", "panic", fmt.Sprint(p), "trace_id", trace.FromContext(ctx))
		return errors.New("internal error")
	})
	return srv
}

// websocket is the subscription transport: graphql-transport-ws (the
// graphql-ws client) and the older graphql-ws protocol. The upgrade reaches
// it only through internal/web's authenticate and socketGuard (same origin,
// a session cookie or API token, the viewer in the context); coder/websocket's
// own origin check (Origin host = Host) stays on as a second lock. The same
// limits apply to a subscription's operation as to a query; a message is at
// most maxSocketMessage bytes, and queries and mutations are refused (they
// belong on POST, under the HTTP timeout and the mutation transaction).
func websocket(log *slog.Logger) transport.Websocket {
	limit := int64(maxSocketMessage)
	return transport.Websocket{
		PayloadReadLimit:      &limit,
		InitTimeout:           10 * time.Second,
		KeepAlivePingInterval: 15 * time.Second, // graphql-ws (legacy) keep-alive
		PingPongInterval:      20 * time.Second, // graphql-transport-ws: ping; no pong in 40 s closes
		InitFunc: func(ctx context.Context, _ transport.InitPayload) (context.Context, *transport.InitPayload, error) {
			if viewer.FromContext(ctx) == nil {
				return ctx, nil, ferry.Errorf(ferry.EUNAUTHORIZED, "sign in first")
			}
			return withSocket(ctx), nil, nil
		},
		ErrorFunc: func(ctx context.Context, err error) {
			log.InfoContext(ctx, "websocket ended", "error", err.Error(), "trace_id", trace.FromContext(ctx))
		},
	}
}

// checkPage refuses pages larger than maxPage (and negative ones), and caps
// a list asked for without first or last at maxPage rows: no request reads a
// 20,000-host table whole.
func checkPage(first, last *int) (*int, error) {
	for _, n := range []*int{first, last} {
		if n != nil && (*n < 0 || *n > maxPage) {
			return nil, ferry.Errorf(ferry.EINVALID, "page size must be between 0 and %d, got %d", maxPage, *n)
		}
	}
	if first == nil && last == nil {
		n := maxPage
		return &n, nil
	}
	return first, nil
}

// require returns the viewer when its role is at least min.
func require(ctx context.Context, min viewer.Role) (*viewer.Viewer, error) {
	v := viewer.FromContext(ctx)
	if v == nil {
		return nil, ferry.Errorf(ferry.EUNAUTHORIZED, "sign in first")
	}
	if !v.Can(min) {
		return nil, ferry.Errorf(ferry.EFORBIDDEN, "this needs the %s role or higher; you are %s", min, v.Role)
	}
	return v, nil
}

// mayGrant reports whether v may give someone role r: only a role it
// manages (viewer.Manages, the rule the User hook enforces below), so an
// admin grants consultant, operator and viewer, an owner every role but
// platform, and only the platform operator grants platform.
func mayGrant(v *viewer.Viewer, r viewer.Role) bool { return v.Manages(r) }

// cloudAccountAD binds a sealed cloud secret to its row: the account's id
// and its tenant. A ciphertext copied onto another account (even of the same
// tenant) no longer opens.
func cloudAccountAD(tenantID, accountID int) []byte {
	return []byte(fmt.Sprintf("cloud_account:%d:tenant:%d", accountID, tenantID))
}

// legacyCloudAccountAD is the associated data secrets were sealed with
// before they were bound to their row (tenant only). ResealCloudSecrets
// moves such secrets to cloudAccountAD at start-up; nothing else opens them.
func legacyCloudAccountAD(tenantID int) []byte {
	return []byte(fmt.Sprintf("cloud_account:tenant:%d", tenantID))
}

// presentError maps errors to user-readable messages with a code, in one place.
func presentError(log *slog.Logger) graphql.ErrorPresenterFunc {
	return func(ctx context.Context, err error) *gqlerror.Error {
		gerr := graphql.DefaultErrorPresenter(ctx, err)
		code, msg := classify(err)
		if code == ferry.EINTERNAL && isArgumentError(ctx, err) {
			// A value gqlgen could not turn into an argument (an enum
			// value, a cursor, a time): the client's mistake, named by its path.
			code, msg = ferry.EINVALID, fmt.Sprintf("invalid argument %s: %s", argPath(gerr.Path), errors.Unwrap(err))
		}
		if code == ferry.EINTERNAL {
			var ge *gqlerror.Error
			if graphql.GetFieldContext(ctx) == nil || (errors.As(err, &ge) && ge.Err == nil) {
				// Errors made by gqlgen itself (validation, unknown fields) are already readable.
				if gerr.Extensions == nil {
					gerr.Extensions = map[string]any{}
				}
				if _, ok := gerr.Extensions["code"]; !ok {
					gerr.Extensions["code"] = ferry.EINVALID
				}
				return gerr
			}
			log.ErrorContext(ctx, "graphql internal error", "error", err.Error(), "trace_id", trace.FromContext(ctx), "path", gerr.Path.String())
			msg = "internal error (trace id " + trace.FromContext(ctx) + ")"
		} else {
			log.InfoContext(ctx, "graphql request refused", "code", code, "error", err.Error(), "trace_id", trace.FromContext(ctx), "path", gerr.Path.String())
		}
		gerr.Message = msg
		if gerr.Extensions == nil {
			gerr.Extensions = map[string]any{}
		}
		gerr.Extensions["code"] = code
		gerr.Extensions["traceId"] = trace.FromContext(ctx)
		return gerr
	}
}

// isArgumentError reports whether err was raised while gqlgen decoded a
// field's arguments: its path then runs past the field's own path into one of
// the field's argument names.
func isArgumentError(ctx context.Context, err error) bool {
	fc := graphql.GetFieldContext(ctx)
	var ge *gqlerror.Error
	if fc == nil || fc.Field.Field == nil || !errors.As(err, &ge) || ge.Err == nil {
		return false
	}
	own := fc.Path()
	if len(ge.Path) <= len(own) {
		return false
	}
	name, ok := ge.Path[len(own)].(ast.PathName)
	if !ok {
		return false
	}
	for _, a := range fc.Field.Arguments {
		if a.Name == string(name) {
			return true
		}
	}
	return false
}

// argPath prints an argument's path without the leading field names'
// punctuation noise: hosts.where.environment.
func argPath(p ast.Path) string {
	return strings.TrimPrefix(p.String(), ".")
}

// classify turns an error into a code and a message a user can act on.
func classify(err error) (string, string) {
	var fe *ferry.Error
	var ve *ent.ValidationError
	var nf *ent.NotFoundError
	var ce *ent.ConstraintError
	switch {
	case errors.As(err, &fe):
		return fe.Code, fe.Message
	case errors.Is(err, schema.ErrNoViewer):
		return ferry.EUNAUTHORIZED, "sign in first"
	case errors.Is(err, schema.ErrForeignReference):
		return ferry.ENOTFOUND, readable(err, schema.ErrForeignReference)
	case errors.As(err, &nf):
		return ferry.ENOTFOUND, strings.TrimPrefix(nf.Error(), "ent: ")
	case errors.As(err, &ve):
		return ferry.EINVALID, fmt.Sprintf("invalid %s: %v", ve.Name, errors.Unwrap(ve))
	case errors.As(err, &ce):
		if strings.Contains(strings.ToLower(ce.Error()), "unique") {
			return ferry.ECONFLICT, "an object with the same unique value already exists (" + uniqueColumn(ce.Error()) + ")"
		}
		return ferry.ECONFLICT, "the change conflicts with related objects"
	}
	return ferry.EINTERNAL, "internal error"
}

func readable(err, sentinel error) string {
	s := err.Error()
	if i := strings.LastIndex(s, "tenant isolation: "); i >= 0 {
		return sentinel.Error()
	}
	return s
}

// uniqueColumn extracts "users.email" from SQLite's "UNIQUE constraint failed: users.email".
func uniqueColumn(s string) string {
	if i := strings.Index(s, "failed: "); i >= 0 {
		return s[i+len("failed: "):]
	}
	return "unique"
}

// sensitiveArgs are never written to audit events.
var sensitiveArgs = map[string]bool{"password": true, "ownerPassword": true, "current": true, "new": true, "secret": true}

// auditMutations records an audit event for every mutation that succeeds, in
// the mutation's own transaction, so the change and its record land together.
func auditMutations(log *slog.Logger) graphql.FieldMiddleware {
	return func(ctx context.Context, next graphql.Resolver) (any, error) {
		fc := graphql.GetFieldContext(ctx)
		if fc == nil || fc.Object != "Mutation" {
			return next(ctx)
		}
		before := objectState(ctx, fc.Args["id"])
		res, err := next(ctx)
		v := viewer.FromContext(ctx)
		if err != nil || v == nil {
			return res, err
		}
		client := ent.FromContext(ctx)
		if client == nil {
			return res, err
		}
		typ, id := objectOf(res)
		details := map[string]any{}
		keys := make([]string, 0, len(fc.Args))
		for k := range fc.Args {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		var argNames []string
		for _, k := range keys {
			if sensitiveArgs[k] {
				continue
			}
			argNames = append(argNames, k)
			if k == "id" {
				details["id"] = fc.Args[k]
			}
		}
		details["args"] = argNames
		// The event lands in the actor's tenant, so every tenant's log holds
		// what its users did; when the object belongs to another tenant (only
		// the platform operator can reach one), a copy lands there too, so the
		// tenant also sees what was done to it.
		var tenants []int
		for _, t := range []int{v.TenantID, tenantOf(res)} {
			if t != 0 && (len(tenants) == 0 || tenants[0] != t) {
				tenants = append(tenants, t)
			}
		}
		sys := viewer.NewContext(ctx, &viewer.Viewer{System: true})
		for _, t := range tenants {
			aerr := client.AuditEvent.Create().SetTenantID(t).SetActor(v.Actor()).SetAction(fc.Field.Name).
				SetObjectType(typ).SetObjectID(id).SetTraceID(trace.FromContext(ctx)).SetSourceIP(trace.ClientIP(ctx)).
				SetDetails(details).SetChanges(changesOf(before, stateOf(res))).Exec(sys)
			if aerr != nil {
				log.ErrorContext(ctx, "audit event not written", "error", aerr, "trace_id", trace.FromContext(ctx))
				return nil, fmt.Errorf("write audit event: %w", aerr)
			}
		}
		return res, err
	}
}

// objectState reads the object a mutation names by its id argument before
// the mutation runs, for the audit event's before/after summary.
func objectState(ctx context.Context, id any) map[string]any {
	n, ok := id.(int)
	client := ent.FromContext(ctx)
	if !ok || client == nil {
		return nil
	}
	// A context without GraphQL's: the noder would otherwise load only the
	// fields the mutation's selection names.
	obj, err := client.Noder(viewer.NewContext(context.Background(), viewer.FromContext(ctx)), n)
	if err != nil {
		return nil
	}
	return stateOf(obj)
}

// stateOf renders an ent object's fields as they serialise: sensitive
// fields (password and token hashes, sealed secrets) are never included.
func stateOf(obj any) map[string]any {
	if obj == nil {
		return nil
	}
	if rv := reflect.ValueOf(obj); rv.Kind() == reflect.Pointer && rv.IsNil() {
		return nil
	}
	b, err := json.Marshal(obj)
	if err != nil {
		return nil
	}
	var m map[string]any
	if json.Unmarshal(b, &m) != nil {
		return nil
	}
	delete(m, "edges")
	delete(m, "updated_at")
	return m
}

// changesOf summarises before and after as field → {before, after} for the
// fields that differ (values of at most 200 characters; longer ones are
// marked changed without their content).
func changesOf(before, after map[string]any) map[string]any {
	if before == nil && after == nil {
		return nil
	}
	out := map[string]any{}
	short := func(v any) any {
		if b, _ := json.Marshal(v); len(b) > 200 {
			return "(long value)"
		}
		return v
	}
	keys := map[string]bool{}
	for k := range before {
		keys[k] = true
	}
	for k := range after {
		keys[k] = true
	}
	for k := range keys {
		b, a := before[k], after[k]
		if reflect.DeepEqual(a, b) {
			continue
		}
		out[k] = map[string]any{"before": short(b), "after": short(a)}
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

// objectOf names the type and id of a mutation's result.
func objectOf(res any) (string, string) {
	rv := reflect.ValueOf(res)
	for rv.Kind() == reflect.Pointer && !rv.IsNil() {
		rv = rv.Elem()
	}
	switch rv.Kind() {
	case reflect.Struct:
		if f := rv.FieldByName("ID"); f.IsValid() {
			return rv.Type().Name(), fmt.Sprint(f.Interface())
		}
		for _, name := range []string{"Tenant", "Token"} {
			if f := rv.FieldByName(name); f.IsValid() {
				return objectOf(f.Interface())
			}
		}
		return rv.Type().Name(), ""
	case reflect.Int, reflect.Int64:
		return "", fmt.Sprint(rv.Interface())
	case reflect.Bool:
		return "", ""
	}
	return "", ""
}

// tenantOf returns the tenant a mutation's result belongs to, so that the
// platform operator's actions are recorded in the tenant they touched.
func tenantOf(res any) int {
	rv := reflect.ValueOf(res)
	for rv.Kind() == reflect.Pointer && !rv.IsNil() {
		rv = rv.Elem()
	}
	if rv.Kind() != reflect.Struct {
		return 0
	}
	if rv.Type() == reflect.TypeOf(ent.Tenant{}) {
		return rv.FieldByName("ID").Interface().(int)
	}
	if f := rv.FieldByName("TenantID"); f.IsValid() && f.Kind() == reflect.Int {
		return int(f.Int())
	}
	if f := rv.FieldByName("Tenant"); f.IsValid() {
		return tenantOf(f.Interface())
	}
	return 0
}

// transactioner runs each mutation in an ent transaction (entgql's
// Transactioner) but steps aside for responses that have no operation, such
// as a request body that is not JSON, which entgql would otherwise panic on.
type transactioner struct{ entgql.Transactioner }

func (t transactioner) InterceptResponse(ctx context.Context, next graphql.ResponseHandler) *graphql.Response {
	if !graphql.HasOperationContext(ctx) {
		return next(ctx)
	}
	// A transport that reads responses until nil (the websocket) asks once
	// more after the mutation's answer; entgql reads that nil's Errors and
	// panics. Hand it an empty response and pass the end of stream on.
	ended := false
	rsp := t.Transactioner.InterceptResponse(ctx, func(ctx context.Context) *graphql.Response {
		r := next(ctx)
		if r == nil {
			ended = true
			return &graphql.Response{}
		}
		return r
	})
	if ended {
		return nil
	}
	return rsp
}
