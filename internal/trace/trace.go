// Package trace gives every request and job a trace id that follows it into
// logs, audit events and error messages.
package trace

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"regexp"
)

type ctxKey struct{}

var valid = regexp.MustCompile(`^[A-Za-z0-9._-]{8,64}$`)

// New returns a fresh random trace id.
func New() string {
	b := make([]byte, 12)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return hex.EncodeToString(b)
}

// Sanitize returns id if it is a well-formed incoming trace id, or a new one:
// a client must not be able to inject text into logs through it.
func Sanitize(id string) string {
	if valid.MatchString(id) {
		return id
	}
	return New()
}

// NewContext returns ctx carrying id.
func NewContext(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, ctxKey{}, id)
}

// FromContext returns the trace id in ctx, or "".
func FromContext(ctx context.Context) string {
	s, _ := ctx.Value(ctxKey{}).(string)
	return s
}

type ipKey struct{}

// WithClientIP returns ctx carrying the client's address (as the HTTP
// layer resolved it), for audit events.
func WithClientIP(ctx context.Context, ip string) context.Context {
	return context.WithValue(ctx, ipKey{}, ip)
}

// ClientIP returns the client address in ctx, or "".
func ClientIP(ctx context.Context) string {
	s, _ := ctx.Value(ipKey{}).(string)
	return s
}
