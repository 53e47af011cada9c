package web

import (
	"crypto/subtle"
	"net/http"
	"strings"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/ferry-migrate/ferry"
	"github.com/ferry-migrate/ferry/internal/trace"
	"github.com/ferry-migrate/ferry/internal/viewer"
)

// Metrics is the Prometheus exposition of the server's registry, with no
// access check of its own: the main router puts metricsAccess in front of
// it; a separate metrics listener (FERRY_METRICS_ADDR) serves it through
// MetricsListenerHandler.
func (s *Server) Metrics() http.Handler {
	return promhttp.HandlerFor(s.cfg.Registry, promhttp.HandlerOpts{})
}

// MetricsListenerHandler serves /metrics alone, for a listener on a
// private address: open to whoever reaches that address, unless a metrics
// token is configured, which it then requires.
func (s *Server) MetricsListenerHandler() http.Handler {
	mux := http.NewServeMux()
	h := s.Metrics()
	mux.Handle("/metrics", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.cfg.MetricsToken != "" && !s.metricsToken(r) {
			w.Header().Set("WWW-Authenticate", `Bearer realm="ferry-metrics"`)
			writeError(w, r, ferry.Errorf(ferry.EUNAUTHORIZED, "/metrics needs Authorization: Bearer <FERRY_METRICS_TOKEN>"))
			return
		}
		h.ServeHTTP(w, r)
	}))
	return s.traceID(mux)
}

func (s *Server) metricsToken(r *http.Request) bool {
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	return ok && s.cfg.MetricsToken != "" && subtle.ConstantTimeCompare([]byte(tok), []byte(s.cfg.MetricsToken)) == 1
}

// metricsAccess lets through the metrics token (what a Prometheus scrape
// config carries as a bearer token) or the platform operator's session or
// API token. Metrics describe the whole installation (every tenant's
// request rates), so no tenant role is enough.
func (s *Server) metricsAccess(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.metricsToken(r) {
			next.ServeHTTP(w, r)
			return
		}
		if h := r.Header.Get("Authorization"); h != "" && !strings.HasPrefix(h, "Bearer fat_") {
			w.Header().Set("WWW-Authenticate", `Bearer realm="ferry-metrics"`)
			writeError(w, r, ferry.Errorf(ferry.EUNAUTHORIZED, "wrong metrics token"))
			return
		}
		v, err := s.resolveViewer(r)
		switch {
		case err != nil:
			s.refuse(w, r, err)
		case v == nil:
			w.Header().Set("WWW-Authenticate", `Bearer realm="ferry-metrics"`)
			writeError(w, r, ferry.Errorf(ferry.EUNAUTHORIZED, "/metrics needs Authorization: Bearer <FERRY_METRICS_TOKEN> or the platform operator's sign-in"))
		case v.Role != viewer.RolePlatform:
			s.cfg.Log.InfoContext(r.Context(), "metrics refused", "user", v.Email, "trace_id", trace.FromContext(r.Context()))
			writeError(w, r, ferry.Errorf(ferry.EFORBIDDEN, "only the platform operator may read /metrics"))
		default:
			next.ServeHTTP(w, r)
		}
	})
}
