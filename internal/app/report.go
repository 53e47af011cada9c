package app

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/ferry-migrate/ferry"
	"github.com/ferry-migrate/ferry/graph"
	"github.com/ferry-migrate/ferry/graph/model"
	"github.com/ferry-migrate/ferry/internal/audit"
	"github.com/ferry-migrate/ferry/internal/reporting"
	"github.com/ferry-migrate/ferry/internal/viewer"
	"github.com/ferry-migrate/ferry/internal/web"
	"github.com/ferry-migrate/ferry/jobs"
	"github.com/ferry-migrate/ferry/report"
)

// wireReports mounts the report downloads (docs/reports.md):
//
//	GET /api/v1/reports/assessment.xlsx | .pdf | .html ?target=&plan=&lang=&assumptions=JSON
//	GET /api/v1/reports/jira.csv ?plan=&wave=&lang=
//
// Any signed-in role of the tenant may download (the same rows GraphQL
// shows it); the platform operator gets its home tenant's. Downloads stream
// and are not held to the API's 60 s timeout.
func (a *App) wireReports() error {
	a.routes = append(a.routes, func(r chi.Router) {
		r.Get("/api/v1/reports/{file}", func(w http.ResponseWriter, r *http.Request) {
			a.Web.Authenticate(true)(http.HandlerFunc(a.serveReport)).ServeHTTP(w, r)
		})
	})
	(&jobs.Discovery{Client: a.DB.Client, Secrets: a.Secrets, Queue: a.Queue, Identities: a.Agents.Identities, Now: a.Config.Now, Log: a.Log}).Register(a.Mux)
	return nil
}

func (a *App) serveReport(w http.ResponseWriter, r *http.Request) {
	v := viewer.FromContext(r.Context())
	if v == nil {
		web.WriteError(w, r, ferry.Errorf(ferry.EUNAUTHORIZED, "sign in first"))
		return
	}
	ctx := viewer.NewContext(r.Context(), v.Within(v.TenantID))
	q := r.URL.Query()
	lang := q.Get("lang")
	target := q.Get("target")
	if target == "" {
		target = "alibaba"
	}
	if target != "alibaba" && target != "openstack" {
		web.WriteError(w, r, ferry.Errorf(ferry.EINVALID, "target: %q is not alibaba or openstack", target))
		return
	}
	planID := 0
	if s := q.Get("plan"); s != "" {
		id, err := strconv.Atoi(s)
		if err != nil {
			web.WriteError(w, r, ferry.Errorf(ferry.EINVALID, "plan: %q is not an id", s))
			return
		}
		planID = id
	}
	var in model.BusinessCaseAssumptionsInput
	if s := q.Get("assumptions"); s != "" {
		if err := json.Unmarshal([]byte(s), &in); err != nil {
			web.WriteError(w, r, ferry.Errorf(ferry.EINVALID, "assumptions: not a JSON object of businessCase assumptions: %v", err))
			return
		}
	}
	assume := graph.AssumptionsOf(&in)
	if err := assume.Validate(); err != nil {
		web.WriteError(w, r, ferry.Errorf(ferry.EINVALID, "%s", err.Error()))
		return
	}
	src, err := reporting.New(ctx, a.DB.Client, target, planID, &assume, a.Config.Now)
	if err != nil {
		web.WriteError(w, r, notFoundAs(err, "plan %d not found", planID))
		return
	}
	file := chi.URLParam(r, "file")
	stamp := a.Config.Now().UTC().Format("20060102")
	var write func(context.Context, http.ResponseWriter) error
	switch file {
	case "assessment.xlsx":
		w.Header().Set("Content-Type", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")
		write = func(ctx context.Context, w http.ResponseWriter) error { return report.WriteXLSX(ctx, w, src, lang) }
	case "assessment.pdf":
		w.Header().Set("Content-Type", "application/pdf")
		write = func(ctx context.Context, w http.ResponseWriter) error { return report.WritePDF(ctx, w, src, lang) }
	case "assessment.html":
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		write = func(ctx context.Context, w http.ResponseWriter) error { return report.WriteHTML(ctx, w, src, lang) }
	case "jira.csv":
		wave, err := strconv.Atoi(q.Get("wave"))
		if err != nil || wave < 1 {
			web.WriteError(w, r, ferry.Errorf(ferry.EINVALID, "wave: %q is not a wave number (1, 2, …)", q.Get("wave")))
			return
		}
		if src.Plan() == nil {
			web.WriteError(w, r, ferry.Errorf(ferry.ENOTFOUND, "no plan to export: generate one first"))
			return
		}
		file = fmt.Sprintf("jira-wave-%d.csv", wave)
		w.Header().Set("Content-Type", "text/csv; charset=utf-8")
		write = func(ctx context.Context, w http.ResponseWriter) error {
			return report.WriteJiraCSV(ctx, w, src, wave, lang)
		}
	default:
		web.WriteError(w, r, ferry.Errorf(ferry.ENOTFOUND, "no report %q: assessment.xlsx, assessment.pdf, assessment.html or jira.csv", file))
		return
	}
	// Meta is read before the first byte, so a database error still gets
	// a proper status instead of a cut-off file.
	if _, err := src.Meta(ctx); err != nil {
		web.WriteError(w, r, err)
		return
	}
	// An export is audited before its first byte: a download cut short
	// was still asked for.
	details := map[string]any{"file": file, "target": target}
	for _, k := range []string{"lang", "plan", "wave"} {
		if v := q.Get(k); v != "" {
			details[k] = v
		}
	}
	if err := audit.Record(ctx, a.DB.Client, audit.Entry{TenantID: v.TenantID, Actor: v.Actor(), Action: "exportReport",
		ObjectType: "Report", ObjectID: file, Details: details}); err != nil {
		web.WriteError(w, r, err)
		return
	}
	name := strings.TrimSuffix(file, "."+ext(file)) + "-" + stamp + "." + ext(file)
	w.Header().Set("Content-Disposition", fmt.Sprintf(`attachment; filename="ferry-%s"`, name))
	w.Header().Set("Cache-Control", "no-store")
	start := time.Now()
	if err := write(ctx, w); err != nil {
		a.Log.ErrorContext(ctx, "report", "file", file, "error", err)
		return
	}
	a.Log.InfoContext(ctx, "report written", "file", file, "seconds", time.Since(start).Seconds())
}

func ext(file string) string {
	if i := strings.LastIndexByte(file, '.'); i >= 0 {
		return file[i+1:]
	}
	return ""
}

// notFoundAs turns ent's not-found into a readable ENOTFOUND.
func notFoundAs(err error, format string, args ...any) error {
	if strings.Contains(err.Error(), "not found") {
		return ferry.Errorf(ferry.ENOTFOUND, format, args...)
	}
	return err
}
