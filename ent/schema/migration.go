package schema

import (
	"entgo.io/contrib/entgql"
	"entgo.io/ent"
	"entgo.io/ent/schema"
	"entgo.io/ent/schema/edge"
	"entgo.io/ent/schema/field"
	"entgo.io/ent/schema/index"

	"github.com/ferry-migrate/ferry"
)

// CloudAccount is a target cloud. Credentials are encrypted at rest and never
// returned by the API.
type CloudAccount struct{ ent.Schema }

func (CloudAccount) Mixin() []ent.Mixin { return []ent.Mixin{TimeMixin{}, TenantMixin{}} }

func (CloudAccount) Fields() []ent.Field {
	return []ent.Field{
		field.String("name").NotEmpty().MaxLen(200).Annotations(entgql.OrderField("NAME")),
		field.Enum("provider").Values("local", "alibaba", "openstack").Annotations(entgql.OrderField("PROVIDER")),
		field.String("region").Default(""),
		field.String("access_key_id").Default("").MaxLen(128),
		// settings are the provider's non-secret options (an endpoint, the
		// vSwitch, the source networks, a RAM role): engine/cloud.Account.Settings.
		field.JSON("settings", map[string]any{}).Optional().Annotations(entgql.Type("Map"), entgql.Skip(entgql.SkipMutationUpdateInput)),
		field.Bytes("secret_ciphertext").Sensitive().Optional().Annotations(entgql.Skip(entgql.SkipAll)),
		field.Time("checked_at").Optional().Nillable().Annotations(entgql.Skip(entgql.SkipMutationCreateInput, entgql.SkipMutationUpdateInput)),
		field.String("check_message").Default("").Annotations(entgql.Skip(entgql.SkipMutationCreateInput, entgql.SkipMutationUpdateInput)),
	}
}

func (CloudAccount) Edges() []ent.Edge {
	return append(cloudStateEdges(), edge.To("migrations", Migration.Type).Annotations(entgql.Skip(entgql.SkipAll)))
}

func (CloudAccount) Annotations() []schema.Annotation {
	return []schema.Annotation{entgql.QueryField(), entgql.RelayConnection()}
}

// Migration moves one host to a cloud account. The database row is the
// source of truth; queue tasks carry only its id.
type Migration struct{ ent.Schema }

func (Migration) Mixin() []ent.Mixin { return []ent.Mixin{TimeMixin{}, TenantMixin{}} }

func (Migration) Fields() []ent.Field {
	return []ent.Field{
		// The state machine lives in the root vocabulary (ferry.MigrationState).
		field.Enum("state").GoType(ferry.MigrationState("")).Default(string(ferry.MigrationPending)).Annotations(entgql.OrderField("STATE"), entgql.Type("MigrationState")),
		field.String("failure_reason").Default(""),
		field.JSON("settings", map[string]any{}).Optional().Annotations(entgql.Type("Map")),
		field.Int64("bytes_total").Default(0),
		field.Int64("bytes_done").Default(0),
		field.Int64("rate_bps").Default(0),
		field.Int64("lag_seconds").Default(0),
		field.Int64("eta_seconds").Default(0),
		field.Time("last_sync_at").Optional().Nillable().Annotations(entgql.OrderField("LAST_SYNC_AT")),
		field.Int("host_id"),
		// Lifecycle bookkeeping (jobs/migration): the disks and their sync
		// sessions as the gateways last reported them, the pass the agent is
		// asked for and when its command last went out.
		field.JSON("disks", []ferry.MigrationDisk{}).Optional().Annotations(entgql.Skip(entgql.SkipAll)),
		field.Int("sync_pass").Default(0),
		field.Time("sync_requested_at").Optional().Nillable(),
		field.Time("command_sent_at").Optional().Nillable().Annotations(entgql.Skip(entgql.SkipAll)),
		field.String("last_error").Default(""),
		field.Time("state_changed_at").Optional().Nillable().Annotations(entgql.OrderField("STATE_CHANGED_AT")),
	}
}

func (Migration) Edges() []ent.Edge {
	return []ent.Edge{
		edge.From("host", Host.Type).Ref("migrations").Field("host_id").Unique().Required(),
		edge.From("cloud_account", CloudAccount.Type).Ref("migrations").Unique(),
		edge.To("recovery_points", RecoveryPoint.Type).Annotations(entgql.RelayConnection(), entgql.Skip(entgql.SkipMutationCreateInput, entgql.SkipMutationUpdateInput)),
		edge.To("launches", Launch.Type).Annotations(entgql.Skip(entgql.SkipMutationCreateInput, entgql.SkipMutationUpdateInput)),
		edge.To("steps", Step.Type).Annotations(entgql.Skip(entgql.SkipAll)),
	}
}

func (Migration) Indexes() []ent.Index {
	return []ent.Index{index.Fields("tenant_id", "state"), index.Fields("tenant_id", "host_id")}
}

func (Migration) Annotations() []schema.Annotation {
	return []schema.Annotation{entgql.QueryField(), entgql.RelayConnection()}
}

// RecoveryPoint is an immutable copy of a migration's target disks.
type RecoveryPoint struct{ ent.Schema }

func (RecoveryPoint) Mixin() []ent.Mixin { return []ent.Mixin{TimeMixin{}, TenantMixin{}} }

func (RecoveryPoint) Fields() []ent.Field {
	return []ent.Field{
		field.String("external_id").NotEmpty(),
		field.Int64("size_bytes").Default(0),
		field.String("manifest_digest").Default(""),
		field.Strings("labels").Optional(),
		field.JSON("points", []ferry.DiskPoint{}).Optional().Annotations(entgql.Skip(entgql.SkipAll)),
	}
}

func (RecoveryPoint) Edges() []ent.Edge {
	return []ent.Edge{
		edge.From("migration", Migration.Type).Ref("recovery_points").Unique().Required(),
		edge.To("launches", Launch.Type),
	}
}

// Launch is a test launch or the cutover launch of a migration.
type Launch struct{ ent.Schema }

func (Launch) Mixin() []ent.Mixin { return []ent.Mixin{TimeMixin{}, TenantMixin{}} }

func (Launch) Fields() []ent.Field {
	return []ent.Field{
		field.Enum("kind").Values("test", "cutover"),
		field.Enum("status").Values("pending", "running", "succeeded", "failed", "terminated").Default("pending"),
		field.String("instance_id").Default(""),
		field.JSON("checks", []map[string]any{}).Optional().Annotations(entgql.Type("[Map!]")),
		field.Time("finished_at").Optional().Nillable(),
		field.String("message").Default(""),
		field.JSON("instances", []ferry.DiskInstance{}).Optional().Annotations(entgql.Skip(entgql.SkipAll)),
		// Issue 16: a launch is a real boot. console is the tail of its
		// serial console (what the guest printed up to its login prompt, or
		// the panic that stopped it); accel how it ran and why (tcg/kvm).
		field.Text("console").Default("").Annotations(entgql.Skip(entgql.SkipMutationCreateInput, entgql.SkipMutationUpdateInput)),
		field.String("accel").Default("").MaxLen(500).Annotations(entgql.Skip(entgql.SkipMutationCreateInput, entgql.SkipMutationUpdateInput)),
		// A cutover's downtime: from the source quiesced (the final pass's
		// command handed to the agent, which quiesces before it reads) to
		// every health check of the target passed.
		field.Time("quiesced_at").Optional().Nillable().Annotations(entgql.Skip(entgql.SkipMutationCreateInput, entgql.SkipMutationUpdateInput)),
		field.Time("healthy_at").Optional().Nillable().Annotations(entgql.Skip(entgql.SkipMutationCreateInput, entgql.SkipMutationUpdateInput)),
		field.Float("downtime_seconds").Optional().Nillable().Annotations(entgql.Skip(entgql.SkipMutationCreateInput, entgql.SkipMutationUpdateInput)),
		// When the control plane asked the agent to bring the quiesced
		// source back (a failed cutover, a rollback).
		field.Time("source_resumed_at").Optional().Nillable().Annotations(entgql.Skip(entgql.SkipAll)),
		// The size the machine got: the cloud's instance type (empty where
		// a provider sizes by vCPUs and memory) and where it came from (the
		// host's assessment for this cloud, another cloud's, the inventory
		// or the account's default) with the vCPUs and memory.
		field.String("instance_type").Default("").MaxLen(64).Annotations(entgql.Skip(entgql.SkipMutationCreateInput, entgql.SkipMutationUpdateInput, entgql.SkipWhereInput)),
		field.String("sizing").Default("").MaxLen(500).Annotations(entgql.Skip(entgql.SkipMutationCreateInput, entgql.SkipMutationUpdateInput, entgql.SkipWhereInput)),
	}
}

func (Launch) Edges() []ent.Edge {
	return []ent.Edge{
		edge.From("migration", Migration.Type).Ref("launches").Unique().Required(),
		edge.From("recovery_point", RecoveryPoint.Type).Ref("launches").Unique(),
		edge.To("steps", Step.Type).Annotations(entgql.Skip(entgql.SkipAll)),
	}
}

// Step is one piece of a migration's itinerary (jobs/migration): prepare,
// the continuous sync, a test launch, the cutover, a rollback. Its current
// phase is persisted, a worker holds it through a lease on this row
// (compare-and-set on lease_owner/lease_until), and its events are the
// migration's log. Queue tasks carry the step's id and generation only.
type Step struct{ ent.Schema }

func (Step) Mixin() []ent.Mixin { return []ent.Mixin{TimeMixin{}, TenantMixin{}} }

func (Step) Fields() []ent.Field {
	return []ent.Field{
		field.String("kind").NotEmpty().MaxLen(32),
		field.String("phase").Default("").MaxLen(64),
		field.Enum("status").Values("pending", "running", "waiting", "succeeded", "failed", "canceled").Default("pending"),
		// generation names the step's current task (TaskID step:<id>:<gen>);
		// waking the step or recovering it from a dead worker bumps it, so a
		// task of an older generation finds nothing to do.
		field.Int("generation").Default(0),
		field.String("lease_owner").Default(""),
		field.Time("lease_until").Optional().Nillable(),
		// wake_at is when a waiting step runs again; null while it waits for
		// an event (an approval) rather than a time.
		field.Time("wake_at").Optional().Nillable(),
		// attempts counts the current phase's consecutive failures (backoff).
		field.Int("attempts").Default(0),
		field.String("last_error").Default(""),
		field.JSON("data", map[string]any{}).Optional(),
		field.Time("finished_at").Optional().Nillable(),
		field.Int("migration_id"),
		field.Int("launch_id").Optional().Nillable(),
	}
}

func (Step) Edges() []ent.Edge {
	return []ent.Edge{
		edge.From("migration", Migration.Type).Ref("steps").Field("migration_id").Unique().Required(),
		edge.From("launch", Launch.Type).Ref("steps").Field("launch_id").Unique(),
		edge.To("events", StepEvent.Type),
	}
}

func (Step) Indexes() []ent.Index {
	return []ent.Index{index.Fields("migration_id", "kind"), index.Fields("status", "lease_until"), index.Fields("launch_id")}
}

func (Step) Annotations() []schema.Annotation {
	return []schema.Annotation{entgql.Skip(entgql.SkipAll)}
}

// StepEvent is one line of a step's log: a phase begun or finished, a
// failure and its retry, a recovery after a worker died.
type StepEvent struct{ ent.Schema }

func (StepEvent) Mixin() []ent.Mixin { return []ent.Mixin{TimeMixin{}, TenantMixin{}} }

func (StepEvent) Fields() []ent.Field {
	return []ent.Field{
		field.String("phase").Default(""),
		field.Enum("level").Values("info", "warn", "error").Default("info"),
		field.String("message").MaxLen(4000),
		field.Int("step_id"),
	}
}

func (StepEvent) Edges() []ent.Edge {
	return []ent.Edge{edge.From("step", Step.Type).Ref("events").Field("step_id").Unique().Required()}
}

func (StepEvent) Indexes() []ent.Index {
	return []ent.Index{index.Fields("step_id", "created_at")}
}

func (StepEvent) Annotations() []schema.Annotation {
	return []schema.Annotation{entgql.Skip(entgql.SkipAll)}
}

func (RecoveryPoint) Annotations() []schema.Annotation {
	return []schema.Annotation{entgql.RelayConnection()}
}

// HookDelivery is one attempt at a migration hook (jobs/hook): a webhook
// POST or an agent script, with what came back. The delivery log of a
// migration; the outcome also goes into the step's events.
type HookDelivery struct{ ent.Schema }

func (HookDelivery) Mixin() []ent.Mixin { return []ent.Mixin{TimeMixin{}, TenantMixin{}} }

func (HookDelivery) Fields() []ent.Field {
	return []ent.Field{
		field.Int("migration_id"),
		// point is when the hook runs: before_sync, before_cutover, after_launch, after_cutover.
		field.String("point").MaxLen(32),
		field.String("hook").Default("").MaxLen(200),
		field.Enum("kind").Values("webhook", "script"),
		field.String("target").Default("").MaxLen(2000),
		field.Int("attempt").Default(1),
		field.Int("status_code").Default(0),
		field.Bool("ok").Default(false),
		field.Bool("must_succeed").Default(false),
		field.String("output").Default("").MaxLen(4000),
		field.String("error").Default("").MaxLen(4000),
		field.Int64("duration_ms").Default(0),
	}
}

func (HookDelivery) Indexes() []ent.Index {
	return []ent.Index{index.Fields("migration_id", "created_at")}
}

func (HookDelivery) Annotations() []schema.Annotation {
	return []schema.Annotation{entgql.Skip(entgql.SkipAll)}
}
