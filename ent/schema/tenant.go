package schema

import (
	"context"

	"entgo.io/contrib/entgql"
	"entgo.io/ent"
	"entgo.io/ent/dialect/sql"
	"entgo.io/ent/schema"
	"entgo.io/ent/schema/field"

	"github.com/ferry-migrate/ferry"
	gen "github.com/ferry-migrate/ferry/ent"
	"github.com/ferry-migrate/ferry/ent/hook"
	"github.com/ferry-migrate/ferry/ent/intercept"
	"github.com/ferry-migrate/ferry/ent/tenant"
	"github.com/ferry-migrate/ferry/ent/user"
	"github.com/ferry-migrate/ferry/internal/viewer"
)

// Tenant is one customer organisation. Its rows are visible only to its own
// users and to the platform operator.
type Tenant struct{ ent.Schema }

func (Tenant) Mixin() []ent.Mixin { return []ent.Mixin{TimeMixin{}} }

func (Tenant) Fields() []ent.Field {
	return []ent.Field{
		field.String("name").NotEmpty().MaxLen(200).Unique().
			Annotations(entgql.OrderField("NAME")),
		field.String("slug").NotEmpty().MaxLen(63).Unique().Match(slugRE),
		field.Bool("disabled").Default(false),
		// Suspended tenants keep every row but may not use the API or run
		// agents (an expired marketplace instance, or the operator's call).
		field.Time("suspended_at").Optional().Nillable().
			Annotations(entgql.Skip(entgql.SkipMutationCreateInput, entgql.SkipMutationUpdateInput)),
		field.String("suspend_reason").Default("").MaxLen(500).
			Annotations(entgql.Skip(entgql.SkipMutationCreateInput, entgql.SkipMutationUpdateInput)),
		// DeletionScheduledAt is when a released marketplace instance's
		// tenant is due to be purged (nothing is deleted before then).
		field.Time("deletion_scheduled_at").Optional().Nillable().
			Annotations(entgql.Skip(entgql.SkipMutationCreateInput, entgql.SkipMutationUpdateInput)),
	}
}

func (Tenant) Annotations() []schema.Annotation {
	return []schema.Annotation{entgql.QueryField(), entgql.RelayConnection(), entgql.Mutations(entgql.MutationCreate(), entgql.MutationUpdate())}
}

func (Tenant) Interceptors() []ent.Interceptor {
	return []ent.Interceptor{
		intercept.TraverseFunc(func(ctx context.Context, q intercept.Query) error {
			v := viewer.FromContext(ctx)
			if v == nil {
				return ErrNoViewer
			}
			if !v.AllTenants() {
				q.WhereP(sql.FieldEQ("id", v.TenantID))
			}
			return nil
		}),
	}
}

// Hooks confine writes of tenants as TenantMixin confines every other row:
// only the platform operator (or the system) creates tenants and changes
// another tenant; an owner may rename its own tenant and nothing else (an
// update of another tenant's id matches no row, so it reads "not found" and
// returns nothing of that tenant); only the platform operator disables or
// enables a tenant, and never the home tenant of an enabled platform operator
// or the last enabled tenant, which would lock the installation out.
// Tenants are never deleted except by the system.
func (Tenant) Hooks() []ent.Hook {
	return []ent.Hook{
		func(next ent.Mutator) ent.Mutator {
			return hook.TenantFunc(func(ctx context.Context, m *gen.TenantMutation) (ent.Value, error) {
				v := viewer.FromContext(ctx)
				if v == nil {
					return nil, ErrNoViewer
				}
				switch {
				case m.Op().Is(ent.OpCreate):
					if !v.AllTenants() {
						return nil, ferry.Errorf(ferry.EFORBIDDEN, "only the platform operator creates tenants")
					}
				case m.Op().Is(ent.OpDelete | ent.OpDeleteOne):
					if !v.System {
						return nil, ferry.Errorf(ferry.EFORBIDDEN, "tenants are not deleted; the platform operator disables them")
					}
				default:
					if !v.AllTenants() {
						if !v.Can(viewer.RoleOwner) {
							return nil, ferry.Errorf(ferry.EFORBIDDEN, "only the tenant's owner changes the tenant; you are %s", v.Role)
						}
						if _, ok := m.Disabled(); ok {
							return nil, ferry.Errorf(ferry.EFORBIDDEN, "only the platform operator enables or disables a tenant")
						}
						// Generic field access: this file compiles before ent is generated.
						if _, ok := m.Field("suspended_at"); ok || m.FieldCleared("suspended_at") {
							return nil, ferry.Errorf(ferry.EFORBIDDEN, "only the platform operator suspends or resumes a tenant")
						}
						if _, ok := m.Field("deletion_scheduled_at"); ok || m.FieldCleared("deletion_scheduled_at") {
							return nil, ferry.Errorf(ferry.EFORBIDDEN, "only the platform operator schedules a tenant's deletion")
						}
						m.Where(tenant.ID(v.TenantID))
					}
					if d, ok := m.Disabled(); ok && d {
						if err := keepTenantsReachable(ctx, m); err != nil {
							return nil, err
						}
					}
					if _, ok := m.Field("suspended_at"); ok {
						if err := keepOperatorHome(ctx, m); err != nil {
							return nil, err
						}
					}
				}
				return next.Mutate(ctx, m)
			})
		},
	}
}

// keepOperatorHome refuses to suspend the home tenant of an enabled
// platform operator: nobody could then resume anything.
func keepOperatorHome(ctx context.Context, m *gen.TenantMutation) error {
	ids, err := m.IDs(ctx)
	if err != nil || len(ids) == 0 {
		return err
	}
	n, err := m.Client().User.Query().Where(user.TenantIDIn(ids...), user.RoleEQ(user.RolePlatform), user.Disabled(false)).Count(viewer.SystemContext(ctx))
	if err != nil {
		return err
	}
	if n > 0 {
		return ferry.Errorf(ferry.ECONFLICT, "this tenant is the home of the platform operator: suspending it would lock the operator out")
	}
	return nil
}

// keepTenantsReachable refuses to disable the home tenant of an enabled
// platform operator (nobody could sign in to enable it again) or every
// enabled tenant at once.
func keepTenantsReachable(ctx context.Context, m *gen.TenantMutation) error {
	ids, err := m.IDs(ctx)
	if err != nil || len(ids) == 0 {
		return err
	}
	sys := viewer.SystemContext(ctx)
	c := m.Client()
	n, err := c.User.Query().Where(user.TenantIDIn(ids...), user.RoleEQ(user.RolePlatform), user.Disabled(false)).Count(sys)
	if err != nil {
		return err
	}
	if n > 0 {
		return ferry.Errorf(ferry.ECONFLICT, "this tenant is the home of the platform operator: disabling it would lock the operator out")
	}
	left, err := c.Tenant.Query().Where(tenant.Disabled(false), tenant.IDNotIn(ids...)).Count(sys)
	if err != nil {
		return err
	}
	if left == 0 {
		return ferry.Errorf(ferry.ECONFLICT, "at least one tenant must stay enabled")
	}
	return nil
}
