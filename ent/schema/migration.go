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
		field.Bytes("secret_ciphertext").Sensitive().Optional().Annotations(entgql.Skip(entgql.SkipAll)),
		field.Time("checked_at").Optional().Nillable().Annotations(entgql.Skip(entgql.SkipMutationCreateInput, entgql.SkipMutationUpdateInput)),
		field.String("check_message").Default("").Annotations(entgql.Skip(entgql.SkipMutationCreateInput, entgql.SkipMutationUpdateInput)),
	}
}

func (CloudAccount) Edges() []ent.Edge {
	return []ent.Edge{edge.To("migrations", Migration.Type).Annotations(entgql.Skip(entgql.SkipAll))}
}

func (CloudAccount) Annotations() []schema.Annotation {
	return []schema.Annotation{entgql.QueryField(), entgql.RelayConnection()}
}

// migrationStates is the state machine of DESIGN.md §4.
var migrationStates = []string{
	"pending", "preparing", "initial_sync", "syncing", "test_launched", "cutover_ready",
	"cutting_over", "cut_over", "rolling_back", "rolled_back", "failed",
}

// Migration moves one host to a cloud account. The database row is the
// source of truth; queue tasks carry only its id.
type Migration struct{ ent.Schema }

func (Migration) Mixin() []ent.Mixin { return []ent.Mixin{TimeMixin{}, TenantMixin{}} }

func (Migration) Fields() []ent.Field {
	return []ent.Field{
		field.Enum("state").Values(migrationStates...).Default("pending").Annotations(entgql.OrderField("STATE")),
		field.String("failure_reason").Default(""),
		field.JSON("settings", map[string]any{}).Optional().Annotations(entgql.Type("Map")),
		field.Int64("bytes_total").Default(0),
		field.Int64("bytes_done").Default(0),
		field.Int64("rate_bps").Default(0),
		field.Int64("lag_seconds").Default(0),
		field.Int64("eta_seconds").Default(0),
		field.Time("last_sync_at").Optional().Nillable().Annotations(entgql.OrderField("LAST_SYNC_AT")),
		field.Int("host_id"),
		// Lifecycle bookkeeping (jobs/migration.go).
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
	}
}

func (Launch) Edges() []ent.Edge {
	return []ent.Edge{
		edge.From("migration", Migration.Type).Ref("launches").Unique().Required(),
		edge.From("recovery_point", RecoveryPoint.Type).Ref("launches").Unique(),
	}
}

func (RecoveryPoint) Annotations() []schema.Annotation {
	return []schema.Annotation{entgql.RelayConnection()}
}
