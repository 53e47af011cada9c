package schema

import (
	"context"

	"entgo.io/contrib/entgql"
	"entgo.io/ent"
	"entgo.io/ent/dialect/sql"
	"entgo.io/ent/schema"
	"entgo.io/ent/schema/field"

	"github.com/ferry-migrate/ferry/ent/intercept"
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
