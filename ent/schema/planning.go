package schema

import (
	"entgo.io/contrib/entgql"
	"entgo.io/ent"
	"entgo.io/ent/schema"
	"entgo.io/ent/schema/edge"
	"entgo.io/ent/schema/field"
	"entgo.io/ent/schema/index"

	"github.com/ferry-migrate/ferry/i18n"
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
		// What the assessment sized and why; filled by the planning wiring.
		field.Strings("missing").Optional(),
		field.Int("need_vcpus").Default(0),
		field.Float("need_memory_gib").Default(0),
		field.String("instance_type_as_is").Default(""),
		field.Float("storage_monthly").Default(0),
		field.Int64("used_bytes").Default(0),
		field.String("sizing_note").Default(""),
		field.String("seeding_note").Default(""),
		// findings are the reasons, actions, missing data and notes as codes
		// with parameters (i18n), which the UI and reports translate; the
		// string fields above hold their English text.
		field.JSON("findings", []i18n.Finding{}).Optional().Annotations(entgql.Type("[Finding!]")),
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
		// status: queued (a job will build it) → running → ready (waves written) |
		// infeasible (waves written, but some groups could not be placed: see
		// infeasible/unplaced) | failed (error and problems say why).
		field.Enum("status").Values("draft", "queued", "running", "ready", "infeasible", "failed").Default("draft").
			Annotations(entgql.OrderField("STATUS")),
		// constraints holds the plan.yaml document (constraints plus "rules") the plan is built from.
		field.JSON("constraints", map[string]any{}).Optional().Annotations(entgql.Type("Map")),
		field.JSON("metrics", map[string]any{}).Optional().Annotations(entgql.Type("Map"), entgql.Skip(entgql.SkipMutationCreateInput, entgql.SkipMutationUpdateInput)),
		// problems lists the input errors that failed the plan, each naming the item.
		field.Strings("problems").Optional().Annotations(entgql.Skip(entgql.SkipMutationCreateInput, entgql.SkipMutationUpdateInput)),
		field.String("error").Default("").MaxLen(4000).Annotations(entgql.Skip(entgql.SkipMutationCreateInput, entgql.SkipMutationUpdateInput)),
		// infeasible, unplaced, cycles and warnings are the planner's report (planner.Plan).
		field.JSON("infeasible", []map[string]any{}).Optional().Annotations(entgql.Type("[Map!]"), entgql.Skip(entgql.SkipMutationCreateInput, entgql.SkipMutationUpdateInput)),
		field.JSON("unplaced", []map[string]any{}).Optional().Annotations(entgql.Type("[Map!]"), entgql.Skip(entgql.SkipMutationCreateInput, entgql.SkipMutationUpdateInput)),
		field.JSON("cycles", []map[string]any{}).Optional().Annotations(entgql.Type("[Map!]"), entgql.Skip(entgql.SkipMutationCreateInput, entgql.SkipMutationUpdateInput)),
		field.Strings("warnings").Optional().Annotations(entgql.Skip(entgql.SkipMutationCreateInput, entgql.SkipMutationUpdateInput)),
		// shared_services are the hosts kept out of grouping, with their policy and wave (planner.SharedService).
		field.JSON("shared_services", []map[string]any{}).Optional().Annotations(entgql.Type("[Map!]"), entgql.Skip(entgql.SkipMutationCreateInput, entgql.SkipMutationUpdateInput)),
		field.Time("started_at").Optional().Nillable().Annotations(entgql.Skip(entgql.SkipMutationCreateInput, entgql.SkipMutationUpdateInput)),
		field.Time("finished_at").Optional().Nillable().Annotations(entgql.Skip(entgql.SkipMutationCreateInput, entgql.SkipMutationUpdateInput)),
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
		field.Bool("pilot").Default(false),
		field.Int("host_count").Default(0),
		field.Int64("wire_bytes").Default(0),
		field.Time("cutover_ends_at").Optional().Nillable(),
		// status is the wave's run (jobs/wave): planned → replicating → ready →
		// cutting_over → done | partially_cut_over (some hosts rolled back,
		// listed on their members); paused stops new starts and cutovers.
		field.Enum("status").Values("planned", "replicating", "ready", "cutting_over", "done", "paused", "partially_cut_over").Default("planned"),
		// confidence (high, medium, low) and risk (low, medium, high) with the factors behind them (planner.Wave).
		field.String("confidence").Default(""),
		field.Strings("confidence_factors").Optional(),
		field.String("risk").Default(""),
		field.Strings("risk_factors").Optional(),
		// The wave's run (jobs/wave). run_settings are what startWave was
		// given (cap, cutover time or windows, approver role, hooks, RPO,
		// retention); run_cutover_at .. run_cutover_ends_at is the cutover
		// window they resolved to, persisted so that a restart keeps it.
		field.JSON("run_settings", map[string]any{}).Optional().Annotations(entgql.Skip(entgql.SkipAll)), // holds sealed webhook secrets: the API shows Wave.hooks
		field.Time("run_started_at").Optional().Nillable().Annotations(entgql.Skip(entgql.SkipMutationCreateInput, entgql.SkipMutationUpdateInput)),
		field.String("run_started_by").Default("").Annotations(entgql.Skip(entgql.SkipMutationCreateInput, entgql.SkipMutationUpdateInput)),
		field.Time("run_cutover_at").Optional().Nillable().Annotations(entgql.Skip(entgql.SkipMutationCreateInput, entgql.SkipMutationUpdateInput)),
		field.Time("run_cutover_ends_at").Optional().Nillable().Annotations(entgql.Skip(entgql.SkipMutationCreateInput, entgql.SkipMutationUpdateInput)),
		// run_message says what the run waits for (an approval, hosts not ready).
		field.String("run_message").Default("").MaxLen(4000).Annotations(entgql.Skip(entgql.SkipMutationCreateInput, entgql.SkipMutationUpdateInput)),
		// approver_role must approve the cutover (empty: none needed).
		field.String("approver_role").Default("").Annotations(entgql.Skip(entgql.SkipMutationCreateInput, entgql.SkipMutationUpdateInput)),
		field.String("approved_by").Default("").Annotations(entgql.Skip(entgql.SkipMutationCreateInput, entgql.SkipMutationUpdateInput)),
		field.Time("approved_at").Optional().Nillable().Annotations(entgql.Skip(entgql.SkipMutationCreateInput, entgql.SkipMutationUpdateInput)),
		field.Time("finished_at").Optional().Nillable().Annotations(entgql.Skip(entgql.SkipMutationCreateInput, entgql.SkipMutationUpdateInput)),
		// manual_steps are the runbook's steps someone ticks off before the
		// cutover ({name, doneBy, doneAt}); shown as Wave.manualSteps.
		field.JSON("manual_steps", []map[string]any{}).Optional().Annotations(entgql.Skip(entgql.SkipAll)),
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
		// reasons are the reason as codes with parameters (planner.Member.Reasons),
		// which the UI and reports translate; reason holds their English text.
		field.JSON("reasons", []i18n.Finding{}).Optional().Annotations(entgql.Type("[Finding!]")),
		field.String("move_group").Default(""),
		field.Bool("manual").Default(false),
		field.Int64("bytes").Default(0),
		field.Float("downtime_minutes").Default(0),
		// The member's part in the wave's run (jobs/wave): run_state is idle
		// (not started), no_agent, queued (behind the cap), started (its
		// migration runs), held (not ready at its cutover time), cutting_over,
		// cut_over, rolled_back (its cutover failed and it was rolled back
		// alone) or failed; run_message says why.
		field.Enum("run_state").Values("idle", "no_agent", "queued", "started", "held", "cutting_over", "cut_over", "rolled_back", "failed").Default("idle"),
		field.String("run_message").Default("").MaxLen(4000),
		// cutover_at overrides the wave's cutover time for this host.
		field.Time("cutover_at").Optional().Nillable(),
		// migration_id is the migration the run started for the host.
		field.Int("migration_id").Optional().Nillable(),
		// queue_position is the member's place in the wave's order.
		field.Int("queue_position").Default(0),
	}
}

func (WaveMember) Edges() []ent.Edge {
	return []ent.Edge{
		edge.From("wave", Wave.Type).Ref("members").Unique().Required(),
		edge.From("host", Host.Type).Ref("wave_memberships").Unique().Required(),
	}
}

func (Wave) Indexes() []ent.Index {
	return []ent.Index{index.Fields("tenant_id").Edges("plan"), index.Edges("plan")}
}

func (WaveMember) Indexes() []ent.Index {
	return []ent.Index{index.Fields("tenant_id").Edges("wave"), index.Edges("wave"), index.Fields("tenant_id").Edges("host"), index.Edges("host"), index.Fields("migration_id")}
}

// ApplicationSuggestion is an application the planner inferred from
// traffic: hosts without a label that talk mostly to each other, with the
// evidence. Accepting it gives its hosts an Application (a new one, or the
// labelled one it extends); it changes no host until then.
type ApplicationSuggestion struct{ ent.Schema }

func (ApplicationSuggestion) Mixin() []ent.Mixin { return []ent.Mixin{TimeMixin{}, TenantMixin{}} }

func (ApplicationSuggestion) Fields() []ent.Field {
	return []ent.Field{
		field.String("name").NotEmpty().MaxLen(200).Annotations(entgql.OrderField("NAME")),
		field.String("environment").Default(""),
		// extends names the labelled application the hosts would join ("" = a new one).
		field.String("extends").Default(""),
		field.Enum("status").Values("open", "accepted").Default("open").Annotations(entgql.OrderField("STATUS")),
		// members are the unlabelled hosts ({id, name}), host_count their number.
		field.JSON("members", []map[string]any{}).Annotations(entgql.Type("[Map!]")),
		field.Int("host_count").Default(0).Annotations(entgql.OrderField("HOST_COUNT")),
		field.Int64("internal_weight").Default(0).Annotations(entgql.OrderField("INTERNAL_WEIGHT")),
		field.Int64("external_weight").Default(0),
		field.Int64("shared_weight").Default(0),
		field.Float("cohesion").Default(0).Annotations(entgql.OrderField("COHESION")),
		// ports that bind the members ({port, weight}) and the applications it talks to most.
		field.JSON("ports", []map[string]any{}).Optional().Annotations(entgql.Type("[Map!]")),
		field.Strings("neighbours").Optional(),
		field.Int("application_id").Optional().Nillable(),
	}
}

func (ApplicationSuggestion) Indexes() []ent.Index {
	return []ent.Index{index.Fields("tenant_id", "status")}
}

func (ApplicationSuggestion) Annotations() []schema.Annotation {
	return []schema.Annotation{entgql.QueryField(), entgql.RelayConnection()}
}
