// Package viewer carries who is acting (a user, an API token, an agent or the
// system itself) through a context. The ent tenant interceptor reads it, so a
// query made without a viewer sees nothing: isolation fails closed.
package viewer

import "context"

// Role is a user's role inside a tenant. Platform is the operator of the
// whole Ferry installation and sees every tenant.
type Role string

const (
	RoleOwner      Role = "owner"
	RoleAdmin      Role = "admin"
	RoleConsultant Role = "consultant"
	RoleOperator   Role = "operator"
	RoleViewer     Role = "viewer"
	RolePlatform   Role = "platform"
)

// rank orders roles by what they may do; a higher rank includes the lower.
var rank = map[Role]int{RoleViewer: 1, RoleOperator: 2, RoleConsultant: 2, RoleAdmin: 3, RoleOwner: 4, RolePlatform: 5}

// Viewer is the identity behind a request or a job.
type Viewer struct {
	TenantID int    // 0 only for the system and the platform operator
	UserID   int    // 0 for agents, tokens without a user and the system
	AgentID  int    // set for agent requests
	Email    string // for audit events and logs
	Role     Role
	System   bool // internal work (bootstrap, jobs) that spans tenants
	// SessionID is the browser session a request came with (0 for API
	// tokens, agents and jobs): a password change keeps it and ends the rest.
	SessionID int
}

// AllTenants reports whether the viewer may see rows of every tenant.
func (v *Viewer) AllTenants() bool { return v.System || v.Role == RolePlatform }

// Can reports whether the viewer's role is at least min. Operators and
// consultants are peers: each may do what a viewer can, neither what an admin can.
func (v *Viewer) Can(min Role) bool {
	if v.System {
		return true
	}
	if min == RoleOperator || min == RoleConsultant {
		return rank[v.Role] >= 3 || v.Role == min
	}
	return rank[v.Role] >= rank[min]
}

// Manages reports whether v may create, change, disable or grant a user of
// role r (in a tenant v acts in; the tenant boundary is enforced apart):
//
//   - the system manages everyone;
//   - only the platform operator manages (or grants) the platform role;
//   - the platform operator and owners manage every other role, owners included;
//   - admins manage consultants, operators and viewers only: never an owner,
//     another admin or the platform operator;
//   - consultants, operators and viewers manage nobody.
//
// The same rule decides which roles v may grant, so nobody can create a
// user it could not manage afterwards.
func (v *Viewer) Manages(r Role) bool {
	switch {
	case v.System:
		return true
	case r == RolePlatform:
		return v.Role == RolePlatform
	case v.Role == RolePlatform, v.Role == RoleOwner:
		return rank[r] > 0
	case v.Role == RoleAdmin:
		return r == RoleConsultant || r == RoleOperator || r == RoleViewer
	}
	return false
}

// Within returns v confined to one tenant: the platform operator planning
// or assessing acts on that tenant's estate alone (as its owner would), never
// on every tenant's rows at once. Other viewers are returned as they are
// (they are confined to their own tenant already).
func (v *Viewer) Within(tenantID int) *Viewer {
	if v.System || v.Role != RolePlatform {
		return v
	}
	c := *v
	c.TenantID, c.Role = tenantID, RoleOwner
	return &c
}

// Actor names the viewer in audit events.
func (v *Viewer) Actor() string {
	switch {
	case v.System:
		return "system"
	case v.Email != "":
		return v.Email
	case v.AgentID != 0:
		return "agent"
	}
	return "unknown"
}

type ctxKey struct{}

// NewContext returns ctx carrying v.
func NewContext(ctx context.Context, v *Viewer) context.Context {
	return context.WithValue(ctx, ctxKey{}, v)
}

// FromContext returns the viewer in ctx, or nil.
func FromContext(ctx context.Context) *Viewer {
	v, _ := ctx.Value(ctxKey{}).(*Viewer)
	return v
}

// SystemContext marks ctx as internal work that may cross tenants. Use it only
// where no user request is being served (bootstrap, reconciler, sign-in lookups).
func SystemContext(ctx context.Context) context.Context {
	return NewContext(ctx, &Viewer{System: true})
}

// TenantContext acts as the system inside one tenant (jobs working for a tenant).
func TenantContext(ctx context.Context, tenantID int) context.Context {
	return NewContext(ctx, &Viewer{TenantID: tenantID, Role: RoleOwner, Email: "system"})
}
