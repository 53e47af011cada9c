package migration

import (
	"context"
	"fmt"
	"time"
)

// A phase is one resumable piece of a step. Its function is idempotent: it
// may run again from the start after a crash, so it checks what is done
// (in the database, at the cloud through idempotent calls) before doing it.
type phase struct {
	name string
	// when, if set, says whether the phase applies to this run (an
	// approval only when the migration's settings ask for one); a phase
	// that does not is passed over.
	when func(r *run) bool
	do   func(ctx context.Context, r *run) (outcome, error)
	// quiet phases log no "started" event: the sync follower runs its
	// phases every few seconds for the life of a migration.
	quiet bool
	// legacy phases are kept so that steps persisted in them resume; no
	// step enters one otherwise.
	legacy bool
}

// itinerary is the ordered phases of a step kind.
type itinerary struct {
	kind   string
	phases []phase
}

// itineraries are every step kind's phases, in order. Issue 16's launch
// phases: create (the machine's disks from the recovery point), adapt (the
// copy made fit for virtio and DHCP), boot and health (it boots, and the
// console, ports and agent checks pass: the verdict and the downtime are
// recorded); providers without stages do all of it in health (Wait).
// "wait" is health's name before issue 16, kept so a step persisted in it
// resumes. Issue 13 adds the hooks around them; issue 11 nothing here — a
// provider's own launch steps live behind CreateMachine and Wait,
// resumable by token.
var itineraries = map[string]*itinerary{}

func init() {
	for _, it := range []*itinerary{
		{KindPrepare, []phase{
			{name: "disks", do: prepareDisks},
			{name: "gateway", do: prepareGateway},
			{name: "start_sync", do: startSync},
		}},
		{KindSync, []phase{
			{name: "follow", do: follow, quiet: true},
			{name: "point", do: recordPoint, quiet: true},
			{name: "next", do: nextPass, quiet: true},
		}},
		{KindTestLaunch, []phase{
			{name: "create", do: testCreate},
			{name: "adapt", do: adaptMachine},
			{name: "boot", do: bootMachine},
			{name: "wait", legacy: true, do: waitMachine},
			{name: "health", do: waitMachine},
			{name: "verify", do: testVerify},
			{name: "supersede", do: supersede},
		}},
		{KindCutover, []phase{
			{name: "approval", when: needsApproval, do: awaitApproval},
			{name: "final_pass", do: requestFinalPass},
			{name: "final_sync", do: awaitFinalPass},
			{name: "create", do: cutoverCreate},
			{name: "adapt", do: adaptMachine},
			{name: "boot", do: bootMachine},
			{name: "wait", legacy: true, do: waitMachine},
			{name: "health", do: waitMachine},
			{name: "verify", do: cutoverVerify},
			{name: "finalize", do: cutoverFinalize},
			// The gateway only carried the source's bytes: once the copy is
			// live it goes (a cloud's gateway instance is deleted with it).
			{name: "release", do: releaseGateways},
		}},
		{KindRollback, []phase{
			{name: "drain", do: drain},
			{name: "discard", do: discardAll},
			{name: "release", do: releaseGateways},
			{name: "finish", do: finishRollback},
		}},
	} {
		itineraries[it.kind] = it
	}
}

// Phases lists a step kind's phase names in order (for tests and docs),
// without the ones kept only for resuming older steps.
func Phases(kind string) []string {
	it := itineraries[kind]
	if it == nil {
		return nil
	}
	out := make([]string, 0, len(it.phases))
	for _, p := range it.phases {
		if p.legacy {
			continue
		}
		out = append(out, p.name)
	}
	return out
}

// start returns the phase a step begins with: its persisted phase, or the
// first that applies.
func (it *itinerary) start(r *run) (phase, bool) {
	if r.step.Phase != "" {
		for _, p := range it.phases {
			if p.name == r.step.Phase {
				return p, true
			}
		}
		return phase{}, false
	}
	return it.after(-1, r)
}

// after returns the first phase past index i that applies.
func (it *itinerary) after(i int, r *run) (phase, bool) {
	for _, p := range it.phases[i+1:] {
		if !p.legacy && (p.when == nil || p.when(r)) {
			return p, true
		}
	}
	return phase{}, false
}

func (it *itinerary) index(name string) int {
	for i, p := range it.phases {
		if p.name == name {
			return i
		}
	}
	return -1
}

// An outcome says what follows a phase.
type outcome struct {
	kind  outcomeKind
	phase string        // goTo
	after time.Duration // wait: 0 waits for an event (a wake), not a time
	// recheck, for a wait, is asked again inside the transaction that
	// parks the step: true means something changed since the phase looked
	// (a cutover was requested), so the step goes on instead of waiting.
	recheck func(r *run) bool
	status  string // done: succeeded, failed or canceled
	msg     string // the event logged with the outcome ("" logs none)
}

type outcomeKind int

const (
	outNext outcomeKind = iota
	outGoTo
	outWait
	outDone
)

// next moves on to the following phase (the step is done after the last).
func next(format string, args ...any) outcome {
	return outcome{kind: outNext, msg: fmt.Sprintf(format, args...)}
}

// goTo moves to the named phase of the same step.
func goTo(name string, format string, args ...any) outcome {
	return outcome{kind: outGoTo, phase: name, msg: fmt.Sprintf(format, args...)}
}

// wait parks the step in its phase; it runs the phase again after d (or
// when woken, for d = 0), unless recheck says to go on at once.
func wait(d time.Duration, recheck func(r *run) bool) outcome {
	return outcome{kind: outWait, after: d, recheck: recheck}
}

// done ends the step with status (succeeded, failed, canceled).
func done(status string, format string, args ...any) outcome {
	return outcome{kind: outDone, status: status, msg: fmt.Sprintf(format, args...)}
}
