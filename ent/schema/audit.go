package schema

import (
	"context"
	"errors"
	"fmt"
	"time"

	"entgo.io/contrib/entgql"
	"entgo.io/ent"
	"entgo.io/ent/schema"
	"entgo.io/ent/schema/field"
	"entgo.io/ent/schema/index"

	gen "github.com/ferry-migrate/ferry/ent"
	"github.com/ferry-migrate/ferry/ent/hook"
	"github.com/ferry-migrate/ferry/internal/audit/chain"
)

// AuditEvent records who did what to which object, from where, with the
// request's trace id. Events are append-only: the database refuses UPDATE
// and DELETE (triggers, see internal/database), the ent hook refuses them
// before that, and each tenant's events form a hash chain (seq, prev_hash,
// hash; internal/audit/chain) so that a removed or altered row is visible.
type AuditEvent struct{ ent.Schema }

func (AuditEvent) Mixin() []ent.Mixin { return []ent.Mixin{TimeMixin{}, TenantMixin{}} }

func (AuditEvent) Fields() []ent.Field {
	return []ent.Field{
		field.String("actor").NotEmpty().Annotations(entgql.OrderField("ACTOR")),
		field.String("action").NotEmpty().Annotations(entgql.OrderField("ACTION")),
		field.String("object_type").Default(""),
		field.String("object_id").Default(""),
		field.String("trace_id").Default(""),
		field.String("source_ip").Default(""),
		field.JSON("details", map[string]any{}).Optional().Annotations(entgql.Type("Map")),
		// Changes summarises what the action changed: field → {before, after}.
		field.JSON("changes", map[string]any{}).Optional().Annotations(entgql.Type("Map")),
		// Seq numbers the tenant's events from 1 without gaps; 0 marks an
		// event written before the chain existed.
		field.Int64("seq").Default(0).Annotations(entgql.OrderField("SEQ")),
		field.String("prev_hash").Default(""),
		field.String("hash").Default(""),
	}
}

func (AuditEvent) Indexes() []ent.Index {
	return []ent.Index{
		index.Fields("tenant_id", "created_at"),
		index.Fields("tenant_id", "seq"),
		index.Fields("tenant_id", "trace_id"),
	}
}

func (AuditEvent) Annotations() []schema.Annotation {
	return []schema.Annotation{entgql.QueryField(), entgql.RelayConnection()}
}

// ErrAppendOnly is returned for any attempt to change or delete an audit event.
var ErrAppendOnly = errors.New("audit events are append-only: they cannot be changed or deleted")

// Hooks refuse updates and deletes and chain every new event to its
// tenant's previous one. The chain head of each tenant (audit_heads) is
// advanced with an UPDATE … RETURNING in the event's own transaction: the
// row lock (PostgreSQL) or the write lock (SQLite) orders concurrent
// writers, so two events never claim the same seq.
func (AuditEvent) Hooks() []ent.Hook {
	return []ent.Hook{
		func(next ent.Mutator) ent.Mutator {
			return hook.AuditEventFunc(func(ctx context.Context, m *gen.AuditEventMutation) (ent.Value, error) {
				if !m.Op().Is(ent.OpCreate) {
					return nil, ErrAppendOnly
				}
				if _, err := m.Tx(); err != nil {
					// Not in a transaction: make one, so the head and the
					// event land together.
					tx, err := m.Client().Tx(ctx)
					if err != nil {
						return nil, err
					}
					c := tx.AuditEvent.Create()
					copyFields(m, c.Mutation())
					ev, err := c.Save(ctx)
					if err != nil {
						tx.Rollback()
						return nil, err
					}
					return ev, tx.Commit()
				}
				if err := link(ctx, m); err != nil {
					return nil, err
				}
				return next.Mutate(ctx, m)
			})
		},
	}
}

func copyFields(from, to *gen.AuditEventMutation) {
	for _, f := range from.Fields() {
		v, _ := from.Field(f)
		to.SetField(f, v)
	}
}

// link numbers m and sets its hashes from the tenant's chain head. The
// tenant id is set by TenantMixin's hook, which runs first.
func link(ctx context.Context, m *gen.AuditEventMutation) error {
	tid, ok := m.TenantID()
	if !ok {
		return fmt.Errorf("audit event without a tenant")
	}
	created, ok := m.CreatedAt()
	if !ok {
		created = time.Now()
	}
	// Microseconds: what both databases store, so the hash verifies later.
	created = created.UTC().Truncate(time.Microsecond)
	m.SetCreatedAt(created)
	m.SetUpdatedAt(created)
	if _, err := m.ExecContext(ctx, `INSERT INTO audit_heads (tenant_id, seq, hash) VALUES ($1, 0, '') ON CONFLICT (tenant_id) DO NOTHING`, tid); err != nil {
		return fmt.Errorf("audit chain: %w", err)
	}
	rows, err := m.QueryContext(ctx, `UPDATE audit_heads SET seq = seq + 1 WHERE tenant_id = $1 RETURNING seq, hash`, tid)
	if err != nil {
		return fmt.Errorf("audit chain: %w", err)
	}
	var seq int64
	var prev string
	if rows.Next() {
		err = rows.Scan(&seq, &prev)
	} else {
		err = fmt.Errorf("no chain head for tenant %d", tid)
	}
	rows.Close()
	if err != nil {
		return fmt.Errorf("audit chain: %w", err)
	}
	// Generic field access: this file compiles before ent is generated.
	str := func(name string) string { v, _ := m.Field(name); s, _ := v.(string); return s }
	obj := func(name string) map[string]any { v, _ := m.Field(name); o, _ := v.(map[string]any); return o }
	e := chain.Event{TenantID: tid, Seq: seq, CreatedAt: created,
		Actor: str("actor"), Action: str("action"), ObjectType: str("object_type"), ObjectID: str("object_id"),
		TraceID: str("trace_id"), SourceIP: str("source_ip"), Details: obj("details"), Changes: obj("changes")}
	h, err := chain.Hash(prev, e)
	if err != nil {
		return err
	}
	for name, v := range map[string]any{"seq": seq, "prev_hash": prev, "hash": h} {
		if err := m.SetField(name, v); err != nil {
			return fmt.Errorf("audit chain: %w", err)
		}
	}
	if _, err := m.ExecContext(ctx, `UPDATE audit_heads SET hash = $1 WHERE tenant_id = $2`, h, tid); err != nil {
		return fmt.Errorf("audit chain: %w", err)
	}
	return nil
}

// AuditHead is each tenant's audit chain head: the last seq and hash. It
// is written only by AuditEvent's hook, in raw SQL, and never exposed.
type AuditHead struct{ ent.Schema }

func (AuditHead) Fields() []ent.Field {
	return []ent.Field{
		field.Int("tenant_id").Unique().Immutable(),
		field.Int64("seq").Default(0),
		field.String("hash").Default(""),
	}
}

func (AuditHead) Annotations() []schema.Annotation {
	return []schema.Annotation{entgql.Skip(entgql.SkipAll)}
}
