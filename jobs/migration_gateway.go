package jobs

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/ferry-migrate/ferry"
	"github.com/ferry-migrate/ferry/engine"
	"github.com/ferry-migrate/ferry/ent"
	"github.com/ferry-migrate/ferry/internal/viewer"
)

// GatewayHandler serves the in-process gateway's data path (/sync/v1/) in
// front of m.Gateway. It lets a request through only while the disk's
// migration is in a sync state (a credential outlives a rollback or a
// cutover; the state does not), and it records what it sees: when a pass's
// session opened and when the gateway proved a disk equal to its source.
func (m *Migrations) GatewayHandler() http.Handler {
	m.defaults()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rest, _ := strings.CutPrefix(r.URL.Path, "/sync/v1/disks/")
		diskID, op, _ := strings.Cut(rest, "/")
		migID, ok := MigrationOfDisk(diskID)
		if !ok {
			gatewayRefuse(w, http.StatusNotFound, engine.CodeNotFound, fmt.Sprintf("disk %q is not a migration's target disk", diskID))
			return
		}
		sys := viewer.SystemContext(r.Context())
		mig, err := m.Client.Migration.Get(sys, migID)
		if err == nil && !slices.ContainsFunc(mig.Disks, func(d ferry.MigrationDisk) bool { return d.TargetDiskID == diskID }) {
			err = &ent.NotFoundError{}
		}
		if ent.IsNotFound(err) {
			gatewayRefuse(w, http.StatusNotFound, engine.CodeNotFound, fmt.Sprintf("disk %q belongs to no migration", diskID))
			return
		}
		if err != nil {
			m.Log.ErrorContext(r.Context(), "gateway gate", "disk", diskID, "error", err)
			gatewayRefuse(w, http.StatusInternalServerError, engine.CodeInternal, "internal error")
			return
		}
		if !syncStates[mig.State] {
			gatewayRefuse(w, http.StatusForbidden, engine.CodeUnauthorized,
				fmt.Sprintf("disk %s: its migration accepts no more syncs (it was cut over, rolled back or failed)", diskID))
			return
		}
		m.actMu.Lock()
		if m.activity == nil {
			m.activity = map[string]time.Time{}
		}
		m.activity[diskID] = m.Now()
		m.actMu.Unlock()
		observe := r.Method == http.MethodPost && (op == "session" || op == "finish")
		if !observe {
			m.Gateway.ServeHTTP(w, r)
			return
		}
		rec := &capture{ResponseWriter: w, status: http.StatusOK}
		m.Gateway.ServeHTTP(rec, r)
		if rec.status != http.StatusOK {
			return
		}
		now := m.Now().UTC()
		var res engine.FinishResult
		switch {
		case op == "session":
		case json.Unmarshal(rec.body.Bytes(), &res) == nil && res.Equal:
		default:
			return // a finish that found differences: the agent re-sends
		}
		ctx := viewer.TenantContext(r.Context(), mig.TenantID)
		_, err = m.saveDisks(ctx, migID, func(ds []ferry.MigrationDisk) {
			for i := range ds {
				if ds[i].TargetDiskID != diskID {
					continue
				}
				if op == "session" {
					ds[i].StartedAt = &now
				} else {
					ds[i].SyncedAt = &now
					ds[i].BytesDone = ds[i].SizeBytes
				}
			}
		})
		if err != nil {
			// The agent's pass is not lost: without the record the command is
			// re-sent and the next (cheap, incremental) pass records it.
			m.Log.ErrorContext(ctx, "record gateway event", "disk", diskID, "op", op, "error", err)
		} else if op == "finish" {
			m.Log.InfoContext(ctx, "disk verified equal to its source", "migration", migID, "disk", diskID, "full_read", res.FullRead)
		}
	})
}

// capture keeps a copy of a (small JSON) reply while passing it on.
type capture struct {
	http.ResponseWriter
	status int
	body   bytes.Buffer
}

func (c *capture) WriteHeader(s int) { c.status = s; c.ResponseWriter.WriteHeader(s) }
func (c *capture) Write(b []byte) (int, error) {
	if c.body.Len() < 1<<20 {
		c.body.Write(b)
	}
	return c.ResponseWriter.Write(b)
}

func gatewayRefuse(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]string{"code": code, "error": msg})
}
