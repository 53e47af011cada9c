package migration

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/ferry-migrate/ferry"
	"github.com/ferry-migrate/ferry/engine"
	"github.com/ferry-migrate/ferry/ent"
)

// Gate serves the in-process gateway's data path (/sync/v1/) in front of
// gw: a request goes through only while the disk's migration replicates (a
// credential outlives a rollback or a cutover; the state does not). It
// records nothing: the sync step reads the pass's progress from the gateway.
func (l *Lifecycle) Gate(gw http.Handler) http.Handler {
	l.init()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rest, _ := strings.CutPrefix(r.URL.Path, "/sync/v1/disks/")
		diskID, _, _ := strings.Cut(rest, "/")
		migID, ok := MigrationOfDisk(diskID)
		if !ok {
			refuse(w, http.StatusNotFound, engine.CodeNotFound, fmt.Sprintf("disk %q is not a migration's target disk", diskID))
			return
		}
		mig, err := l.Client.Migration.Get(systemContext(r.Context()), migID)
		if err == nil && !slices.ContainsFunc(mig.Disks, func(d ferry.MigrationDisk) bool { return d.TargetDiskID == diskID }) {
			err = &ent.NotFoundError{}
		}
		if ent.IsNotFound(err) {
			refuse(w, http.StatusNotFound, engine.CodeNotFound, fmt.Sprintf("disk %q belongs to no migration", diskID))
			return
		}
		if err != nil {
			l.Log.ErrorContext(r.Context(), "gateway gate", "disk", diskID, "error", err)
			refuse(w, http.StatusInternalServerError, engine.CodeInternal, "internal error")
			return
		}
		if !mig.State.Replicating() {
			refuse(w, http.StatusForbidden, engine.CodeUnauthorized,
				fmt.Sprintf("disk %s: its migration accepts no more syncs (it was cut over, rolled back or failed)", diskID))
			return
		}
		gw.ServeHTTP(w, r)
	})
}

func refuse(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]string{"code": code, "error": msg})
}
