package web

import (
	"encoding/json"
	"net"
	"net/http"
	"strconv"
	"strings"

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

func clientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

func (s *Server) login(w http.ResponseWriter, r *http.Request) {
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
	ip := clientIP(r)
	for _, key := range []struct {
		l *auth.Limiter
		k string
	}{{s.limiter, "email:" + email}, {s.ipLimit, "ip:" + ip}} {
		if ok, wait := key.l.Allowed(key.k); !ok {
			s.cfg.Log.WarnContext(r.Context(), "sign-in rate limited", "email", email, "ip", ip, "trace_id", trace.FromContext(r.Context()))
			w.Header().Set("Retry-After", itoa(int(wait.Seconds())+1))
			writeError(w, r, ferry.Errorf(ferry.ERATELIMIT, "too many failed sign-ins; try again in %d minutes", int(wait.Minutes())+1))
			return
		}
	}
	sys := viewer.SystemContext(r.Context())
	u, err := s.cfg.Client.User.Query().Where(user.Email(email)).WithTenant().Only(sys)
	hash := ""
	if err == nil {
		hash = u.PasswordHash
	} else if !ent.IsNotFound(err) {
		writeError(w, r, err)
		return
	}
	if !auth.CheckPassword(hash, in.Password) || u.Disabled || u.Edges.Tenant.Disabled {
		s.limiter.Fail("email:" + email)
		s.ipLimit.Fail("ip:" + ip)
		s.cfg.Log.WarnContext(r.Context(), "sign-in failed", "email", email, "ip", ip, "trace_id", trace.FromContext(r.Context()))
		writeError(w, r, ferry.Errorf(ferry.EUNAUTHORIZED, "wrong email or password"))
		return
	}
	s.limiter.Reset("email:" + email)
	token := auth.NewToken("fst_")
	now := s.cfg.Now()
	uctx := viewer.NewContext(r.Context(), &viewer.Viewer{TenantID: u.TenantID, UserID: u.ID, Email: u.Email, Role: viewer.Role(u.Role)})
	err = s.cfg.Client.Session.Create().SetTenantID(u.TenantID).SetUserID(u.ID).SetTokenHash(auth.HashToken(token)).
		SetExpiresAt(now.Add(s.cfg.SessionTTL)).SetIP(ip).SetUserAgent(truncate(r.UserAgent(), 512)).Exec(uctx)
	if err == nil {
		err = s.cfg.Client.User.UpdateOneID(u.ID).SetLastLoginAt(now).Exec(uctx)
	}
	if err == nil {
		err = s.cfg.Client.AuditEvent.Create().SetActor(u.Email).SetAction("signIn").SetObjectType("User").
			SetObjectID(itoa(u.ID)).SetTraceID(trace.FromContext(r.Context())).SetDetails(map[string]any{"ip": ip}).Exec(uctx)
	}
	if err != nil {
		s.cfg.Log.ErrorContext(r.Context(), "sign-in session", "error", err, "trace_id", trace.FromContext(r.Context()))
		writeError(w, r, err)
		return
	}
	csrf := auth.CSRFToken(s.cfg.Key, token)
	http.SetCookie(w, &http.Cookie{Name: SessionCookie, Value: token, Path: "/", HttpOnly: true, Secure: s.cfg.Secure,
		SameSite: http.SameSiteLaxMode, Expires: now.Add(s.cfg.SessionTTL)})
	http.SetCookie(w, &http.Cookie{Name: CSRFCookie, Value: csrf, Path: "/", Secure: s.cfg.Secure,
		SameSite: http.SameSiteStrictMode, Expires: now.Add(s.cfg.SessionTTL)})
	writeJSON(w, http.StatusOK, meBody{User: bodyOf(u), CSRFToken: csrf})
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
	return &viewer.Viewer{TenantID: u.TenantID, UserID: u.ID, Email: u.Email, Role: viewer.Role(u.Role)}, nil
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
