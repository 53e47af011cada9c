package graph

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/99designs/gqlgen/graphql"

	"github.com/ferry-migrate/ferry"
	"github.com/ferry-migrate/ferry/graph/model"
)

// Registration token terms.
const (
	defaultTokenTTL = 24 * time.Hour
	maxTokenTTL     = 30 * 24 * time.Hour
	maxTokenUses    = 100_000
)

// discoveryNow is the resolver's clock for discovery mutations.
func (r *Resolver) discoveryNow() time.Time {
	if r.Now != nil {
		return r.Now()
	}
	return time.Now()
}

// registrationTokenTerms checks and completes a token's expiry and use count.
func registrationTokenTerms(in model.CreateRegistrationTokenInput, now time.Time) (time.Time, int, error) {
	if strings.TrimSpace(in.Name) == "" {
		return time.Time{}, 0, ferry.Errorf(ferry.EINVALID, "name is required")
	}
	expires := now.Add(defaultTokenTTL)
	switch {
	case in.ExpiresAt != nil:
		expires = *in.ExpiresAt
	case in.ExpiresIn != nil:
		if *in.ExpiresIn <= 0 {
			return time.Time{}, 0, ferry.Errorf(ferry.EINVALID, "expiresIn must be a positive number of seconds, got %d", *in.ExpiresIn)
		}
		expires = now.Add(time.Duration(*in.ExpiresIn) * time.Second)
	}
	if !expires.After(now) {
		return time.Time{}, 0, ferry.Errorf(ferry.EINVALID, "expiresAt must be in the future")
	}
	if expires.Sub(now) > maxTokenTTL {
		return time.Time{}, 0, ferry.Errorf(ferry.EINVALID, "a registration token may live at most %d days", int(maxTokenTTL/(24*time.Hour)))
	}
	uses := 1
	if in.MaxUses != nil {
		uses = *in.MaxUses
	}
	if uses < 1 || uses > maxTokenUses {
		return time.Time{}, 0, ferry.Errorf(ferry.EINVALID, "maxUses must be between 1 and %d, got %d", maxTokenUses, uses)
	}
	return expires.UTC().Truncate(time.Second), uses, nil
}

// newTokenID names a registration token row inside its signed claims.
func newTokenID() (string, error) {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("registration token id: %w", err)
	}
	return hex.EncodeToString(b), nil
}

// serverURL is where agents reach this server: the configured public URL,
// else the origin the request came from (the browser's Origin header).
func (r *Resolver) serverURL(ctx context.Context) string {
	if r.PublicURL != "" {
		return strings.TrimRight(r.PublicURL, "/")
	}
	if graphql.HasOperationContext(ctx) {
		h := graphql.GetOperationContext(ctx).Headers
		for _, v := range []string{h.Get("Origin"), h.Get("Referer")} {
			if u, err := url.Parse(v); err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != "" {
				return u.Scheme + "://" + u.Host
			}
		}
	}
	return "https://FERRY-SERVER" // neither configured nor known: the user fills it in
}

// installCommand is what the UI shows to copy onto a host.
func installCommand(server, token string) string {
	return "ferry agent register --server " + server + " --token " + token
}
