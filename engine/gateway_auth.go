package engine

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"
)

// This file is the gateway's admission: the credential check every
// /sync/v1 request passes before anything looks at its disk, and the
// Authorize hook that lets the side that issued a credential take it back
// (a revoked agent) while it is still signed and unexpired.

// DefaultAuthorizeEvery is how often a request body being read is
// re-authorized (GatewayOptions.AuthorizeEvery).
const DefaultAuthorizeEvery = time.Second

type admittedKey struct{}

// admitted is the credential a request was admitted with, and the
// re-authorizing body, if any, that may later refuse it.
type admitted struct {
	cred Credential
	body *authorizedBody
}

// admittedCredential is the credential r was admitted with.
func admittedCredential(r *http.Request) Credential {
	if a, ok := r.Context().Value(admittedKey{}).(*admitted); ok {
		return a.cred
	}
	return Credential{}
}

// IssueCredentialFor issues a credential for disk naming its subject (see
// AgentSubject), valid for ttl.
func (g *Gateway) IssueCredentialFor(disk, subject string, ttl time.Duration) (string, error) {
	if !diskIDPattern.MatchString(disk) {
		return "", fmt.Errorf("%w: disk id %q: use letters, digits, '.', '_' and '-'", ErrInvalid, disk)
	}
	return g.key.IssueFor(disk, subject, g.opt.Now(), ttl)
}

// RequireCredential admits requests to next only with a valid credential
// for the disk their path names, answering exactly as the gateway itself
// does otherwise: a handler in front of the gateway (the control plane's
// gate, which looks the disk up) then never tells an anonymous caller
// whether a disk exists. The gateway does not check a request it admits
// here a second time.
func (g *Gateway) RequireCredential(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rest, ok := strings.CutPrefix(r.URL.Path, "/sync/v1/disks/")
		id, _, ok2 := strings.Cut(rest, "/")
		if !ok || !ok2 {
			writeErr(w, http.StatusNotFound, CodeNotFound, "no such endpoint: "+r.URL.Path)
			return
		}
		if !diskIDPattern.MatchString(id) {
			writeErr(w, http.StatusBadRequest, CodeInvalid, fmt.Sprintf("disk id %q is not valid", id))
			return
		}
		if r, ok = g.admit(w, r, id); ok {
			next.ServeHTTP(w, r)
		}
	})
}

// admit checks r's bearer credential for disk id and asks Authorize; it
// writes the refusal and returns false, or returns r carrying the
// admission (and, with Authorize set, a body that re-authorizes while it
// is read).
func (g *Gateway) admit(w http.ResponseWriter, r *http.Request, id string) (*http.Request, bool) {
	if a, ok := r.Context().Value(admittedKey{}).(*admitted); ok && a.cred.Disk == id {
		return r, true
	}
	tok, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	cred, err := g.key.Parse(tok, id, g.opt.Now())
	if err == nil {
		err = g.authorize(r.Context(), cred)
	}
	if err != nil {
		status, code := http.StatusUnauthorized, CodeUnauthorized
		if !errors.Is(err, ErrUnauthorized) {
			// The authority could not answer: refuse, but let the agent retry.
			status, code = http.StatusServiceUnavailable, CodeBusy
			g.opt.Logf("gateway: disk %s: authorize: %v", id, err)
			err = fmt.Errorf("cannot check the credential right now; retry shortly")
		} else if cred.Subject != "" {
			g.opt.Logf("gateway: disk %s: refused %s: %v", id, cred.Subject, err)
		}
		writeErr(w, status, code, err.Error())
		return r, false
	}
	a := &admitted{cred: cred}
	if g.opt.Authorize != nil && r.Body != nil && r.Body != http.NoBody {
		every := g.opt.AuthorizeEvery
		if every <= 0 {
			every = DefaultAuthorizeEvery
		}
		a.body = &authorizedBody{rc: r.Body, g: g, ctx: r.Context(), cred: cred, every: every, checked: time.Now()}
		r.Body = a.body
	}
	return r.WithContext(context.WithValue(r.Context(), admittedKey{}, a)), true
}

// authorize checks the credential's expiry and asks the Authorize hook.
func (g *Gateway) authorize(ctx context.Context, c Credential) error {
	if !g.opt.Now().Before(c.Expires) {
		return fmt.Errorf("%w: credential for disk %q expired at %s: issue a new one", ErrUnauthorized, c.Disk, c.Expires.UTC().Format(time.RFC3339))
	}
	if g.opt.Authorize == nil {
		return nil
	}
	return g.opt.Authorize(ctx, c)
}

// streamRefusal returns why r's body stopped being readable when its
// re-authorization failed, with the answer to give: unauthorized for a
// credential taken back, busy (retry) when the authority could not answer.
func streamRefusal(r *http.Request) *codedError {
	a, ok := r.Context().Value(admittedKey{}).(*admitted)
	if !ok || a.body == nil {
		return nil
	}
	a.body.mu.Lock()
	defer a.body.mu.Unlock()
	switch {
	case a.body.err == nil:
		return nil
	case errors.Is(a.body.err, ErrUnauthorized):
		return &codedError{http.StatusUnauthorized, CodeUnauthorized, a.body.err}
	}
	return &codedError{http.StatusServiceUnavailable, CodeBusy, fmt.Errorf("the credential could not be re-checked; retry shortly: %w", a.body.err)}
}

// authorizedBody re-authorizes its credential at least every `every` of
// wall time while it is read: bytes are only handed on while the last
// check is that recent, so a revoked credential stops a long frames stream
// within every plus the Authorize hook's own staleness.
type authorizedBody struct {
	rc    io.ReadCloser
	g     *Gateway
	ctx   context.Context
	cred  Credential
	every time.Duration

	mu      sync.Mutex
	checked time.Time
	err     error
}

func (b *authorizedBody) Read(p []byte) (int, error) {
	b.mu.Lock()
	if b.err == nil && time.Since(b.checked) >= b.every {
		if err := b.g.authorize(b.ctx, b.cred); err != nil {
			b.err = err
			b.g.opt.Logf("gateway: disk %s: stream stopped: %v", b.cred.Disk, err)
		}
		b.checked = time.Now()
	}
	err := b.err
	b.mu.Unlock()
	if err != nil {
		return 0, err
	}
	return b.rc.Read(p)
}

func (b *authorizedBody) Close() error { return b.rc.Close() }
