package cloud

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"sync"
)

// Registry maps a cloud account's provider name to the Provider that
// serves it. cmd (through internal/app) registers the providers compiled
// into the binary; the migration steps and the account check open drivers
// through it, so no caller names a provider package.
type Registry struct {
	mu        sync.RWMutex
	providers map[string]Provider
}

// NewRegistry returns a registry holding ps.
func NewRegistry(ps ...Provider) *Registry {
	r := &Registry{providers: map[string]Provider{}}
	for _, p := range ps {
		r.Register(p)
	}
	return r
}

// Register adds p, replacing a provider of the same name.
func (r *Registry) Register(p Provider) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.providers[p.Name()] = p
}

// Names lists the registered providers, sorted.
func (r *Registry) Names() []string {
	r.mu.RLock()
	defer r.mu.RUnlock()
	out := make([]string, 0, len(r.providers))
	for n := range r.providers {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// Has reports whether a provider of that name is registered.
func (r *Registry) Has(name string) bool { return slices.Contains(r.Names(), name) }

// Provider returns the named provider. Errors: ErrUnsupported naming what
// this build has.
func (r *Registry) Provider(name string) (Provider, error) {
	r.mu.RLock()
	p, ok := r.providers[name]
	r.mu.RUnlock()
	if !ok {
		return nil, fmt.Errorf("the %s driver is not part of this build (providers here: %v): %w", name, r.Names(), ErrUnsupported)
	}
	return p, nil
}

// Open opens a driver for the account. Errors: as Provider, and the
// provider's Open.
func (r *Registry) Open(ctx context.Context, a Account) (Driver, error) {
	p, err := r.Provider(a.Provider)
	if err != nil {
		return nil, err
	}
	d, err := p.Open(ctx, a)
	if err != nil {
		return nil, fmt.Errorf("open %s cloud account %q: %w", a.Provider, a.Name, err)
	}
	return d, nil
}

// Check runs the provider's account checks; a provider this build lacks is
// one failed "cloud API" check saying so.
func (r *Registry) Check(ctx context.Context, a Account) []Check {
	p, err := r.Provider(a.Provider)
	if err != nil {
		return []Check{{Name: "cloud API", Message: fmt.Sprintf("the %s driver is not part of this build: the credentials were not verified against the cloud", a.Provider)}}
	}
	return p.Check(ctx, a)
}
