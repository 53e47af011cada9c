package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
)

// This file is the revocation feed a remote gateway (one a cloud provider
// started, with no database) long-polls upward on the control plane, and
// the Authorize hook it feeds: the gateway verifies a sync credential's
// signature with its own key and then asks this local set whether the
// credential's subject was revoked since it was issued.

// RevocationsPath is the control plane's route of the feed.
const RevocationsPath = "/gateway/v1/revocations"

// RevocationPageLimit bounds the events of one answer; more are fetched
// with the cursor at once (RevocationPage.More).
const RevocationPageLimit = 500

// Revocation is one event of the feed: the subject's sync credentials (see
// AgentSubject) are no longer honoured from RevokedAt on.
type Revocation struct {
	Subject   string    `json:"subject"`
	RevokedAt time.Time `json:"revoked_at"`
}

// RevocationPage is one answer of the feed: the events after the cursor
// the gateway sent (an answer may repeat a few recent ones: the feed is a
// set, applying an event twice changes nothing), the cursor to send next,
// and whether the gateway's tenant is disabled (then nothing of it is
// honoured). An answer without events is the heartbeat.
type RevocationPage struct {
	Events         []Revocation `json:"events"`
	Cursor         string       `json:"cursor"`
	More           bool         `json:"more,omitempty"`
	TenantDisabled bool         `json:"tenant_disabled,omitempty"`
}

// ParseRevocationCursor reads the feed's cursor: empty (from the start) or
// the decimal id of the last event seen. Anything else is ErrInvalid, with
// what was wrong.
func ParseRevocationCursor(s string) (int64, error) {
	if s == "" {
		return 0, nil
	}
	if len(s) > 19 {
		return 0, fmt.Errorf("%w: cursor %.24q is longer than 19 digits", ErrInvalid, s)
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, fmt.Errorf("%w: cursor %q: byte %d is not a decimal digit (want the cursor of the previous answer)", ErrInvalid, s, i+1)
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%w: cursor %q is out of range", ErrInvalid, s)
	}
	return n, nil
}

// FormatRevocationCursor is the inverse of ParseRevocationCursor.
func FormatRevocationCursor(id int64) string {
	if id <= 0 {
		return ""
	}
	return strconv.FormatInt(id, 10)
}

// DefaultFeedSilence is how long a RevocationWatch may go without an answer
// from the feed before its hook stops vouching for any credential.
const DefaultFeedSilence = 5 * time.Second

// RevocationWatch follows the control plane's revocation feed and is a
// gateway's Authorize hook (GatewayOptions.Authorize = w.Authorize). It
// fails closed on silence: when no answer came for Silence (the control
// plane is down, the network is cut, the gateway's own credential was
// revoked at teardown), every credential answers "cannot check" — busy,
// which agents retry with backoff — never "allowed", and never
// "unauthorized", which would end their syncs.
type RevocationWatch struct {
	// Endpoint returns the feed's URL (the control plane's
	// RevocationsPath) and the gateway's own credential; "" while the
	// gateway has none yet (not registered): the watch waits, and answers
	// "cannot check" meanwhile.
	Endpoint func() (url, bearer string)
	// Client makes the requests (default: a client with a 15 s timeout).
	Client *http.Client
	// Silence (default DefaultFeedSilence) and Now (default time.Now).
	Silence time.Duration
	Now     func() time.Time
	Logf    func(format string, args ...any)

	mu       sync.Mutex
	revoked  map[string]time.Time
	disabled bool
	heard    time.Time // when the last answer that left nothing to fetch came
	cursor   string
	broken   string // why the last poll failed, for the refusal's message
}

func (w *RevocationWatch) now() time.Time {
	if w.Now != nil {
		return w.Now()
	}
	return time.Now()
}

func (w *RevocationWatch) silence() time.Duration {
	if w.Silence > 0 {
		return w.Silence
	}
	return DefaultFeedSilence
}

func (w *RevocationWatch) logf(format string, args ...any) {
	if w.Logf != nil {
		w.Logf(format, args...)
	}
}

// Authorize implements GatewayOptions.Authorize from the set the feed
// built: refused (ErrUnauthorized) when the credential names no subject,
// its subject was revoked or the tenant is disabled; "cannot check" (not
// ErrUnauthorized: busy) when the feed has been silent for too long.
func (w *RevocationWatch) Authorize(_ context.Context, c Credential) error {
	if c.Subject == ControlPlaneSubject {
		// The control plane reading a session: it issued the credential a
		// minute ago with the key only it and this gateway hold, and
		// reaching the gateway proves it is there even when the feed is
		// cut one way.
		return nil
	}
	now := w.now()
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.heard.IsZero() || now.Sub(w.heard) > w.silence() {
		why := w.broken
		if why == "" {
			why = "no answer yet"
		}
		if w.heard.IsZero() {
			return fmt.Errorf("the control plane's revocation feed has not answered yet (%s)", why)
		}
		return fmt.Errorf("no word from the control plane's revocation feed for %s (%s)", now.Sub(w.heard).Round(100*time.Millisecond), why)
	}
	if c.Subject == "" {
		return fmt.Errorf("%w: the credential names no subject; the next sync command carries a new one", ErrUnauthorized)
	}
	if w.disabled {
		return fmt.Errorf("%w: %s: the tenant is disabled", ErrUnauthorized, c.Subject)
	}
	if at, ok := w.revoked[c.Subject]; ok {
		return fmt.Errorf("%w: %s was revoked at %s", ErrUnauthorized, c.Subject, at.UTC().Format(time.RFC3339))
	}
	return nil
}

// Run polls the feed until ctx ends.
func (w *RevocationWatch) Run(ctx context.Context) {
	client := w.Client
	if client == nil {
		client = &http.Client{Timeout: 15 * time.Second}
	}
	wait := 250 * time.Millisecond
	for ctx.Err() == nil {
		err := w.poll(ctx, client)
		if err == nil {
			wait = 250 * time.Millisecond
			continue
		}
		if ctx.Err() != nil {
			return
		}
		w.mu.Lock()
		first := w.broken != err.Error()
		w.broken = err.Error()
		w.mu.Unlock()
		if first {
			w.logf("gateway: revocation feed: %v (retrying; credentials answer busy after %s of silence)", err, w.silence())
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		wait = min(2*wait, 2*time.Second)
	}
}

// errBadCursor is an answer 400 to the cursor: start again from the top.
var errBadCursor = errors.New("the control plane refused the cursor")

func (w *RevocationWatch) poll(ctx context.Context, client *http.Client) error {
	var u, bearer string
	if w.Endpoint != nil {
		u, bearer = w.Endpoint()
	}
	if bearer == "" {
		return errors.New("the gateway has no credential of its own yet (not registered)")
	}
	if u == "" {
		return errors.New("the control plane named no revocation feed when the gateway registered")
	}
	w.mu.Lock()
	cursor := w.cursor
	w.mu.Unlock()
	if cursor != "" {
		sep := "?"
		if strings.Contains(u, "?") {
			sep = "&"
		}
		u += sep + "after=" + url.QueryEscape(cursor)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+bearer)
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		if resp.StatusCode == http.StatusBadRequest {
			w.mu.Lock()
			w.cursor = ""
			w.mu.Unlock()
			return fmt.Errorf("%w (%s): fetching the feed from the start", errBadCursor, strings.TrimSpace(string(b)))
		}
		return fmt.Errorf("%s: %s", resp.Status, strings.TrimSpace(string(b)))
	}
	var p RevocationPage
	if err := json.NewDecoder(io.LimitReader(resp.Body, 4<<20)).Decode(&p); err != nil {
		return fmt.Errorf("the feed's answer: %w", err)
	}
	if _, err := ParseRevocationCursor(p.Cursor); err != nil {
		return fmt.Errorf("the feed's answer: %w", err)
	}
	w.apply(p)
	return nil
}

// RevocationKeep is how long a revoked subject stays in a gateway's set,
// and an event in the control plane's feed: twice the longest sync
// credential (24 h), past which no credential issued before the revocation
// is valid.
const RevocationKeep = 48 * time.Hour

func (w *RevocationWatch) apply(p RevocationPage) {
	now := w.now()
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.revoked == nil {
		w.revoked = map[string]time.Time{}
	}
	for _, e := range p.Events {
		if e.Subject != "" {
			if _, ok := w.revoked[e.Subject]; !ok {
				w.logf("gateway: revocation feed: %s revoked at %s", e.Subject, e.RevokedAt.UTC().Format(time.RFC3339Nano))
			}
			w.revoked[e.Subject] = e.RevokedAt
		}
	}
	for s, at := range w.revoked {
		if now.Sub(at) > RevocationKeep {
			delete(w.revoked, s)
		}
	}
	if p.TenantDisabled != w.disabled {
		w.logf("gateway: revocation feed: tenant disabled: %v", p.TenantDisabled)
	}
	w.disabled = p.TenantDisabled
	if p.Cursor != "" {
		w.cursor = p.Cursor
	}
	// Only an answer that left nothing to fetch vouches for the set: while
	// the gateway catches up, older revocations may still be ahead.
	if !p.More {
		if w.broken != "" {
			w.logf("gateway: revocation feed: answering again")
		}
		w.heard, w.broken = now, ""
	}
}

// Revoked reports how many subjects the watch holds revoked and when the
// feed last answered (for logs and tests).
func (w *RevocationWatch) Revoked() (int, time.Time) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.revoked), w.heard
}
