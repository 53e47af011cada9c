package schema

import (
	"entgo.io/contrib/entgql"
	"entgo.io/ent"
	"entgo.io/ent/schema"
	"entgo.io/ent/schema/edge"
	"entgo.io/ent/schema/field"
	"entgo.io/ent/schema/index"
)

// Assessment is the verdict on one host for one target cloud and region.
type Assessment struct{ ent.Schema }

func (Assessment) Mixin() []ent.Mixin { return []ent.Mixin{TimeMixin{}, TenantMixin{}} }

func (Assessment) Fields() []ent.Field {
	return []ent.Field{
		field.String("target").NotEmpty().Annotations(entgql.OrderField("TARGET")),
		field.String("region").Default(""),
		field.Enum("readiness").Values("ready", "ready_with_actions", "not_ready", "unknown").Default("unknown").
			Annotations(entgql.OrderField("READINESS")),
		field.Strings("reasons").Optional(),
		field.Strings("actions").Optional(),
		field.String("instance_type").Default(""),
		field.Float("monthly_cost_as_is").Default(0).Annotations(entgql.OrderField("MONTHLY_COST_AS_IS")),
		field.Float("monthly_cost_right_sized").Default(0).Annotations(entgql.OrderField("MONTHLY_COST_RIGHT_SIZED")),
		field.Int64("transfer_seconds").Default(0).Annotations(entgql.OrderField("TRANSFER_SECONDS")),
		field.Bool("offline_seeding").Default(false),
		field.Int("host_id"),
	}
}

func (Assessment) Edges() []ent.Edge {
	return []ent.Edge{edge.From("host", Host.Type).Ref("assessments").Field("host_id").Unique().Required()}
}

func (Assessment) Indexes() []ent.Index {
	return []ent.Index{index.Fields("tenant_id", "host_id", "target").Unique(), index.Fields("tenant_id", "readiness")}
}

func (Assessment) Annotations() []schema.Annotation {
	return []schema.Annotation{entgql.QueryField(), entgql.RelayConnection()}
}

// Plan is a set of ordered waves computed for a target under constraints.
type Plan struct{ ent.Schema }

func (Plan) Mixin() []ent.Mixin { return []ent.Mixin{TimeMixin{}, TenantMixin{}} }

func (Plan) Fields() []ent.Field {
	return []ent.Field{
		field.String("name").NotEmpty().MaxLen(200).Annotations(entgql.OrderField("NAME")),
		field.String("target").Default("alibaba"),
		field.Enum("status").Values("draft", "generating", "ready", "infeasible", "failed").Default("draft").
			Annotations(entgql.OrderField("STATUS")),
		field.JSON("constraints", map[string]any{}).Optional().Annotations(entgql.Type("Map")),
		field.JSON("metrics", map[string]any{}).Optional().Annotations(entgql.Type("Map"), entgql.Skip(entgql.SkipMutationCreateInput, entgql.SkipMutationUpdateInput)),
		field.Strings("problems").Optional().Annotations(entgql.Skip(entgql.SkipMutationCreateInput, entgql.SkipMutationUpdateInput)),
	}
}

func (Plan) Edges() []ent.Edge {
	return []ent.Edge{edge.To("waves", Wave.Type).Annotations(entgql.Skip(entgql.SkipMutationCreateInput, entgql.SkipMutationUpdateInput))}
}

func (Plan) Annotations() []schema.Annotation {
	return []schema.Annotation{entgql.QueryField(), entgql.RelayConnection(), entgql.Mutations(entgql.MutationCreate(), entgql.MutationUpdate())}
}

// Wave is one ordered step of a plan.
type Wave struct{ ent.Schema }

func (Wave) Mixin() []ent.Mixin { return []ent.Mixin{TimeMixin{}, TenantMixin{}} }

func (Wave) Fields() []ent.Field {
	return []ent.Field{
		field.Int("ordinal").NonNegative().Annotations(entgql.OrderField("ORDINAL")),
		field.String("name").Default(""),
		field.Time("starts_at").Optional().Nillable(),
		field.Time("ends_at").Optional().Nillable(),
		field.Time("cutover_at").Optional().Nillable(),
		field.Int64("data_bytes").Default(0),
		field.Int64("replication_seconds").Default(0),
		field.Enum("status").Values("planned", "replicating", "ready", "cutting_over", "done").Default("planned"),
	}
}

func (Wave) Edges() []ent.Edge {
	return []ent.Edge{
		edge.From("plan", Plan.Type).Ref("waves").Unique().Required(),
		edge.To("members", WaveMember.Type),
	}
}

func (Wave) Annotations() []schema.Annotation {
	return []schema.Annotation{entgql.RelayConnection()}
}

// WaveMember places one host in a wave, with the planner's reason.
type WaveMember struct{ ent.Schema }

func (WaveMember) Mixin() []ent.Mixin { return []ent.Mixin{TimeMixin{}, TenantMixin{}} }

func (WaveMember) Fields() []ent.Field {
	return []ent.Field{
		field.String("reason").Default("").MaxLen(2000),
		field.String("move_group").Default(""),
		field.Bool("manual").Default(false),
	}
}

func (WaveMember) Edges() []ent.Edge {
	return []ent.Edge{
		edge.From("wave", Wave.Type).Ref("members").Unique().Required(),
		edge.From("host", Host.Type).Ref("wave_memberships").Unique().Required(),
	}
}
