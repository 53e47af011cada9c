package app_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/ferry-migrate/ferry/ent/plan"
)

// A plan whose task was lost (status queued, nothing in the queue) is picked
// up by the periodic reconciler, without a restart and without anyone
// calling it.
func TestPeriodicReconcilerRecoversLostWork(t *testing.T) {
	ts := mustStart(t)
	ts.App.Config.Workers = 2
	ts.App.Config.ReconcileEvery = 100 * time.Millisecond
	if err := ts.App.StartWorkers(); err != nil {
		t.Fatal(err)
	}
	seedEstate(t, ts, 60, 3)
	c := ts.login(t, "admin@example.com", adminPassword)
	d := c.mustGQL(generatePlanMutation, map[string]any{"in": planInput("lost", nil)})
	id := dig(d, "generatePlan", "id").(string)
	if st := dig(d, "generatePlan", "status"); st != "ready" && st != "infeasible" {
		t.Fatalf("inline plan: %v", st)
	}
	ctx, _ := defaultTenant(t, ts)
	var planID int
	fmt.Sscan(id, &planID)
	// As if the enqueue after a commit had been lost: queued, no task.
	ts.App.DB.Client.Plan.UpdateOneID(planID).SetStatus(plan.StatusQueued).ExecX(ctx)
	if p := waitPlan(t, c, id); p["status"] != "ready" && p["status"] != "infeasible" {
		t.Fatalf("after reconcile: %v", p)
	}
}
