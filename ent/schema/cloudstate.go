package schema

import (
	"entgo.io/contrib/entgql"
	"entgo.io/ent"
	"entgo.io/ent/dialect/entsql"
	"entgo.io/ent/schema"
	"entgo.io/ent/schema/edge"
	"entgo.io/ent/schema/field"
	"entgo.io/ent/schema/index"
)

// CloudRecord is one record of a cloud provider's state for an account
// (engine/cloud/alibaba.Store: which ECS disk is which Ferry disk, the
// phases of a launch, a gateway's registration). The value is sealed,
// bound to the row (account, key, tenant), and never exposed by the API:
// it may hold a gateway's credential key.
type CloudRecord struct{ ent.Schema }

func (CloudRecord) Mixin() []ent.Mixin { return []ent.Mixin{TimeMixin{}, TenantMixin{}} }

func (CloudRecord) Fields() []ent.Field {
	return []ent.Field{
		field.Int("account_id").Immutable(),
		field.String("key").NotEmpty().MaxLen(512).Immutable(),
		field.Bytes("value").Sensitive(),
	}
}

func (CloudRecord) Edges() []ent.Edge {
	return []ent.Edge{
		edge.From("account", CloudAccount.Type).Ref("records").Field("account_id").Unique().Required().Immutable(),
	}
}

func (CloudRecord) Indexes() []ent.Index {
	return []ent.Index{index.Fields("account_id", "key").Unique()}
}

func (CloudRecord) Annotations() []schema.Annotation {
	return []schema.Annotation{entgql.Skip(entgql.SkipAll)}
}

// CloudTicket is a one-time token that an instance a cloud provider
// started (a migration's gateway, a launch's repair instance) presents when
// it calls the control plane back: bound to one account and one record key,
// expiring, redeemed at most once. Only its SHA-256 is stored; the token is
// an HMAC of the row under the server's key, so minting it again before it
// is used gives the same token (a repeated RunInstances carries the same
// user data).
type CloudTicket struct{ ent.Schema }

func (CloudTicket) Mixin() []ent.Mixin { return []ent.Mixin{TimeMixin{}, TenantMixin{}} }

func (CloudTicket) Fields() []ent.Field {
	return []ent.Field{
		field.Int("account_id").Immutable(),
		field.String("key").NotEmpty().MaxLen(512).Immutable(),
		field.Bytes("token_hash").Sensitive().Optional().Unique(),
		field.Time("expires_at").Immutable(),
		field.Time("used_at").Optional().Nillable(),
	}
}

func (CloudTicket) Edges() []ent.Edge {
	return []ent.Edge{
		edge.From("account", CloudAccount.Type).Ref("tickets").Field("account_id").Unique().Required().Immutable(),
	}
}

func (CloudTicket) Indexes() []ent.Index {
	return []ent.Index{index.Fields("account_id", "key")}
}

func (CloudTicket) Annotations() []schema.Annotation {
	return []schema.Annotation{entgql.Skip(entgql.SkipAll)}
}

// cloudStateEdges are CloudAccount's edges to its provider state, deleted
// with the account.
func cloudStateEdges() []ent.Edge {
	return []ent.Edge{
		edge.To("records", CloudRecord.Type).Annotations(entgql.Skip(entgql.SkipAll), entsql.OnDelete(entsql.Cascade)),
		edge.To("tickets", CloudTicket.Type).Annotations(entgql.Skip(entgql.SkipAll), entsql.OnDelete(entsql.Cascade)),
	}
}
