package ferry

import (
	"context"
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"time"
)

// HookPoint is when a migration hook runs.
type HookPoint string

// The hook points, in the order a migration meets them.
const (
	HookBeforeSync    HookPoint = "before_sync"
	HookBeforeCutover HookPoint = "before_cutover"
	HookAfterLaunch   HookPoint = "after_launch"
	HookAfterCutover  HookPoint = "after_cutover"
)

var hookPoints = []HookPoint{HookBeforeSync, HookBeforeCutover, HookAfterLaunch, HookAfterCutover}

// HookKind is how a hook runs.
type HookKind string

// The hook kinds: a script installed in the agent's hooks directory on the
// source host, run by the agent's command runner; or an HMAC-signed https
// POST.
const (
	HookScript  HookKind = "script"
	HookWebhook HookKind = "webhook"
)

// Hook is one pre- or post-step hook of a wave or a migration.
type Hook struct {
	Name  string    `json:"name"`
	Point HookPoint `json:"point"`
	Kind  HookKind  `json:"kind"`
	// URL is a webhook's https address.
	URL string `json:"url,omitempty"`
	// Script names a script in the agent's hooks directory.
	Script string `json:"script,omitempty"`
	// Timeout bounds one run or one delivery attempt (default 60 s, at most 1 h).
	TimeoutSeconds int `json:"timeoutSeconds,omitempty"`
	// Retries are further webhook attempts after a failed one (default 2, at most 10).
	Retries int `json:"retries,omitempty"`
	// MustSucceed: a failure stops the host's cutover and rolls it back.
	MustSucceed bool `json:"mustSucceed,omitempty"`
	// SecretSealed is the webhook's HMAC key, sealed at rest (never
	// returned by the API); the API takes it in plain text once.
	SecretSealed string `json:"secretSealed,omitempty"`
	// Secret is the plain key as the API takes it; never stored.
	Secret string `json:"-"`
}

var hookName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

// Timeout is the hook's bound on one run or attempt.
func (h Hook) Timeout() time.Duration {
	if h.TimeoutSeconds <= 0 {
		return time.Minute
	}
	return time.Duration(h.TimeoutSeconds) * time.Second
}

// Check says what is wrong with the hook, naming it (where names the list
// entry, e.g. "hooks[2]").
func (h Hook) Check(where string) error {
	name := where
	if h.Name != "" {
		name = fmt.Sprintf("%s (%s)", where, h.Name)
	}
	if !slices.Contains(hookPoints, h.Point) {
		return Errorf(EINVALID, "%s: point %q: want one of before_sync, before_cutover, after_launch, after_cutover", name, h.Point)
	}
	if h.TimeoutSeconds < 0 || h.TimeoutSeconds > 3600 {
		return Errorf(EINVALID, "%s: timeoutSeconds %d: want 1 to 3600 (0 for the default 60)", name, h.TimeoutSeconds)
	}
	if h.Retries < 0 || h.Retries > 10 {
		return Errorf(EINVALID, "%s: retries %d: want 0 to 10", name, h.Retries)
	}
	switch h.Kind {
	case HookWebhook:
		u, err := url.Parse(h.URL)
		if err != nil || u.Host == "" {
			return Errorf(EINVALID, "%s: url %q is not an absolute URL", name, h.URL)
		}
		if u.Scheme != "https" {
			return Errorf(EINVALID, "%s: url %q: webhooks must use https (the payload names hosts and is signed, not encrypted)", name, h.URL)
		}
		if u.User != nil {
			return Errorf(EINVALID, "%s: url %q: put no credentials in the URL; the delivery is signed with the hook's secret", name, h.URL)
		}
	case HookScript:
		if !hookName.MatchString(h.Script) {
			return Errorf(EINVALID, "%s: script %q: want a file name of the agent's hooks directory (letters, digits, '.', '_', '-')", name, h.Script)
		}
		if h.Point != HookBeforeSync && h.Point != HookBeforeCutover {
			return Errorf(EINVALID, "%s: a script runs on the source through its agent, before a sync pass: point before_sync or before_cutover, not %s", name, h.Point)
		}
	default:
		return Errorf(EINVALID, "%s: kind %q: want script or webhook", name, h.Kind)
	}
	return nil
}

// WaveStart is what startWave asks for.
type WaveStart struct {
	// Parallel caps the members replicating at once (their initial sync);
	// nil takes the plan's parallel_migrations (10 when it names none).
	Parallel *int
	// CutoverAt .. CutoverEndsAt is the wave's cutover window; when
	// CutoverAt is nil, CutoverWindows (the windows grammar, ParseSchedule)
	// gives the next opening, else the plan's cutover time for the wave.
	CutoverAt, CutoverEndsAt *time.Time
	CutoverWindows           string
	// HostCutoverAt overrides the cutover time of single hosts.
	HostCutoverAt map[int]time.Time
	// ApproverRole must approve the cutover ("" = no approval).
	ApproverRole string
	// CloudAccountID, RateLimit as for MigrationStart.
	CloudAccountID *int
	RateLimit      string
	// RPO is the interval of continuous sync passes (0: the server's).
	RPO time.Duration
	// KeepLast, KeepDaily: recovery point retention (nil: the server's).
	KeepLast, KeepDaily *int
	Hooks               []Hook
	// ManualSteps are runbook steps someone ticks off (TickWaveStep)
	// before the wave cuts over, e.g. "freeze changes", "tell the owner".
	ManualSteps []string
	StartedBy   string
}

// WaveStartReport says what startWave did with each member.
type WaveStartReport struct {
	Started, Queued, NoAgent []int // host ids
}

// WaveService runs plan waves over the migration lifecycle. Errors as for
// MigrationService; role checks are the caller's, except that ApproveWave
// refuses a viewer (in ctx) below the wave's approver role.
type WaveService interface {
	StartWave(ctx context.Context, waveID int, req WaveStart) (WaveStartReport, error)
	PauseWave(ctx context.Context, waveID int, by string) error
	ResumeWave(ctx context.Context, waveID int, by string) error
	// ApproveWave records approver's approval of the wave's cutover.
	ApproveWave(ctx context.Context, waveID int, approver string) error
	// SetHostCutover sets (nil: clears) a host's own cutover time.
	SetHostCutover(ctx context.Context, waveID, hostID int, at *time.Time) error
	// TickWaveStep records that by did the manual runbook step at index.
	TickWaveStep(ctx context.Context, waveID, index int, by string) error
}

// CheckRPO refuses an RPO outside 1 minute .. 168 hours.
func CheckRPO(d time.Duration) error {
	if d != 0 && (d < time.Minute || d > 168*time.Hour) {
		return Errorf(EINVALID, "rpo %s: want 1 minute to 168 hours", d)
	}
	return nil
}

// MigrationSettings are a migration's own RPO (the interval of its
// continuous sync passes) and recovery point retention; nil leaves a
// setting as it is, a zero RPO returns to the server's.
type MigrationSettings struct {
	RPO                 *time.Duration
	KeepLast, KeepDaily *int
}

// MigrationSettingsService changes a migration's settings (jobs/migration).
// Errors as for MigrationService.
type MigrationSettingsService interface {
	SetMigrationSettings(ctx context.Context, migrationID int, s MigrationSettings) error
}

// CheckRetention refuses a retention that keeps nothing or is absurd.
func CheckRetention(keepLast, keepDaily *int) error {
	for _, v := range []struct {
		name string
		n    *int
	}{{"keepLast", keepLast}, {"keepDaily", keepDaily}} {
		if v.n != nil && (*v.n < 0 || *v.n > 10000) {
			return Errorf(EINVALID, "retention %s %d: want 0 to 10000", v.name, *v.n)
		}
	}
	if keepLast != nil && keepDaily != nil && *keepLast == 0 && *keepDaily == 0 {
		return Errorf(EINVALID, "retention keeps no recovery point (keepLast 0, keepDaily 0): keep at least one")
	}
	return nil
}
