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
