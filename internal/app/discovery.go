package app

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/go-chi/chi/v5"

	"github.com/ferry-migrate/ferry"
	"github.com/ferry-migrate/ferry/discovery/agentapi"
	"github.com/ferry-migrate/ferry/discovery/importer"
	"github.com/ferry-migrate/ferry/ent"
	"github.com/ferry-migrate/ferry/internal/agentstore"
	"github.com/ferry-migrate/ferry/internal/database"
	"github.com/ferry-migrate/ferry/internal/ingest"
	"github.com/ferry-migrate/ferry/internal/trace"
	"github.com/ferry-migrate/ferry/internal/viewer"
	"github.com/ferry-migrate/ferry/internal/web"
)

// Upload limits of POST /api/v1/imports. Each file is also held to the
// importer's own caps (importer.DefaultLimits).
const (
	maxUploadBytes = 1 << 30 // the whole request
	maxUploadFiles = 64
)

// uploadLimits are the importer's caps per uploaded file (zero fields:
// importer.DefaultLimits); tests lower them.
var uploadLimits importer.Limits

// wireDiscovery registers the discovery area's task handlers (a.Mux) and routes
// (a.routes); called once from New.
func (a *App) wireDiscovery() error {
	// One identity cache for agents and uploads: both merge into the same hosts.
	a.Agents = &agentstore.Store{Client: a.DB.Client, Now: a.Config.Now, Identities: &ingest.Identities{}}
	agents := agentapi.NewHandler(agentapi.Config{
		Store: a.Agents, TokenKey: a.Key, Now: a.Config.Now, Logger: a.Log,
	})
	a.routes = append(a.routes, func(r chi.Router) {
		// The agent's credential (or registration token) is its only
		// authentication: no session, no CSRF, its own body limit.
		r.Handle(agentapi.PathPrefix+"*", agents)
		// a.Web exists only once New has built it; routes are mounted
		// while it is being built, so authentication is looked up per request.
		r.Post("/api/v1/imports", func(w http.ResponseWriter, r *http.Request) {
			a.Web.Authenticate(true)(http.HandlerFunc(a.uploadImport)).ServeHTTP(w, r)
		})
	})
	return nil
}

// importError is one row error of an upload, as the UI shows it.
type importError struct {
	File    string `json:"file"`
	Row     int    `json:"row"`
	Column  string `json:"column"`
	Message string `json:"message"`
}

// importResponse answers POST /api/v1/imports.
type importResponse struct {
	ImportRun struct {
		ID     int    `json:"id"`
		Status string `json:"status"`
	} `json:"importRun"`
	Rows          int                    `json:"rows"`
	RowsImported  int                    `json:"rowsImported"`
	HostsCreated  int                    `json:"hostsCreated"`
	HostsUpdated  int                    `json:"hostsUpdated"`
	Connections   int                    `json:"connections"`
	Files         []importer.FileSummary `json:"files"`
	Errors        []importError          `json:"errors"`
	ErrorsDropped int                    `json:"errorsDropped"`
}

// uploadImport streams a multipart upload, part by part, into the
// importer (never holding a file whole) and stores the result as one
// batch. A file the importer refuses (unknown format, over a cap) refuses
// the whole upload with 400 and stores nothing; row errors are reported
// and the good rows kept.
func (a *App) uploadImport(w http.ResponseWriter, r *http.Request) {
	v := viewer.FromContext(r.Context())
	if v == nil || !v.Can(viewer.RoleConsultant) {
		role := viewer.Role("")
		if v != nil {
			role = v.Role
		}
		web.WriteError(w, r, ferry.Errorf(ferry.EFORBIDDEN, "importing needs the consultant role or higher; you are %s", role))
		return
	}
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt != "multipart/form-data" {
		web.WriteError(w, r, ferry.Errorf(ferry.EINVALID, "send the files as multipart/form-data (one part per file), not %q", r.Header.Get("Content-Type")))
		return
	}
	if r.ContentLength > maxUploadBytes {
		web.WriteError(w, r, ferry.Errorf(ferry.EINVALID, "the upload is %d bytes; the limit is %d", r.ContentLength, maxUploadBytes))
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxUploadBytes)
	mr, err := r.MultipartReader()
	if err != nil {
		web.WriteError(w, r, ferry.Errorf(ferry.EINVALID, "malformed multipart upload: %v", err))
		return
	}
	// Accepted rows wait on disk, not in memory, between parsing and
	// storing: an upload costs the server a bounded amount of memory.
	im, err := importer.NewSpooled(uploadLimits, a.Config.Now, a.spoolDir())
	if err != nil {
		web.WriteError(w, r, fmt.Errorf("start import: %w", err))
		return
	}
	defer im.Close()
	var names []string
	for {
		part, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			web.WriteError(w, r, uploadError("", err))
			return
		}
		name := cleanName(part.FileName())
		if part.FileName() == "" {
			part.Close()
			continue // a form field, not a file
		}
		if len(names) == maxUploadFiles {
			web.WriteError(w, r, ferry.Errorf(ferry.EINVALID, "an upload may hold at most %d files", maxUploadFiles))
			return
		}
		names = append(names, name)
		err = im.Add(name, part)
		part.Close()
		if err != nil {
			web.WriteError(w, r, uploadError(name, err))
			return
		}
	}
	if len(names) == 0 {
		web.WriteError(w, r, ferry.Errorf(ferry.EINVALID, "the upload has no file parts; attach one or more files (CSV template, RVTools export, ss/netstat capture or estate JSON)"))
		return
	}
	res := im.Finish()
	if err := im.Err(); err != nil {
		web.WriteError(w, r, fmt.Errorf("spool upload: %w", err))
		return
	}
	rows := 0
	for _, f := range res.Files {
		rows += f.Rows
	}
	// Stored in chunks of short transactions (ingest.DefaultChunkRows), so
	// other tenants' agents and users write between them.
	out, err := ingest.Apply(r.Context(), a.DB.Client, v.TenantID, ingest.Batch{
		Kind: kindOf(res.Files), Filename: clip(strings.Join(names, ", "), 1000), Actor: v.Actor(),
		Source: res.Spool, Errors: res.Errors, Dropped: res.ErrorsDropped, RowsTotal: rows,
		Identities: a.Agents.Identities,
		// The upload is audited like a mutation, with its run, in the
		// first chunk's transaction.
		InTx: func(ctx context.Context, tx *ent.Client, out *ingest.Outcome) error {
			return tx.AuditEvent.Create().SetActor(v.Actor()).SetAction("importFiles").SetObjectType("ImportRun").
				SetObjectID(strconv.Itoa(out.Run.ID)).SetTraceID(trace.FromContext(ctx)).SetSourceIP(trace.ClientIP(ctx)).
				SetDetails(map[string]any{"files": names, "rows": rows, "errors": len(res.Errors)}).Exec(ctx)
		},
	}, a.Config.Now())
	if err != nil {
		a.Log.ErrorContext(r.Context(), "store import", "error", err, "files", names, "stored_rows", out.Rows)
		stored := "nothing was imported"
		if out.Rows > 0 && out.Run != nil {
			stored = fmt.Sprintf("%d of %d rows were stored before (import run %d, marked failed); uploading the same files again is safe", out.Rows, rows, out.Run.ID)
		}
		if database.IsBusy(err) {
			// Never a 500 for a busy database: say when to try again.
			w.Header().Set("Retry-After", "5")
			writeJSON(w, http.StatusServiceUnavailable, map[string]string{
				"error": "the database is busy with other writers; try again shortly; " + stored, "traceId": trace.FromContext(r.Context())})
			return
		}
		if out.Rows > 0 {
			writeJSON(w, http.StatusInternalServerError, map[string]string{
				"error": "internal error; " + stored, "traceId": trace.FromContext(r.Context())})
			return
		}
		web.WriteError(w, r, err)
		return
	}
	a.Log.InfoContext(r.Context(), "stored import", "run", out.Run.ID, "rows", out.Rows, "chunks", out.Chunks,
		"longest_chunk_ms", out.Longest.Milliseconds(), "files", names)
	body := importResponse{
		Rows: out.Run.RowsTotal, RowsImported: out.Run.RowsImported, HostsCreated: out.HostsCreated,
		HostsUpdated: out.HostsUpdated, Connections: out.Connections, Files: res.Files,
		Errors: make([]importError, 0, len(res.Errors)), ErrorsDropped: res.ErrorsDropped,
	}
	body.ImportRun.ID, body.ImportRun.Status = out.Run.ID, string(out.Run.Status)
	for _, e := range res.Errors {
		body.Errors = append(body.Errors, importError{File: e.File, Row: e.Row, Column: e.Column, Message: e.Reason})
	}
	writeJSON(w, http.StatusOK, body)
}

// spoolDir is where uploads wait between parsing and storing: the data
// directory's tmp (private to the server), else the system's.
func (a *App) spoolDir() string {
	if a.Config.DataDir == "" {
		return ""
	}
	dir := filepath.Join(a.Config.DataDir, "tmp")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return ""
	}
	return dir
}

// cleanName makes an uploaded file's name safe to show and store: valid
// UTF-8, no control characters, at most 255 bytes.
func cleanName(name string) string {
	name = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return -1
		}
		return r
	}, strings.ToValidUTF8(name, "\uFFFD"))
	return ingest.Truncate(name, 255)
}

// uploadError says which file of an upload was refused and why.
func uploadError(file string, err error) error {
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &mbe):
		return ferry.Errorf(ferry.EINVALID, "the upload exceeds %d bytes; nothing was imported", mbe.Limit)
	case file == "" || errors.Is(err, io.ErrUnexpectedEOF):
		return ferry.Errorf(ferry.EINVALID, "malformed multipart upload: %v; nothing was imported", err)
	}
	msg := err.Error()
	if !strings.Contains(msg, file) {
		msg = file + ": " + msg
	}
	return ferry.Errorf(ferry.EINVALID, "%s; nothing was imported", msg)
}

// kindOf names an import by the formats of its files ("csv", "rvtools+ss").
func kindOf(files []importer.FileSummary) string {
	seen := map[string]bool{}
	for _, f := range files {
		k := string(f.Kind)
		switch f.Kind {
		case importer.KindHostsCSV, importer.KindConnectionsCSV:
			k = "csv"
		case importer.KindRVToolsCSV, importer.KindRVToolsXLSX:
			k = "rvtools"
		case importer.KindEstateJSON:
			k = "estate"
		}
		seen[k] = true
	}
	kinds := make([]string, 0, len(seen))
	for k := range seen {
		kinds = append(kinds, k)
	}
	sort.Strings(kinds)
	if len(kinds) == 0 {
		return "upload"
	}
	return strings.Join(kinds, "+")
}

func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}

// writeJSON writes a JSON answer with its status (uploads, the revocation
// feed).
func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
