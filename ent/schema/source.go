package schema

import (
	"entgo.io/contrib/entgql"
	"entgo.io/ent"
	"entgo.io/ent/schema"
	"entgo.io/ent/schema/field"
)

// DiscoverySource is a stored agentless discovery source (a vCenter or an
// ESXi host) that Ferry reads on demand and on a schedule. Its password is
// sealed like a cloud account's secret (AES-GCM, bound to the row) and never
// returned by the API.
type DiscoverySource struct{ ent.Schema }

func (DiscoverySource) Mixin() []ent.Mixin { return []ent.Mixin{TimeMixin{}, TenantMixin{}} }

func (DiscoverySource) Fields() []ent.Field {
	skip := entgql.Skip(entgql.SkipMutationCreateInput, entgql.SkipMutationUpdateInput)
	return []ent.Field{
		field.String("name").NotEmpty().MaxLen(200).Annotations(entgql.OrderField("NAME")),
		field.Enum("kind").Values("vcenter").Default("vcenter"),
		// url is the SDK endpoint, e.g. https://vc.example/sdk.
		field.String("url").NotEmpty().MaxLen(500),
		field.String("username").Default("").MaxLen(200),
		field.Bytes("secret_ciphertext").Sensitive().Optional().Annotations(entgql.Skip(entgql.SkipAll)),
		// insecure skips TLS verification (lab vCenters with self-signed certificates).
		field.Bool("insecure").Default(false),
		// interval_minutes is the schedule; 0 runs only when asked.
		field.Int("interval_minutes").Default(0).NonNegative(),
		field.Time("next_run_at").Optional().Nillable().Annotations(skip),
		field.Time("last_run_at").Optional().Nillable().Annotations(entgql.OrderField("LAST_RUN_AT"), skip),
		field.Enum("last_status").Values("never", "queued", "running", "succeeded", "failed").Default("never").Annotations(skip),
		field.String("last_error").Default("").MaxLen(2000).Annotations(skip),
		field.Int("last_hosts").Default(0).Annotations(skip),
		field.Int("last_import_run_id").Optional().Nillable().Annotations(skip),
	}
}

func (DiscoverySource) Annotations() []schema.Annotation {
	return []schema.Annotation{entgql.QueryField(), entgql.RelayConnection()}
}
