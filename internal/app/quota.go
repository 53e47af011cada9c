package app

import (
	"context"

	"github.com/ferry-migrate/ferry"
	"github.com/ferry-migrate/ferry/ent"
	"github.com/ferry-migrate/ferry/ent/host"
	"github.com/ferry-migrate/ferry/ent/migration"
	"github.com/ferry-migrate/ferry/ent/tenant"
	"github.com/ferry-migrate/ferry/internal/license"
)

// finished are the migration states that hold no host.
var finished = []ferry.MigrationState{ferry.MigrationCutOver, ferry.MigrationRolledBack, ferry.MigrationFailed}

// moving are the migration states that move data (or are about to).
var moving = []ferry.MigrationState{ferry.MigrationPending, ferry.MigrationPreparing, ferry.MigrationInitialSync,
	ferry.MigrationSyncing, ferry.MigrationCuttingOver, ferry.MigrationRollingBack}

// licenseAdmission is the lifecycle service's Admit hook for a licence: it
// refuses to start migrations of hostIDs when that would take a tenant past
// its quotas (or the licence has expired). It runs inside Start, so every
// caller of the service (GraphQL, the marketplace adapter, a wave) is
// checked; migrations already running are never stopped by a licence.
func licenseAdmission(l *license.License) func(ctx context.Context, c *ent.Client, hostIDs []int) error {
	return func(ctx context.Context, c *ent.Client, hostIDs []int) error {
		var rows []struct {
			TenantID int `json:"tenant_id"`
			Count    int `json:"count"`
		}
		if err := c.Host.Query().Where(host.IDIn(hostIDs...)).GroupBy(host.FieldTenantID).Aggregate(ent.Count()).Scan(ctx, &rows); err != nil {
			return err
		}
		for _, row := range rows {
			t, err := c.Tenant.Query().Where(tenant.ID(row.TenantID)).Only(ctx)
			if err != nil {
				return err
			}
			var u license.Usage
			if u.HostsUnderMigration, err = c.Migration.Query().Where(migration.TenantID(row.TenantID), migration.StateNotIn(finished...)).
				Unique(true).Select(migration.FieldHostID).Count(ctx); err != nil {
				return err
			}
			if u.ConcurrentMigrations, err = c.Migration.Query().Where(migration.TenantID(row.TenantID), migration.StateIn(moving...)).Count(ctx); err != nil {
				return err
			}
			if err := l.Check(t.Slug, u, row.Count); err != nil {
				return err
			}
		}
		return nil
	}
}
