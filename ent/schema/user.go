package schema

import (
	"context"
	"regexp"
	"slices"
	"time"

	"entgo.io/contrib/entgql"
	"entgo.io/ent"
	"entgo.io/ent/schema"
	"entgo.io/ent/schema/edge"
	"entgo.io/ent/schema/field"
	"entgo.io/ent/schema/index"

	"github.com/ferry-migrate/ferry"
	gen "github.com/ferry-migrate/ferry/ent"
	"github.com/ferry-migrate/ferry/ent/apitoken"
	"github.com/ferry-migrate/ferry/ent/hook"
	"github.com/ferry-migrate/ferry/ent/session"
	"github.com/ferry-migrate/ferry/ent/user"
	"github.com/ferry-migrate/ferry/internal/viewer"
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
		// ExternalID names the user at an identity provider that signs
		// them in (the cloud marketplace: "alibaba:<aliUid>").
		field.String("external_id").Optional().Nillable().Unique().MaxLen(200).
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

// Hooks hold the rules on users below every resolver (docs/security.md,
// "Authorization matrix"). TenantMixin's hook runs first and confines the
// write to the viewer's tenant; this one then:
//
//   - lets the viewer create, change or delete only users whose current role
//     it manages (viewer.Manages) and grant only roles it manages;
//   - lets anyone change its own name, email and password (and sign-in time),
//     never its own role or disabled flag;
//   - keeps every tenant with an enabled owner (or platform operator) and the
//     installation with an enabled platform operator;
//   - on a password change, revokes the user's API tokens and ends its other
//     sessions (the session making the change stays signed in).
func (User) Hooks() []ent.Hook {
	return []ent.Hook{
		func(next ent.Mutator) ent.Mutator {
			return hook.UserFunc(func(ctx context.Context, m *gen.UserMutation) (ent.Value, error) {
				v := viewer.FromContext(ctx)
				if v == nil {
					return nil, ErrNoViewer
				}
				if m.Op().Is(ent.OpCreate) {
					if r, _ := m.Role(); !v.Manages(viewer.Role(r)) {
						return nil, ferry.Errorf(ferry.EFORBIDDEN, "you cannot create a user with the role %s", r)
					}
					return next.Mutate(ctx, m)
				}
				ids, err := m.IDs(ctx)
				if err != nil {
					return nil, err
				}
				// Read through the tenant interceptor: another tenant's user
				// is not loaded, and the update below then finds no row.
				targets, err := m.Client().User.Query().Where(user.IDIn(ids...)).All(ctx)
				if err != nil {
					return nil, err
				}
				if err := mayChangeUsers(v, m, targets); err != nil {
					return nil, err
				}
				if err := keepOwners(ctx, m, targets); err != nil {
					return nil, err
				}
				out, err := next.Mutate(ctx, m)
				if err != nil {
					return nil, err
				}
				if _, ok := m.PasswordHash(); ok && len(targets) > 0 {
					if err := endCredentials(ctx, m, v, targets); err != nil {
						return nil, err
					}
				}
				return out, nil
			})
		},
	}
}

// selfFields are the fields a user may change on itself.
var selfFields = []string{user.FieldName, user.FieldEmail, user.FieldPasswordHash, user.FieldLastLoginAt, user.FieldUpdatedAt}

func mayChangeUsers(v *viewer.Viewer, m *gen.UserMutation, targets []*gen.User) error {
	if v.System {
		return nil
	}
	if r, ok := m.Role(); ok && !v.Manages(viewer.Role(r)) {
		return ferry.Errorf(ferry.EFORBIDDEN, "you cannot grant the role %s", r)
	}
	changed := append(m.Fields(), m.ClearedFields()...)
	for _, u := range targets {
		if u.ID == v.UserID && !m.Op().Is(ent.OpDelete|ent.OpDeleteOne) {
			for _, f := range changed {
				if !slices.Contains(selfFields, f) {
					return ferry.Errorf(ferry.EFORBIDDEN, "you cannot change your own role or disable yourself (%s); another owner must", f)
				}
			}
			continue
		}
		if !v.Manages(viewer.Role(u.Role)) {
			return ferry.Errorf(ferry.EFORBIDDEN, "you cannot change %s: a %s is changed only by %s", u.Email, u.Role, managersOf(viewer.Role(u.Role)))
		}
	}
	return nil
}

func managersOf(r viewer.Role) string {
	switch r {
	case viewer.RolePlatform:
		return "another platform operator"
	case viewer.RoleOwner, viewer.RoleAdmin:
		return "an owner"
	}
	return "an admin or owner"
}

// keepOwners refuses a change that would leave a tenant without an enabled
// owner (the platform operator counts as its home tenant's owner) or the
// installation without an enabled platform operator: nobody could then
// manage the tenant, or create tenants, through the API.
func keepOwners(ctx context.Context, m *gen.UserMutation, targets []*gen.User) error {
	deleting := m.Op().Is(ent.OpDelete | ent.OpDeleteOne)
	disabling, _ := m.Disabled()
	newRole, roleSet := m.Role()
	var losing, losingPlatform []int
	tenants := map[int]bool{}
	for _, u := range targets {
		if u.Disabled || (u.Role != user.RoleOwner && u.Role != user.RolePlatform) {
			continue
		}
		if deleting || disabling || (roleSet && newRole != user.RoleOwner && newRole != user.RolePlatform) {
			losing = append(losing, u.ID)
			tenants[u.TenantID] = true
		}
		if u.Role == user.RolePlatform && (deleting || disabling || (roleSet && newRole != user.RolePlatform)) {
			losingPlatform = append(losingPlatform, u.ID)
		}
	}
	sys := viewer.SystemContext(ctx)
	c := m.Client()
	for t := range tenants {
		n, err := c.User.Query().Where(user.TenantID(t), user.RoleIn(user.RoleOwner, user.RolePlatform),
			user.Disabled(false), user.IDNotIn(losing...)).Count(sys)
		if err != nil {
			return err
		}
		if n == 0 {
			return ferry.Errorf(ferry.ECONFLICT, "a tenant must keep at least one enabled owner: make another user owner first")
		}
	}
	if len(losingPlatform) > 0 {
		n, err := c.User.Query().Where(user.RoleEQ(user.RolePlatform), user.Disabled(false), user.IDNotIn(losingPlatform...)).Count(sys)
		if err != nil {
			return err
		}
		if n == 0 {
			return ferry.Errorf(ferry.ECONFLICT, "the installation must keep at least one enabled platform operator: grant the role to another user first")
		}
	}
	return nil
}

// endCredentials revokes the API tokens of users whose password changed and
// deletes their sessions, except the one the change was made from: a
// password change is how a user throws out whoever learned the old one.
func endCredentials(ctx context.Context, m *gen.UserMutation, v *viewer.Viewer, targets []*gen.User) error {
	ids := make([]int, len(targets))
	for i, u := range targets {
		ids[i] = u.ID
	}
	c := m.Client()
	if err := c.APIToken.Update().Where(apitoken.HasUserWith(user.IDIn(ids...)), apitoken.RevokedAtIsNil()).
		SetRevokedAt(time.Now()).Exec(ctx); err != nil {
		return err
	}
	q := c.Session.Delete().Where(session.HasUserWith(user.IDIn(ids...)))
	if v.SessionID != 0 {
		q.Where(session.IDNEQ(v.SessionID))
	}
	_, err := q.Exec(ctx)
	return err
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
