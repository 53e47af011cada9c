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
	"go.opentelemetry.io/otel/attribute"

	"github.com/ferry-migrate/ferry"
	"github.com/ferry-migrate/ferry/ent"
	"github.com/ferry-migrate/ferry/ent/plan"
	"github.com/ferry-migrate/ferry/internal/planning"
	"github.com/ferry-migrate/ferry/internal/telemetry"
	"github.com/ferry-migrate/ferry/internal/viewer"
	"github.com/ferry-migrate/ferry/planner"
	"github.com/ferry-migrate/ferry/planner/assess"
)

// Planning task types.
const (
	TypeGeneratePlan  = "plan:generate"
	TypeRunAssessment = "plan:assess"
)

// GeneratePlanPayload names the plan; everything else is read from the database.
type GeneratePlanPayload struct {
	TenantID int `json:"tenant_id"`
	PlanID   int `json:"plan_id"`
}

// NewGeneratePlanTask returns the task for a queued plan. The TaskID makes
// a second enqueue of the same plan (the reconciler, a retried request) a
// no-op while the first is pending or running.
func NewGeneratePlanTask(tenantID, planID int) (*asynq.Task, []asynq.Option, error) {
	b, err := json.Marshal(GeneratePlanPayload{TenantID: tenantID, PlanID: planID})
	if err != nil {
		return nil, nil, err
	}
	return asynq.NewTask(TypeGeneratePlan, b), []asynq.Option{
		asynq.TaskID("plan:" + strconv.Itoa(planID)), asynq.MaxRetry(5), asynq.Timeout(30 * time.Minute),
	}, nil
}

// RunAssessmentPayload is one assessment run: the tenant and the target's
// options (no estate: the handler reads it).
type RunAssessmentPayload struct {
	TenantID  int     `json:"tenant_id"`
	Target    string  `json:"target"`
	Region    string  `json:"region"`
	Bandwidth float64 `json:"bandwidth,omitempty"` // bits/s; 0 = the assessor's default
	Headroom  float64 `json:"headroom,omitempty"`
}

// NewRunAssessmentTask returns the task; one run per tenant and target is
// pending at a time.
func NewRunAssessmentTask(p RunAssessmentPayload) (*asynq.Task, []asynq.Option, error) {
	b, err := json.Marshal(p)
	if err != nil {
		return nil, nil, err
	}
	return asynq.NewTask(TypeRunAssessment, b), []asynq.Option{
		asynq.TaskID(fmt.Sprintf("assess:%d:%s", p.TenantID, p.Target)), asynq.MaxRetry(5), asynq.Timeout(30 * time.Minute),
	}, nil
}

// AssessOptions turns the payload into the assessor's options.
func (p RunAssessmentPayload) AssessOptions() assess.Options {
	o := assess.Options{Target: p.Target, Region: p.Region, Headroom: p.Headroom}
	if p.Bandwidth > 0 {
		o.Link.Bandwidth = planner.BitRate(p.Bandwidth)
	}
	return o
}

// Planning handles plan generation and assessment runs.
type Planning struct {
	Client *ent.Client
	Now    func() time.Time
	Log    *slog.Logger
}

// GeneratePlan builds the plan named by the payload. Idempotent (see
// planning.Generate); input problems fail the plan and are not retried.
func (h *Planning) GeneratePlan(ctx context.Context, t *asynq.Task) error {
	var p GeneratePlanPayload
	if err := json.Unmarshal(t.Payload(), &p); err != nil || p.TenantID == 0 || p.PlanID == 0 {
		return fmt.Errorf("plan:generate payload %q: %w", t.Payload(), asynq.SkipRetry)
	}
	tctx := viewer.TenantContext(ctx, p.TenantID)
	start := time.Now()
	sctx, span := telemetry.Start(tctx, "planner.generate", attribute.Int("ferry.plan_id", p.PlanID), attribute.Int("ferry.tenant_id", p.TenantID))
	err := planning.Generate(sctx, h.Client, p.PlanID, h.Now)
	telemetry.End(span, err)
	var fe *ferry.Error
	switch {
	case err == nil:
		h.Log.InfoContext(ctx, "plan generated", "tenant_id", p.TenantID, "plan_id", p.PlanID, "seconds", time.Since(start).Seconds())
		return nil
	case errors.As(err, &fe):
		h.Log.InfoContext(ctx, "plan failed on its input", "tenant_id", p.TenantID, "plan_id", p.PlanID, "error", fe.Message)
		return fmt.Errorf("plan %d: %s: %w", p.PlanID, fe.Message, asynq.SkipRetry)
	case ent.IsNotFound(err):
		return fmt.Errorf("plan %d is gone: %w", p.PlanID, asynq.SkipRetry)
	}
	return err
}

// RunAssessment assesses the tenant's hosts; re-running updates the same rows.
func (h *Planning) RunAssessment(ctx context.Context, t *asynq.Task) error {
	var p RunAssessmentPayload
	if err := json.Unmarshal(t.Payload(), &p); err != nil || p.TenantID == 0 {
		return fmt.Errorf("plan:assess payload %q: %w", t.Payload(), asynq.SkipRetry)
	}
	tot, err := planning.Assess(viewer.TenantContext(ctx, p.TenantID), h.Client, p.TenantID, p.AssessOptions())
	var pp planner.Problems
	if errors.As(err, &pp) {
		return fmt.Errorf("assessment: %v: %w", err, asynq.SkipRetry)
	}
	if err != nil {
		return err
	}
	h.Log.InfoContext(ctx, "assessment done", "tenant_id", p.TenantID, "target", p.Target, "hosts", tot.Hosts)
	return nil
}

// Register adds the planning handlers to mux.
func (h *Planning) Register(mux *asynq.ServeMux) {
	mux.HandleFunc(TypeGeneratePlan, h.GeneratePlan)
	mux.HandleFunc(TypeRunAssessment, h.RunAssessment)
}

// EnqueuePlan queues plan generation; a plan already queued is not an error.
func EnqueuePlan(ctx context.Context, q *Queue, tenantID, planID int) error {
	t, opts, err := NewGeneratePlanTask(tenantID, planID)
	if err != nil {
		return err
	}
	// The task continues the trace of the request that queued it.
	t = asynq.NewTaskWithHeaders(t.Type(), t.Payload(), telemetry.Headers(ctx))
	if _, err := q.Client.EnqueueContext(ctx, t, opts...); err != nil && !errors.Is(err, asynq.ErrTaskIDConflict) {
		return fmt.Errorf("enqueue plan %d: %w", planID, err)
	}
	return nil
}

// ReconcilePlans re-enqueues every plan the database says is queued or
// running: the embedded queue keeps nothing across restarts, and a worker
// that died mid-plan left its plan running. Generation is idempotent and
// the TaskID collapses duplicates, so calling this on every start-up (of
// every replica) is safe. It returns how many plans it enqueued.
func ReconcilePlans(ctx context.Context, c *ent.Client, q *Queue) (int, error) {
	ps, err := c.Plan.Query().Where(plan.StatusIn(plan.StatusQueued, plan.StatusRunning)).
		Select(plan.FieldID, plan.FieldTenantID).All(viewer.SystemContext(ctx))
	if err != nil {
		return 0, fmt.Errorf("reconcile plans: %w", err)
	}
	for _, p := range ps {
		if err := EnqueuePlan(ctx, q, p.TenantID, p.ID); err != nil {
			return 0, err
		}
	}
	return len(ps), nil
}
