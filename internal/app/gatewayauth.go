package app

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/ferry-migrate/ferry/engine"
	"github.com/ferry-migrate/ferry/ent"
	"github.com/ferry-migrate/ferry/ent/agent"
	"github.com/ferry-migrate/ferry/ent/tenant"
	"github.com/ferry-migrate/ferry/internal/viewer"
)

// SyncAuthTTL is how long the in-process gateway trusts the database's
// answer about a credential's agent. With the gateway's 1 s re-check of a
// stream, a revoked agent's sync stops within SyncAuthTTL + 1 s.
const SyncAuthTTL = 2 * time.Second

// syncAuthorizer is the in-process gateway's Authorize hook: a sync
// credential stays usable only while the agent it was issued to exists,
// is not revoked and its tenant is not disabled. The signature and expiry
// prove the control plane issued it; this asks the control plane whether
// it still stands.
type syncAuthorizer struct {
	client *ent.Client
	now    func() time.Time

	mu    sync.Mutex
	cache map[int]syncAuthAnswer
}

type syncAuthAnswer struct {
	err error // nil: allowed
	at  time.Time
}

func (s *syncAuthorizer) authorize(ctx context.Context, c engine.Credential) error {
	id, ok := c.AgentID()
	if !ok {
		return fmt.Errorf("%w: the credential names no agent; the next sync command carries a new one", engine.ErrUnauthorized)
	}
	now := s.now()
	s.mu.Lock()
	a, ok := s.cache[id]
	s.mu.Unlock()
	if ok && now.Sub(a.at) < SyncAuthTTL && !now.Before(a.at) {
		return a.err
	}
	ag, err := s.client.Agent.Query().Where(agent.ID(id), agent.HasTenantWith(tenant.Disabled(false))).
		Select(agent.FieldID, agent.FieldRevokedAt).Only(viewer.SystemContext(ctx))
	switch {
	case ent.IsNotFound(err):
		err = fmt.Errorf("%w: agent %d is gone or its tenant is disabled", engine.ErrUnauthorized, id)
	case err != nil:
		return fmt.Errorf("look up agent %d: %w", id, err) // not cached: the gateway answers busy
	case ag.RevokedAt != nil:
		err = fmt.Errorf("%w: agent %d was revoked at %s", engine.ErrUnauthorized, id, ag.RevokedAt.UTC().Format(time.RFC3339))
	}
	s.mu.Lock()
	if s.cache == nil || len(s.cache) > 100_000 {
		s.cache = map[int]syncAuthAnswer{}
	}
	s.cache[id] = syncAuthAnswer{err: err, at: now}
	s.mu.Unlock()
	return err
}
