package migration

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/ferry-migrate/ferry"
	"github.com/ferry-migrate/ferry/engine/cloud"
	"github.com/ferry-migrate/ferry/ent"
	"github.com/ferry-migrate/ferry/ent/host"
	"github.com/ferry-migrate/ferry/ent/launch"
)

// The launch phases the test launch and the cutover share: make the
// machine of a recovery point (every disk of the host in one machine, the
// boot disk first), wait for it, and discard a launch's machine. Both are
// resumable: the machine's token is the Launch's id, so a CreateMachine
// after a crash is the same machine, finished where the crash left it.

// launchToken is the idempotency key of a launch's machine.
func launchToken(launchID int) string { return "launch-" + strconv.Itoa(launchID) }

// launchRow loads the step's Launch with its recovery point.
func (r *run) launchRow(ctx context.Context) (*ent.Launch, error) {
	if r.step.LaunchID == nil {
		return nil, fail("%s step %d has no launch", r.step.Kind, r.step.ID)
	}
	l, err := r.l.Client.Launch.Query().Where(launch.ID(*r.step.LaunchID)).WithRecoveryPoint().Only(ctx)
	if ent.IsNotFound(err) {
		return nil, fail("launch %d of %s step %d is gone", *r.step.LaunchID, r.step.Kind, r.step.ID)
	}
	return l, err
}

// unlaunchable reports whether a cloud refused the launch for a reason no
// retry fixes: the point is gone or corrupt, the request or its boot mode
// cannot be served, or (a cutover) another machine is live.
func unlaunchable(err error) bool {
	return errors.Is(err, cloud.ErrNotFound) || errors.Is(err, cloud.ErrCorrupt) || errors.Is(err, cloud.ErrInvalid) ||
		errors.Is(err, cloud.ErrUnsupported) || errors.Is(err, cloud.ErrConflict)
}

// createMachine makes (or finds, after a crash) the launch's machine and
// records it on the Launch, which is then running.
func (r *run) createMachine(ctx context.Context, l *ent.Launch, kind cloud.LaunchKind) (cloud.Machine, error) {
	rp := l.Edges.RecoveryPoint
	if rp == nil {
		return cloud.Machine{}, fail("launch %d has no recovery point", l.ID)
	}
	spec := cloud.MachineSpec{Token: launchToken(l.ID), Kind: kind, MigrationID: strconv.Itoa(r.mig.ID)}
	for _, p := range rp.Points {
		spec.Points = append(spec.Points, p.PointID)
	}
	h, err := r.mig.QueryHost().Select(host.FieldCpus, host.FieldMemoryMib, host.FieldBootMode).Only(ctx)
	if err != nil {
		return cloud.Machine{}, err
	}
	spec.Shape = cloud.Shape{VCPUs: h.Cpus, MemoryMiB: h.MemoryMib}
	if h.BootMode == host.BootModeUefi {
		spec.BootMode = cloud.BootUEFI
	}
	m, err := r.drv.CreateMachine(ctx, spec)
	if err != nil {
		return cloud.Machine{}, fmt.Errorf("create machine from recovery point %d: %w", rp.ID, err)
	}
	err = r.tx(ctx, func(tx *ent.Tx) error {
		return tx.Launch.UpdateOneID(l.ID).SetStatus(launch.StatusRunning).SetInstanceID(m.ID).SetInstances(instancesOf(m, rp)).Exec(ctx)
	})
	return m, err
}

// waitMachine (launch phase "wait") waits for the launch's machine to
// settle and records its checks on the Launch.
func waitMachine(ctx context.Context, r *run) (outcome, error) {
	l, err := r.launchRow(ctx)
	if err != nil {
		return outcome{}, err
	}
	if l.Status != launch.StatusPending && l.Status != launch.StatusRunning {
		return next(""), nil // decided before a crash; the next phase knows
	}
	if l.InstanceID == "" {
		return goTo("create", "no machine recorded yet"), nil
	}
	m, err := r.drv.Wait(ctx, l.InstanceID)
	if errors.Is(err, cloud.ErrConflict) {
		return goTo("create", "machine %s is not created yet", l.InstanceID), nil
	}
	if err != nil {
		return outcome{}, fmt.Errorf("wait for machine %s: %w", l.InstanceID, err)
	}
	err = r.tx(ctx, func(tx *ent.Tx) error {
		return tx.Launch.UpdateOneID(l.ID).SetChecks(checksOf(m, l.Edges.RecoveryPoint)).SetInstances(instancesOf(m, l.Edges.RecoveryPoint)).Exec(ctx)
	})
	if err != nil {
		return outcome{}, err
	}
	return next("machine %s is %s: %d checks, %s", m.ID, m.State, len(m.Checks), verdict(m)), nil
}

func verdict(m cloud.Machine) string {
	if m.Passed() {
		return "all passed"
	}
	return "some failed"
}

// diskNames maps target disk ids to the source disks' names.
func diskNames(rp *ent.RecoveryPoint) map[string]string {
	out := map[string]string{}
	if rp != nil {
		for _, p := range rp.Points {
			out[p.TargetDiskID] = p.DiskName
		}
	}
	return out
}

func instancesOf(m cloud.Machine, rp *ent.RecoveryPoint) []ferry.DiskInstance {
	names := diskNames(rp)
	out := make([]ferry.DiskInstance, 0, len(m.Disks))
	for _, d := range m.Disks {
		out = append(out, ferry.DiskInstance{DiskName: names[d.SourceDiskID], InstanceID: m.ID, DiskID: d.DiskID, State: string(m.State)})
	}
	return out
}

// checksOf is the Launch's checks: each named after its disk (empty for
// the machine as a whole, such as the boot).
func checksOf(m cloud.Machine, rp *ent.RecoveryPoint) []map[string]any {
	names := diskNames(rp)
	out := make([]map[string]any, 0, len(m.Checks))
	for _, c := range m.Checks {
		out = append(out, map[string]any{"disk": names[c.Disk], "name": c.Name, "passed": c.Passed, "skipped": c.Skipped, "message": c.Message})
	}
	return out
}

func checksPassed(checks []map[string]any) bool {
	for _, c := range checks {
		if p, _ := c["passed"].(bool); !p {
			return false
		}
	}
	return len(checks) > 0
}

func failedChecks(checks []map[string]any) string {
	var msgs []string
	for _, c := range checks {
		if p, _ := c["passed"].(bool); !p {
			name := fmt.Sprint(c["name"])
			if d, _ := c["disk"].(string); d != "" {
				name = d + " " + name
			}
			msgs = append(msgs, fmt.Sprintf("%s: %s", name, c["message"]))
		}
	}
	return strings.Join(msgs, "; ")
}

// discardLaunch terminates (test) or rolls back (cutover) a launch's
// machine — the one recorded, or one made under its token that a crash kept
// from being recorded — and marks the launch terminated.
func (l *Lifecycle) discardLaunch(ctx context.Context, drv cloud.Driver, mig *ent.Migration, ln *ent.Launch) error {
	ids := []string{}
	for _, in := range ln.Instances {
		if in.InstanceID != "" && !slices.Contains(ids, in.InstanceID) {
			ids = append(ids, in.InstanceID)
		}
	}
	if len(ids) == 0 {
		ms, err := drv.ListMachines(ctx, strconv.Itoa(mig.ID))
		if err != nil {
			return err
		}
		for _, m := range ms {
			if m.Token == launchToken(ln.ID) {
				ids = append(ids, m.ID)
			}
		}
	}
	for _, id := range ids {
		var err error
		if ln.Kind == launch.KindCutover {
			err = drv.Rollback(ctx, id)
		} else {
			err = drv.Terminate(ctx, id)
		}
		if err != nil && !errors.Is(err, cloud.ErrNotFound) {
			return fmt.Errorf("discard machine %s of launch %d: %w", id, ln.ID, err)
		}
	}
	if ln.Status == launch.StatusTerminated {
		return nil
	}
	u := l.Client.Launch.UpdateOneID(ln.ID).SetStatus(launch.StatusTerminated)
	if ln.FinishedAt == nil {
		u.SetFinishedAt(l.Now().UTC())
	}
	return u.Exec(ctx)
}
