// Package audit owns the audit log's integrity: Verify walks a tenant's
// hash chain (see package chain, computed by AuditEvent's ent hook as each
// event is written) and reports any gap or altered row; Record is the one
// way code outside GraphQL mutations (sign-in, exports, the marketplace
// adapter) writes an event.
package audit

import (
	"context"
	"fmt"

	"github.com/ferry-migrate/ferry/ent"
	"github.com/ferry-migrate/ferry/ent/auditevent"
	"github.com/ferry-migrate/ferry/internal/audit/chain"
	"github.com/ferry-migrate/ferry/internal/trace"
	"github.com/ferry-migrate/ferry/internal/viewer"
)

// Problem is one break in a tenant's chain.
type Problem struct {
	Seq     int64  // where the break is (the seq expected or found)
	EventID int    // the row concerned (0 for a missing one)
	What    string // "missing", "altered", "relinked", "head"
}

func (p Problem) String() string {
	return fmt.Sprintf("seq %d (event %d): %s", p.Seq, p.EventID, p.What)
}

// Report is what Verify found for one tenant.
type Report struct {
	TenantID int
	Events   int   // chained events read
	Legacy   int   // events written before the chain (seq 0)
	HeadSeq  int64 // the chain head's last seq
	Problems []Problem
}

// OK reports whether the chain is whole.
func (r Report) OK() bool { return len(r.Problems) == 0 }

// Verify walks tenant tenantID's events in seq order, 5,000 at a time, and
// checks that seqs run 1, 2, 3… without a gap, that each event links to its
// predecessor's hash, that each hash matches the row as stored, and that
// the last one is the chain head's: a deleted, inserted or edited row, or
// a truncated tail, shows up as a Problem.
func Verify(ctx context.Context, c *ent.Client, tenantID int) (Report, error) {
	ctx = viewer.SystemContext(ctx)
	rep := Report{TenantID: tenantID}
	legacy, err := c.AuditEvent.Query().Where(auditevent.TenantID(tenantID), auditevent.Seq(0)).Count(ctx)
	if err != nil {
		return rep, err
	}
	rep.Legacy = legacy
	prev, want := "", int64(1)
	for {
		evs, err := c.AuditEvent.Query().Where(auditevent.TenantID(tenantID), auditevent.SeqGTE(want)).
			Order(ent.Asc(auditevent.FieldSeq), ent.Asc(auditevent.FieldID)).Limit(5000).All(ctx)
		if err != nil {
			return rep, err
		}
		for _, ev := range evs {
			rep.Events++
			switch {
			case ev.Seq > want:
				for s := want; s < ev.Seq; s++ {
					rep.Problems = append(rep.Problems, Problem{Seq: s, What: "missing"})
				}
			case ev.Seq < want:
				rep.Problems = append(rep.Problems, Problem{Seq: ev.Seq, EventID: ev.ID, What: "duplicate seq"})
				continue
			}
			if ev.PrevHash != prev {
				rep.Problems = append(rep.Problems, Problem{Seq: ev.Seq, EventID: ev.ID, What: "relinked"})
			}
			h, err := chain.Hash(ev.PrevHash, Of(ev))
			if err != nil {
				return rep, err
			}
			if h != ev.Hash {
				rep.Problems = append(rep.Problems, Problem{Seq: ev.Seq, EventID: ev.ID, What: "altered"})
			}
			prev, want = ev.Hash, ev.Seq+1
		}
		if len(evs) < 5000 {
			break
		}
	}
	rows, err := c.QueryContext(ctx, `SELECT seq, hash FROM audit_heads WHERE tenant_id = $1`, tenantID)
	if err != nil {
		return rep, err
	}
	var headHash string
	if rows.Next() {
		err = rows.Scan(&rep.HeadSeq, &headHash)
	}
	rows.Close()
	if err != nil {
		return rep, err
	}
	if rep.HeadSeq != want-1 || headHash != prev {
		rep.Problems = append(rep.Problems, Problem{Seq: rep.HeadSeq, What: fmt.Sprintf("head: the chain ends at seq %d, its head says %d", want-1, rep.HeadSeq)})
	}
	return rep, nil
}

// Of returns the hashed fields of a stored event.
func Of(ev *ent.AuditEvent) chain.Event {
	return chain.Event{TenantID: ev.TenantID, Seq: ev.Seq, CreatedAt: ev.CreatedAt, Actor: ev.Actor, Action: ev.Action,
		ObjectType: ev.ObjectType, ObjectID: ev.ObjectID, TraceID: ev.TraceID, SourceIP: ev.SourceIP,
		Details: ev.Details, Changes: ev.Changes}
}

// Entry is an event written outside a GraphQL mutation.
type Entry struct {
	TenantID   int
	Actor      string
	Action     string
	ObjectType string
	ObjectID   string
	Details    map[string]any
	Changes    map[string]any
}

// Record writes e as an audit event with the trace id and client address
// of ctx, as the system (the caller has decided who acted).
func Record(ctx context.Context, c *ent.Client, e Entry) error {
	return c.AuditEvent.Create().SetTenantID(e.TenantID).SetActor(e.Actor).SetAction(e.Action).
		SetObjectType(e.ObjectType).SetObjectID(e.ObjectID).SetTraceID(trace.FromContext(ctx)).
		SetSourceIP(trace.ClientIP(ctx)).SetDetails(e.Details).SetChanges(e.Changes).
		Exec(viewer.SystemContext(ctx))
}
