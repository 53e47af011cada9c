package app_test

import (
	"strconv"
	"strings"
	"testing"

	"github.com/ferry-migrate/ferry/ent/migration"
	"github.com/ferry-migrate/ferry/internal/planning"
	"github.com/ferry-migrate/ferry/internal/viewer"
)

// TestRatesAndWindowsAtTheAPI: every GraphQL input that takes a rate or a
// window reads it with the shared vocabulary (the same spellings and the
// same errors as plan.yaml and the agent), and what is stored is the
// spelling every reader reads alike.
func TestRatesAndWindowsAtTheAPI(t *testing.T) {
	ts := mustStart(t)
	ids := seedEstate(t, ts, 40, 3)
	c := ts.login(t, "admin@example.com", adminPassword)
	for _, tc := range []struct {
		name  string
		extra map[string]any
		want  []string
	}{
		{"ambiguous bandwidth", map[string]any{"bandwidth": "10Mb/s"}, []string{"bandwidth", "ambiguous", "10Mbps for megabits or 10MB/s for megabytes"}},
		{"bare number", map[string]any{"bandwidth": "1000000000"}, []string{"bandwidth", "a number needs a unit"}},
		{"window rate", map[string]any{"transferWindows": []any{map[string]any{"when": "Sat 00:00-24:00", "rate": "5000"}}}, []string{"transfer_windows", "a number needs a unit"}},
		{"inline window rate", map[string]any{"transferWindows": []any{map[string]any{"when": "Mon-Fri 19:00-07:00=8MBps"}}}, []string{`transfer_windows[0].when "Mon-Fri 19:00-07:00=8MBps"`, "reads as bytes by its letters"}},
		{"two cutover windows at once", map[string]any{"cutoverWindows": []string{"Sat 22:00-04:00; Sat 22:00-23:00"}}, []string{`cutover_windows[0] entry 2 "Sat 22:00-23:00" and cutover_windows[0] entry 1 "Sat 22:00-04:00" both start on Sat at 22:00`}},
		{"a rate on a cutover window", map[string]any{"cutoverWindows": []string{"Sat 22:00-04:00=1Gbps"}}, []string{"a cutover window takes no rate"}},
	} {
		r := c.gql(generatePlanMutation, map[string]any{"in": planInput(tc.name, tc.extra)})
		if r.code() != "INVALID" {
			t.Fatalf("%s: want INVALID, got %s", tc.name, r.raw)
		}
		for _, w := range tc.want {
			if !strings.Contains(r.Errors[0].Message, w) {
				t.Errorf("%s: error %q does not say %q", tc.name, r.Errors[0].Message, w)
			}
		}
	}

	// Good spellings in bytes are stored in the canonical one; windows may
	// carry their own rate and overlap (the one that opened last holds).
	d := c.mustGQL(generatePlanMutation, map[string]any{"in": planInput("bytes", map[string]any{"bandwidth": "125MB/s", "transferWindows": []any{
		map[string]any{"when": "Mon-Fri 19:00-07:00=100MB/s"}, map[string]any{"when": "Sat-Sun 00:00-24:00", "rate": "1 Gbit/s"},
	}})})
	if s := dig(d, "generatePlan", "status"); s != "ready" {
		t.Fatalf("plan status %v: %v", s, d)
	}
	id, _ := strconv.Atoi(dig(d, "generatePlan", "id").(string))
	ctx, _ := defaultTenant(t, ts)
	p := ts.App.DB.Client.Plan.GetX(ctx, id)
	if got := p.Constraints["bandwidth"]; got != "1Gbps" {
		t.Errorf("stored bandwidth %v, want 1Gbps", got)
	}
	if got := p.Constraints["transfer_windows"].([]any)[1].(map[string]any)["rate"]; got != "1Gbps" {
		t.Errorf("stored window rate %v, want 1Gbps", got)
	}

	// A plan stored before the vocabulary was one keeps its reading: the
	// planner read a bare number and "MB/s" as bits.
	legacy := map[string]any{"start": "2026-12-07", "bandwidth": "100MB/s", "transfer_windows": []any{map[string]any{"when": "Sat 00:00-24:00", "rate": "50000000"}}}
	cfg, err := planning.DecodeStoredConfig(legacy)
	if err != nil {
		t.Fatalf("a stored plan no longer reads: %v", err)
	}
	if cfg.Bandwidth != 100e6 || *cfg.TransferWindows[0].Rate != 50e6 {
		t.Errorf("stored plan read as %g bit/s and %g bit/s, want 100e6 and 50e6", float64(cfg.Bandwidth), float64(*cfg.TransferWindows[0].Rate))
	}
	if legacy["bandwidth"] != "100MB/s" {
		t.Error("reading a stored plan changed it")
	}
	if _, err := planning.DecodeConfig(legacy); err == nil {
		t.Error("a new input with a bare number was accepted")
	}
	// ... and a move on it still works.
	ts.App.DB.Client.Plan.UpdateOneID(id).SetConstraints(map[string]any{"start": "2026-12-07", "bandwidth": "1000000000", "cutover_windows": []any{"Sat 22:00-04:00"}}).
		ExecX(ctx)
	const move = `mutation($p: ID!, $h: ID!) { movePlanHost(planId: $p, hostId: $h, toWave: 1) { saved } }`
	if r := c.gql(move, map[string]any{"p": strconv.Itoa(id), "h": strconv.Itoa(ids["dc01"])}); len(r.Errors) > 0 {
		t.Fatalf("move on a stored plan: %s", r.raw)
	}

	// startMigration's rateLimit: the same parser and errors; stored canonical.
	const start = `mutation($h: [ID!]!, $r: String) { startMigration(hostIds: $h, rateLimit: $r) { id } }`
	host := strconv.Itoa(ids["dc01"])
	for in, want := range map[string]string{"10Mb/s": "rate limit: rate \"10Mb/s\": ambiguous", "1000": "a number needs a unit", "0": "rate limit 0 would never send"} {
		if r := c.gql(start, map[string]any{"h": []string{host}, "r": in}); r.code() != "INVALID" || !strings.Contains(r.Errors[0].Message, want) {
			t.Errorf("rateLimit %q: %s, want INVALID with %q", in, r.raw, want)
		}
	}
	c.mustGQL(start, map[string]any{"h": []string{host}, "r": "12.5 MB/s"})
	m := ts.App.DB.Client.Migration.Query().Where(migration.HostID(ids["dc01"])).OnlyX(viewer.SystemContext(t.Context()))
	if got := m.Settings["rate"]; got != "100Mbps" {
		t.Errorf("stored rate %v, want 100Mbps", got)
	}
	// Migration.rateLimit shows it in the same spelling; a row started
	// before keeps the engine's reading of what was typed then.
	const limit = `query($id: ID!) { node(id: $id) { ... on Migration { rateLimit } } }`
	mid := strconv.Itoa(m.ID)
	if got := dig(c.mustGQL(limit, map[string]any{"id": mid}), "node", "rateLimit"); got != "100Mbps" {
		t.Errorf("rateLimit %v, want 100Mbps", got)
	}
	settings := m.Settings
	settings["rate"] = "10mb/s"
	ts.App.DB.Client.Migration.UpdateOneID(m.ID).SetSettings(settings).ExecX(viewer.SystemContext(t.Context()))
	if got := dig(c.mustGQL(limit, map[string]any{"id": mid}), "node", "rateLimit"); got != "80Mbps" {
		t.Errorf("rateLimit of a row stored as 10mb/s: %v, want 80Mbps (10 MB/s, as the engine read it)", got)
	}
}
