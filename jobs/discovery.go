package jobs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/hibiken/asynq"

	"github.com/ferry-migrate/ferry/discovery/vcenter"
	"github.com/ferry-migrate/ferry/ent"
	"github.com/ferry-migrate/ferry/ent/discoverysource"
	"github.com/ferry-migrate/ferry/internal/ingest"
	"github.com/ferry-migrate/ferry/internal/secrets"
	"github.com/ferry-migrate/ferry/internal/viewer"
)

// Task types of stored discovery sources.
const (
	TypeDiscoverySource = "discovery:source"
	TypeDiscoveryDue    = "discovery:due"
)

// SourceAD binds a discovery source's sealed password to its row, as
// cloud secrets are bound to theirs.
func SourceAD(tenantID, sourceID int) []byte {
	return []byte(fmt.Sprintf("discovery_source:%d:tenant:%d", sourceID, tenantID))
}

// DiscoverySourcePayload names one source.
type DiscoverySourcePayload struct {
	TenantID int `json:"tenant_id"`
	SourceID int `json:"source_id"`
}

// NewDiscoverySourceTask reads a source once; slot de-duplicates runs
// (one per source and scheduled minute, or per manual request).
func NewDiscoverySourceTask(p DiscoverySourcePayload, slot string) (*asynq.Task, []asynq.Option, error) {
	b, err := json.Marshal(p)
	if err != nil {
		return nil, nil, err
	}
	return asynq.NewTask(TypeDiscoverySource, b), []asynq.Option{
		asynq.TaskID(fmt.Sprintf("source:%d:%s", p.SourceID, slot)), asynq.MaxRetry(2), asynq.Timeout(30 * time.Minute),
	}, nil
}

// NewDiscoveryDueTask finds the sources whose schedule is due.
func NewDiscoveryDueTask() (*asynq.Task, []asynq.Option) {
	return asynq.NewTask(TypeDiscoveryDue, nil), []asynq.Option{asynq.MaxRetry(0), asynq.Timeout(time.Minute)}
}

// Discovery runs stored discovery sources.
type Discovery struct {
	Client     *ent.Client
	Secrets    *secrets.Box
	Queue      *Queue
	Identities *ingest.Identities
	Now        func() time.Time
	Log        *slog.Logger
}

// Due enqueues every source whose next run has come (the database says
// which; a lost enqueue is found again a minute later).
func (h *Discovery) Due(ctx context.Context, _ *asynq.Task) error {
	sys := viewer.SystemContext(ctx)
	now := h.Now()
	due, err := h.Client.DiscoverySource.Query().Where(discoverysource.IntervalMinutesGT(0), discoverysource.NextRunAtLTE(now),
		discoverysource.LastStatusNotIn(discoverysource.LastStatusQueued, discoverysource.LastStatusRunning)).All(sys)
	if err != nil {
		return err
	}
	for _, s := range due {
		t, opts, err := NewDiscoverySourceTask(DiscoverySourcePayload{TenantID: s.TenantID, SourceID: s.ID}, s.NextRunAt.UTC().Format("200601021504"))
		if err != nil {
			return err
		}
		if _, err := h.Queue.Client.EnqueueContext(ctx, t, opts...); err != nil && !errors.Is(err, asynq.ErrTaskIDConflict) {
			return err
		}
		if err := h.Client.DiscoverySource.UpdateOne(s).SetLastStatus(discoverysource.LastStatusQueued).Exec(sys); err != nil {
			return err
		}
	}
	return nil
}

// Run reads one source: it opens the sealed password, discovers the
// vCenter's VMs and stores them as an import run of kind vcenter through
// the one ingest path (hosts merged by identity). The outcome is recorded
// on the source, and the next scheduled run is set.
func (h *Discovery) Run(ctx context.Context, t *asynq.Task) error {
	var p DiscoverySourcePayload
	if err := json.Unmarshal(t.Payload(), &p); err != nil || p.TenantID == 0 || p.SourceID == 0 {
		return fmt.Errorf("discovery:source payload %q: %w", t.Payload(), asynq.SkipRetry)
	}
	tctx := viewer.TenantContext(ctx, p.TenantID)
	s, err := h.Client.DiscoverySource.Get(tctx, p.SourceID)
	if ent.IsNotFound(err) {
		return nil // deleted meanwhile
	}
	if err != nil {
		return err
	}
	now := h.Now()
	upd := h.Client.DiscoverySource.UpdateOne(s).SetLastRunAt(now)
	if s.IntervalMinutes > 0 {
		upd.SetNextRunAt(now.Add(time.Duration(s.IntervalMinutes) * time.Minute))
	}
	if err := h.Client.DiscoverySource.UpdateOne(s).SetLastStatus(discoverysource.LastStatusRunning).Exec(tctx); err != nil {
		return err
	}
	fail := func(err error) error {
		h.Log.WarnContext(ctx, "discovery source failed", "source", s.ID, "error", err)
		return upd.SetLastStatus(discoverysource.LastStatusFailed).SetLastError(clip(err.Error(), 2000)).Exec(tctx)
	}
	pw, err := h.Secrets.Open(s.SecretCiphertext, SourceAD(s.TenantID, s.ID))
	if err != nil {
		return fail(fmt.Errorf("the stored password cannot be opened with this server's key"))
	}
	c, err := vcenter.Connect(ctx, s.URL, s.Username, string(pw), s.Insecure)
	if err != nil {
		return fail(err)
	}
	defer c.Logout(context.WithoutCancel(ctx))
	recs, err := vcenter.Discover(ctx, c.Client, c.URL().Host, now)
	if err != nil {
		return fail(err)
	}
	out, err := ingest.Apply(tctx, h.Client, s.TenantID, ingest.Batch{Kind: "vcenter", Filename: clip(s.Name+" ("+s.URL+")", 1000),
		Actor: "discovery source " + strconv.Itoa(s.ID), Records: recs, RowsTotal: len(recs), Identities: h.Identities}, now)
	if err != nil {
		return fail(err)
	}
	return upd.SetLastStatus(discoverysource.LastStatusSucceeded).SetLastError("").SetLastHosts(out.HostsCreated + out.HostsUpdated).
		SetLastImportRunID(out.Run.ID).Exec(tctx)
}

func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}

// Register adds the handlers to mux.
func (h *Discovery) Register(mux *asynq.ServeMux) {
	mux.HandleFunc(TypeDiscoverySource, h.Run)
	mux.HandleFunc(TypeDiscoveryDue, h.Due)
}
