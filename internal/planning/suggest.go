package planning

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/ferry-migrate/ferry"
	"github.com/ferry-migrate/ferry/ent"
	"github.com/ferry-migrate/ferry/ent/application"
	"github.com/ferry-migrate/ferry/ent/applicationsuggestion"
	"github.com/ferry-migrate/ferry/ent/host"
	"github.com/ferry-migrate/ferry/internal/viewer"
	"github.com/ferry-migrate/ferry/planner"
)

// Suggest infers applications from the tenant's traffic and replaces its
// open suggestions with them, in one transaction (accepted ones stay as
// the record of what was accepted). ctx carries the tenant's viewer.
func Suggest(ctx context.Context, c *ent.Client, tenantID int) (*planner.Inference, error) {
	est, err := LoadEstate(ctx, c, true)
	if err != nil {
		return nil, err
	}
	inf, err := planner.Infer(est, planner.Rules{})
	if err != nil {
		return nil, nameProblems(err, est)
	}
	return inf, withTx(ctx, c, func(tx *ent.Client) error { return writeSuggestions(ctx, tx, tenantID, est, inf.Suggestions) })
}

// writeSuggestions replaces the open suggestions of the tenant. Rows are
// written as the system with the tenant set explicitly, like plan rows:
// every host id came from the tenant-scoped load.
func writeSuggestions(ctx context.Context, c *ent.Client, tenantID int, est *planner.Estate, ss []planner.Suggestion) error {
	if _, err := c.ApplicationSuggestion.Delete().Where(applicationsuggestion.StatusEQ(applicationsuggestion.StatusOpen)).Exec(ctx); err != nil {
		return fmt.Errorf("clear suggestions: %w", err)
	}
	names := make(map[string]string, len(est.Hosts))
	for i := range est.Hosts {
		names[est.Hosts[i].ID] = est.Hosts[i].Label()
	}
	sys := viewer.SystemContext(ctx)
	var b []*ent.ApplicationSuggestionCreate
	flush := func() error {
		if len(b) == 0 {
			return nil
		}
		err := c.ApplicationSuggestion.CreateBulk(b...).Exec(sys)
		b = b[:0]
		return err
	}
	for _, s := range ss {
		b = append(b, suggestionRow(c.ApplicationSuggestion.Create().SetTenantID(tenantID), s, names))
		if len(b) == batch/4 {
			if err := flush(); err != nil {
				return fmt.Errorf("write suggestions: %w", err)
			}
		}
	}
	if err := flush(); err != nil {
		return fmt.Errorf("write suggestions: %w", err)
	}
	return nil
}

func suggestionRow(cr *ent.ApplicationSuggestionCreate, s planner.Suggestion, names map[string]string) *ent.ApplicationSuggestionCreate {
	return cr.SetName(truncate(s.Name, 200)).SetEnvironment(s.Environment).SetExtends(s.Application).
		SetMembers(members(s.Hosts, names)).SetHostCount(len(s.Hosts)).
		SetInternalWeight(s.InternalWeight).SetExternalWeight(s.ExternalWeight).SetSharedWeight(s.SharedWeight).
		SetCohesion(s.Cohesion).SetPorts(ports(s.Ports)).SetNeighbours(s.Neighbours)
}

func members(ids []string, names map[string]string) []map[string]any {
	out := make([]map[string]any, 0, len(ids))
	for _, id := range ids {
		n, _ := strconv.Atoi(id)
		out = append(out, map[string]any{"id": n, "name": names[id]})
	}
	return out
}

func ports(ps []planner.PortWeight) []map[string]any {
	out := make([]map[string]any, 0, len(ps))
	for _, p := range ps {
		out = append(out, map[string]any{"port": p.Port, "weight": p.Weight})
	}
	return out
}

// memberIDs reads the host ids of a stored suggestion.
func memberIDs(s *ent.ApplicationSuggestion) []int {
	out := make([]int, 0, len(s.Members))
	for _, m := range s.Members {
		switch v := m["id"].(type) {
		case float64:
			out = append(out, int(v))
		case int:
			out = append(out, v)
		}
	}
	return out
}

func openSuggestion(ctx context.Context, c *ent.Client, id int) (*ent.ApplicationSuggestion, error) {
	s, err := c.ApplicationSuggestion.Get(ctx, id)
	if err != nil {
		return nil, err
	}
	if s.Status != applicationsuggestion.StatusOpen {
		return nil, ferry.Errorf(ferry.ECONFLICT, "suggestion %q was already accepted", s.Name)
	}
	return s, nil
}

// Accept turns a suggestion into an Application: its hosts join the
// labelled application it extends, or a new one called name (default the
// suggestion's name). Hosts labelled since the suggestion was made keep
// their label. c should be a transaction.
func Accept(ctx context.Context, c *ent.Client, id int, name string) (*ent.Application, error) {
	s, err := openSuggestion(ctx, c, id)
	if err != nil {
		return nil, err
	}
	name = strings.TrimSpace(name)
	var app *ent.Application
	switch {
	case s.Extends != "" && name == "":
		app, err = c.Application.Query().Where(application.Name(s.Extends)).Only(ctx)
		if ent.IsNotFound(err) {
			app, err = c.Application.Create().SetName(s.Extends).SetSuggested(true).Save(ctx)
		}
	default:
		if name == "" {
			name = s.Name
		}
		app, err = c.Application.Query().Where(application.Name(name)).Only(ctx)
		if ent.IsNotFound(err) {
			app, err = c.Application.Create().SetName(name).SetSuggested(true).
				SetDescription(fmt.Sprintf("accepted from a traffic suggestion: %d hosts, cohesion %.0f %%", s.HostCount, s.Cohesion*100)).Save(ctx)
		}
	}
	if err != nil {
		return nil, err
	}
	if _, err := c.Host.Update().Where(host.IDIn(memberIDs(s)...), host.ApplicationIDIsNil()).SetApplicationID(app.ID).Save(ctx); err != nil {
		return nil, fmt.Errorf("label hosts: %w", err)
	}
	if err := c.ApplicationSuggestion.UpdateOneID(id).SetStatus(applicationsuggestion.StatusAccepted).SetApplicationID(app.ID).SetName(app.Name).Exec(ctx); err != nil {
		return nil, err
	}
	return app, nil
}

// Rename renames an open suggestion.
func Rename(ctx context.Context, c *ent.Client, id int, name string) (*ent.ApplicationSuggestion, error) {
	if _, err := openSuggestion(ctx, c, id); err != nil {
		return nil, err
	}
	name = strings.TrimSpace(name)
	if name == "" {
		return nil, ferry.Errorf(ferry.EINVALID, "name: must not be empty")
	}
	return c.ApplicationSuggestion.UpdateOneID(id).SetName(name).Save(ctx)
}

// Split moves the listed hosts of an open suggestion into a new one and
// recomputes the evidence of both from the tenant's traffic. c should be a
// transaction.
func Split(ctx context.Context, c *ent.Client, tenantID, id int, hostIDs []int, name string) ([]*ent.ApplicationSuggestion, error) {
	s, err := openSuggestion(ctx, c, id)
	if err != nil {
		return nil, err
	}
	all := memberIDs(s)
	inS := map[int]bool{}
	for _, h := range all {
		inS[h] = true
	}
	out := map[int]bool{}
	var problems []string
	for i, h := range hostIDs {
		if !inS[h] {
			problems = append(problems, fmt.Sprintf("hostIds[%d]: host %d is not a member of suggestion %q", i, h, s.Name))
		}
		out[h] = true
	}
	if len(problems) > 0 {
		return nil, ferry.Errorf(ferry.EINVALID, "%s", strings.Join(problems, "; "))
	}
	var keep, move []string
	for _, h := range all {
		if out[h] {
			move = append(move, HostID(h))
		} else {
			keep = append(keep, HostID(h))
		}
	}
	if len(move) == 0 || len(keep) == 0 {
		return nil, ferry.Errorf(ferry.EINVALID, "hostIds: a split needs some of the %d hosts, not none or all", len(all))
	}
	name = strings.TrimSpace(name)
	if name == "" {
		name = s.Name + "-split"
	}
	est, err := LoadEstate(ctx, c, true)
	if err != nil {
		return nil, err
	}
	names := make(map[string]string, len(est.Hosts))
	for i := range est.Hosts {
		names[est.Hosts[i].ID] = est.Hosts[i].Label()
	}
	sort.Strings(keep)
	sort.Strings(move)
	ek, err := planner.Evidence(est, planner.Rules{}, keep)
	if err != nil {
		return nil, err
	}
	em, err := planner.Evidence(est, planner.Rules{}, move)
	if err != nil {
		return nil, err
	}
	ek.Name, ek.Environment, ek.Application = s.Name, s.Environment, s.Extends
	em.Name, em.Environment = name, s.Environment
	if err := c.ApplicationSuggestion.DeleteOneID(id).Exec(ctx); err != nil {
		return nil, err
	}
	sys := viewer.SystemContext(ctx)
	a, err := suggestionRow(c.ApplicationSuggestion.Create().SetTenantID(tenantID), ek, names).Save(sys)
	if err != nil {
		return nil, err
	}
	b, err := suggestionRow(c.ApplicationSuggestion.Create().SetTenantID(tenantID), em, names).Save(sys)
	if err != nil {
		return nil, err
	}
	return []*ent.ApplicationSuggestion{a, b}, nil
}
