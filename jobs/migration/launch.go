package migration

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/ferry-migrate/ferry"
	"github.com/ferry-migrate/ferry/engine/cloud"
	"github.com/ferry-migrate/ferry/ent"
	"github.com/ferry-migrate/ferry/ent/assessment"
	"github.com/ferry-migrate/ferry/ent/connection"
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
	if spec.Shape, err = r.launchShape(ctx, h); err != nil {
		return cloud.Machine{}, err
	}
	if h.BootMode == host.BootModeUefi {
		spec.BootMode = cloud.BootUEFI
	}
	if spec.Ports, err = listeningPorts(ctx, r.l.Client, h.ID); err != nil {
		return cloud.Machine{}, err
	}
	m, err := r.drv.CreateMachine(ctx, spec)
	if err != nil {
		return cloud.Machine{}, fmt.Errorf("create machine from recovery point %d: %w", rp.ID, err)
	}
	err = r.tx(ctx, func(tx *ent.Tx) error {
		return tx.Launch.UpdateOneID(l.ID).SetStatus(launch.StatusRunning).SetInstanceID(m.ID).SetInstances(instancesOf(m, rp)).
			SetInstanceType(truncate(m.Shape.InstanceType, 64)).SetSizing(truncate(sizing(m.Shape), 500)).Exec(ctx)
	})
	return m, err
}

// launchShape is the size a launch asks for. The host's assessment for
// this cloud gives its recommended instance type (and need_vcpus,
// need_memory_gib); another cloud's assessment gives only the vCPUs and
// memory (its type means nothing here: an ECS launch must never ask for
// "m5.large"), and so does the inventory when the host has no assessment.
// Basis says which, for the launch's record.
func (r *run) launchShape(ctx context.Context, h *ent.Host) (cloud.Shape, error) {
	as, err := r.l.Client.Assessment.Query().Where(assessment.HostID(h.ID), assessment.NeedVcpusGT(0)).
		Order(ent.Desc(assessment.FieldUpdatedAt)).Limit(10).All(ctx)
	if err != nil {
		return cloud.Shape{}, err
	}
	var pick *ent.Assessment
	for _, a := range as {
		if pick == nil || (a.Target == r.drv.Name() && pick.Target != r.drv.Name()) {
			pick = a
		}
	}
	if pick == nil {
		if h.Cpus <= 0 || h.MemoryMib <= 0 {
			return cloud.Shape{Basis: "nothing: the host has no assessment and the inventory no CPU or memory figure"}, nil
		}
		return cloud.Shape{VCPUs: h.Cpus, MemoryMiB: h.MemoryMib,
			Basis: fmt.Sprintf("the inventory: %d vCPU, %d MiB (the host has no assessment)", h.Cpus, h.MemoryMib)}, nil
	}
	s := cloud.Shape{VCPUs: pick.NeedVcpus, MemoryMiB: int64(math.Ceil(pick.NeedMemoryGib * 1024))}
	switch {
	case pick.Target == r.drv.Name() && pick.InstanceType != "":
		s.InstanceType = pick.InstanceType
		s.Basis = fmt.Sprintf("assessment %d for %s (%s): recommended %s", pick.ID, pick.Target, pick.Region, pick.InstanceType)
	case pick.Target == r.drv.Name():
		s.Basis = fmt.Sprintf("assessment %d for %s (%s): %d vCPU, %.1f GiB, no type recommended", pick.ID, pick.Target, pick.Region, pick.NeedVcpus, pick.NeedMemoryGib)
	default:
		s.Basis = fmt.Sprintf("assessment %d for %s: %d vCPU, %.1f GiB (no assessment for %s)", pick.ID, pick.Target, pick.NeedVcpus, pick.NeedMemoryGib, r.drv.Name())
	}
	return s, nil
}

// sizing is the Launch's account of its size: where it came from, and
// the vCPUs and memory the machine got.
func sizing(s cloud.Shape) string {
	out := s.Basis
	if s.VCPUs > 0 && s.MemoryMiB > 0 {
		if out != "" {
			out += "; "
		}
		out += fmt.Sprintf("%d vCPU, %d MiB", s.VCPUs, s.MemoryMiB)
	}
	return out
}

// sizeNote is the machine's size for the migration's log: "; instance
// type ecs.c7.large (assessment 12 for alibaba …)".
func sizeNote(s cloud.Shape) string {
	switch {
	case s.InstanceType != "":
		return fmt.Sprintf("; instance type %s (%s)", s.InstanceType, s.Basis)
	case s.VCPUs > 0:
		return fmt.Sprintf("; %d vCPU, %d MiB (%s)", s.VCPUs, s.MemoryMiB, s.Basis)
	}
	return ""
}

// listingPortsMax bounds the ports a launch checks.
const listeningPortsMax = 32

// listeningPorts are the TCP ports the host was seen listening on: the
// ports of the connections the discovery inventory saw arrive at it.
func listeningPorts(ctx context.Context, c *ent.Client, hostID int) ([]int, error) {
	var rows []struct {
		Port int `json:"port"`
	}
	err := c.Connection.Query().Where(connection.DstHostID(hostID), connection.ProtocolEQ(connection.ProtocolTCP), connection.PortGT(0)).
		Order(ent.Asc(connection.FieldPort)).Limit(listeningPortsMax).GroupBy(connection.FieldPort).Scan(ctx, &rows)
	if err != nil {
		return nil, err
	}
	out := make([]int, 0, len(rows))
	for _, r := range rows {
		out = append(out, r.Port)
	}
	slices.Sort(out)
	return out, nil
}

// adaptMachine (launch phase "adapt"): the launch's copy is made fit for
// the target's hardware before it first boots, by providers that stage
// their launches (cloud.LaunchStages); the changes are recorded with the
// checks.
func adaptMachine(ctx context.Context, r *run) (outcome, error) {
	st, ok := r.drv.(cloud.LaunchStages)
	if !ok {
		return next(""), nil
	}
	return r.stage(ctx, "adapt", st.AdaptMachine)
}

// bootMachine (launch phase "boot"): the adapted copy boots and its health
// checks run under the provider's boot timeout.
func bootMachine(ctx context.Context, r *run) (outcome, error) {
	st, ok := r.drv.(cloud.LaunchStages)
	if !ok {
		return next(""), nil
	}
	return r.stage(ctx, "boot", st.BootMachine)
}

// stage runs one launch stage of the step's machine and records its checks.
func (r *run) stage(ctx context.Context, name string, do func(context.Context, string) (cloud.Machine, error)) (outcome, error) {
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
	m, err := do(ctx, l.InstanceID)
	if errors.Is(err, cloud.ErrConflict) {
		return goTo("create", "machine %s is not created yet", l.InstanceID), nil
	}
	if err != nil {
		return outcome{}, fmt.Errorf("%s machine %s: %w", name, l.InstanceID, err)
	}
	if err := r.recordMachine(ctx, l, m); err != nil {
		return outcome{}, err
	}
	if m.State == cloud.MachineFailed {
		return next("%s: machine %s failed: %s", name, m.ID, failedChecks(checksOf(m, l.Edges.RecoveryPoint))), nil
	}
	var last string
	if len(m.Checks) > 0 {
		c := m.Checks[len(m.Checks)-1]
		last = fmt.Sprintf(" (%s: %s)", c.Name, c.Message)
	}
	return next("%s: machine %s is %s%s", name, m.ID, m.State, last), nil
}

// recordMachine writes what the machine says onto its Launch: checks,
// disks, console, accelerator, and once healthy when and (a cutover) the
// downtime since the source was quiesced.
func (r *run) recordMachine(ctx context.Context, l *ent.Launch, m cloud.Machine) error {
	return r.tx(ctx, func(tx *ent.Tx) error {
		u := tx.Launch.UpdateOneID(l.ID).SetChecks(checksOf(m, l.Edges.RecoveryPoint)).SetInstances(instancesOf(m, l.Edges.RecoveryPoint)).
			SetConsole(m.Console).SetAccel(truncate(m.Accel, 500))
		if !m.HealthyAt.IsZero() {
			u.SetHealthyAt(m.HealthyAt)
			if l.QuiescedAt != nil {
				u.SetDowntimeSeconds(m.HealthyAt.Sub(*l.QuiescedAt).Seconds())
			}
		}
		return u.Exec(ctx)
	})
}

// maxEvidence bounds one check's evidence on the Launch row (the
// console excerpt is kept whole in Launch.console).
const maxEvidence = 4000

// truncate cuts s to at most n bytes on a rune boundary.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	s = s[:n]
	for len(s) > 0 && !utf8.ValidString(s) {
		s = s[:len(s)-1]
	}
	return s
}

// waitMachine (launch phase "health") waits for the launch's machine to
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
	if err := r.recordMachine(ctx, l, m); err != nil {
		return outcome{}, err
	}
	msg := fmt.Sprintf("machine %s is %s: %d checks, %s", m.ID, m.State, len(m.Checks), verdict(m))
	if l.QuiescedAt != nil && !m.HealthyAt.IsZero() {
		msg += fmt.Sprintf("; downtime %s (source quiesced → target healthy)", m.HealthyAt.Sub(*l.QuiescedAt).Round(time.Second))
	}
	return next("%s", msg), nil
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
		row := map[string]any{"disk": names[c.Disk], "name": c.Name, "passed": c.Passed, "skipped": c.Skipped, "message": c.Message}
		if c.Duration > 0 {
			row["durationMs"] = c.Duration.Milliseconds()
		}
		if c.Evidence != "" {
			row["evidence"] = truncate(c.Evidence, maxEvidence)
		}
		out = append(out, row)
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

// passedMessage is a passed launch's message: "all checks passed", and
// when the copy was not booted (the boot check skipped: no qemu for the
// local cloud, boot_check=off on an Alibaba account) it says so, so that
// nobody reads a copy that never booted as one that did.
func passedMessage(checks []map[string]any) string {
	for _, c := range checks {
		if c["name"] == "boot" {
			if sk, _ := c["skipped"].(bool); sk {
				return fmt.Sprintf("all checks passed, but the copy was not booted: %v", c["message"])
			}
		}
	}
	return "all checks passed"
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
