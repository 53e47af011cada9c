// Package web is Ferry's HTTP front door: the chi router and its middleware
// (trace ids, real IP, JSON access logs, panic recovery, body limits,
// timeouts, gzip, metrics), sign-in with cookie sessions and API tokens,
// CSRF protection, health and readiness, and the embedded UI.
package web

import (
	"context"
	"encoding/json"

	"io/fs"
	"log/slog"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/go-chi/chi/v5/middleware"
	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel/attribute"
	oteltrace "go.opentelemetry.io/otel/trace"

	"github.com/ferry-migrate/ferry"
	"github.com/ferry-migrate/ferry/ent"
	"github.com/ferry-migrate/ferry/internal/auth"
	"github.com/ferry-migrate/ferry/internal/trace"
)

// Config holds the server's dependencies.
type Config struct {
	Client  *ent.Client
	Ready   []Check      // readiness checks (database, queue)
	GraphQL http.Handler // the /graphql handler
	UI      fs.FS        // the built UI, or nil
	Log     *slog.Logger
	Key     []byte // HMAC key for CSRF tokens
	Secure  bool   // set the Secure flag on cookies (behind TLS)
	Now     func() time.Time
	// MaxBody caps request bodies on API routes (bytes).
	MaxBody int64
	// SessionTTL is how long a sign-in lasts.
	SessionTTL time.Duration
	// SocketRecheck is how often an open websocket's credential is checked
	// again (default 30 s).
	SocketRecheck time.Duration
	// Mount adds more routes (agent protocol, uploads) with the same middleware.
	Mount func(r chi.Router, s *Server)
	// Registry receives the HTTP metrics; nil uses a fresh registry.
	Registry *prometheus.Registry
	// Throttle holds the sign-in gates (required).
	Throttle *auth.Throttle
	// TrustedProxies are the peers whose ClientIPHeader names the client;
	// from anyone else forwarded headers are ignored. Default: none.
	TrustedProxies []netip.Prefix
	// ClientIPHeader is the one header trusted proxies set:
	// X-Forwarded-For (default), Forwarded or X-Real-IP.
	ClientIPHeader string
	// MetricsToken, when set, lets `Authorization: Bearer <token>` read
	// /metrics; the platform operator may read it too, nobody else.
	MetricsToken string
}

// Check is a named readiness probe.
type Check struct {
	Name string
	Fn   func(context.Context) error
}

// Server is the configured router.
type Server struct {
	cfg    Config
	router chi.Router
	reqs   *prometheus.HistogramVec
	// closing ends every open websocket when the server shuts down
	// (http.Server.Shutdown does not track hijacked connections).
	closing   chan struct{}
	closeOnce sync.Once
}

// New builds the router.
func New(cfg Config) *Server {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.MaxBody == 0 {
		cfg.MaxBody = 1 << 20
	}
	if cfg.SessionTTL == 0 {
		cfg.SessionTTL = 12 * time.Hour
	}
	if cfg.SocketRecheck == 0 {
		cfg.SocketRecheck = 30 * time.Second
	}
	if cfg.Throttle == nil {
		panic("web.New: Config.Throttle is required")
	}
	if h, err := ClientIPHeader(cfg.ClientIPHeader); err == nil {
		cfg.ClientIPHeader = h
	} else {
		panic("web.New: " + err.Error())
	}
	if cfg.Registry == nil {
		cfg.Registry = prometheus.NewRegistry()
		cfg.Registry.MustRegister(prometheus.NewGoCollector(), prometheus.NewProcessCollector(prometheus.ProcessCollectorOpts{}))
	}
	s := &Server{
		cfg:     cfg,
		closing: make(chan struct{}),
		reqs: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "ferry_http_request_duration_seconds", Help: "HTTP requests by route and status.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
		}, []string{"route", "method", "status"}),
	}
	cfg.Registry.MustRegister(s.reqs)

	r := chi.NewRouter()
	r.Use(s.traceID, s.realIP, otelhttp.NewMiddleware("ferry", otelhttp.WithSpanNameFormatter(func(_ string, r *http.Request) string {
		return r.Method + " " + r.URL.Path
	})), tagSpan, s.accessLog, s.recoverer)
	r.Get("/healthz", func(w http.ResponseWriter, _ *http.Request) { writeJSON(w, 200, map[string]string{"status": "ok"}) })
	r.Get("/readyz", s.readyz)
	r.With(s.metricsAccess).Handle("/metrics", s.Metrics())
	r.Group(func(r chi.Router) {
		// A websocket upgrade (GraphQL subscriptions) lives longer than 60 s
		// and is not compressed by this layer; its lifetime is socketGuard's.
		r.Use(exceptUpgrade(middleware.Compress(5)), s.limitBody, exceptUpgrade(middleware.Timeout(60*time.Second)))
		r.Post("/auth/login", s.login)
		r.With(s.authenticate(true)).Post("/auth/logout", s.logout)
		r.With(s.authenticate(true)).Get("/auth/me", s.me)
		r.With(s.socketGuard, s.authenticate(true)).Handle("/graphql", cfg.GraphQL)
	})
	if cfg.Mount != nil {
		cfg.Mount(r, s)
	}
	r.With(middleware.Compress(5)).Handle("/*", s.ui())
	s.router = r
	return s
}

// tagSpan names Ferry's trace id on the request's OpenTelemetry span, so a
// log line and its trace find each other.
func tagSpan(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		oteltrace.SpanFromContext(r.Context()).SetAttributes(attribute.String("ferry.trace_id", trace.FromContext(r.Context())))
		next.ServeHTTP(w, r)
	})
}

// Routes is the router, for walking every route (the REST route matrix test).
func (s *Server) Routes() chi.Routes { return s.router }

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.router.ServeHTTP(w, r) }

// CloseSockets ends every open websocket (GraphQL subscriptions); the
// server calls it when it shuts down.
func (s *Server) CloseSockets() { s.closeOnce.Do(func() { close(s.closing) }) }

// isUpgrade reports whether r asks to switch to the websocket protocol.
func isUpgrade(r *http.Request) bool {
	return strings.EqualFold(r.Header.Get("Upgrade"), "websocket")
}

// exceptUpgrade applies mw to every request but websocket upgrades.
func exceptUpgrade(mw func(http.Handler) http.Handler) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		wrapped := mw(next)
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if isUpgrade(r) {
				next.ServeHTTP(w, r)
				return
			}
			wrapped.ServeHTTP(w, r)
		})
	}
}

// socketGuard refuses cross-site websocket upgrades (the session cookie rides
// on them, so another site's page could otherwise open a subscription as the
// user: the Origin's host must be the request's Host) and bounds an accepted
// socket's life: its context ends when the server shuts down or when the
// credential that opened it stops being valid (sign-out, expiry, disabled
// account, revoked token), checked every Config.SocketRecheck (30 s). Other
// requests pass untouched.
func (s *Server) socketGuard(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !isUpgrade(r) {
			next.ServeHTTP(w, r)
			return
		}
		if err := s.sameOrigin(r, "websocket"); err != nil {
			s.cfg.Log.WarnContext(r.Context(), "websocket refused", "error", err.Error(), "origin", r.Header.Get("Origin"),
				"host", r.Host, "trace_id", trace.FromContext(r.Context()))
			s.refuse(w, r, err)
			return
		}
		ctx, cancel := context.WithCancel(r.Context())
		defer cancel()
		go func() {
			t := time.NewTicker(s.cfg.SocketRecheck)
			defer t.Stop()
			for {
				select {
				case <-ctx.Done():
					return
				case <-s.closing:
					cancel()
					return
				case <-t.C:
					if v, err := s.resolveViewer(r); err != nil || v == nil {
						s.cfg.Log.InfoContext(ctx, "websocket closed: credential no longer valid", "trace_id", trace.FromContext(ctx))
						cancel()
						return
					}
				}
			}
		}()
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}

// sameOrigin refuses browser requests (what: "sign-in", "websocket") sent
// by another site's page: a Sec-Fetch-Site other than same-origin (or
// none: typed by the user), or an Origin whose host is not this server's
// (the request's Host, or the X-Forwarded-Host a trusted proxy passes on).
// Requests with neither header (scripts, agents, curl) pass: they carry no
// ambient browser credential.
func (s *Server) sameOrigin(r *http.Request, what string) error {
	switch site := r.Header.Get("Sec-Fetch-Site"); site {
	case "", "same-origin", "none":
	default:
		return ferry.Errorf(ferry.EFORBIDDEN, "cross-site %s refused: the browser says it comes from a %s page", what, site)
	}
	o := r.Header.Get("Origin")
	if o == "" {
		return nil
	}
	u, err := url.Parse(o)
	if err == nil && u.Host != "" {
		if strings.EqualFold(u.Host, r.Host) {
			return nil
		}
		if fh := r.Header.Get("X-Forwarded-Host"); fh != "" && s.trusted(peerAddr(r)) && strings.EqualFold(u.Host, strings.TrimSpace(strings.Split(fh, ",")[0])) {
			return nil
		}
	}
	return ferry.Errorf(ferry.EFORBIDDEN, "cross-site %s refused: origin %q is not this server (%s)", what, o, r.Host)
}

// Authenticate exposes the authentication middleware to mounted routes.
func (s *Server) Authenticate(required bool) func(http.Handler) http.Handler {
	return s.authenticate(required)
}

// traceID gives every request a trace id: the caller's X-Request-Id when it is
// well formed, otherwise a new one. It is echoed in X-Trace-Id.
func (s *Server) traceID(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := trace.Sanitize(r.Header.Get("X-Request-Id"))
		w.Header().Set("X-Trace-Id", id)
		next.ServeHTTP(w, r.WithContext(trace.NewContext(r.Context(), id)))
	})
}

func (s *Server) accessLog(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		ww := middleware.NewWrapResponseWriter(w, r.ProtoMajor)
		next.ServeHTTP(ww, r)
		route := chi.RouteContext(r.Context()).RoutePattern()
		if route == "" {
			route = "unmatched"
		}
		status := ww.Status()
		if status == 0 {
			status = 200
		}
		d := time.Since(start)
		s.reqs.WithLabelValues(route, r.Method, strconv.Itoa(status)).Observe(d.Seconds())
		lvl := slog.LevelInfo
		if route == "/healthz" || route == "/readyz" || route == "/metrics" {
			lvl = slog.LevelDebug
		}
		s.cfg.Log.Log(r.Context(), lvl, "http request", "method", r.Method, "route", route, "path", r.URL.Path,
			"status", status, "bytes", ww.BytesWritten(), "duration_ms", float64(d.Microseconds())/1000,
			"remote", ipString(ClientIP(r.Context())), "peer", r.RemoteAddr, "trace_id", trace.FromContext(r.Context()))
	})
}

func (s *Server) recoverer(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if p := recover(); p != nil {
				if p == http.ErrAbortHandler {
					panic(p)
				}
				s.cfg.Log.ErrorContext(r.Context(), "panic", "panic", p, "trace_id", trace.FromContext(r.Context()))
				writeError(w, r, ferry.Errorf(ferry.EINTERNAL, "internal error"))
			}
		}()
		next.ServeHTTP(w, r)
	})
}

// limitBody refuses bodies above MaxBody with 413 before reading them whole.
func (s *Server) limitBody(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ContentLength > s.cfg.MaxBody {
			writeJSON(w, http.StatusRequestEntityTooLarge, errBody(r, "request body is larger than "+strconv.FormatInt(s.cfg.MaxBody, 10)+" bytes"))
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, s.cfg.MaxBody)
		next.ServeHTTP(w, r)
	})
}

func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	out := map[string]string{}
	ok := true
	for _, c := range s.cfg.Ready {
		if err := c.Fn(r.Context()); err != nil {
			ok = false
			out[c.Name] = "unavailable"
			s.cfg.Log.WarnContext(r.Context(), "not ready", "check", c.Name, "error", err)
		} else {
			out[c.Name] = "ok"
		}
	}
	status := http.StatusOK
	if !ok {
		status = http.StatusServiceUnavailable
	}
	writeJSON(w, status, out)
}

// ui serves the embedded single-page app with history-mode fallback, or a
// placeholder page when the UI has not been built.
func (s *Server) ui() http.Handler {
	if s.cfg.UI == nil {
		return http.HandlerFunc(placeholder)
	}
	if _, err := fs.Stat(s.cfg.UI, "index.html"); err != nil {
		return http.HandlerFunc(placeholder)
	}
	files := http.FileServer(http.FS(s.cfg.UI))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := strings.TrimPrefix(r.URL.Path, "/")
		if p != "" {
			if _, err := fs.Stat(s.cfg.UI, p); err == nil {
				if strings.HasPrefix(p, "assets/") {
					w.Header().Set("Cache-Control", "public, max-age=31536000, immutable")
				}
				files.ServeHTTP(w, r)
				return
			}
			if strings.HasPrefix(p, "assets/") || strings.Contains(p, ".") {
				http.NotFound(w, r)
				return
			}
		}
		b, err := fs.ReadFile(s.cfg.UI, "index.html")
		if err != nil {
			placeholder(w, r)
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Cache-Control", "no-cache")
		w.Write(b)
	})
}

func placeholder(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Write([]byte(`<!doctype html><html><head><title>Ferry</title></head><body style="font-family:sans-serif;max-width:40em;margin:4em auto">
<h1>Ferry</h1><p>The server is running. The web UI has not been built into this binary: run <code>make run</code>
(it builds <code>frontend/dist</code>) or use the GraphQL API at <a href="/graphql">/graphql</a>.</p></body></html>`))
}

// writeJSON writes v as JSON with status.
func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

func errBody(r *http.Request, msg string) map[string]string {
	return map[string]string{"error": msg, "traceId": trace.FromContext(r.Context())}
}

// statusOf maps an error code to an HTTP status, in one place for REST routes.
func statusOf(code string) int {
	switch code {
	case ferry.EINVALID:
		return http.StatusBadRequest
	case ferry.ENOTFOUND:
		return http.StatusNotFound
	case ferry.ECONFLICT:
		return http.StatusConflict
	case ferry.EFORBIDDEN:
		return http.StatusForbidden
	case ferry.EUNAUTHORIZED:
		return http.StatusUnauthorized
	case ferry.ERATELIMIT:
		return http.StatusTooManyRequests
	}
	return http.StatusInternalServerError
}

// writeError writes err as {"error": message} with the status of its code.
func writeError(w http.ResponseWriter, r *http.Request, err error) {
	writeJSON(w, statusOf(ferry.ErrorCode(err)), errBody(r, ferry.ErrorMessage(err)))
}

// WriteError is writeError for mounted routes.
func WriteError(w http.ResponseWriter, r *http.Request, err error) { writeError(w, r, err) }
