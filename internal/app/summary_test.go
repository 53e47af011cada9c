package app_test

import (
	"fmt"
	"math"
	"testing"

	"github.com/ferry-migrate/ferry/ent"
	"github.com/ferry-migrate/ferry/ent/assessment"
	"github.com/ferry-migrate/ferry/internal/viewer"
)

// TestDashboardCostAt20000Hosts: the figure the dashboard shows
// (assessmentSummary) is the sum over every stored assessment at 20,000
// hosts, not over the first page of 1,000 the screen once added up.
func TestDashboardCostAt20000Hosts(t *testing.T) {
	if testing.Short() {
		t.Skip("20,000 hosts")
	}
	ts := mustStart(t)
	admin := ts.login(t, "admin@example.com", adminPassword)
	before := admin.mustGQL(`{ assessmentSummary(target: "alibaba") { hosts assessedAt priced monthlyCostRightSized } }`, nil)
	if dig(before, "assessmentSummary", "assessedAt") != nil || dig(before, "assessmentSummary", "hosts") != 0.0 {
		t.Errorf("before any assessment the summary must say so (assessedAt null, 0 hosts): %v", before)
	}
	db := ts.App.DB.Client
	ctx := viewer.TenantContext(viewer.SystemContext(t.Context()), tenantID(t, ts, "default"))
	const n = 20000
	for i := 0; i < n; i += 1000 {
		hs := make([]*ent.HostCreate, 0, 1000)
		for j := i; j < i+1000; j++ {
			hs = append(hs, db.Host.Create().SetName(fmt.Sprintf("sum-%05d", j)).SetCpus(2))
		}
		created := db.Host.CreateBulk(hs...).SaveX(ctx)
		as := make([]*ent.AssessmentCreate, 0, 1000)
		for k, h := range created {
			j := i + k
			as = append(as, db.Assessment.Create().SetHostID(h.ID).SetTarget("alibaba").SetRegion("cn-hangzhou").
				SetReadiness(assessment.ReadinessReady).SetMonthlyCostAsIs(float64(50+j%300)+0.25).SetMonthlyCostRightSized(float64(20+j%200)+0.5))
		}
		db.Assessment.CreateBulk(as...).ExecX(ctx)
	}
	var sums []struct {
		AsIs  float64 `json:"as_is"`
		Right float64 `json:"right"`
	}
	db.Assessment.Query().Aggregate(ent.As(ent.Sum(assessment.FieldMonthlyCostAsIs), "as_is"), ent.As(ent.Sum(assessment.FieldMonthlyCostRightSized), "right")).ScanX(ctx, &sums)
	d := admin.mustGQL(`{ assessmentSummary(target: "alibaba") { hosts monthlyCostAsIs monthlyCostRightSized priced region assessedAt priceDate } }`, nil)
	s := d["assessmentSummary"].(map[string]any)
	if s["hosts"] != float64(n) || math.Abs(s["monthlyCostRightSized"].(float64)-sums[0].Right) > 0.01 || math.Abs(s["monthlyCostAsIs"].(float64)-sums[0].AsIs) > 0.01 {
		t.Errorf("summary %v; the database holds %d assessments, %v as-is, %v right-sized", s, n, sums[0].AsIs, sums[0].Right)
	}
	if s["priced"] != true || s["region"] != "cn-hangzhou" || s["assessedAt"] == nil || s["priceDate"] == "" {
		t.Errorf("summary lacks price and region facts: %v", s)
	}
	// What the old screen did: the first 1,000 rows are not the total.
	page := admin.mustGQL(`{ assessments(first: 1000) { edges { node { monthlyCostRightSized } } } }`, nil)
	firstPage := 0.0
	for _, e := range dig(page, "assessments", "edges").([]any) {
		firstPage += dig(e, "node", "monthlyCostRightSized").(float64)
	}
	if math.Abs(firstPage-sums[0].Right) < 1 {
		t.Fatalf("the first page sums to the total; the test would not tell the two apart")
	}
}
