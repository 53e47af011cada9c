package agentapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"time"
)

// State is the agent's state directory: its identity (agent.json), its
// credential (credential, mode 0600) and the sample spool (spool/).
type State struct {
	Dir string
}

// Identity is who the agent is, without the secret.
type Identity struct {
	Server       string    `json:"server"`
	AgentID      string    `json:"agent_id"`
	TenantID     string    `json:"tenant_id"`
	RegisteredAt time.Time `json:"registered_at"`
}

// ErrNotRegistered means the state directory holds no credential.
var ErrNotRegistered = errors.New("agent is not registered; run `ferry agent register --server URL --token T` first")

func (s State) credentialPath() string { return filepath.Join(s.Dir, "credential") }
func (s State) identityPath() string   { return filepath.Join(s.Dir, "agent.json") }

// SpoolDir is where buffered sample batches live.
func (s State) SpoolDir() string { return filepath.Join(s.Dir, "spool") }

// Save writes identity and credential atomically (temp file + rename), the
// credential readable by the owner only.
func (s State) Save(id Identity, credential string) error {
	if err := os.MkdirAll(s.Dir, 0o700); err != nil {
		return fmt.Errorf("create state dir: %w", err)
	}
	idJSON, err := json.MarshalIndent(id, "", "  ")
	if err != nil {
		return err
	}
	if err := writeAtomic(s.credentialPath(), []byte(credential+"\n"), 0o600); err != nil {
		return err
	}
	return writeAtomic(s.identityPath(), append(idJSON, '\n'), 0o600)
}

func writeAtomic(path string, data []byte, mode os.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".tmp-*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// Load reads identity and credential. It refuses a credential file that
// others can read, because that credential may already be copied.
func (s State) Load() (Identity, string, error) {
	var id Identity
	fi, err := os.Stat(s.credentialPath())
	if errors.Is(err, os.ErrNotExist) {
		return id, "", ErrNotRegistered
	}
	if err != nil {
		return id, "", fmt.Errorf("read credential: %w", err)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return id, "", fmt.Errorf("credential file %s has mode %v; it must be 0600 (chmod 600 it, or re-register)", s.credentialPath(), fi.Mode().Perm())
	}
	cred, err := os.ReadFile(s.credentialPath())
	if err != nil {
		return id, "", fmt.Errorf("read credential: %w", err)
	}
	raw, err := os.ReadFile(s.identityPath())
	if err != nil {
		return id, "", fmt.Errorf("read agent identity: %w", err)
	}
	if err := json.Unmarshal(raw, &id); err != nil {
		return id, "", fmt.Errorf("read agent identity %s: %w", s.identityPath(), err)
	}
	return id, string(trimNL(cred)), nil
}

func trimNL(b []byte) []byte {
	for len(b) > 0 && (b[len(b)-1] == '\n' || b[len(b)-1] == '\r') {
		b = b[:len(b)-1]
	}
	return b
}

// Backoff computes retry delays: exponential from Base up to Max with
// "equal jitter" (half fixed, half random), so a fleet of agents that lost
// the server together does not come back in lockstep.
type Backoff struct {
	Base, Max time.Duration
	Rand      func() float64 // [0,1); math/rand/v2 when nil
}

// Delay is the wait before retry number attempt (0-based).
func (b Backoff) Delay(attempt int) time.Duration {
	base, maxD := b.Base, b.Max
	if base <= 0 {
		base = time.Second
	}
	if maxD < base {
		maxD = 5 * time.Minute
	}
	d := base
	for i := 0; i < attempt && d < maxD; i++ {
		d *= 2
	}
	d = min(d, maxD)
	r := rand.Float64
	if b.Rand != nil {
		r = b.Rand
	}
	return d/2 + time.Duration(r()*float64(d/2))
}

// SleepContext waits for d or until ctx ends.
func SleepContext(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// Retry calls fn until it succeeds, fails with a non-retryable error, or
// attempts run out, waiting Backoff delays in between via sleep (nil:
// SleepContext).
func Retry(ctx context.Context, b Backoff, attempts int, sleep func(context.Context, time.Duration) error, fn func() error) error {
	if sleep == nil {
		sleep = SleepContext
	}
	var err error
	for i := 0; i < attempts; i++ {
		if err = fn(); err == nil || !Retryable(err) {
			return err
		}
		if i == attempts-1 {
			break
		}
		if serr := sleep(ctx, b.Delay(i)); serr != nil {
			return fmt.Errorf("%w (gave up: %v)", err, serr)
		}
	}
	return err
}

// Register exchanges token for a credential at server and saves both in
// st. It refuses to overwrite an existing registration unless force.
func Register(ctx context.Context, c *Client, st State, token string, host HostInfo, now time.Time, force bool) (Identity, error) {
	if _, _, err := st.Load(); err == nil && !force {
		return Identity{}, fmt.Errorf("state dir %s already holds a registration; pass --force to replace it", st.Dir)
	}
	resp, err := c.Register(ctx, token, host)
	if err != nil {
		return Identity{}, fmt.Errorf("register with %s: %w", c.Server, err)
	}
	id := Identity{Server: c.Server, AgentID: resp.AgentID, TenantID: resp.TenantID, RegisteredAt: now.UTC()}
	if err := st.Save(id, resp.Credential); err != nil {
		return Identity{}, err
	}
	return id, nil
}
