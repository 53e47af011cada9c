// Package hook runs a migration's pre- and post-step hooks for the
// migration steps (migration.HookRunner): HMAC-signed https webhooks with
// retries, each attempt kept in the delivery log (HookDelivery) and its
// outcome in the step's events, and the agent scripts that go out with a
// sync command. A migration's hooks are its wave's (Wave.run_settings)
// followed by its own (Migration.settings.hooks, which carry no secret).
package hook

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/ferry-migrate/ferry"
	"github.com/ferry-migrate/ferry/engine"
	"github.com/ferry-migrate/ferry/ent"
	"github.com/ferry-migrate/ferry/ent/hookdelivery"
	"github.com/ferry-migrate/ferry/internal/viewer"
	"github.com/ferry-migrate/ferry/jobs/migration"
)

var _ migration.HookRunner = (*Runner)(nil)

// Runner runs hooks. Zero fields take the defaults given.
type Runner struct {
	Client *ent.Client
	// HTTP delivers webhooks (a client with a 5 s dial timeout; tests give
	// their TLS server's).
	HTTP *http.Client
	// Open opens a webhook's sealed secret of the tenant.
	Open func(sealed string, tenant int) ([]byte, error)
	Now  func() time.Time
	Log  *slog.Logger
	// Backoff is the pause before the first retry, doubled for each next
	// (1 s).
	Backoff time.Duration
}

func (r *Runner) now() time.Time {
	if r.Now != nil {
		return r.Now().UTC()
	}
	return time.Now().UTC()
}

// Hooks returns mig's hooks: its wave's, then its own.
func (r *Runner) Hooks(ctx context.Context, mig *ent.Migration) ([]ferry.Hook, error) {
	var out []ferry.Hook
	decode := func(v any) error {
		if v == nil {
			return nil
		}
		b, err := json.Marshal(v)
		if err != nil {
			return err
		}
		var hs []ferry.Hook
		if err := json.Unmarshal(b, &hs); err != nil {
			return fmt.Errorf("hooks: %w", err)
		}
		out = append(out, hs...)
		return nil
	}
	if id, ok := mig.Settings["wave"].(float64); ok {
		w, err := r.Client.Wave.Get(viewer.TenantContext(ctx, mig.TenantID), int(id))
		switch {
		case ent.IsNotFound(err): // the plan was regenerated
		case err != nil:
			return nil, err
		default:
			if err := decode(w.RunSettings["hooks"]); err != nil {
				return nil, err
			}
		}
	}
	if err := decode(mig.Settings["hooks"]); err != nil {
		return nil, err
	}
	return out, nil
}

// Scripts implements migration.HookRunner.
func (r *Runner) Scripts(ctx context.Context, point ferry.HookPoint, mig *ent.Migration) ([]engine.Hook, error) {
	hs, err := r.Hooks(ctx, mig)
	if err != nil {
		return nil, err
	}
	var out []engine.Hook
	for _, h := range hs {
		if h.Kind == ferry.HookScript && h.Point == point {
			out = append(out, engine.Hook{Name: h.Script, TimeoutSeconds: int(h.Timeout() / time.Second), MustSucceed: h.MustSucceed})
		}
	}
	return out, nil
}

// Run implements migration.HookRunner: every webhook of point, in order;
// a must-succeed one that fails every attempt stops the rest.
func (r *Runner) Run(ctx context.Context, point ferry.HookPoint, mig *ent.Migration, log func(level, msg string)) error {
	hs, err := r.Hooks(ctx, mig)
	if err != nil {
		return err
	}
	for i, h := range hs {
		if h.Kind != ferry.HookWebhook || h.Point != point {
			continue
		}
		name := h.Name
		if name == "" {
			name = "webhook " + strconv.Itoa(i+1)
		}
		out, err := r.deliver(ctx, point, mig, h, name)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		switch {
		case err == nil:
			log("info", fmt.Sprintf("hook %s (%s) succeeded: %s", name, point, out))
		case h.MustSucceed:
			log("error", fmt.Sprintf("hook %s (%s) failed and must succeed: %v", name, point, err))
			return fmt.Errorf("must-succeed hook %s (%s) failed: %v", name, point, err)
		default:
			log("warn", fmt.Sprintf("hook %s (%s) failed; going on (not must-succeed): %v", name, point, err))
		}
	}
	return nil
}

// Payload is the body of a webhook delivery.
type Payload struct {
	Event       ferry.HookPoint `json:"event"`
	Hook        string          `json:"hook"`
	MigrationID int             `json:"migrationId"`
	HostID      int             `json:"hostId"`
	Host        string          `json:"host"`
	State       string          `json:"state"`
	WaveID      int             `json:"waveId,omitempty"`
	Attempt     int             `json:"attempt"`
	SentAt      time.Time       `json:"sentAt"`
}

// Sign is the X-Ferry-Signature of a delivery: "sha256=" and the hex
// HMAC-SHA256 under the hook's secret of the timestamp header, a dot and
// the body (a receiver rejects old timestamps to stop replays).
func Sign(secret []byte, timestamp string, body []byte) string {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(timestamp))
	m.Write([]byte("."))
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

// deliver POSTs the payload until a 2xx answer or the attempts run out,
// logging each attempt. It returns the answer's first bytes.
func (r *Runner) deliver(ctx context.Context, point ferry.HookPoint, mig *ent.Migration, h ferry.Hook, name string) (string, error) {
	sys := viewer.SystemContext(ctx)
	var secret []byte
	if h.SecretSealed != "" {
		if r.Open == nil {
			return "", errors.New("this process cannot open webhook secrets")
		}
		var err error
		if secret, err = r.Open(h.SecretSealed, mig.TenantID); err != nil {
			return "", fmt.Errorf("open the webhook's secret: %w", err)
		}
	}
	host, _ := mig.QueryHost().Only(viewer.TenantContext(ctx, mig.TenantID))
	p := Payload{Event: point, Hook: name, MigrationID: mig.ID, HostID: mig.HostID, State: string(mig.State)}
	if host != nil {
		p.Host = host.Name
	}
	if id, ok := mig.Settings["wave"].(float64); ok {
		p.WaveID = int(id)
	}
	client := r.HTTP
	if client == nil {
		client = &http.Client{CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if req.URL.Scheme != "https" || len(via) >= 3 {
				return fmt.Errorf("redirect to %s refused: webhooks stay on https, at most 3 redirects", req.URL.Redacted())
			}
			return nil
		}}
	}
	backoff := r.Backoff
	if backoff <= 0 {
		backoff = time.Second
	}
	retries := h.Retries
	var last error
	for attempt := 1; attempt <= retries+1; attempt++ {
		if attempt > 1 {
			t := time.NewTimer(backoff << (attempt - 2))
			select {
			case <-ctx.Done():
				t.Stop()
				return "", ctx.Err()
			case <-t.C:
			}
		}
		p.Attempt, p.SentAt = attempt, r.now()
		body, _ := json.Marshal(p)
		start := time.Now()
		code, out, err := r.post(ctx, client, h, body, secret, p.SentAt)
		d := r.Client.HookDelivery.Create().SetTenantID(mig.TenantID).SetMigrationID(mig.ID).SetPoint(string(point)).SetHook(name).
			SetKind(hookdelivery.KindWebhook).SetTarget(h.URL).SetAttempt(attempt).SetStatusCode(code).SetOk(err == nil).
			SetMustSucceed(h.MustSucceed).SetOutput(clip(out)).SetDurationMs(time.Since(start).Milliseconds()).SetCreatedAt(r.now())
		if err != nil {
			d.SetError(clip(err.Error()))
		}
		if derr := d.Exec(sys); derr != nil && r.Log != nil {
			r.Log.WarnContext(ctx, "hook delivery log", "migration", mig.ID, "error", derr)
		}
		if err == nil {
			return fmt.Sprintf("HTTP %d after %d attempt(s)", code, attempt), nil
		}
		last = err
		if ctx.Err() != nil {
			return "", ctx.Err()
		}
	}
	return "", fmt.Errorf("%d attempt(s): last: %w", retries+1, last)
}

func (r *Runner) post(ctx context.Context, client *http.Client, h ferry.Hook, body, secret []byte, at time.Time) (int, string, error) {
	ctx, cancel := context.WithTimeout(ctx, h.Timeout())
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, h.URL, bytes.NewReader(body))
	if err != nil {
		return 0, "", err
	}
	ts := strconv.FormatInt(at.Unix(), 10)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "ferry-hooks/1")
	req.Header.Set("X-Ferry-Event", string(h.Point))
	req.Header.Set("X-Ferry-Timestamp", ts)
	if secret != nil {
		req.Header.Set("X-Ferry-Signature", Sign(secret, ts, body))
	}
	resp, err := client.Do(req)
	if err != nil {
		if ctx.Err() == context.DeadlineExceeded {
			return 0, "", fmt.Errorf("timed out after %s", h.Timeout())
		}
		return 0, "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode/100 != 2 {
		return resp.StatusCode, string(b), fmt.Errorf("HTTP %d: %s", resp.StatusCode, clip(string(b)))
	}
	return resp.StatusCode, string(b), nil
}

func clip(s string) string {
	if len(s) > 3900 {
		return s[:3900] + "…"
	}
	return s
}
