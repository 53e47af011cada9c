package schema

import (
	"entgo.io/contrib/entgql"
	"entgo.io/ent"
	"entgo.io/ent/schema"
	"entgo.io/ent/schema/edge"
	"entgo.io/ent/schema/field"
)

// MarketplaceInstance is one purchase made on a cloud marketplace (the SaaS
// SPI's createInstance): the order it came from, the tenant it provisioned
// and its lifecycle. Only internal/marketplace writes it, as the system.
type MarketplaceInstance struct{ ent.Schema }

func (MarketplaceInstance) Mixin() []ent.Mixin { return []ent.Mixin{TimeMixin{}} }

func (MarketplaceInstance) Fields() []ent.Field {
	return []ent.Field{
		field.String("provider").Default("alibaba"),
		// OrderBizID makes createInstance idempotent: the marketplace may
		// call it again for the same order and gets the same instance.
		field.String("order_biz_id").NotEmpty().Unique(),
		field.String("instance_id").NotEmpty().Unique(),
		field.String("order_id").Default(""),
		field.String("ali_uid").Default(""),
		field.String("sku_id").Default(""),
		field.Bool("trial").Default(false),
		field.Enum("status").Values("active", "expired", "released").Default("active"),
		field.Time("expires_at").Optional().Nillable(),
		field.JSON("last_params", map[string]string{}).Optional(),
		field.Int("tenant_id").Immutable(),
	}
}

func (MarketplaceInstance) Edges() []ent.Edge {
	return []ent.Edge{
		edge.To("tenant", Tenant.Type).Field("tenant_id").Unique().Required().Immutable(),
	}
}

func (MarketplaceInstance) Annotations() []schema.Annotation {
	return []schema.Annotation{entgql.Skip(entgql.SkipAll)}
}
