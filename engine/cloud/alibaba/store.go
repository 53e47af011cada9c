package alibaba

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/ferry-migrate/ferry/engine/cloud"
)

// Store keeps the provider's records of one cloud account — which ECS disk
// is which Ferry disk, the recovery points, each machine's launch phase,
// the gateway of each migration — where every process of the control plane
// reads them (Ferry's database), never in one process's memory, so that
// any worker can carry on a migration another began. Values may hold
// secrets (a gateway's credential key): implementations keep them
// encrypted at rest.
type Store interface {
	// Get returns the value of key. Errors: cloud.ErrNotFound.
	Get(ctx context.Context, key string) ([]byte, error)
	// Put sets key to value.
	Put(ctx context.Context, key string, value []byte) error
	// Delete removes key; a missing key is not an error.
	Delete(ctx context.Context, key string) error
	// List returns every key with prefix and its value, sorted by key.
	List(ctx context.Context, prefix string) ([]Record, error)
}

// Record is one key of a Store.
type Record struct {
	Key   string
	Value []byte
}

// MemStore is a Store in memory, for tests and `ferry ecsemu` trials.
type MemStore struct {
	mu sync.Mutex
	m  map[string][]byte
}

// NewMemStore returns an empty MemStore.
func NewMemStore() *MemStore { return &MemStore{m: map[string][]byte{}} }

// Get implements Store.
func (s *MemStore) Get(_ context.Context, key string) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.m[key]
	if !ok {
		return nil, fmt.Errorf("record %s: %w", key, cloud.ErrNotFound)
	}
	return append([]byte(nil), v...), nil
}

// Put implements Store.
func (s *MemStore) Put(_ context.Context, key string, value []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.m[key] = append([]byte(nil), value...)
	return nil
}

// Delete implements Store.
func (s *MemStore) Delete(_ context.Context, key string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.m, key)
	return nil
}

// List implements Store.
func (s *MemStore) List(_ context.Context, prefix string) ([]Record, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Record
	for k, v := range s.m {
		if strings.HasPrefix(k, prefix) {
			out = append(out, Record{k, append([]byte(nil), v...)})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out, nil
}

// Len is how many records the store holds (tests check nothing is left).
func (s *MemStore) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.m)
}

func getJSON(ctx context.Context, s Store, key string, v any) error {
	b, err := s.Get(ctx, key)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("record %s: %w", key, err)
	}
	return nil
}

func putJSON(ctx context.Context, s Store, key string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return s.Put(ctx, key, b)
}

func listJSON[T any](ctx context.Context, s Store, prefix string) ([]T, error) {
	recs, err := s.List(ctx, prefix)
	if err != nil {
		return nil, err
	}
	out := make([]T, 0, len(recs))
	for _, r := range recs {
		var v T
		if err := json.Unmarshal(r.Value, &v); err != nil {
			return nil, fmt.Errorf("record %s: %w", r.Key, err)
		}
		out = append(out, v)
	}
	return out, nil
}

// Tickets mints and redeems the tokens that instances the provider starts
// present when they call the control plane back (the gateway registering,
// the repair instance reporting): each is bound to one account and one
// record key, expires, and is redeemed at most once.
type Tickets interface {
	// Mint returns the token for (account, key), valid for ttl from its
	// first minting. Minting again before it is redeemed or expired returns
	// the same token (a repeated RunInstances must carry the same user data).
	Mint(ctx context.Context, account, key string, ttl time.Duration) (string, error)
	// Redeem uses the token once and returns what it was minted for.
	// Errors: cloud.ErrNotFound (unknown, expired, or another
	// deployment's), cloud.ErrConflict (already redeemed).
	Redeem(ctx context.Context, token string) (account, key string, err error)
}

// MemTickets is Tickets in memory: a token is "frc_" and an HMAC of the
// account, key and expiry under a random key, so nothing secret is kept
// that a token could be read back from.
type MemTickets struct {
	mu     sync.Mutex
	secret []byte
	issued map[string]*ticket // by account + "\x00" + key
	Now    func() time.Time
}

type ticket struct {
	account, key, token string
	expires             time.Time
	used                bool
}

// NewMemTickets returns an empty MemTickets.
func NewMemTickets() *MemTickets {
	s := make([]byte, 32)
	rand.Read(s)
	return &MemTickets{secret: s, issued: map[string]*ticket{}, Now: time.Now}
}

// Mint implements Tickets.
func (t *MemTickets) Mint(_ context.Context, account, key string, ttl time.Duration) (string, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.Now()
	id := account + "\x00" + key
	if tk, ok := t.issued[id]; ok && !tk.used && now.Before(tk.expires) {
		return tk.token, nil
	}
	tk := &ticket{account: account, key: key, expires: now.Add(ttl)}
	m := hmac.New(sha256.New, t.secret)
	fmt.Fprintf(m, "%s\x00%s\x00%d", account, key, tk.expires.UnixNano())
	tk.token = "frc_" + base64.RawURLEncoding.EncodeToString(m.Sum(nil))
	t.issued[id] = tk
	return tk.token, nil
}

// Redeem implements Tickets.
func (t *MemTickets) Redeem(_ context.Context, token string) (string, string, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, tk := range t.issued {
		if hmac.Equal([]byte(tk.token), []byte(token)) {
			switch {
			case !t.Now().Before(tk.expires):
				return "", "", fmt.Errorf("ticket: %w (expired)", cloud.ErrNotFound)
			case tk.used:
				return "", "", fmt.Errorf("ticket: %w (already used)", cloud.ErrConflict)
			}
			tk.used = true
			return tk.account, tk.key, nil
		}
	}
	return "", "", fmt.Errorf("ticket: %w", cloud.ErrNotFound)
}

// newNonce is a random hex string: what makes the ClientTokens of one
// incarnation of an object differ from a deleted one's of the same id.
func newNonce() string {
	b := make([]byte, 8)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// bearer is a random secret and its SHA-256 (what is stored).
func bearer() (secret, sum string) {
	b := make([]byte, 32)
	rand.Read(b)
	secret = base64.RawURLEncoding.EncodeToString(b)
	h := sha256.Sum256([]byte(secret))
	return secret, hex.EncodeToString(h[:])
}

func bearerSum(secret string) string {
	h := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(h[:])
}

var errNotRedeemed = errors.New("not called back yet")
