// Package health owns the checks that say a launched copy is healthy before
// anyone cuts over to it: the serial console shows the guest reached its
// login prompt or multi-user target (and not a panic, an initramfs shell or a
// firmware that found nothing to boot), the TCP ports the source listened on
// answer, and the Ferry agent inside phoned home. Each check reports its
// result, how long it took and its evidence (a console excerpt, the port
// answers), for the launch record and the UI.
//
// The checks only read files and dial addresses they are given, so the same
// checks serve the local qemu driver and cloud providers.
package health

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"
)

// Check is one check's outcome.
type Check struct {
	Name     string        `json:"name"`
	Passed   bool          `json:"passed"`
	Duration time.Duration `json:"duration"`
	// Message is one line for people: what passed or what went wrong.
	Message string `json:"message"`
	// Evidence is what the verdict rests on: a console excerpt, one line
	// per port with what answered.
	Evidence string `json:"evidence,omitempty"`
}

// Checker runs a check until it passes, fails for good, or ctx ends (then
// it reports failure with what it saw so far).
type Checker interface {
	Name() string
	Check(ctx context.Context) Check
}

// Report is the outcome of Run.
type Report struct {
	Checks []Check `json:"checks"`
	Passed bool    `json:"passed"`
}

// Err is nil when every check passed, else names the first failed check
// (in the order given to Run) and its message.
func (r Report) Err() error {
	if r.Passed {
		return nil
	}
	for _, c := range r.Checks {
		if !c.Passed {
			return fmt.Errorf("health check %s failed: %s", c.Name, c.Message)
		}
	}
	return errors.New("health checks failed")
}

// Evidence joins the evidence of every check, for a log.
func (r Report) Evidence() string {
	var b strings.Builder
	for _, c := range r.Checks {
		fmt.Fprintf(&b, "== %s: %v (%s) %s\n%s\n", c.Name, c.Passed, c.Duration.Round(time.Millisecond), c.Message, c.Evidence)
	}
	return b.String()
}

// Run runs the checkers concurrently under ctx (whose deadline is the boot
// timeout). The first check that fails cancels the others: once the console
// shows a kernel panic, waiting for a port is pointless. Durations count
// from Run's start, so they read as "time from boot to healthy".
func Run(ctx context.Context, checkers ...Checker) Report {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	start := time.Now()
	out := make([]Check, len(checkers))
	var (
		wg    sync.WaitGroup
		once  sync.Once
		first = -1
	)
	for i, c := range checkers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := c.Check(ctx)
			r.Name = c.Name()
			r.Duration = time.Since(start)
			if !r.Passed {
				once.Do(func() { first = i; cancel() })
			}
			out[i] = r
		}()
	}
	wg.Wait()
	rep := Report{Checks: out, Passed: first < 0}
	for i := range rep.Checks {
		if c := &rep.Checks[i]; !c.Passed && i != first && first >= 0 {
			c.Message += fmt.Sprintf(" (not finished: the %s check failed first)", rep.Checks[first].Name)
		}
	}
	return rep
}

// pollEvery is how often checks look again.
const pollEvery = 250 * time.Millisecond

// poll calls try until it reports done or ctx ends.
func poll(ctx context.Context, try func() bool) bool {
	t := time.NewTicker(pollEvery)
	defer t.Stop()
	for {
		if try() {
			return true
		}
		select {
		case <-ctx.Done():
			return try()
		case <-t.C:
		}
	}
}
