package agentapi

import (
	"context"
	"fmt"
	"sync"

	"github.com/ferry-migrate/ferry/discovery"
)

// memStore is the smallest Store that keeps the rules the real one must:
// use counts, tenant match, revocation, credential hashes only, and
// idempotent sample batches.
type memStore struct {
	mu          sync.Mutex
	tokens      map[string]*memToken
	agents      map[string]Agent // by credential hash
	revoked     map[string]bool  // agent ids
	inventories map[string][]discovery.Inventory
	batches     map[string]bool
	samples     map[string][]discovery.UtilisationSample
	conns       map[string][]discovery.Connection
	heartbeats  map[string]int
	commands    map[string][]Command
	seq         int
}

type memToken struct {
	tenant    string
	uses, max int
	revoked   bool
}

func newMemStore() *memStore {
	return &memStore{
		tokens: map[string]*memToken{}, agents: map[string]Agent{}, revoked: map[string]bool{},
		inventories: map[string][]discovery.Inventory{}, batches: map[string]bool{},
		samples: map[string][]discovery.UtilisationSample{}, conns: map[string][]discovery.Connection{}, heartbeats: map[string]int{}, commands: map[string][]Command{},
	}
}

func (s *memStore) addToken(id, tenant string, max int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tokens[id] = &memToken{tenant: tenant, max: max}
}

func (s *memStore) RegisterAgent(ctx context.Context, c Claims, host HostInfo) (string, string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t := s.tokens[c.TokenID]
	if t == nil || t.revoked || t.tenant != c.TenantID {
		return "", "", ErrTokenRevoked
	}
	if t.uses >= t.max {
		return "", "", ErrTokenExhausted
	}
	t.uses++
	cred, err := NewCredential()
	if err != nil {
		return "", "", err
	}
	s.seq++
	a := Agent{ID: fmt.Sprintf("agent-%d", s.seq), TenantID: c.TenantID}
	s.agents[HashCredential(cred)] = a
	return a.ID, cred, nil
}

func (s *memStore) AuthenticateAgent(ctx context.Context, cred string) (Agent, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a, ok := s.agents[HashCredential(cred)]
	if !ok || s.revoked[a.ID] {
		return Agent{}, ErrUnauthenticated
	}
	return a, nil
}

func (s *memStore) SaveInventory(ctx context.Context, a Agent, inv discovery.Inventory) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.inventories[a.ID] = append(s.inventories[a.ID], inv)
	return nil
}

func (s *memStore) SaveSamples(ctx context.Context, a Agent, b SamplesBatch) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.batches[a.ID+"/"+b.BatchID] {
		return nil
	}
	s.batches[a.ID+"/"+b.BatchID] = true
	s.samples[a.ID] = append(s.samples[a.ID], b.Samples...)
	s.conns[a.ID] = append(s.conns[a.ID], b.Connections...)
	return nil
}

func (s *memStore) Heartbeat(ctx context.Context, a Agent, hb Heartbeat) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.heartbeats[a.ID]++
	return nil
}

func (s *memStore) NextCommands(ctx context.Context, a Agent) ([]Command, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.commands[a.ID]
	delete(s.commands, a.ID)
	return c, nil
}

func (s *memStore) push(agentID string, c Command) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.commands[agentID] = append(s.commands[agentID], c)
}

func (s *memStore) snapshot(agentID string) (invs int, samples []discovery.UtilisationSample, beats int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.inventories[agentID]), append([]discovery.UtilisationSample(nil), s.samples[agentID]...), s.heartbeats[agentID]
}
