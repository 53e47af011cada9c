package graph

import (
	"context"
	"slices"
	"strings"

	"github.com/ferry-migrate/ferry"
	"github.com/ferry-migrate/ferry/ent"
	"github.com/ferry-migrate/ferry/ent/migration"
	"github.com/ferry-migrate/ferry/internal/viewer"
)

// The migration mutations translate: the role check here, the lifecycle's
// rules in the service (ferry.MigrationService), called in the mutation's
// transaction so that its enqueues follow the commit.

// migrations returns the lifecycle service or a readable error when the
// server was built without one.
func (r *Resolver) migrations(ctx context.Context) (ferry.MigrationService, error) {
	if _, err := require(ctx, viewer.RoleOperator); err != nil {
		return nil, err
	}
	if r.Migrations == nil {
		return nil, ferry.Errorf(ferry.ECONFLICT, "this server process does not run migrations")
	}
	return r.Migrations, nil
}

// migrationRows loads migrations in the order of ids.
func migrationRows(ctx context.Context, ids []int) ([]*ent.Migration, error) {
	rows, err := ent.FromContext(ctx).Migration.Query().Where(migration.IDIn(ids...)).All(ctx)
	if err != nil {
		return nil, err
	}
	slices.SortFunc(rows, func(a, b *ent.Migration) int { return slices.Index(ids, a.ID) - slices.Index(ids, b.ID) })
	return rows, nil
}

// recoveryPointKind names a point by its first label.
func recoveryPointKind(labels []string) string {
	for _, l := range labels {
		if !strings.Contains(l, ":") {
			return l
		}
	}
	return "sync"
}
