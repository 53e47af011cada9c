package topology

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"entgo.io/ent/dialect/sql"

	"github.com/ferry-migrate/ferry"
	"github.com/ferry-migrate/ferry/ent"
	"github.com/ferry-migrate/ferry/ent/applicationsuggestion"
	"github.com/ferry-migrate/ferry/ent/connection"
	"github.com/ferry-migrate/ferry/ent/host"
	"github.com/ferry-migrate/ferry/ent/plan"
	"github.com/ferry-migrate/ferry/ent/predicate"
	"github.com/ferry-migrate/ferry/ent/wave"
	"github.com/ferry-migrate/ferry/ent/wavemember"
	"github.com/ferry-migrate/ferry/planner"
)

// page is how many host or connection rows one query reads: 200,000
// connections take 40 queries.
const page = 5000

// Load reads what Build needs from the viewer's tenant (ctx carries it).
// planID 0 takes the newest plan that is ready or infeasible (none: no
// wave colouring and no cycles). It returns the plan used (nil for none);
// a planID the tenant cannot see is ENOTFOUND.
func Load(ctx context.Context, c *ent.Client, planID int) (*Input, *ent.Plan, error) {
	in := &Input{Applications: map[int]string{}, Wave: map[int]int{},
		NoisePorts: map[int]bool{}, NoiseProcesses: map[string]bool{}}
	for _, p := range planner.DefaultNoisePorts {
		in.NoisePorts[p] = true
	}
	for _, p := range planner.DefaultNoiseProcesses {
		in.NoiseProcesses[strings.ToLower(p)] = true
	}
	var p *ent.Plan
	var err error
	if planID != 0 {
		p, err = c.Plan.Get(ctx, planID)
		if ent.IsNotFound(err) {
			return nil, nil, ferry.Errorf(ferry.ENOTFOUND, "plan %d not found", planID)
		}
	} else {
		p, err = c.Plan.Query().Where(plan.StatusIn(plan.StatusReady, plan.StatusInfeasible)).
			Order(ent.Desc(plan.FieldCreatedAt), ent.Desc(plan.FieldID)).First(ctx)
		if ent.IsNotFound(err) {
			p, err = nil, nil
		}
	}
	if err != nil {
		return nil, nil, fmt.Errorf("load plan: %w", err)
	}

	apps, err := c.Application.Query().Select("id", "name").All(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("load applications: %w", err)
	}
	for _, a := range apps {
		in.Applications[a.ID] = a.Name
	}
	type hostRow struct {
		ID          int    `json:"id"`
		Name        string `json:"name"`
		Environment string `json:"environment"`
		AppID       *int   `json:"application_id"`
	}
	for last := 0; ; {
		var rows []hostRow
		err := c.Host.Query().Where(host.IDGT(last)).Order(ent.Asc(host.FieldID)).Limit(page).
			Select(host.FieldID, host.FieldName, host.FieldEnvironment, host.FieldApplicationID).Scan(ctx, &rows)
		if err != nil {
			return nil, nil, fmt.Errorf("load hosts: %w", err)
		}
		for _, r := range rows {
			h := Host{ID: r.ID, Name: r.Name, Environment: r.Environment}
			if r.AppID != nil {
				h.AppID = *r.AppID
			}
			in.Hosts = append(in.Hosts, h)
		}
		if len(rows) < page {
			break
		}
		last = rows[len(rows)-1].ID
	}
	sgs, err := c.ApplicationSuggestion.Query().Where(applicationsuggestion.StatusEQ(applicationsuggestion.StatusOpen)).
		Order(ent.Asc(applicationsuggestion.FieldID)).All(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("load suggestions: %w", err)
	}
	for _, s := range sgs {
		sg := Suggestion{ID: s.ID, Name: s.Name, Extends: s.Extends}
		for _, m := range s.Members {
			if id := intOf(m["id"]); id != 0 {
				sg.Members = append(sg.Members, id)
			}
		}
		in.Suggestions = append(in.Suggestions, sg)
	}
	if p != nil {
		ws, err := c.Wave.Query().Where(wave.HasPlanWith(plan.ID(p.ID))).Select(wave.FieldID, wave.FieldOrdinal).All(ctx)
		if err != nil {
			return nil, nil, fmt.Errorf("load waves: %w", err)
		}
		ordinal := make(map[int]int, len(ws))
		for _, w := range ws {
			ordinal[w.ID] = w.Ordinal
		}
		in.Waves = len(ws)
		var ms []struct {
			Host int `json:"host_wave_memberships"`
			Wave int `json:"wave_members"`
		}
		err = c.WaveMember.Query().Where(wavemember.HasWaveWith(wave.HasPlanWith(plan.ID(p.ID)))).
			Modify(func(s *sql.Selector) { s.Select(s.C(wavemember.HostColumn), s.C(wavemember.WaveColumn)) }).Scan(ctx, &ms)
		if err != nil {
			return nil, nil, fmt.Errorf("load wave members: %w", err)
		}
		for _, m := range ms {
			in.Wave[m.Host] = ordinal[m.Wave]
		}
		for _, s := range p.SharedServices {
			if id := intOf(s["host_id"]); id != 0 {
				name, _ := s["name"].(string)
				in.Shared = append(in.Shared, Shared{HostID: id, Name: name})
			}
		}
		for _, cy := range p.Cycles {
			v := Cycle{BetweenGroups: cy["between_groups"] == true, Size: intOf(cy["size"])}
			v.Chain, _ = cy["chain"].(string)
			hs, _ := cy["hosts"].([]any)
			for _, h := range hs {
				v.Hosts = append(v.Hosts, intOf(h))
			}
			in.Cycles = append(in.Cycles, v)
		}
	}
	type connRow struct {
		ID      int    `json:"id"`
		Src     int    `json:"src_host_id"`
		Dst     int    `json:"dst_host_id"`
		Port    int    `json:"port"`
		Process string `json:"process"`
		Count   int64  `json:"count"`
		Bytes   int64  `json:"bytes"`
	}
	// Noise is left out in SQL: on generated estates four connections in
	// five are DNS, NTP, monitoring or SSH, and reading them would be most
	// of the request's time. They are counted instead.
	ports := make([]int, 0, len(in.NoisePorts))
	for p := range in.NoisePorts {
		ports = append(ports, p)
	}
	procs := make([]any, 0, len(in.NoiseProcesses))
	for p := range in.NoiseProcesses {
		procs = append(procs, p)
	}
	noiseProcess := predicate.Connection(func(s *sql.Selector) {
		s.Where(sql.In(sql.Lower(s.C(connection.FieldProcess)), procs...))
	})
	noise := connection.Or(connection.PortIn(ports...), noiseProcess)
	// The noise is every row between hosts minus those read (a count on
	// the destination index; counting the noise itself re-evaluates the
	// filter on every row).
	all, err := c.Connection.Query().Where(connection.DstHostIDNotNil()).Count(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("count connections: %w", err)
	}
	for last := 0; ; {
		var rows []connRow
		err := c.Connection.Query().Where(connection.IDGT(last), connection.DstHostIDNotNil(), connection.Not(noise)).Order(ent.Asc(connection.FieldID)).Limit(page).
			Select(connection.FieldID, connection.FieldSrcHostID, connection.FieldDstHostID, connection.FieldPort,
				connection.FieldProcess, connection.FieldCount, connection.FieldBytes).Scan(ctx, &rows)
		if err != nil {
			return nil, nil, fmt.Errorf("load connections: %w", err)
		}
		for _, r := range rows {
			in.Conns = append(in.Conns, Conn{Src: r.Src, Dst: r.Dst, Port: r.Port, Process: r.Process, Count: r.Count, Bytes: r.Bytes})
		}
		if len(rows) < page {
			break
		}
		last = rows[len(rows)-1].ID
	}
	in.NoiseRows = max(all-len(in.Conns), 0)
	return in, p, nil
}

// intOf reads an id stored in JSON: a number, or a decimal string (the
// planner's host ids).
func intOf(v any) int {
	switch x := v.(type) {
	case float64:
		return int(x)
	case int:
		return x
	case string:
		n, _ := strconv.Atoi(x)
		return n
	}
	return 0
}
