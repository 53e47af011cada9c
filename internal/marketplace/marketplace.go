package marketplace

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/redis/go-redis/v9"

	"github.com/ferry-migrate/ferry"
	"github.com/ferry-migrate/ferry/ent"
	"github.com/ferry-migrate/ferry/ent/marketplaceinstance"
	"github.com/ferry-migrate/ferry/ent/user"
	"github.com/ferry-migrate/ferry/internal/audit"
	"github.com/ferry-migrate/ferry/internal/auth"
	"github.com/ferry-migrate/ferry/internal/trace"
	"github.com/ferry-migrate/ferry/internal/viewer"
	"github.com/ferry-migrate/ferry/internal/web"
)

// Config is what the marketplace handlers need; internal/app fills it.
type Config struct {
	Client *ent.Client
	// GraphQL is the /graphql handler itself (graph.NewHandler): adapter
	// actions are GraphQL operations run through it as the mapped user.
	GraphQL http.Handler
	// ISVKey is the key of the SPI's MD5 token (FERRY_MARKETPLACE_ISV_KEY).
	ISVKey string
	// TokenKey verifies the adapter's accessToken (FERRY_MARKETPLACE_TOKEN_KEY).
	TokenKey []byte
	// Redis remembers trace ids already used, across replicas.
	Redis redis.UniversalClient
	// StartSession signs a user in on the browser (single sign-on).
	StartSession func(w http.ResponseWriter, r *http.Request, u *ent.User, action string, details map[string]any) (string, error)
	// PublicURL is the UI's address, returned to the marketplace.
	PublicURL string
	// ReleaseAfter is how long a released instance's tenant is kept before
	// its deletion is due (default 30 days).
	ReleaseAfter time.Duration
	// SSOMaxAge is how old a verify call's timestamp may be (default 5 min).
	SSOMaxAge time.Duration
	Now       func() time.Time
	Log       *slog.Logger
}

// Handler serves the adapter and the SPI.
type Handler struct{ cfg Config }

// New returns the marketplace handler.
func New(cfg Config) *Handler {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.ReleaseAfter == 0 {
		cfg.ReleaseAfter = 30 * 24 * time.Hour
	}
	if cfg.SSOMaxAge == 0 {
		cfg.SSOMaxAge = 5 * time.Minute
	}
	return &Handler{cfg: cfg}
}

// Routes mounts GET /api/{action} (the adapter) and GET /marketplace/spi.
func (h *Handler) Routes(r chi.Router) {
	r.Get("/api/{action}", h.adapter)
	r.Get("/marketplace/spi", h.spi)
}

// Envelope is every adapter answer.
type Envelope struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	Data    any    `json:"data"`
	TraceID string `json:"traceId"`
}

// Envelope codes.
const (
	CodeSuccess          = "Success"
	CodeInvalidParameter = "InvalidParameter"
	CodeInvalidToken     = "InvalidToken"
	CodeTokenExpired     = "TokenExpired"
	CodeReplayedTraceID  = "ReplayedTraceId"
	CodeUnknownAction    = "UnknownAction"
	CodeTenantSuspended  = "TenantSuspended"
	CodeForbidden        = "Forbidden"
	CodeNotFound         = "NotFound"
	CodeConflict         = "Conflict"
	CodeNotConfigured    = "NotConfigured"
	CodeInternalError    = "InternalError"
)

// action is one adapter action: a GraphQL document whose variables are the
// call's params, and the field of its data that the envelope carries.
type action struct {
	doc   string
	field string
}

// Actions are the adapter's actions. Each is an operation of Ferry's
// GraphQL schema, run by the same handler as /graphql.
var Actions = map[string]action{
	"whoami": {`query { viewer { role platform user { id email name } tenant { id name slug } } }`, "viewer"},
	"listHosts": {`query($first: Int, $after: Cursor, $where: HostWhereInput) { hosts(first: $first, after: $after, where: $where) {
		totalCount pageInfo { hasNextPage endCursor } edges { node { id name fqdn os cpus environment criticality owner } } } }`, "hosts"},
	"getHost":    {`query($id: ID!) { node(id: $id) { ... on Host { id name fqdn os kernel arch cpus environment criticality owner tags ips } } }`, "node"},
	"createHost": {`mutation($input: CreateHostInput!) { createHost(input: $input) { id name } }`, "createHost"},
	"listPlans": {`query($first: Int, $after: Cursor) { plans(first: $first, after: $after) { totalCount pageInfo { hasNextPage endCursor }
		edges { node { id name target status error } } } }`, "plans"},
	"generatePlan":      {`mutation($input: GeneratePlanInput!) { generatePlan(input: $input) { id name status error problems } }`, "generatePlan"},
	"assessmentSummary": {`query($target: String!) { assessmentSummary(target: $target) { target hosts ready readyWithActions notReady unknown } }`, "assessmentSummary"},
	"listMigrations": {`query($first: Int, $after: Cursor) { migrations(first: $first, after: $after) { totalCount pageInfo { hasNextPage endCursor }
		edges { node { id state host { id name } } } } }`, "migrations"},
	"startMigration": {`mutation($hostIds: [ID!]!) { startMigration(hostIds: $hostIds) { id state } }`, "startMigration"},
}

var traceRE = regexp.MustCompile(`^[A-Za-z0-9._-]{8,64}$`)

// UserInfo is the marketplace's description of the calling user.
type UserInfo struct {
	AliUID string `json:"aliUid"`
	Name   string `json:"name"`
	Email  string `json:"email"`
}

func (h *Handler) answer(w http.ResponseWriter, r *http.Request, status int, e Envelope) {
	if e.TraceID == "" {
		e.TraceID = trace.FromContext(r.Context())
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(e)
}

// adapter serves GET /api/{action}.
func (h *Handler) adapter(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	name := chi.URLParam(r, "action")
	traceID := q.Get("traceId")
	fail := func(status int, code, msg string) {
		h.cfg.Log.InfoContext(r.Context(), "marketplace call refused", "action", name, "code", code, "message", msg, "trace_id", trace.FromContext(r.Context()))
		h.answer(w, r, status, Envelope{Code: code, Message: msg})
	}
	if !traceRE.MatchString(traceID) {
		fail(http.StatusBadRequest, CodeInvalidParameter, "traceId: required, 8 to 64 letters, digits, '.', '_' or '-'")
		return
	}
	// The marketplace's trace id is the request's from here on: logs and
	// audit events carry it.
	ctx := trace.NewContext(r.Context(), traceID)
	r = r.WithContext(ctx)
	if len(h.cfg.TokenKey) == 0 {
		fail(http.StatusServiceUnavailable, CodeNotConfigured, "the marketplace adapter is not configured on this server (FERRY_MARKETPLACE_TOKEN_KEY)")
		return
	}
	act, ok := Actions[name]
	if !ok {
		fail(http.StatusNotFound, CodeUnknownAction, fmt.Sprintf("unknown action %q; the actions are %s", name, strings.Join(actionNames(), ", ")))
		return
	}
	claims, err := VerifyAccess(q.Get("accessToken"), h.cfg.TokenKey, h.cfg.Now())
	switch {
	case errors.Is(err, ErrTokenExpired):
		fail(http.StatusUnauthorized, CodeTokenExpired, err.Error())
		return
	case err != nil:
		fail(http.StatusUnauthorized, CodeInvalidToken, err.Error())
		return
	}
	var ui UserInfo
	if err := json.Unmarshal([]byte(q.Get("userinfo")), &ui); err != nil || ui.AliUID == "" {
		fail(http.StatusBadRequest, CodeInvalidParameter, "userinfo: want JSON {\"aliUid\": ..., \"name\": ..., \"email\": ...}")
		return
	}
	if ui.AliUID != claims.UID {
		fail(http.StatusUnauthorized, CodeInvalidToken, "accessToken was issued to another user than userinfo names")
		return
	}
	vars := map[string]any{}
	if p := q.Get("params"); p != "" {
		d := json.NewDecoder(strings.NewReader(p))
		d.UseNumber()
		if err := d.Decode(&vars); err != nil {
			fail(http.StatusBadRequest, CodeInvalidParameter, fmt.Sprintf("params: not a JSON object: %v", err))
			return
		}
	}
	// A trace id is used once: a replayed call (same traceId) is refused,
	// on every replica, for as long as its token could be valid.
	ttl := time.Until(time.Unix(claims.ExpiresAt, 0)) + time.Minute
	fresh, err := h.cfg.Redis.SetNX(ctx, "ferry:marketplace:trace:"+traceID, name, ttl).Result()
	if err != nil {
		h.cfg.Log.ErrorContext(ctx, "marketplace replay check", "error", err, "trace_id", traceID)
		fail(http.StatusInternalServerError, CodeInternalError, "internal error (trace id "+traceID+")")
		return
	}
	if !fresh {
		fail(http.StatusConflict, CodeReplayedTraceID, fmt.Sprintf("traceId %s was already used: each call needs a new one", traceID))
		return
	}
	u, err := h.userFor(ctx, ui)
	if err != nil {
		h.fromError(w, r, err)
		return
	}
	ctx = viewer.NewContext(ctx, &viewer.Viewer{TenantID: u.TenantID, UserID: u.ID, Email: u.Email, Role: viewer.Role(u.Role)})
	status, env := h.execute(ctx, r, act, vars)
	aerr := audit.Record(ctx, h.cfg.Client, audit.Entry{TenantID: u.TenantID, Actor: u.Email, Action: "marketplace:" + name,
		ObjectType: "MarketplaceCall", Details: map[string]any{"aliUid": ui.AliUID, "code": env.Code, "params": sortedKeys(vars)}})
	if aerr != nil {
		h.cfg.Log.ErrorContext(ctx, "marketplace audit event", "error", aerr, "trace_id", traceID)
	}
	h.cfg.Log.InfoContext(ctx, "marketplace call", "action", name, "code", env.Code, "user", u.Email, "tenant_id", u.TenantID, "trace_id", traceID)
	h.answer(w, r, status, env)
}

func actionNames() []string {
	out := make([]string, 0, len(Actions))
	for k := range Actions {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func sortedKeys(m map[string]any) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// fromError answers err in the envelope, classified by its code.
func (h *Handler) fromError(w http.ResponseWriter, r *http.Request, err error) {
	code, status := CodeInternalError, http.StatusInternalServerError
	msg := ferry.ErrorMessage(err)
	switch ferry.ErrorCode(err) {
	case ferry.EINVALID:
		code, status = CodeInvalidParameter, http.StatusBadRequest
	case ferry.EFORBIDDEN:
		code, status = CodeForbidden, http.StatusForbidden
		if strings.Contains(msg, "is suspended") {
			code = CodeTenantSuspended
		}
	case ferry.ENOTFOUND:
		code, status = CodeNotFound, http.StatusNotFound
	case ferry.ECONFLICT:
		code, status = CodeConflict, http.StatusConflict
	default:
		h.cfg.Log.ErrorContext(r.Context(), "marketplace", "error", err, "trace_id", trace.FromContext(r.Context()))
		msg = "internal error (trace id " + trace.FromContext(r.Context()) + ")"
	}
	h.answer(w, r, status, Envelope{Code: code, Message: msg})
}

// bufferedResponse collects the GraphQL handler's answer.
type bufferedResponse struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (b *bufferedResponse) Header() http.Header         { return b.header }
func (b *bufferedResponse) Write(p []byte) (int, error) { return b.body.Write(p) }
func (b *bufferedResponse) WriteHeader(s int)           { b.status = s }

// execute runs act through the GraphQL handler as the viewer in ctx and
// turns its answer into an envelope.
func (h *Handler) execute(ctx context.Context, r *http.Request, act action, vars map[string]any) (int, Envelope) {
	body, _ := json.Marshal(map[string]any{"query": act.doc, "variables": vars})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "/graphql", bytes.NewReader(body))
	if err != nil {
		return http.StatusInternalServerError, Envelope{Code: CodeInternalError, Message: err.Error()}
	}
	req.Header.Set("Content-Type", "application/json")
	req.RemoteAddr = r.RemoteAddr
	rec := &bufferedResponse{header: http.Header{}, status: http.StatusOK}
	h.cfg.GraphQL.ServeHTTP(rec, req)
	var out struct {
		Data   map[string]json.RawMessage `json:"data"`
		Errors []struct {
			Message    string         `json:"message"`
			Extensions map[string]any `json:"extensions"`
		} `json:"errors"`
	}
	if err := json.Unmarshal(rec.body.Bytes(), &out); err != nil {
		return http.StatusInternalServerError, Envelope{Code: CodeInternalError, Message: "internal error (trace id " + trace.FromContext(ctx) + ")"}
	}
	if len(out.Errors) > 0 {
		e := out.Errors[0]
		code, _ := e.Extensions["code"].(string)
		var status int
		switch code {
		case ferry.EINVALID, "GRAPHQL_VALIDATION_FAILED", "GRAPHQL_PARSE_FAILED":
			code, status = CodeInvalidParameter, http.StatusBadRequest
		case ferry.EFORBIDDEN:
			code, status = CodeForbidden, http.StatusForbidden
		case ferry.ENOTFOUND:
			code, status = CodeNotFound, http.StatusNotFound
		case ferry.ECONFLICT:
			code, status = CodeConflict, http.StatusConflict
		default:
			code, status = CodeInternalError, http.StatusInternalServerError
		}
		return status, Envelope{Code: code, Message: e.Message}
	}
	var data any
	if raw, ok := out.Data[act.field]; ok {
		json.Unmarshal(raw, &data)
	}
	return http.StatusOK, Envelope{Code: CodeSuccess, Message: "ok", Data: data}
}

// externalID is a marketplace user's id on Ferry's user rows.
func externalID(aliUID string) string { return "alibaba:" + aliUID }

// userFor maps the marketplace's user to a Ferry user, creating it (and,
// when no instance was provisioned for the account, a tenant of its own) on
// the first call. The first user of a tenant owns it; later ones view.
func (h *Handler) userFor(ctx context.Context, ui UserInfo) (*ent.User, error) {
	sys := viewer.SystemContext(ctx)
	c := h.cfg.Client
	u, err := c.User.Query().Where(user.ExternalID(externalID(ui.AliUID))).WithTenant().Only(sys)
	if err == nil {
		if err := web.Suspended(u.Edges.Tenant); err != nil {
			return nil, err
		}
		if u.Disabled || u.Edges.Tenant.Disabled {
			return nil, ferry.Errorf(ferry.EFORBIDDEN, "the account is disabled")
		}
		return u, nil
	}
	if !ent.IsNotFound(err) {
		return nil, err
	}
	var created *ent.User
	err = withTx(sys, c, func(tx *ent.Client) error {
		var tid int
		inst, err := tx.MarketplaceInstance.Query().Where(marketplaceinstance.AliUID(ui.AliUID),
			marketplaceinstance.StatusNEQ(marketplaceinstance.StatusReleased)).Order(ent.Desc(marketplaceinstance.FieldID)).First(sys)
		switch {
		case err == nil:
			tid = inst.TenantID
		case ent.IsNotFound(err):
			t, err := tx.Tenant.Create().SetName("Alibaba Cloud " + ui.AliUID).SetSlug(slug("ali-" + ui.AliUID)).Save(sys)
			if err != nil {
				return err
			}
			tid = t.ID
		default:
			return err
		}
		role := user.RoleOwner
		if n, err := tx.User.Query().Where(user.TenantID(tid), user.RoleEQ(user.RoleOwner)).Count(sys); err != nil {
			return err
		} else if n > 0 {
			role = user.RoleViewer
		}
		email := auth.NormalizeEmail(ui.Email)
		if email == "" || tx.User.Query().Where(user.Email(email)).ExistX(sys) {
			email = "ali-" + slug(ui.AliUID) + "@marketplace.invalid"
		}
		name := ui.Name
		if name == "" {
			name = "Alibaba Cloud user " + ui.AliUID
		}
		created, err = tx.User.Create().SetTenantID(tid).SetEmail(email).SetName(truncate(name, 200)).SetRole(role).
			SetExternalID(externalID(ui.AliUID)).Save(sys)
		return err
	})
	if ent.IsConstraintError(err) {
		// Another replica mapped the same user a moment ago.
		return c.User.Query().Where(user.ExternalID(externalID(ui.AliUID))).Only(sys)
	}
	if err != nil {
		return nil, err
	}
	h.cfg.Log.InfoContext(ctx, "marketplace user created", "email", created.Email, "tenant_id", created.TenantID, "role", created.Role)
	t, err := c.Tenant.Get(sys, created.TenantID)
	if err != nil {
		return nil, err
	}
	if err := web.Suspended(t); err != nil {
		return nil, err
	}
	return created, nil
}

var slugBad = regexp.MustCompile(`[^a-z0-9-]+`)

// slug makes s fit a tenant slug (lower-case letters, digits, dashes).
func slug(s string) string {
	s = strings.Trim(slugBad.ReplaceAllString(strings.ToLower(s), "-"), "-")
	if len(s) > 63 {
		s = strings.TrimRight(s[:63], "-")
	}
	if s == "" {
		s = "x"
	}
	return s
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

func withTx(ctx context.Context, c *ent.Client, fn func(*ent.Client) error) error {
	tx, err := c.Tx(ctx)
	if err != nil {
		return err
	}
	if err := fn(tx.Client()); err != nil {
		tx.Rollback()
		return err
	}
	return tx.Commit()
}

func writeJSON(w http.ResponseWriter, v any) { json.NewEncoder(w).Encode(v) }

func badRequest(msg string) error { return ferry.Errorf(ferry.EINVALID, "%s", msg) }

func forbidden(msg string) error { return ferry.Errorf(ferry.EFORBIDDEN, "%s", msg) }
