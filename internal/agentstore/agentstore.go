// Package agentstore is the control plane's agentapi.Store: it keeps agents,
// registration token uses and what agents send in the database through ent,
// and merges inventories into hosts through ingest. It is the only place
// that translates between the agent protocol and ent rows.
package agentstore

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"time"

	"entgo.io/ent/dialect/sql"

	"github.com/ferry-migrate/ferry/discovery"
	"github.com/ferry-migrate/ferry/discovery/agentapi"
	"github.com/ferry-migrate/ferry/ent"
	"github.com/ferry-migrate/ferry/ent/agent"
	"github.com/ferry-migrate/ferry/ent/host"
	"github.com/ferry-migrate/ferry/ent/registrationtoken"
	"github.com/ferry-migrate/ferry/ent/tenant"
	"github.com/ferry-migrate/ferry/internal/database"
	"github.com/ferry-migrate/ferry/internal/ingest"
	"github.com/ferry-migrate/ferry/internal/trace"
	"github.com/ferry-migrate/ferry/internal/viewer"
)

// DefaultAuthTTL is how long an authenticated credential is trusted
// without asking the database again; a revoked agent is refused at most
// this long after its revocation.
const DefaultAuthTTL = 5 * time.Second

// recentBatches is how many sample batch ids an agent remembers; an agent
// retries only its oldest unsent batches, far fewer than this.
const recentBatches = 64

var _ agentapi.Store = (*Store)(nil)

// Store implements agentapi.Store on ent.
type Store struct {
	Client *ent.Client
	Now    func() time.Time
	// AuthTTL bounds the credential cache (a disabled tenant's agents and
	// revoked agents are refused once it runs out) (DefaultAuthTTL when zero;
	// negative disables the cache).
	AuthTTL time.Duration
	// Commands, when set, returns (and marks delivered) an agent's pending
	// commands; agentID is the ent id. Nil means there are never any.
	Commands func(ctx context.Context, agentID int) ([]agentapi.Command, error)
	// Identities caches stored hosts' identity keys between inventories
	// (nil: every inventory reads them all).
	Identities *ingest.Identities

	mu    sync.Mutex
	cache map[string]cached // credential hash → agent
}

type cached struct {
	a  agentapi.Agent
	at time.Time
}

func (s *Store) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

// agentContext is the viewer an agent's requests act as: its tenant only.
func agentContext(ctx context.Context, tenantID, agentID int) context.Context {
	return viewer.NewContext(ctx, &viewer.Viewer{TenantID: tenantID, AgentID: agentID, Role: viewer.RoleOperator})
}

// ids parses an authenticated agent's ids.
func ids(a agentapi.Agent) (tenantID, agentID int, err error) {
	if tenantID, err = strconv.Atoi(a.TenantID); err == nil {
		agentID, err = strconv.Atoi(a.ID)
	}
	if err != nil {
		return 0, 0, fmt.Errorf("agent %q of tenant %q: %w", a.ID, a.TenantID, agentapi.ErrUnauthenticated)
	}
	return tenantID, agentID, nil
}

// RegisterAgent consumes one use of the token and creates the agent, in one
// transaction, so two agents racing for a token's last use cannot both win.
func (s *Store) RegisterAgent(ctx context.Context, claims agentapi.Claims, h agentapi.HostInfo) (_, _ string, err error) {
	defer func() { err = busy(err) }()
	tenantID, err := strconv.Atoi(claims.TenantID)
	if err != nil {
		return "", "", agentapi.ErrTokenRevoked
	}
	cred, err := agentapi.NewCredential()
	if err != nil {
		return "", "", err
	}
	ctx = viewer.TenantContext(ctx, tenantID)
	now := s.now()
	tx, err := s.Client.Tx(ctx)
	if err != nil {
		return "", "", fmt.Errorf("register agent: %w", err)
	}
	id, err := func() (int, error) {
		c := tx.Client()
		// The interceptor confines the lookup to the claimed tenant: a
		// token id of another tenant reads as unknown.
		tok, err := c.RegistrationToken.Query().
			Where(registrationtoken.TokenID(claims.TokenID), registrationtoken.HasTenantWith(tenant.Disabled(false))).Only(ctx)
		if ent.IsNotFound(err) {
			return 0, agentapi.ErrTokenRevoked
		} else if err != nil {
			return 0, fmt.Errorf("look up registration token: %w", err)
		}
		switch {
		case tok.RevokedAt != nil:
			return 0, agentapi.ErrTokenRevoked
		case !now.Before(tok.ExpiresAt):
			return 0, fmt.Errorf("%w (expired %s)", agentapi.ErrTokenExpired, tok.ExpiresAt.UTC().Format(time.RFC3339))
		case tok.Uses >= tok.MaxUses:
			return 0, fmt.Errorf("%w (all %d used)", agentapi.ErrTokenExhausted, tok.MaxUses)
		}
		n, err := c.RegistrationToken.Update().
			Where(registrationtoken.ID(tok.ID), registrationtoken.RevokedAtIsNil(), func(s *sql.Selector) {
				s.Where(sql.ColumnsLT(s.C(registrationtoken.FieldUses), s.C(registrationtoken.FieldMaxUses)))
			}).
			AddUses(1).Save(ctx)
		if err != nil {
			return 0, fmt.Errorf("use registration token: %w", err)
		}
		if n == 0 {
			return 0, fmt.Errorf("%w (all %d used)", agentapi.ErrTokenExhausted, tok.MaxUses)
		}
		name := h.Hostname
		a, err := c.Agent.Create().SetName(truncate(name, 200)).SetHostname(truncate(h.Hostname, 255)).
			SetVersion(truncate(h.AgentVersion, 64)).SetCredentialHash([]byte(agentapi.HashCredential(cred))).
			SetRegistrationTokenID(tok.ID).Save(ctx)
		if err != nil {
			return 0, fmt.Errorf("create agent: %w", err)
		}
		err = c.AuditEvent.Create().SetActor("agent:" + strconv.Itoa(a.ID)).SetAction("registerAgent").SetObjectType("Agent").
			SetObjectID(strconv.Itoa(a.ID)).SetTraceID(trace.FromContext(ctx)).
			SetDetails(map[string]any{"hostname": h.Hostname, "registrationToken": tok.Name, "tokenUses": tok.Uses + 1}).Exec(ctx)
		if err != nil {
			return 0, fmt.Errorf("audit agent registration: %w", err)
		}
		return a.ID, nil
	}()
	if err != nil {
		tx.Rollback()
		return "", "", err
	}
	if err := tx.Commit(); err != nil {
		return "", "", fmt.Errorf("register agent: %w", err)
	}
	return strconv.Itoa(id), cred, nil
}

// AuthenticateAgent finds a credential's agent by its hash. Answers are
// cached for AuthTTL, so heartbeats from thousands of agents cost no
// lookup each; revocation takes effect within AuthTTL.
func (s *Store) AuthenticateAgent(ctx context.Context, credential string) (_ agentapi.Agent, err error) {
	defer func() { err = busy(err) }()
	hash := agentapi.HashCredential(credential)
	now := s.now()
	ttl := s.AuthTTL
	if ttl == 0 {
		ttl = DefaultAuthTTL
	}
	if ttl > 0 {
		s.mu.Lock()
		c, ok := s.cache[hash]
		s.mu.Unlock()
		if ok && now.Sub(c.at) < ttl && !now.Before(c.at) {
			return c.a, nil
		}
	}
	a, err := s.Client.Agent.Query().Where(agent.CredentialHash([]byte(hash)), agent.HasTenantWith(tenant.Disabled(false))).
		Select(agent.FieldID, agent.FieldTenantID, agent.FieldRevokedAt).
		WithTenant(func(q *ent.TenantQuery) {
			q.Select(tenant.FieldID, tenant.FieldName, tenant.FieldSuspendedAt, tenant.FieldSuspendReason)
		}).
		Only(viewer.SystemContext(ctx))
	if ent.IsNotFound(err) {
		s.forget(hash)
		return agentapi.Agent{}, agentapi.ErrUnauthenticated
	} else if err != nil {
		return agentapi.Agent{}, fmt.Errorf("authenticate agent: %w", err)
	}
	if a.RevokedAt != nil {
		s.forget(hash)
		return agentapi.Agent{}, fmt.Errorf("%w (revoked %s)", agentapi.ErrUnauthenticated, a.RevokedAt.UTC().Format(time.RFC3339))
	}
	if t := a.Edges.Tenant; t != nil && t.SuspendedAt != nil {
		return agentapi.Agent{}, fmt.Errorf("%w: tenant %q since %s (%s); the agent is served again once the tenant is resumed",
			agentapi.ErrSuspended, t.Name, t.SuspendedAt.UTC().Format("2006-01-02"), t.SuspendReason)
	}
	out := agentapi.Agent{ID: strconv.Itoa(a.ID), TenantID: strconv.Itoa(a.TenantID)}
	if ttl > 0 {
		s.mu.Lock()
		if s.cache == nil || len(s.cache) > 100_000 {
			s.cache = map[string]cached{}
		}
		s.cache[hash] = cached{a: out, at: now}
		s.mu.Unlock()
	}
	return out, nil
}

func (s *Store) forget(hash string) {
	s.mu.Lock()
	delete(s.cache, hash)
	s.mu.Unlock()
}

// SaveInventory merges the inventory into the tenant's hosts (the agent is
// the most trusted source) and links the agent to its host, in one
// transaction. No import run is recorded: agents report every few hours.
func (s *Store) SaveInventory(ctx context.Context, a agentapi.Agent, inv discovery.Inventory) (err error) {
	defer func() { err = busy(err) }()
	tenantID, agentID, err := ids(a)
	if err != nil {
		return err
	}
	ctx = agentContext(ctx, tenantID, agentID)
	rec := discovery.RecordFromInventory(a.ID, inv)
	if rec.Source.ObservedAt.IsZero() {
		rec.Source.ObservedAt = s.now().UTC()
	}
	// The agent's current host is the host this inventory describes, even
	// when the machine was renamed and re-addressed since: it is anchored
	// to the record, so it is updated instead of a second host appearing.
	cur, err := s.agentHost(ctx, agentID)
	if err != nil {
		return err
	}
	var anchors map[string]int
	if cur != 0 {
		anchors = map[string]int{rec.Anchor: cur}
	}
	_, err = ingest.Apply(ctx, s.Client, tenantID, ingest.Batch{
		Kind: discovery.SourceAgent, Filename: inv.Hostname, Actor: "agent:" + a.ID,
		Records: []discovery.Record{rec}, Connections: discovery.ConnectionsFromInventory(a.ID, inv), NoRun: true,
		Identities: s.Identities, Anchors: anchors,
		InTx: func(ctx context.Context, tx *ent.Client, out *ingest.Outcome) error {
			up := tx.Agent.UpdateOneID(agentID).SetHostname(truncate(inv.Hostname, 255))
			cur, err := tx.Agent.Query().Where(agent.ID(agentID)).QueryHost().IDs(ctx)
			if err != nil {
				return fmt.Errorf("load agent host: %w", err)
			}
			if hostID := out.HostOfRecord[0]; hostID != 0 && !slices.Contains(cur, hostID) {
				// A host another agent held (a re-registered machine) moves
				// to this one: the unique edge allows one agent per host.
				if _, err := tx.Agent.Update().Where(agent.HasHostWith(host.ID(hostID)), agent.IDNEQ(agentID)).ClearHost().Save(ctx); err != nil {
					return fmt.Errorf("release host: %w", err)
				}
				// This agent lets go of the host it described before (a
				// different machine now, by its BIOS UUID): setting the new
				// edge alone leaves the old row holding the agent, which
				// the unique edge refuses.
				up.ClearHost().SetHostID(hostID)
			}
			if hostID := out.HostOfRecord[0]; hostID != 0 {
				// Facts only an agent knows, which the normaliser's record does not carry.
				err := tx.Host.UpdateOneID(hostID).SetKernel(truncate(inv.Kernel, 128)).SetMachineID(truncate(inv.MachineID, 64)).
					SetCPUModel(truncate(inv.CPU.Model, 255)).Exec(ctx)
				if err != nil {
					return fmt.Errorf("store agent facts: %w", err)
				}
			}
			if err := up.Exec(ctx); err != nil {
				return fmt.Errorf("link agent %d to its host: %w", agentID, err)
			}
			return nil
		},
	}, s.now())
	return err
}

// errDuplicate rolls back a samples batch already stored.
var errDuplicate = errors.New("duplicate sample batch")

// SaveSamples reduces a batch to the p95 CPU and memory utilisation of the
// agent's host and stores its observed connections. A batch id seen before
// is a retry whose response was lost: it is acknowledged and not counted
// again.
func (s *Store) SaveSamples(ctx context.Context, a agentapi.Agent, b agentapi.SamplesBatch) (err error) {
	defer func() { err = busy(err) }()
	tenantID, agentID, err := ids(a)
	if err != nil {
		return err
	}
	ctx = agentContext(ctx, tenantID, agentID)
	now := s.now()
	record := func(ctx context.Context, c *ent.Client) (hostID int, err error) {
		ag, err := c.Agent.Query().Where(agent.ID(agentID)).WithHost().Only(ctx)
		if err != nil {
			return 0, fmt.Errorf("load agent %d: %w", agentID, err)
		}
		if slices.Contains(ag.RecentBatches, b.BatchID) {
			return 0, errDuplicate
		}
		recent := append(ag.RecentBatches, b.BatchID)
		if len(recent) > recentBatches {
			recent = recent[len(recent)-recentBatches:]
		}
		if err := c.Agent.UpdateOneID(agentID).SetRecentBatches(recent).Exec(ctx); err != nil {
			return 0, fmt.Errorf("remember sample batch: %w", err)
		}
		if ag.Edges.Host == nil {
			return 0, nil // no inventory yet: nothing to attribute samples to
		}
		u := discovery.Summarise(b.Samples)
		if u.Samples > 0 {
			if err := c.Host.UpdateOneID(ag.Edges.Host.ID).SetCPUP95(u.CPU.P95).SetMemoryP95(u.Memory.P95).Exec(ctx); err != nil {
				return 0, fmt.Errorf("store utilisation: %w", err)
			}
		}
		return ag.Edges.Host.ID, nil
	}
	if len(b.Connections) == 0 {
		tx, err := s.Client.Tx(ctx)
		if err != nil {
			return fmt.Errorf("save samples: %w", err)
		}
		if _, err := record(ctx, tx.Client()); err != nil {
			tx.Rollback()
			if errors.Is(err, errDuplicate) {
				return nil
			}
			return err
		}
		return tx.Commit()
	}
	// Connections go through the normaliser so that peers resolve to hosts;
	// the host is the agent's stored host, named by its "db:" ref.
	hostID, err := s.agentHost(ctx, agentID)
	if err != nil {
		return err
	}
	var conns []discovery.ObservedConnection
	if hostID != 0 {
		src := discovery.SourceRef{Kind: discovery.SourceAgent, Name: a.ID, ObservedAt: b.ObservedAt}
		conns = discovery.DeriveConnections(src, discovery.Endpoint{Ref: "db:" + strconv.Itoa(hostID)}, nil, b.Connections)
	}
	_, err = ingest.Apply(ctx, s.Client, tenantID, ingest.Batch{
		Kind: discovery.SourceAgent, Actor: "agent:" + a.ID, Connections: conns, NoRun: true, Identities: s.Identities,
		InTx: func(ctx context.Context, tx *ent.Client, _ *ingest.Outcome) error {
			_, err := record(ctx, tx)
			return err
		},
	}, now)
	if errors.Is(err, errDuplicate) {
		return nil
	}
	return err
}

func (s *Store) agentHost(ctx context.Context, agentID int) (int, error) {
	ag, err := s.Client.Agent.Query().Where(agent.ID(agentID)).WithHost().Only(ctx)
	if err != nil {
		return 0, fmt.Errorf("load agent %d: %w", agentID, err)
	}
	if ag.Edges.Host == nil {
		return 0, nil
	}
	return ag.Edges.Host.ID, nil
}

// Heartbeat records that the agent is alive, its version and its backlog.
func (s *Store) Heartbeat(ctx context.Context, a agentapi.Agent, hb agentapi.Heartbeat) (err error) {
	defer func() { err = busy(err) }()
	tenantID, agentID, err := ids(a)
	if err != nil {
		return err
	}
	ctx = agentContext(ctx, tenantID, agentID)
	up := s.Client.Agent.UpdateOneID(agentID).SetLastHeartbeatAt(s.now()).SetBufferedBatches(max(hb.BufferedBatches, 0))
	if hb.AgentVersion != "" {
		up.SetVersion(truncate(hb.AgentVersion, 64))
	}
	if err := up.Exec(ctx); err != nil {
		if ent.IsNotFound(err) {
			return agentapi.ErrUnauthenticated
		}
		return fmt.Errorf("heartbeat: %w", err)
	}
	return nil
}

// NextCommands asks the Commands hook; without one there is nothing to do.
func (s *Store) NextCommands(ctx context.Context, a agentapi.Agent) (_ []agentapi.Command, err error) {
	defer func() { err = busy(err) }()
	if s.Commands == nil {
		return nil, nil
	}
	tenantID, agentID, err := ids(a)
	if err != nil {
		return nil, err
	}
	return s.Commands(agentContext(ctx, tenantID, agentID), agentID)
}

// busy marks a database that stayed locked as agentapi.ErrBusy, which the
// protocol answers with 503 and Retry-After, not 500.
func busy(err error) error {
	if err != nil && !errors.Is(err, agentapi.ErrBusy) && database.IsBusy(err) {
		return fmt.Errorf("%w: %w", agentapi.ErrBusy, err)
	}
	return err
}

// truncate is ingest's: valid UTF-8, no NUL, cut on a rune boundary.
func truncate(s string, n int) string { return ingest.Truncate(s, n) }
