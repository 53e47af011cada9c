package graph

import (
	"context"

	"github.com/ferry-migrate/ferry/ent"
	"github.com/ferry-migrate/ferry/ent/host"
	"github.com/ferry-migrate/ferry/ent/migration"
	"github.com/ferry-migrate/ferry/ent/tenant"
	"github.com/ferry-migrate/ferry/internal/license"
)

// finished are the migration states that hold no host.
var finished = []migration.State{migration.StateCutOver, migration.StateRolledBack, migration.StateFailed}

// moving are the migration states that move data (or are about to).
var moving = []migration.State{migration.StatePending, migration.StatePreparing, migration.StateInitialSync,
	migration.StateSyncing, migration.StateCuttingOver, migration.StateRollingBack}

// checkLicense refuses to start migrations of hostIDs when that would take
// a tenant past its licence (or the licence has expired). Only starting is
// checked: migrations already running are never stopped by a licence.
func (r *Resolver) checkLicense(ctx context.Context, client *ent.Client, hostIDs []int) error {
	if r.License == nil {
		return nil
	}
	adding := map[int]int{} // tenant → new hosts
	seen := map[int]bool{}
	var ids []int
	for _, id := range hostIDs {
		if !seen[id] {
			seen[id] = true
			ids = append(ids, id)
		}
	}
	var rows []struct {
		TenantID int `json:"tenant_id"`
		Count    int `json:"count"`
	}
	if err := client.Host.Query().Where(host.IDIn(ids...)).GroupBy(host.FieldTenantID).Aggregate(ent.Count()).Scan(ctx, &rows); err != nil {
		return err
	}
	for _, row := range rows {
		adding[row.TenantID] = row.Count
	}
	for tid, n := range adding {
		t, err := client.Tenant.Query().Where(tenant.ID(tid)).Only(ctx)
		if err != nil {
			return err
		}
		var u license.Usage
		if u.HostsUnderMigration, err = client.Migration.Query().Where(migration.TenantID(tid), migration.StateNotIn(finished...)).
			Unique(true).Select(migration.FieldHostID).Count(ctx); err != nil {
			return err
		}
		if u.ConcurrentMigrations, err = client.Migration.Query().Where(migration.TenantID(tid), migration.StateIn(moving...)).Count(ctx); err != nil {
			return err
		}
		if err := r.License.Check(t.Slug, u, n); err != nil {
			return err
		}
	}
	return nil
}
