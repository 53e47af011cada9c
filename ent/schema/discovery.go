package schema

import (
	"entgo.io/contrib/entgql"
	"entgo.io/ent"
	"entgo.io/ent/schema"
	"entgo.io/ent/schema/edge"
	"entgo.io/ent/schema/field"
	"entgo.io/ent/schema/index"
)

// RegistrationToken lets an agent join a tenant. The token itself is signed
// (HMAC) and carries token_id; the row tracks expiry, uses and revocation.
type RegistrationToken struct{ ent.Schema }

func (RegistrationToken) Mixin() []ent.Mixin { return []ent.Mixin{TimeMixin{}, TenantMixin{}} }

func (RegistrationToken) Fields() []ent.Field {
	return []ent.Field{
		field.String("name").NotEmpty().MaxLen(200).Annotations(entgql.OrderField("NAME")),
		field.String("token_id").NotEmpty().Unique().Immutable().
			Annotations(entgql.Skip(entgql.SkipMutationCreateInput, entgql.SkipMutationUpdateInput)),
		field.Time("expires_at").Annotations(entgql.OrderField("EXPIRES_AT")),
		field.Int("max_uses").Default(1).Positive(),
		field.Int("uses").Default(0).NonNegative().
			Annotations(entgql.Skip(entgql.SkipMutationCreateInput, entgql.SkipMutationUpdateInput)),
		field.Time("revoked_at").Optional().Nillable().
			Annotations(entgql.Skip(entgql.SkipMutationCreateInput, entgql.SkipMutationUpdateInput)),
	}
}

func (RegistrationToken) Edges() []ent.Edge {
	return []ent.Edge{edge.To("agents", Agent.Type).Annotations(entgql.Skip(entgql.SkipMutationCreateInput, entgql.SkipMutationUpdateInput))}
}

func (RegistrationToken) Annotations() []schema.Annotation {
	return []schema.Annotation{entgql.QueryField(), entgql.RelayConnection()}
}

// Agent is a registered source-side agent. Only a hash of its credential is kept.
type Agent struct{ ent.Schema }

func (Agent) Mixin() []ent.Mixin { return []ent.Mixin{TimeMixin{}, TenantMixin{}} }

func (Agent) Fields() []ent.Field {
	return []ent.Field{
		field.String("name").Default("").Annotations(entgql.OrderField("NAME")),
		field.String("hostname").Default("").Annotations(entgql.OrderField("HOSTNAME")),
		field.Bytes("credential_hash").Sensitive().Unique().Annotations(entgql.Skip(entgql.SkipAll)),
		field.String("version").Default(""),
		field.Time("last_heartbeat_at").Optional().Nillable().Annotations(entgql.OrderField("LAST_HEARTBEAT_AT")),
		field.Time("revoked_at").Optional().Nillable(),
		// recent_batches holds the last sample batch ids, so a batch re-sent
		// after a lost response is not counted twice.
		field.Strings("recent_batches").Optional().Annotations(entgql.Skip(entgql.SkipAll)),
		field.Int("buffered_batches").Default(0).Annotations(entgql.Skip(entgql.SkipMutationCreateInput, entgql.SkipMutationUpdateInput)),
	}
}

func (Agent) Edges() []ent.Edge {
	return []ent.Edge{
		edge.From("registration_token", RegistrationToken.Type).Ref("agents").Unique(),
		edge.To("host", Host.Type).Unique(),
	}
}

func (Agent) Annotations() []schema.Annotation {
	return []schema.Annotation{entgql.QueryField(), entgql.RelayConnection(), entgql.Mutations(entgql.MutationUpdate())}
}

// ImportRun records one import of a file or a vCenter, with its per-row errors.
type ImportRun struct{ ent.Schema }

func (ImportRun) Mixin() []ent.Mixin { return []ent.Mixin{TimeMixin{}, TenantMixin{}} }

func (ImportRun) Fields() []ent.Field {
	return []ent.Field{
		field.String("kind").NotEmpty().Annotations(entgql.OrderField("KIND")), // csv, rvtools, ss, netstat, estate, vcenter
		field.String("filename").Default(""),
		field.Enum("status").Values("running", "succeeded", "partial", "failed").Default("running").Annotations(entgql.OrderField("STATUS")),
		field.Int("rows_total").Default(0),
		field.Int("rows_imported").Default(0),
		field.Int("hosts_created").Default(0),
		field.Int("hosts_updated").Default(0),
		field.Int("connections_imported").Default(0),
		field.JSON("errors", []map[string]any{}).Optional().Annotations(entgql.Type("[Map!]")),
		field.String("actor").Default(""),
	}
}

func (ImportRun) Annotations() []schema.Annotation {
	return []schema.Annotation{entgql.QueryField(), entgql.RelayConnection()}
}

// Host is a source machine: physical, VMware or KVM guest.
type Host struct{ ent.Schema }

func (Host) Mixin() []ent.Mixin { return []ent.Mixin{TimeMixin{}, TenantMixin{}} }

func (Host) Fields() []ent.Field {
	return []ent.Field{
		field.String("name").NotEmpty().MaxLen(255).Annotations(entgql.OrderField("NAME")),
		field.String("fqdn").Default("").MaxLen(255),
		field.String("external_id").Default("").MaxLen(255).Comment("id in the source of record (vCenter instance UUID, CSV id)"),
		field.String("bios_uuid").Default("").MaxLen(64),
		field.String("machine_id").Default("").MaxLen(64),
		field.String("os").Default("").MaxLen(200).Annotations(entgql.OrderField("OS")),
		field.String("os_family").Default("").MaxLen(32),
		field.String("kernel").Default("").MaxLen(128),
		field.String("arch").Default("").MaxLen(32),
		field.Enum("boot_mode").Values("unknown", "bios", "uefi").Default("unknown"),
		field.Int("cpus").Default(0).NonNegative().Annotations(entgql.OrderField("CPUS")),
		field.String("cpu_model").Default(""),
		field.Int64("memory_mib").Default(0).NonNegative().Annotations(entgql.OrderField("MEMORY_MIB")),
		field.Int64("disk_provisioned_bytes").Default(0).NonNegative().Annotations(entgql.OrderField("DISK_PROVISIONED_BYTES")),
		field.Int64("disk_used_bytes").Default(0).NonNegative().Annotations(entgql.OrderField("DISK_USED_BYTES")),
		field.String("virtualization").Default("").MaxLen(32),
		field.String("power_state").Default(""),
		field.String("source").Default("manual").MaxLen(32).Annotations(entgql.OrderField("SOURCE")),
		field.Enum("criticality").Values("unknown", "low", "medium", "high", "critical").Default("unknown").Annotations(entgql.OrderField("CRITICALITY")),
		field.Enum("environment").Values("unknown", "production", "staging", "test", "development", "dr").Default("unknown").Annotations(entgql.OrderField("ENVIRONMENT")),
		field.String("owner").Default("").MaxLen(200),
		field.Strings("tags").Optional(),
		field.Strings("ips").Optional(),
		field.Strings("macs").Optional(),
		field.Float("cpu_p95").Optional().Nillable(),
		field.Float("memory_p95").Optional().Nillable(),
		field.Int("pinned_wave").Default(0).NonNegative(),
		field.Time("last_seen_at").Optional().Nillable().Annotations(entgql.OrderField("LAST_SEEN_AT")),
		field.Int("application_id").Optional().Nillable().
			Annotations(entgql.Skip(entgql.SkipMutationCreateInput, entgql.SkipMutationUpdateInput)),
	}
}

func (Host) Edges() []ent.Edge {
	return []ent.Edge{
		edge.To("disks", Disk.Type).Annotations(entgql.Skip(entgql.SkipMutationCreateInput, entgql.SkipMutationUpdateInput)),
		edge.To("nics", NetworkInterface.Type).Annotations(entgql.Skip(entgql.SkipMutationCreateInput, entgql.SkipMutationUpdateInput)),
		edge.To("software", Software.Type).Annotations(entgql.Skip(entgql.SkipMutationCreateInput, entgql.SkipMutationUpdateInput)),
		edge.To("outgoing", Connection.Type).Annotations(entgql.RelayConnection(), entgql.Skip(entgql.SkipMutationCreateInput, entgql.SkipMutationUpdateInput)),
		edge.To("incoming", Connection.Type).Annotations(entgql.RelayConnection(), entgql.Skip(entgql.SkipMutationCreateInput, entgql.SkipMutationUpdateInput)),
		edge.From("application", Application.Type).Ref("hosts").Field("application_id").Unique(),
		edge.To("assessments", Assessment.Type).Annotations(entgql.Skip(entgql.SkipMutationCreateInput, entgql.SkipMutationUpdateInput)),
		edge.To("migrations", Migration.Type).Annotations(entgql.Skip(entgql.SkipMutationCreateInput, entgql.SkipMutationUpdateInput)),
		edge.To("wave_memberships", WaveMember.Type).Annotations(entgql.Skip(entgql.SkipMutationCreateInput, entgql.SkipMutationUpdateInput)),
		edge.From("agent", Agent.Type).Ref("host").Unique().Annotations(entgql.Skip(entgql.SkipMutationCreateInput, entgql.SkipMutationUpdateInput)),
	}
}

func (Host) Indexes() []ent.Index {
	return []ent.Index{
		index.Fields("tenant_id", "name"),
		index.Fields("tenant_id", "bios_uuid"),
		index.Fields("tenant_id", "environment"),
		index.Fields("tenant_id", "criticality"),
		index.Fields("tenant_id", "os"),
		index.Fields("tenant_id", "created_at"),
		index.Fields("tenant_id", "application_id"),
		index.Fields("application_id"),
	}
}

func (Host) Annotations() []schema.Annotation {
	return []schema.Annotation{entgql.QueryField(), entgql.RelayConnection(), entgql.MultiOrder(), entgql.Mutations(entgql.MutationCreate(), entgql.MutationUpdate())}
}

// Disk is a block device of a host.
type Disk struct{ ent.Schema }

func (Disk) Mixin() []ent.Mixin { return []ent.Mixin{TimeMixin{}, TenantMixin{}} }

func (Disk) Fields() []ent.Field {
	return []ent.Field{
		field.String("name").NotEmpty().MaxLen(128),
		field.Int64("size_bytes").Default(0).NonNegative(),
		field.Int64("used_bytes").Default(0).NonNegative(),
		field.String("device").Default(""),
		field.String("filesystem").Default(""),
	}
}

func (Disk) Edges() []ent.Edge {
	return []ent.Edge{edge.From("host", Host.Type).Ref("disks").Unique().Required()}
}

// Indexes: SQLite does not index foreign keys by itself. Each edge gets two:
// (tenant_id, fk) so that a tenant's eager load ("host_disks IN (…) AND
// tenant_id = ?") matches two columns of one index — with the foreign key
// alone, SQLite without statistics preferred the tenant_id index and read
// every disk of the estate for one page of hosts — and (fk) for the
// platform operator's queries, which carry no tenant filter.
func (Disk) Indexes() []ent.Index {
	return []ent.Index{index.Fields("tenant_id").Edges("host"), index.Edges("host")}
}

// NetworkInterface is a NIC of a host.
type NetworkInterface struct{ ent.Schema }

func (NetworkInterface) Mixin() []ent.Mixin { return []ent.Mixin{TimeMixin{}, TenantMixin{}} }

func (NetworkInterface) Fields() []ent.Field {
	return []ent.Field{
		field.String("name").Default(""),
		field.String("mac").Default(""),
		field.Strings("addresses").Optional(),
		field.String("network").Default(""),
	}
}

func (NetworkInterface) Edges() []ent.Edge {
	return []ent.Edge{edge.From("host", Host.Type).Ref("nics").Unique().Required()}
}

func (NetworkInterface) Indexes() []ent.Index {
	return []ent.Index{index.Fields("tenant_id", "mac"), index.Fields("tenant_id").Edges("host"), index.Edges("host")}
}

// Software is a database or middleware detected on a host.
type Software struct{ ent.Schema }

func (Software) Mixin() []ent.Mixin { return []ent.Mixin{TimeMixin{}, TenantMixin{}} }

func (Software) Fields() []ent.Field {
	return []ent.Field{
		field.String("name").NotEmpty(),
		field.String("kind").Default(""), // database, middleware, webserver, cache
		field.String("version").Default(""),
		field.String("process").Default(""),
	}
}

func (Software) Edges() []ent.Edge {
	return []ent.Edge{edge.From("host", Host.Type).Ref("software").Unique().Required()}
}

func (Software) Indexes() []ent.Index {
	return []ent.Index{index.Fields("tenant_id").Edges("host"), index.Edges("host")}
}

// Connection is an observed dependency from one host to another host or to an
// external address, aggregated per destination, port and protocol.
type Connection struct{ ent.Schema }

func (Connection) Mixin() []ent.Mixin { return []ent.Mixin{TimeMixin{}, TenantMixin{}} }

func (Connection) Fields() []ent.Field {
	return []ent.Field{
		field.Int("src_host_id"),
		field.Int("dst_host_id").Optional().Nillable(),
		field.String("dst_address").Default("").MaxLen(255),
		field.Int("port").Range(0, 65535).Annotations(entgql.OrderField("PORT")),
		field.Enum("protocol").Values("tcp", "udp").Default("tcp"),
		field.String("process").Default("").MaxLen(255),
		field.Time("first_seen").Optional().Nillable(),
		field.Time("last_seen").Optional().Nillable(),
		field.Int64("count").Default(1).NonNegative().Annotations(entgql.OrderField("COUNT")),
		field.Int64("bytes").Default(0).NonNegative().Annotations(entgql.OrderField("BYTES")),
	}
}

func (Connection) Edges() []ent.Edge {
	return []ent.Edge{
		edge.From("src", Host.Type).Ref("outgoing").Field("src_host_id").Unique().Required(),
		edge.From("dst", Host.Type).Ref("incoming").Field("dst_host_id").Unique(),
	}
}

func (Connection) Indexes() []ent.Index {
	return []ent.Index{
		index.Fields("tenant_id", "src_host_id", "dst_host_id", "port"),
		index.Fields("tenant_id", "dst_host_id"),
	}
}

func (Connection) Annotations() []schema.Annotation {
	return []schema.Annotation{entgql.QueryField(), entgql.RelayConnection()}
}

// Application is a named group of hosts, defined by a user or suggested by the planner.
type Application struct{ ent.Schema }

func (Application) Mixin() []ent.Mixin { return []ent.Mixin{TimeMixin{}, TenantMixin{}} }

func (Application) Fields() []ent.Field {
	return []ent.Field{
		field.String("name").NotEmpty().MaxLen(200).Annotations(entgql.OrderField("NAME")),
		field.String("description").Default("").MaxLen(2000),
		field.Bool("suggested").Default(false),
	}
}

func (Application) Edges() []ent.Edge {
	return []ent.Edge{edge.To("hosts", Host.Type).Annotations(entgql.RelayConnection())}
}

func (Application) Indexes() []ent.Index {
	return []ent.Index{index.Fields("tenant_id", "name").Unique()}
}

func (Application) Annotations() []schema.Annotation {
	return []schema.Annotation{entgql.QueryField(), entgql.RelayConnection(), entgql.Mutations(entgql.MutationCreate(), entgql.MutationUpdate())}
}
