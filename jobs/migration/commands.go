package migration

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/ferry-migrate/ferry"
	"github.com/ferry-migrate/ferry/engine"
	"github.com/ferry-migrate/ferry/ent"
	"github.com/ferry-migrate/ferry/ent/agent"
	"github.com/ferry-migrate/ferry/ent/launch"
	"github.com/ferry-migrate/ferry/ent/migration"
)

// SyncCommands is the agent-side half of a sync pass: for the agent's
// host, every replicating migration whose requested pass has not been
// recorded yields a "sync" command naming, per disk, its gateway (the
// endpoint stored when the migration was prepared) with a fresh credential
// from that gateway. A command is sent again when the gateways have
// recorded nothing of the pass for Redeliver (the database says when they
// last did); agents ignore duplicates of a pass they are running. Any
// process with the database and the gateways' keys can answer.
func (l *Lifecycle) SyncCommands(ctx context.Context, agentID int) ([]engine.SyncCommand, error) {
	ctx, h, err := l.agentHost(ctx, agentID)
	if h == nil || err != nil {
		return nil, err // nil, nil: not linked to a host yet
	}
	var states []ferry.MigrationState
	for _, s := range ferry.MigrationStates() {
		if s.Replicating() {
			states = append(states, s)
		}
	}
	migs, err := l.Client.Migration.Query().Where(migration.HostID(h.ID), migration.StateIn(states...), migration.SyncRequestedAtNotNil()).All(ctx)
	if err != nil {
		return nil, err
	}
	now := l.Now().UTC()
	var out []engine.SyncCommand
	for _, mig := range migs {
		if passRecorded(mig) || !l.due(mig, now) {
			continue
		}
		c := engine.SyncCommand{MigrationID: mig.ID, Pass: mig.SyncPass, Final: finalPass(mig)}
		if r, ok := mig.Settings["rate"].(string); ok {
			c.Rate = r
		}
		if c.Final {
			c.Quiesce = quiescePlan(mig.Settings)
		}
		for _, d := range mig.Disks {
			if diskPassDone(d, mig.SyncRequestedAt) {
				continue // this disk's part of the pass is done
			}
			gw, err := l.gateway(d)
			if err != nil {
				return nil, err
			}
			// Named for the agent (revocation reaches the data path) and scoped
			// to the tenant (the gateway shares blocks only among its disks).
			cred, err := gw.IssueCredential(d.TargetDiskID, engine.AgentSubject(agentID), strconv.Itoa(mig.TenantID), l.CredentialTTL)
			if err != nil {
				return nil, fmt.Errorf("credential for %s: %w", d.TargetDiskID, err)
			}
			url, fp := gw.Endpoint()
			c.Disks = append(c.Disks, engine.SyncCommandDisk{Name: d.Name, Device: d.Device, SizeBytes: d.SizeBytes, DiskID: d.TargetDiskID,
				Credential: cred, Gateway: url, Fingerprint: fp})
		}
		if len(c.Disks) == 0 {
			continue
		}
		if c.Before, err = l.scripts(ctx, mig, c.Final); err != nil {
			return nil, err
		}
		u := l.Client.Migration.UpdateOneID(mig.ID).SetCommandSentAt(now)
		if mig.LastError == errNoAgent {
			u.SetLastError("")
		}
		if err := u.Exec(ctx); err != nil {
			return nil, err
		}
		l.Log.InfoContext(ctx, "sync command sent", "migration", mig.ID, "agent", agentID, "pass", mig.SyncPass, "disks", len(c.Disks), "final", c.Final)
		out = append(out, c)
	}
	return out, nil
}

// due reports whether the pass's command should go (again) now: never sent
// for this pass, or nothing heard of it at the gateways for Redeliver.
func (l *Lifecycle) due(mig *ent.Migration, now time.Time) bool {
	if mig.CommandSentAt == nil || mig.CommandSentAt.Before(*mig.SyncRequestedAt) {
		return true
	}
	last := *mig.CommandSentAt
	for _, d := range mig.Disks {
		if d.SeenAt != nil && d.SeenAt.After(last) {
			last = *d.SeenAt
		}
	}
	return now.Sub(last) >= l.Redeliver
}

// quiescePlan reads the migration's settings.quiesce ({"mode": "services",
// "services": ["nginx"]}, {"mode": "freeze", "mounts": ["/srv"]} or
// {"mode": "shutdown"}): how the user wants the source quiesced before the
// final pass. None set: the source is not quiesced (it keeps running and
// changing while the cutover launches; the downtime is still measured from
// the final pass).
func quiescePlan(settings map[string]any) *engine.QuiescePlan {
	q, ok := settings["quiesce"].(map[string]any)
	if !ok {
		return nil
	}
	mode, _ := q["mode"].(string)
	if mode == "" || mode == "none" {
		return nil
	}
	p := &engine.QuiescePlan{Mode: mode, Services: stringList(q["services"]), Mounts: stringList(q["mounts"])}
	if w, ok := q["watchdog_seconds"].(float64); ok {
		p.WatchdogSeconds = int(w)
	}
	return p
}

func stringList(v any) []string {
	list, _ := v.([]any)
	var out []string
	for _, x := range list {
		if s, ok := x.(string); ok {
			out = append(out, s)
		}
	}
	return out
}

// ResumeCommands are the agent's "resume" commands: for every cutover
// launch of its host that failed or was discarded (a rollback) after the
// source was quiesced for it, once. The agent restarts the services it
// stopped and thaws what it froze; a shut-down source needs its owner.
func (l *Lifecycle) ResumeCommands(ctx context.Context, agentID int) ([]engine.ResumeCommand, error) {
	ctx, h, err := l.agentHost(ctx, agentID)
	if h == nil || err != nil {
		return nil, err // nil, nil: not linked to a host yet
	}
	ls, err := l.Client.Launch.Query().Where(launch.KindEQ(launch.KindCutover), launch.StatusIn(launch.StatusFailed, launch.StatusTerminated),
		launch.QuiescedAtNotNil(), launch.SourceResumedAtIsNil(), launch.HasMigrationWith(migration.HostID(h.ID))).WithMigration().All(ctx)
	if err != nil {
		return nil, err
	}
	now := l.Now().UTC()
	var out []engine.ResumeCommand
	for _, ln := range ls {
		if err := l.Client.Launch.UpdateOneID(ln.ID).SetSourceResumedAt(now).Exec(ctx); err != nil {
			return nil, err
		}
		l.Log.InfoContext(ctx, "resume command sent: the source comes back", "migration", ln.Edges.Migration.ID, "launch", ln.ID, "agent", agentID)
		out = append(out, engine.ResumeCommand{MigrationID: ln.Edges.Migration.ID})
	}
	return out, nil
}

// agentHost is the host an agent reports for, with ctx scoped to the
// agent's tenant; nil when the agent is not linked to a host yet.
func (l *Lifecycle) agentHost(ctx context.Context, agentID int) (context.Context, *ent.Host, error) {
	l.init()
	a, err := l.Client.Agent.Query().Where(agent.ID(agentID)).Only(systemContext(ctx))
	if err != nil {
		return ctx, nil, fmt.Errorf("agent %d: %w", agentID, err)
	}
	ctx = tenantContext(ctx, a.TenantID)
	h, err := a.QueryHost().Only(ctx)
	if ent.IsNotFound(err) {
		return ctx, nil, nil
	}
	if err != nil {
		return ctx, nil, err
	}
	return ctx, h, nil
}
