package web

import (
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/ferry-migrate/ferry"
	"github.com/ferry-migrate/ferry/ent"
	"github.com/ferry-migrate/ferry/ent/apitoken"
	"github.com/ferry-migrate/ferry/ent/session"
	"github.com/ferry-migrate/ferry/ent/user"
	"github.com/ferry-migrate/ferry/internal/auth"
	"github.com/ferry-migrate/ferry/internal/trace"
	"github.com/ferry-migrate/ferry/internal/viewer"
)

// Cookie names shared with the frontend.
const (
	SessionCookie = "ferry_session"
	CSRFCookie    = "ferry_csrf"
	CSRFHeader    = "X-CSRF-Token"
)

type userBody struct {
	ID     int        `json:"id"`
	Email  string     `json:"email"`
	Name   string     `json:"name"`
	Role   string     `json:"role"`
	Tenant tenantBody `json:"tenant"`
}

type tenantBody struct {
	ID   int    `json:"id"`
	Name string `json:"name"`
}

type meBody struct {
	User      userBody `json:"user"`
	CSRFToken string   `json:"csrfToken,omitempty"`
}

func bodyOf(u *ent.User) userBody {
	b := userBody{ID: u.ID, Email: u.Email, Name: u.Name, Role: string(u.Role)}
	if u.Edges.Tenant != nil {
		b.Tenant = tenantBody{ID: u.Edges.Tenant.ID, Name: u.Edges.Tenant.Name}
	}
	return b
}

// DeviceCookie marks a browser that has signed in to an account before:
// the sign-in throttle holds such a browser to its own counter, so a flood
// against the account from elsewhere cannot keep its owner out.
const DeviceCookie = "ferry_device"

// retryIn words a throttle wait for people.
func retryIn(d time.Duration) string {
	if d < 2*time.Minute {
		return fmt.Sprintf("%d seconds", int(math.Ceil(d.Seconds())))
	}
	return fmt.Sprintf("%d minutes", int(math.Ceil(d.Minutes())))
}

func (s *Server) login(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	ip := ClientIP(ctx)
	if err := s.sameOrigin(r, "sign-in"); err != nil {
		s.cfg.Log.WarnContext(ctx, "sign-in refused: cross-site", "origin", r.Header.Get("Origin"), "sec_fetch_site", r.Header.Get("Sec-Fetch-Site"),
			"host", r.Host, "ip", ipString(ip), "trace_id", trace.FromContext(ctx))
		writeError(w, r, err)
		return
	}
	var in struct {
		Email    string `json:"email"`
		Password string `json:"password"`
	}
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&in); err != nil {
		writeError(w, r, ferry.Errorf(ferry.EINVALID, "the body must be JSON: {\"email\": ..., \"password\": ...}"))
		return
	}
	email := auth.NormalizeEmail(in.Email)
	if email == "" || in.Password == "" {
		writeError(w, r, ferry.Errorf(ferry.EINVALID, "email and password are required"))
		return
	}
	now := s.cfg.Now()
	device := ""
	if c, err := r.Cookie(DeviceCookie); err == nil {
		device = auth.CheckDevice(s.cfg.Key, email, c.Value, now)
	}
	// The attempt is recorded as a failure before the password is checked
	// (one atomic step), and released if the password is right.
	tk, err := s.cfg.Throttle.Begin(ctx, auth.Attempt{Account: email, IP: ip, Device: device})
	if err != nil {
		s.cfg.Log.ErrorContext(ctx, "sign-in throttle", "error", err, "trace_id", trace.FromContext(ctx))
		writeError(w, r, ferry.Errorf(ferry.EINTERNAL, "sign-in is unavailable right now (internal error)"))
		return
	}
	if tk.Wait > 0 {
		s.cfg.Log.WarnContext(ctx, "sign-in throttled", "email", email, "ip", ipString(ip), "trusted", tk.Trusted,
			"wait_ms", tk.Wait.Milliseconds(), "trace_id", trace.FromContext(ctx))
		w.Header().Set("Retry-After", itoa(int(math.Ceil(tk.Wait.Seconds()))))
		writeError(w, r, ferry.Errorf(ferry.ERATELIMIT, "too many failed sign-ins; try again in %s", retryIn(tk.Wait)))
		return
	}
	sys := viewer.SystemContext(ctx)
	u, err := s.cfg.Client.User.Query().Where(user.Email(email)).WithTenant().Only(sys)
	hash := ""
	if err == nil {
		hash = u.PasswordHash
	} else if !ent.IsNotFound(err) {
		writeError(w, r, err)
		return
	}
	if !auth.CheckPassword(hash, in.Password) || u.Disabled || u.Edges.Tenant.Disabled {
		s.cfg.Log.WarnContext(ctx, "sign-in failed", "email", email, "ip", ipString(ip), "trusted", tk.Trusted, "trace_id", trace.FromContext(ctx))
		writeError(w, r, ferry.Errorf(ferry.EUNAUTHORIZED, "wrong email or password"))
		return
	}
	if err := Suspended(u.Edges.Tenant); err != nil {
		writeError(w, r, err)
		return
	}
	if err := tk.Succeeded(ctx); err != nil {
		// The sign-in stands; the pair gate keeps one failure too many.
		s.cfg.Log.ErrorContext(ctx, "sign-in throttle", "error", err, "trace_id", trace.FromContext(ctx))
	}
	csrf, err := s.StartSession(w, r, u, "signIn", map[string]any{"ip": ipString(ip)})
	if err != nil {
		s.cfg.Log.ErrorContext(ctx, "sign-in session", "error", err, "trace_id", trace.FromContext(ctx))
		writeError(w, r, err)
		return
	}
	if device == "" {
		// Only the sign-in endpoint ever sees it. Max-Age, not Expires: the
		// browser's clock need not agree with ours.
		http.SetCookie(w, &http.Cookie{Name: DeviceCookie, Value: auth.DeviceToken(s.cfg.Key, email, now), Path: "/auth/login",
			HttpOnly: true, Secure: s.cfg.Secure, SameSite: http.SameSiteStrictMode, MaxAge: int(auth.DeviceTTL.Seconds())})
	}
	writeJSON(w, http.StatusOK, meBody{User: bodyOf(u), CSRFToken: csrf})
}

// StartSession signs u in on this browser: a session row, its HttpOnly
// cookie and the CSRF cookie, the sign-in time and an audit event (action,
// with details). It returns the CSRF token. Password sign-in and the
// marketplace's single sign-on both end here.
func (s *Server) StartSession(w http.ResponseWriter, r *http.Request, u *ent.User, action string, details map[string]any) (string, error) {
	ctx := r.Context()
	now := s.cfg.Now()
	ip := ClientIP(ctx)
	token := auth.NewToken("fst_")
	uctx := viewer.NewContext(ctx, &viewer.Viewer{TenantID: u.TenantID, UserID: u.ID, Email: u.Email, Role: viewer.Role(u.Role)})
	err := s.cfg.Client.Session.Create().SetTenantID(u.TenantID).SetUserID(u.ID).SetTokenHash(auth.HashToken(token)).
		SetExpiresAt(now.Add(s.cfg.SessionTTL)).SetIP(ipString(ip)).SetUserAgent(truncate(r.UserAgent(), 512)).Exec(uctx)
	if err == nil {
		err = s.cfg.Client.User.UpdateOneID(u.ID).SetLastLoginAt(now).Exec(uctx)
	}
	if err == nil {
		err = s.cfg.Client.AuditEvent.Create().SetActor(u.Email).SetAction(action).SetObjectType("User").
			SetObjectID(itoa(u.ID)).SetTraceID(trace.FromContext(ctx)).SetSourceIP(ipString(ip)).SetDetails(details).Exec(uctx)
	}
	if err != nil {
		return "", err
	}
	csrf := auth.CSRFToken(s.cfg.Key, token)
	http.SetCookie(w, &http.Cookie{Name: SessionCookie, Value: token, Path: "/", HttpOnly: true, Secure: s.cfg.Secure,
		SameSite: http.SameSiteLaxMode, Expires: now.Add(s.cfg.SessionTTL)})
	http.SetCookie(w, &http.Cookie{Name: CSRFCookie, Value: csrf, Path: "/", Secure: s.cfg.Secure,
		SameSite: http.SameSiteStrictMode, Expires: now.Add(s.cfg.SessionTTL)})
	return csrf, nil
}

func (s *Server) logout(w http.ResponseWriter, r *http.Request) {
	if c, err := r.Cookie(SessionCookie); err == nil {
		_, err := s.cfg.Client.Session.Delete().Where(session.TokenHash(auth.HashToken(c.Value))).Exec(r.Context())
		if err != nil {
			writeError(w, r, err)
			return
		}
	}
	for _, n := range []string{SessionCookie, CSRFCookie} {
		http.SetCookie(w, &http.Cookie{Name: n, Value: "", Path: "/", MaxAge: -1})
	}
	writeJSON(w, http.StatusOK, map[string]bool{"ok": true})
}

func (s *Server) me(w http.ResponseWriter, r *http.Request) {
	v := viewer.FromContext(r.Context())
	if v.UserID == 0 {
		writeError(w, r, ferry.Errorf(ferry.EUNAUTHORIZED, "sign in first"))
		return
	}
	u, err := s.cfg.Client.User.Query().Where(user.ID(v.UserID)).WithTenant().Only(r.Context())
	if err != nil {
		writeError(w, r, err)
		return
	}
	body := meBody{User: bodyOf(u)}
	if c, err := r.Cookie(SessionCookie); err == nil {
		body.CSRFToken = auth.CSRFToken(s.cfg.Key, c.Value)
	}
	writeJSON(w, http.StatusOK, body)
}

// authenticate resolves the viewer from an API token (Authorization: Bearer)
// or a session cookie. Cookie-authenticated requests that change state must
// carry the CSRF header. With required, anonymous requests get 401.
func (s *Server) authenticate(required bool) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			v, err := s.resolveViewer(r)
			if err != nil {
				s.cfg.Log.InfoContext(r.Context(), "request refused", "error", err.Error(), "path", r.URL.Path, "trace_id", trace.FromContext(r.Context()))
				s.refuse(w, r, err)
				return
			}
			if v == nil {
				if required {
					s.refuse(w, r, ferry.Errorf(ferry.EUNAUTHORIZED, "sign in first"))
					return
				}
				next.ServeHTTP(w, r)
				return
			}
			next.ServeHTTP(w, r.WithContext(viewer.NewContext(r.Context(), v)))
		})
	}
}

// refuse writes err in the shape the route's clients read: GraphQL errors on
// /graphql, {"error"} elsewhere.
func (s *Server) refuse(w http.ResponseWriter, r *http.Request, err error) {
	if strings.HasPrefix(r.URL.Path, "/graphql") {
		writeJSON(w, statusOf(ferry.ErrorCode(err)), map[string]any{"errors": []map[string]any{{
			"message":    ferry.ErrorMessage(err),
			"extensions": map[string]string{"code": ferry.ErrorCode(err), "traceId": trace.FromContext(r.Context())},
		}}})
		return
	}
	writeError(w, r, err)
}

func (s *Server) resolveViewer(r *http.Request) (*viewer.Viewer, error) {
	sys := viewer.SystemContext(r.Context())
	now := s.cfg.Now()
	if h := r.Header.Get("Authorization"); h != "" {
		tok, ok := strings.CutPrefix(h, "Bearer ")
		if !ok || !strings.HasPrefix(tok, "fat_") {
			return nil, ferry.Errorf(ferry.EUNAUTHORIZED, "the Authorization header must be \"Bearer fat_...\" (an API token)")
		}
		t, err := s.cfg.Client.APIToken.Query().Where(apitoken.TokenHash(auth.HashToken(tok))).
			WithUser(func(q *ent.UserQuery) { q.WithTenant() }).Only(sys)
		if ent.IsNotFound(err) {
			return nil, ferry.Errorf(ferry.EUNAUTHORIZED, "unknown API token")
		} else if err != nil {
			return nil, err
		}
		if t.RevokedAt != nil {
			return nil, ferry.Errorf(ferry.EUNAUTHORIZED, "the API token was revoked")
		}
		if t.ExpiresAt != nil && now.After(*t.ExpiresAt) {
			return nil, ferry.Errorf(ferry.EUNAUTHORIZED, "the API token has expired")
		}
		return userViewer(t.Edges.User)
	}
	c, err := r.Cookie(SessionCookie)
	if err != nil || c.Value == "" {
		return nil, nil
	}
	sess, err := s.cfg.Client.Session.Query().Where(session.TokenHash(auth.HashToken(c.Value))).
		WithUser(func(q *ent.UserQuery) { q.WithTenant() }).Only(sys)
	if ent.IsNotFound(err) {
		return nil, ferry.Errorf(ferry.EUNAUTHORIZED, "your session has ended; sign in again")
	} else if err != nil {
		return nil, err
	}
	if now.After(sess.ExpiresAt) {
		return nil, ferry.Errorf(ferry.EUNAUTHORIZED, "your session has expired; sign in again")
	}
	if unsafe(r.Method) && !auth.CheckCSRF(s.cfg.Key, c.Value, r.Header.Get(CSRFHeader)) {
		return nil, ferry.Errorf(ferry.EFORBIDDEN, "missing or wrong %s header (cross-site request refused)", CSRFHeader)
	}
	v, err := userViewer(sess.Edges.User)
	if v != nil {
		v.SessionID = sess.ID // a password change keeps this session and ends the others
	}
	return v, err
}

func userViewer(u *ent.User) (*viewer.Viewer, error) {
	if u == nil || u.Disabled || (u.Edges.Tenant != nil && u.Edges.Tenant.Disabled) {
		return nil, ferry.Errorf(ferry.EUNAUTHORIZED, "the account is disabled")
	}
	if err := Suspended(u.Edges.Tenant); err != nil {
		return nil, err
	}
	return &viewer.Viewer{TenantID: u.TenantID, UserID: u.ID, Email: u.Email, Role: viewer.Role(u.Role)}, nil
}

// Suspended returns the refusal for a suspended tenant's requests (nil when
// t is not suspended): its data is kept, nothing of it can be used.
func Suspended(t *ent.Tenant) error {
	if t == nil || t.SuspendedAt == nil {
		return nil
	}
	reason := t.SuspendReason
	if reason == "" {
		reason = "suspended by the platform operator"
	}
	return ferry.Errorf(ferry.EFORBIDDEN, "tenant %q is suspended since %s (%s): its data is kept, but it cannot be used until it is resumed (renew the subscription or ask the platform operator)",
		t.Name, t.SuspendedAt.UTC().Format("2006-01-02"), reason)
}

func unsafe(method string) bool {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
		return false
	}
	return true
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

func itoa(n int) string { return strconv.Itoa(n) }
