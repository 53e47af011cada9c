// Package quiesce owns the primitives the Ferry agent runs on a source
// before the final sync of a cutover, so nothing changes between the last
// recovery point and the launch: stop the listed services (systemctl), freeze
// the mounted filesystems (fsfreeze, with a watchdog that thaws them even if
// the agent dies), or shut the machine down. Each returns how to undo it, for
// a cutover that fails and must give the source back.
package quiesce

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Mode is how the source is quiesced; the user picks.
type Mode string

// Modes.
const (
	ModeServices Mode = "services" // stop the listed services
	ModeFreeze   Mode = "freeze"   // fsfreeze the listed filesystems
	ModeShutdown Mode = "shutdown" // power the source off
)

// Plan says what to quiesce.
type Plan struct {
	Mode Mode
	// Services are systemd unit names, stopped in order and started again
	// in reverse order.
	Services []string
	// Mounts are mount points, frozen in reverse order (the last, usually
	// the deepest, first) and thawed in order.
	Mounts []string
	// Watchdog thaws frozen filesystems after this long whatever happens
	// (default 10 minutes): a frozen root never comes back by itself.
	Watchdog time.Duration
}

// Tools are the programs used (tests point them at stand-ins).
type Tools struct {
	Systemctl, Fsfreeze, Shell string
}

func (t Tools) withDefaults() Tools {
	if t.Systemctl == "" {
		t.Systemctl = "systemctl"
	}
	if t.Fsfreeze == "" {
		t.Fsfreeze = "fsfreeze"
	}
	if t.Shell == "" {
		t.Shell = "/bin/sh"
	}
	return t
}

// Quiesced is a quiesced source.
type Quiesced struct {
	Plan Plan
	At   time.Time // when the source stopped changing (downtime starts)
	// Stopped are the services that were active and were stopped.
	Stopped []string
	// Frozen are the filesystems frozen, in freeze order.
	Frozen []string

	tools    Tools
	mu       sync.Mutex
	resumed  bool
	watchdog *exec.Cmd
	timer    *time.Timer
}

func run(ctx context.Context, name string, args ...string) error {
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s %s: %v: %s", name, strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// Quiesce carries out p. On failure whatever was already done is undone
// before it returns.
func Quiesce(ctx context.Context, p Plan, tools Tools) (*Quiesced, error) {
	q := &Quiesced{Plan: p, tools: tools.withDefaults()}
	var err error
	switch p.Mode {
	case ModeServices:
		if len(p.Services) == 0 {
			return nil, errors.New("quiesce services: no services listed")
		}
		err = q.stopServices(ctx)
	case ModeFreeze:
		if len(p.Mounts) == 0 {
			return nil, errors.New("quiesce freeze: no filesystems listed")
		}
		err = q.freeze(ctx)
	case ModeShutdown:
		// systemctl returns once the shutdown is queued; the agent's
		// connection ends with the machine.
		q.At = time.Now()
		if err := run(ctx, q.tools.Systemctl, "poweroff"); err != nil {
			return nil, fmt.Errorf("quiesce shutdown: %w", err)
		}
		return q, nil
	default:
		return nil, fmt.Errorf("quiesce: mode %q (want services, freeze or shutdown)", p.Mode)
	}
	if err != nil {
		if rerr := q.Resume(context.WithoutCancel(ctx)); rerr != nil {
			err = errors.Join(err, fmt.Errorf("undo: %w", rerr))
		}
		return nil, err
	}
	return q, nil
}

func (q *Quiesced) stopServices(ctx context.Context) error {
	for _, u := range q.Plan.Services {
		// is-active exits 0 only for an active unit; a stopped one stays
		// stopped on resume.
		if exec.CommandContext(ctx, q.tools.Systemctl, "is-active", "--quiet", u).Run() != nil {
			continue
		}
		if err := run(ctx, q.tools.Systemctl, "stop", u); err != nil {
			return fmt.Errorf("quiesce: stop %s: %w", u, err)
		}
		q.Stopped = append(q.Stopped, u)
	}
	q.At = time.Now()
	return nil
}

func (q *Quiesced) freeze(ctx context.Context) error {
	wd := q.Plan.Watchdog
	if wd <= 0 {
		wd = 10 * time.Minute
	}
	// The watchdog is a process of its own, in its own session: it thaws
	// even when the agent is killed while the filesystems are frozen.
	var thaw []string
	for _, m := range q.Plan.Mounts {
		thaw = append(thaw, q.tools.Fsfreeze+" -u "+shellQuote(m)+" 2>/dev/null")
	}
	script := "sleep " + strconv.Itoa(int(wd.Seconds()+0.999)) + "; " + strings.Join(thaw, "; ")
	wdCmd := exec.Command(q.tools.Shell, "-c", script)
	wdCmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := wdCmd.Start(); err != nil {
		return fmt.Errorf("quiesce: start thaw watchdog: %w", err)
	}
	go wdCmd.Wait()
	q.watchdog = wdCmd
	// And in process, should the shell be killed.
	q.timer = time.AfterFunc(wd, func() { q.Resume(context.Background()) })
	for i := len(q.Plan.Mounts) - 1; i >= 0; i-- {
		m := q.Plan.Mounts[i]
		if err := run(ctx, q.tools.Fsfreeze, "-f", m); err != nil {
			return fmt.Errorf("quiesce: freeze %s: %w", m, err)
		}
		q.Frozen = append(q.Frozen, m)
	}
	q.At = time.Now()
	return nil
}

// Resume undoes the quiesce: thaws the frozen filesystems (the last frozen
// first) and starts the stopped services (the last stopped first). A
// shutdown cannot be undone from here: the source must be powered on by
// its hypervisor or its owner. Resume is idempotent.
func (q *Quiesced) Resume(ctx context.Context) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.resumed {
		return nil
	}
	if q.Plan.Mode == ModeShutdown {
		return errors.New("resume: the source was shut down; power it on to bring it back")
	}
	var errs []error
	for i := len(q.Frozen) - 1; i >= 0; i-- {
		if err := run(ctx, q.tools.Fsfreeze, "-u", q.Frozen[i]); err != nil {
			errs = append(errs, err)
		}
	}
	if q.timer != nil {
		q.timer.Stop()
	}
	if q.watchdog != nil && q.watchdog.Process != nil {
		// Its whole session: the shell and its sleep.
		syscall.Kill(-q.watchdog.Process.Pid, syscall.SIGKILL)
	}
	for i := len(q.Stopped) - 1; i >= 0; i-- {
		if err := run(ctx, q.tools.Systemctl, "start", q.Stopped[i]); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	q.resumed = true
	return nil
}

func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }
