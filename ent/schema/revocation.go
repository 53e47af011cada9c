package schema

import (
	"context"
	"fmt"
	"time"

	"entgo.io/contrib/entgql"
	"entgo.io/ent"
	"entgo.io/ent/schema"
	"entgo.io/ent/schema/field"
	"entgo.io/ent/schema/index"

	gen "github.com/ferry-migrate/ferry/ent"
	"github.com/ferry-migrate/ferry/ent/agent"
	"github.com/ferry-migrate/ferry/ent/hook"
	"github.com/ferry-migrate/ferry/internal/viewer"
)

// RevocationEvent is one entry of the revocation feed that remote gateways
// long-poll (GET /gateway/v1/revocations): a subject (engine.AgentSubject)
// whose sync credentials stop being honoured, in the tenant the subject
// belongs to. Its id is the feed's cursor, the same for every replica of
// the control plane; rows older than twice the credential lifetime are
// pruned (no credential naming the subject can still be valid then).
type RevocationEvent struct{ ent.Schema }

func (RevocationEvent) Mixin() []ent.Mixin { return []ent.Mixin{TimeMixin{}, TenantMixin{}} }

func (RevocationEvent) Fields() []ent.Field {
	return []ent.Field{
		field.String("subject").NotEmpty().MaxLen(200).Immutable(),
		field.Time("revoked_at").Immutable(),
	}
}

func (RevocationEvent) Indexes() []ent.Index {
	return []ent.Index{index.Fields("created_at")}
}

func (RevocationEvent) Annotations() []schema.Annotation {
	return []schema.Annotation{entgql.Skip(entgql.SkipAll)}
}

// Hooks: whatever sets an agent's revoked_at (the revokeAgent mutation, a
// bulk update, the platform operator) or deletes an agent also writes the
// feed's events, in the same transaction when there is one, so a remote
// gateway learns of every revocation, not only of those one resolver
// remembers to announce. (Clearing revoked_at writes nothing: the gateways
// keep refusing the agent's old credentials, the safe side.)
func (Agent) Hooks() []ent.Hook {
	return []ent.Hook{
		func(next ent.Mutator) ent.Mutator {
			return hook.AgentFunc(func(ctx context.Context, m *gen.AgentMutation) (ent.Value, error) {
				at, set := m.RevokedAt()
				del := m.Op().Is(ent.OpDelete | ent.OpDeleteOne)
				if !del && (!set || !m.Op().Is(ent.OpUpdate|ent.OpUpdateOne)) {
					return next.Mutate(ctx, m)
				}
				ids, err := m.IDs(ctx)
				if err != nil || len(ids) == 0 {
					if err != nil {
						return nil, err
					}
					return next.Mutate(ctx, m)
				}
				sys := viewer.SystemContext(ctx)
				c := m.Client()
				var gone []*gen.Agent
				if del {
					// Their tenants, read before the delete takes the rows.
					if gone, err = agentTenants(sys, c, ids); err != nil {
						return nil, err
					}
				}
				v, err := next.Mutate(ctx, m)
				if err != nil {
					return v, err
				}
				if del {
					at = time.Now()
				} else if gone, err = agentTenants(sys, c, ids); err != nil {
					return nil, err
				}
				for len(gone) > 0 {
					n := min(len(gone), 500)
					bulk := make([]*gen.RevocationEventCreate, 0, n)
					for _, a := range gone[:n] {
						// The subject is engine.AgentSubject's (ent does not import
						// engine; TestRevocationFeed checks they agree).
						bulk = append(bulk, c.RevocationEvent.Create().SetTenantID(a.TenantID).
							SetSubject(fmt.Sprintf("agent:%d", a.ID)).SetRevokedAt(at.UTC().Truncate(time.Microsecond)))
					}
					if err := c.RevocationEvent.CreateBulk(bulk...).Exec(sys); err != nil {
						return nil, fmt.Errorf("revocation feed: %w", err)
					}
					gone = gone[n:]
				}
				return v, nil
			})
		},
	}
}

// agentTenants reads the id and tenant of the agents, 500 at a time.
func agentTenants(ctx context.Context, c *gen.Client, ids []int) ([]*gen.Agent, error) {
	var out []*gen.Agent
	for len(ids) > 0 {
		n := min(len(ids), 500)
		ags, err := c.Agent.Query().Where(agent.IDIn(ids[:n]...)).Select(agent.FieldID, agent.FieldTenantID).All(ctx)
		if err != nil {
			return nil, fmt.Errorf("revocation feed: %w", err)
		}
		out = append(out, ags...)
		ids = ids[n:]
	}
	return out, nil
}
