// Package schema is the domain model of Ferry: the single source of truth for
// the database, the ORM and (through entgql) the GraphQL types.
package schema

import (
	"context"
	stdsql "database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"entgo.io/contrib/entgql"
	"entgo.io/ent"
	"entgo.io/ent/dialect/sql"
	"entgo.io/ent/schema/edge"
	"entgo.io/ent/schema/field"
	"entgo.io/ent/schema/index"
	"entgo.io/ent/schema/mixin"

	"github.com/ferry-migrate/ferry/ent/intercept"
	"github.com/ferry-migrate/ferry/ent/internal"
	"github.com/ferry-migrate/ferry/internal/viewer"
)

// ErrNoViewer is returned when a query or mutation runs without a viewer in
// its context. Tenant isolation fails closed rather than open.
var ErrNoViewer = errors.New("tenant isolation: no viewer in context")

// TimeMixin adds creation and update times.
type TimeMixin struct{ mixin.Schema }

func (TimeMixin) Fields() []ent.Field {
	return []ent.Field{
		field.Time("created_at").Default(time.Now).Immutable().
			Annotations(entgql.OrderField("CREATED_AT")),
		field.Time("updated_at").Default(time.Now).UpdateDefault(time.Now).
			Annotations(entgql.OrderField("UPDATED_AT"), entgql.Skip(entgql.SkipMutationCreateInput, entgql.SkipMutationUpdateInput)),
	}
}

// TenantMixin makes a schema tenant-scoped: every row carries tenant_id, every
// query is filtered to the viewer's tenant by an interceptor and every
// mutation is confined to it by a hook. Resolvers therefore cannot forget it.
type TenantMixin struct{ mixin.Schema }

func (TenantMixin) Fields() []ent.Field {
	return []ent.Field{
		field.Int("tenant_id").Immutable().
			Annotations(entgql.Skip(entgql.SkipMutationCreateInput, entgql.SkipMutationUpdateInput, entgql.SkipWhereInput)),
	}
}

func (TenantMixin) Edges() []ent.Edge {
	return []ent.Edge{
		edge.To("tenant", Tenant.Type).Field("tenant_id").Unique().Required().Immutable().
			Annotations(entgql.Skip(entgql.SkipMutationCreateInput, entgql.SkipMutationUpdateInput, entgql.SkipWhereInput)),
	}
}

func (TenantMixin) Indexes() []ent.Index {
	return []ent.Index{index.Fields("tenant_id")}
}

func (TenantMixin) Interceptors() []ent.Interceptor {
	return []ent.Interceptor{
		intercept.TraverseFunc(func(ctx context.Context, q intercept.Query) error {
			v := viewer.FromContext(ctx)
			if v == nil {
				return ErrNoViewer
			}
			if !v.AllTenants() {
				q.WhereP(sql.FieldEQ("tenant_id", v.TenantID))
			}
			return nil
		}),
	}
}

// wherePer is implemented by every generated mutation.
type wherePer interface {
	WhereP(...func(*sql.Selector))
}

func (TenantMixin) Hooks() []ent.Hook {
	return []ent.Hook{
		func(next ent.Mutator) ent.Mutator {
			return ent.MutateFunc(func(ctx context.Context, m ent.Mutation) (ent.Value, error) {
				v := viewer.FromContext(ctx)
				if v == nil {
					return nil, ErrNoViewer
				}
				if m.Op().Is(ent.OpCreate) {
					if v.AllTenants() {
						if _, ok := m.Field("tenant_id"); !ok {
							if v.TenantID == 0 {
								return nil, fmt.Errorf("tenant isolation: %s created without a tenant", m.Type())
							}
							// The platform operator works in its home tenant unless it names another.
							if err := m.SetField("tenant_id", v.TenantID); err != nil {
								return nil, err
							}
						}
						if !v.System {
							// The platform operator may write in any tenant, but a row
							// never links to another tenant's rows.
							id, _ := m.Field("tenant_id")
							if err := checkReferences(ctx, m, id.(int)); err != nil {
								return nil, err
							}
						}
						return next.Mutate(ctx, m)
					}
					if id, ok := m.Field("tenant_id"); ok && id.(int) != v.TenantID {
						return nil, fmt.Errorf("tenant isolation: %s for another tenant: %w", m.Type(), ErrForeignReference)
					}
					if err := m.SetField("tenant_id", v.TenantID); err != nil {
						return nil, err
					}
					if err := checkReferences(ctx, m, v.TenantID); err != nil {
						return nil, err
					}
					return next.Mutate(ctx, m)
				}
				if !v.AllTenants() {
					w, ok := m.(wherePer)
					if !ok {
						return nil, fmt.Errorf("tenant isolation: %s mutation cannot be filtered", m.Type())
					}
					w.WhereP(sql.FieldEQ("tenant_id", v.TenantID))
					if err := checkReferences(ctx, m, v.TenantID); err != nil {
						return nil, err
					}
				} else if !v.System && addsEdges(m) {
					// The platform operator's update links only rows of the
					// tenant the changed rows belong to.
					tenants, err := rowTenants(ctx, m)
					if err != nil {
						return nil, err
					}
					for _, t := range tenants {
						if err := checkReferences(ctx, m, t); err != nil {
							return nil, err
						}
					}
				}
				return next.Mutate(ctx, m)
			})
		},
	}
}

// addsEdges reports whether m links rows other than its tenant.
func addsEdges(m ent.Mutation) bool {
	for _, e := range m.AddedEdges() {
		if e != "tenant" && len(m.AddedIDs(e)) > 0 {
			return true
		}
	}
	return false
}

// rowTenants returns the tenants of the rows an update or delete changes.
func rowTenants(ctx context.Context, m ent.Mutation) ([]int, error) {
	idm, ok := m.(interface {
		IDs(context.Context) ([]int, error)
	})
	q, ok2 := m.(queryContexter)
	if !ok || !ok2 {
		return nil, fmt.Errorf("tenant isolation: %s mutation cannot name its rows", m.Type())
	}
	ids, err := idm.IDs(ctx)
	if err != nil || len(ids) == 0 {
		return nil, err
	}
	table, ok := idRanges[int64(ids[0])>>32<<32]
	if !ok {
		return nil, fmt.Errorf("tenant isolation: %s id %d has no table", m.Type(), ids[0])
	}
	seen := map[int]bool{}
	var out []int
	for chunk := range slices.Chunk(ids, 500) {
		args := make([]any, len(chunk))
		for i, id := range chunk {
			args[i] = id
		}
		rows, err := q.QueryContext(ctx, "SELECT DISTINCT tenant_id FROM "+table+" WHERE id IN ("+placeholders(len(chunk))+")", args...)
		if err != nil {
			return nil, fmt.Errorf("tenants of %s rows: %w", m.Type(), err)
		}
		for rows.Next() {
			var t int
			if err := rows.Scan(&t); err != nil {
				rows.Close()
				return nil, err
			}
			if !seen[t] {
				seen[t] = true
				out = append(out, t)
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// ErrForeignReference is returned when a mutation links to a row that the
// viewer's tenant cannot see. It reads like "not found" on purpose: whether
// the row exists in another tenant is not the caller's business.
var ErrForeignReference = errors.New("referenced object not found")

// idRanges maps the start of each table's global id range (ent's globalid
// feature gives every table 1<<32 ids) to the table name.
var idRanges = func() map[int64]string {
	var starts map[string]int64
	if err := json.Unmarshal([]byte(internal.IncrementStarts), &starts); err != nil {
		panic(err)
	}
	m := make(map[int64]string, len(starts))
	for table, start := range starts {
		m[start] = table
	}
	return m
}()

// placeholders returns "$1, $2, …, $n": numbered parameters read the same
// on PostgreSQL and SQLite, so the hook's raw SQL runs on both.
func placeholders(n int) string {
	var b strings.Builder
	for i := 1; i <= n; i++ {
		if i > 1 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "$%d", i)
	}
	return b.String()
}

type queryContexter interface {
	QueryContext(ctx context.Context, query string, args ...any) (*stdsql.Rows, error)
}

// checkReferences makes sure every edge a mutation adds points at a row of
// the viewer's tenant, so that nobody can attach their migration to another
// tenant's host by guessing its id.
func checkReferences(ctx context.Context, m ent.Mutation, tenantID int) error {
	edges := m.AddedEdges()
	sort.Strings(edges)
	for _, name := range edges {
		if name == "tenant" {
			continue
		}
		ids := m.AddedIDs(name)
		if len(ids) == 0 {
			continue
		}
		q, ok := m.(queryContexter)
		if !ok {
			return fmt.Errorf("tenant isolation: %s mutation cannot check references", m.Type())
		}
		for _, raw := range ids {
			id, ok := raw.(int)
			if !ok {
				return fmt.Errorf("tenant isolation: %s.%s has a non-integer id", m.Type(), name)
			}
			table, ok := idRanges[int64(id)>>32<<32]
			if !ok {
				return fmt.Errorf("%s %s: %w", name, fmt.Sprint(id), ErrForeignReference)
			}
			col := "tenant_id"
			if table == "tenants" {
				col = "id"
			}
			rows, err := q.QueryContext(ctx, "SELECT COUNT(*) FROM "+table+" WHERE id = $1 AND "+col+" = $2", id, tenantID)
			if err != nil {
				return fmt.Errorf("check reference %s: %w", name, err)
			}
			var n int
			if rows.Next() {
				err = rows.Scan(&n)
			}
			rows.Close()
			if err != nil {
				return fmt.Errorf("check reference %s: %w", name, err)
			}
			if n == 0 {
				return fmt.Errorf("%s %d: %w", name, id, ErrForeignReference)
			}
		}
	}
	return nil
}
