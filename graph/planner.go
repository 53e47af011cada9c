package graph

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/ferry-migrate/ferry"
	"github.com/ferry-migrate/ferry/ent"
	"github.com/ferry-migrate/ferry/ent/application"
	"github.com/ferry-migrate/ferry/ent/host"
	"github.com/ferry-migrate/ferry/graph/model"
	"github.com/ferry-migrate/ferry/internal/planning"
	"github.com/ferry-migrate/ferry/internal/viewer"
	"github.com/ferry-migrate/ferry/jobs"
	"github.com/ferry-migrate/ferry/planner"
)

// planDoc turns the GraphQL input into the plan.yaml document stored on the
// plan (the same keys and units as `ferry plan --constraints`), so the
// server and the CLI parse and validate constraints with one piece of code.
// Rates are stored in ferry.Rate.String's spelling, which every reader of
// stored plans reads alike.
// A missing start becomes tomorrow (UTC), fixed at creation so that a re-run
// of the job plans the same dates.
func planDoc(in model.GeneratePlanInput, now time.Time) map[string]any {
	doc := map[string]any{}
	c := in.Constraints
	if c == nil {
		c = &model.PlanConstraintsInput{}
	}
	set := func(k string, v any) { doc[k] = v }
	if c.Start != nil && strings.TrimSpace(*c.Start) != "" {
		set("start", *c.Start)
	} else {
		set("start", now.UTC().AddDate(0, 0, 1).Format("2006-01-02"))
	}
	if c.Timezone != nil {
		set("timezone", *c.Timezone)
	}
	if c.MaxHostsPerWave != nil {
		set("max_hosts_per_wave", *c.MaxHostsPerWave)
	}
	if c.MaxBytesPerWave != nil {
		set("max_bytes_per_wave", *c.MaxBytesPerWave)
	}
	set("bandwidth", c.Bandwidth)
	if c.CompressionRatio != nil {
		set("compression_ratio", *c.CompressionRatio)
	}
	if len(c.TransferWindows) > 0 {
		var ws []any
		for _, w := range c.TransferWindows {
			m := map[string]any{"when": w.When}
			if w.Rate != nil {
				m["rate"] = *w.Rate
			}
			ws = append(ws, m)
		}
		set("transfer_windows", ws)
	}
	if len(c.CutoverWindows) > 0 {
		set("cutover_windows", c.CutoverWindows)
	}
	if c.MaxDowntime != nil {
		set("max_downtime", *c.MaxDowntime)
	}
	if c.CutoverOverhead != nil {
		set("cutover_overhead", *c.CutoverOverhead)
	}
	if c.FinalDeltaRatio != nil {
		set("final_delta_ratio", *c.FinalDeltaRatio)
	}
	if c.ParallelMigrations != nil {
		set("parallel_migrations", *c.ParallelMigrations)
	}
	if c.ImprovementPasses != nil {
		set("improvement_passes", *c.ImprovementPasses)
	}
	if c.CutoverHostsPerWindow != nil {
		set("cutover_hosts_per_window", *c.CutoverHostsPerWindow)
	}
	if wr := c.WaveRules; wr != nil {
		m := map[string]any{}
		for k, v := range map[string]*bool{"strong_dependencies_together": wr.StrongDependenciesTogether, "applications_whole": wr.ApplicationsWhole,
			"dependencies_first": wr.DependenciesFirst, "dev_test_first": wr.DevTestFirst, "separate_production": wr.SeparateProduction,
			"critical_not_early": wr.CriticalNotEarly} {
			if v != nil {
				m[k] = *v
			}
		}
		for k, v := range map[string]*int{"early_waves": wr.EarlyWaves, "complex_hosts": wr.ComplexHosts} {
			if v != nil {
				m[k] = *v
			}
		}
		if wr.WorkloadMin != nil || wr.WorkloadMax != nil {
			rng := map[string]any{}
			if wr.WorkloadMin != nil {
				rng["min"] = *wr.WorkloadMin
			}
			if wr.WorkloadMax != nil {
				rng["max"] = *wr.WorkloadMax
			}
			m["workload_range"] = rng
		}
		if len(m) > 0 {
			set("wave_rules", m)
		}
	}
	pilot := map[string]any{}
	if c.PilotHosts != nil {
		pilot["hosts"] = *c.PilotHosts
	}
	if c.PilotMaxDependants != nil {
		pilot["max_dependants"] = *c.PilotMaxDependants
	}
	if c.PilotEnvironments != nil {
		pilot["environments"] = c.PilotEnvironments
	}
	if c.PilotCriticality != nil {
		pilot["criticality"] = c.PilotCriticality
	}
	if len(pilot) > 0 {
		set("pilot", pilot)
	}
	if r := in.Rules; r != nil {
		rules := map[string]any{}
		if r.NoisePorts != nil {
			rules["noise_ports"] = r.NoisePorts
		}
		if r.ExtraNoisePorts != nil {
			rules["extra_noise_ports"] = r.ExtraNoisePorts
		}
		if r.NoiseProcesses != nil {
			rules["noise_processes"] = r.NoiseProcesses
		}
		if r.ExtraNoiseProcesses != nil {
			rules["extra_noise_processes"] = r.ExtraNoiseProcesses
		}
		if r.IgnoreApplications != nil {
			rules["ignore_applications"] = *r.IgnoreApplications
		}
		if len(r.KeepTogether) > 0 {
			var kt []any
			for _, k := range r.KeepTogether {
				kt = append(kt, map[string]any{"name": k.Name, "hosts": k.Hosts})
			}
			rules["keep_together"] = kt
		}
		if len(r.KeepApart) > 0 {
			var ka []any
			for _, k := range r.KeepApart {
				ka = append(ka, []string{k.A, k.B})
			}
			rules["keep_apart"] = ka
		}
		if len(r.Before) > 0 {
			var bs []any
			for _, b := range r.Before {
				bs = append(bs, map[string]any{"first": b.First, "then": b.Then})
			}
			rules["before"] = bs
		}
		if len(r.Pins) > 0 {
			pins := map[string]any{}
			for _, p := range r.Pins {
				pins[p.Host] = p.Wave
			}
			rules["pins"] = pins
		}
		if r.InferApplications != nil {
			rules["infer_applications"] = *r.InferApplications
		}
		if r.Resolution != nil {
			rules["resolution"] = *r.Resolution
		}
		if ss := r.SharedServices; ss != nil {
			m := map[string]any{}
			if ss.Detect != nil {
				m["detect"] = *ss.Detect
			}
			if ss.CallerShare != nil {
				m["caller_share"] = *ss.CallerShare
			}
			if ss.PortCallers != nil {
				m["port_callers"] = *ss.PortCallers
			}
			if ss.MinCallers != nil {
				m["min_callers"] = *ss.MinCallers
			}
			if ss.Policy != nil {
				m["policy"] = *ss.Policy
			}
			if ss.Hosts != nil {
				m["hosts"] = ss.Hosts
			}
			if ss.Not != nil {
				m["not"] = ss.Not
			}
			if len(m) > 0 {
				rules["shared_services"] = m
			}
		}
		if len(rules) > 0 {
			set("rules", rules)
		}
	}
	return planner.CanonicalRates(doc)
}

// checkRuleRefs makes sure every host reference in the rules names a host
// (by id or name) or an application of the tenant, before a plan is queued:
// a typo must fail the request, naming the rule, not a job minutes later.
func checkRuleRefs(ctx context.Context, c *ent.Client, r *model.PlanRulesInput) error {
	if r == nil {
		return nil
	}
	var problems []string
	check := func(field, ref string) error {
		var ok bool
		var err error
		if app, isApp := strings.CutPrefix(ref, "application:"); isApp {
			ok, err = c.Application.Query().Where(application.Name(app)).Exist(ctx)
		} else {
			q := c.Host.Query()
			if id, perr := strconv.Atoi(ref); perr == nil {
				q = q.Where(host.Or(host.ID(id), host.Name(ref)))
			} else {
				q = q.Where(host.Name(ref))
			}
			ok, err = q.Exist(ctx)
		}
		if err != nil {
			return err
		}
		if !ok {
			problems = append(problems, fmt.Sprintf("%s: %q is not a host id, host name or application:NAME of this tenant", field, ref))
		}
		return nil
	}
	for i, k := range r.KeepTogether {
		for j, h := range k.Hosts {
			if err := check(fmt.Sprintf("rules.keepTogether[%d].hosts[%d]", i, j), h); err != nil {
				return err
			}
		}
	}
	for i, k := range r.KeepApart {
		if err := check(fmt.Sprintf("rules.keepApart[%d].a", i), k.A); err != nil {
			return err
		}
		if err := check(fmt.Sprintf("rules.keepApart[%d].b", i), k.B); err != nil {
			return err
		}
	}
	for i, b := range r.Before {
		if err := check(fmt.Sprintf("rules.before[%d].first", i), b.First); err != nil {
			return err
		}
		if err := check(fmt.Sprintf("rules.before[%d].then", i), b.Then); err != nil {
			return err
		}
	}
	for i, p := range r.Pins {
		if err := check(fmt.Sprintf("rules.pins[%d].host", i), p.Host); err != nil {
			return err
		}
	}
	if ss := r.SharedServices; ss != nil {
		for i, h := range ss.Hosts {
			if err := check(fmt.Sprintf("rules.sharedServices.hosts[%d]", i), h); err != nil {
				return err
			}
		}
		for i, h := range ss.Not {
			if err := check(fmt.Sprintf("rules.sharedServices.not[%d]", i), h); err != nil {
				return err
			}
		}
	}
	if len(problems) > 0 {
		return ferry.Errorf(ferry.EINVALID, "%s", strings.Join(problems, "; "))
	}
	return nil
}

// enqueuePlan queues plan generation after the request commits.
func (r *Resolver) enqueuePlan(ctx context.Context, tenantID, planID int) {
	r.afterCommit(ctx, func(ctx context.Context) error { return jobs.EnqueuePlan(ctx, r.Queue, tenantID, planID) })
}

// asUserError maps planner input problems to EINVALID; other errors pass.
func asUserError(err error) error {
	if fe := planning.InputError(err); fe != nil {
		return fe
	}
	return err
}

// suggestionScope checks the consultant role and, for the platform
// operator, acts inside the suggestion's own tenant: accepting or
// splitting one must read and label that tenant's hosts only.
func (r *mutationResolver) suggestionScope(ctx context.Context, id int) (context.Context, *viewer.Viewer, error) {
	v, err := require(ctx, viewer.RoleConsultant)
	if err != nil {
		return ctx, nil, err
	}
	if v.AllTenants() {
		s, err := ent.FromContext(ctx).ApplicationSuggestion.Get(ctx, id)
		if err != nil {
			return ctx, nil, err
		}
		v = v.Within(s.TenantID)
		ctx = viewer.NewContext(ctx, v)
	}
	return ctx, v, nil
}
