package schema

import (
	"regexp"

	"entgo.io/contrib/entgql"
	"entgo.io/ent"
	"entgo.io/ent/schema"
	"entgo.io/ent/schema/edge"
	"entgo.io/ent/schema/field"
	"entgo.io/ent/schema/index"
)

var (
	slugRE  = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]*[a-z0-9])?$`)
	emailRE = regexp.MustCompile(`^[^@\s]+@[^@\s]+\.[^@\s]+$`)
)

var roles = []string{"owner", "admin", "consultant", "operator", "viewer", "platform"}

// User signs in with an email and a password. Emails are unique across the
// installation so that sign-in needs no tenant picker.
type User struct{ ent.Schema }

func (User) Mixin() []ent.Mixin { return []ent.Mixin{TimeMixin{}, TenantMixin{}} }

func (User) Fields() []ent.Field {
	return []ent.Field{
		field.String("email").NotEmpty().MaxLen(254).Unique().Match(emailRE).
			Annotations(entgql.OrderField("EMAIL")),
		field.String("name").Default("").MaxLen(200).Annotations(entgql.OrderField("NAME")),
		field.Enum("role").Values(roles...).Default("viewer").Annotations(entgql.OrderField("ROLE")),
		field.String("password_hash").Sensitive().Optional().
			Annotations(entgql.Skip(entgql.SkipAll)),
		field.Bool("disabled").Default(false),
		field.Time("last_login_at").Optional().Nillable().
			Annotations(entgql.Skip(entgql.SkipMutationCreateInput, entgql.SkipMutationUpdateInput)),
	}
}

func (User) Edges() []ent.Edge {
	return []ent.Edge{
		edge.To("api_tokens", APIToken.Type).Annotations(entgql.RelayConnection(), entgql.Skip(entgql.SkipMutationCreateInput, entgql.SkipMutationUpdateInput)),
		edge.To("sessions", Session.Type).Annotations(entgql.Skip(entgql.SkipAll)),
	}
}

func (User) Annotations() []schema.Annotation {
	return []schema.Annotation{entgql.QueryField(), entgql.RelayConnection(), entgql.Mutations(entgql.MutationCreate(), entgql.MutationUpdate())}
}

// Session is a signed-in browser. Only a hash of its cookie is stored.
type Session struct{ ent.Schema }

func (Session) Mixin() []ent.Mixin { return []ent.Mixin{TimeMixin{}, TenantMixin{}} }

func (Session) Fields() []ent.Field {
	return []ent.Field{
		field.Bytes("token_hash").Sensitive().Unique().NotEmpty(),
		field.Time("expires_at"),
		field.String("ip").Default(""),
		field.String("user_agent").Default("").MaxLen(512),
	}
}

func (Session) Edges() []ent.Edge {
	return []ent.Edge{edge.From("user", User.Type).Ref("sessions").Unique().Required()}
}

func (Session) Indexes() []ent.Index {
	return []ent.Index{index.Edges("user")}
}

func (Session) Annotations() []schema.Annotation {
	return []schema.Annotation{entgql.Skip(entgql.SkipAll)}
}

// APIToken lets scripts call the API as a user. The secret is shown once and
// stored as a hash; the prefix identifies it in lists.
type APIToken struct{ ent.Schema }

func (APIToken) Mixin() []ent.Mixin { return []ent.Mixin{TimeMixin{}, TenantMixin{}} }

func (APIToken) Fields() []ent.Field {
	return []ent.Field{
		field.String("name").NotEmpty().MaxLen(200).Annotations(entgql.OrderField("NAME")),
		field.String("prefix").NotEmpty().Unique().
			Annotations(entgql.Skip(entgql.SkipMutationCreateInput, entgql.SkipMutationUpdateInput)),
		field.Bytes("token_hash").Sensitive().Unique().Annotations(entgql.Skip(entgql.SkipAll)),
		field.Time("expires_at").Optional().Nillable(),
		field.Time("last_used_at").Optional().Nillable().
			Annotations(entgql.Skip(entgql.SkipMutationCreateInput, entgql.SkipMutationUpdateInput)),
		field.Time("revoked_at").Optional().Nillable().
			Annotations(entgql.Skip(entgql.SkipMutationCreateInput, entgql.SkipMutationUpdateInput)),
	}
}

func (APIToken) Edges() []ent.Edge {
	return []ent.Edge{edge.From("user", User.Type).Ref("api_tokens").Unique().Required().
		Annotations(entgql.Skip(entgql.SkipMutationCreateInput, entgql.SkipMutationUpdateInput))}
}

func (APIToken) Indexes() []ent.Index {
	return []ent.Index{index.Edges("user")}
}

func (APIToken) Annotations() []schema.Annotation {
	return []schema.Annotation{entgql.QueryField(), entgql.RelayConnection()}
}
