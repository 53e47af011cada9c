package engine

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/ferry-migrate/ferry"
	"github.com/ferry-migrate/ferry/engine/quiesce"
	"github.com/ferry-migrate/ferry/engine/throttle"
)

// CommandRunner is the agent's side of the migration commands: it runs sync
// passes (one pass of a migration at a time, all its disks from one point in
// time through RunPass; a command for a newer pass that arrives while a pass
// runs runs right after, duplicates of the running pass are ignored) and
// hook scripts (before a pass, or on their own). The agent only ever
// connects up, to the gateway each disk of a command names.
type CommandRunner struct {
	// Server is the control plane's URL, the gateway of disks whose command
	// names none.
	Server string
	// StateDir keeps each disk's manifest and sync id (SyncOptions.StateDir).
	StateDir string
	// Sources maps inventory disk names to files or devices; when set, only
	// those disks are replicated (demos, tests).
	Sources map[string]string
	// HooksDir holds the hook scripts the control plane may ask for; empty
	// refuses every hook.
	HooksDir string
	Log      *slog.Logger
	// Report receives the outcome of every hook and every disk's pass.
	Report func(CommandResult)
	// BatchBytes is the sync's POST size (default 32 MiB: each batch ends in
	// a gateway checkpoint, the progress the control plane shows).
	BatchBytes int64
	// RetryFor is how long one sync retries an unreachable gateway
	// (default 5 minutes; the control plane re-sends the command anyway).
	RetryFor time.Duration
	// QuiesceTools are the programs quiescing uses (tests point them at
	// stand-ins); zero: systemctl, fsfreeze, /bin/sh.
	QuiesceTools quiesce.Tools

	mu      sync.Mutex
	running map[int]*passRun      // migration → its pass in progress
	passes  map[string]*passHooks // "migration/pass" → its Before hooks
	// quiesced are the sources quiesced for a cutover, by migration, until
	// a resume command brings them back.
	quiesced map[int]*quiesce.Quiesced
	wg       sync.WaitGroup
}

type passRun struct {
	pass int
	next *passJob
}

// passJob is one pass of a migration: the command's disks this host has a
// source for.
type passJob struct {
	cmd   SyncCommand
	disks []SyncCommandDisk
	srcs  []string
	id    string
}

type passHooks struct {
	done, ok bool
}

func (r *CommandRunner) log() *slog.Logger {
	if r.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return r.Log
}

func (r *CommandRunner) report(res CommandResult) {
	if r.Report != nil {
		r.Report(res)
	}
}

// Handle carries out one command, in the background; ctx bounds the work
// it starts (the agent's life). Unknown types are logged and ignored.
func (r *CommandRunner) Handle(ctx context.Context, id, typ string, payload []byte) {
	switch typ {
	case CommandSync:
		var c SyncCommand
		if err := json.Unmarshal(payload, &c); err != nil {
			r.log().Error("sync command unreadable", "id", id, "err", err)
			return
		}
		r.handleSync(ctx, id, c)
	case CommandResume:
		var c ResumeCommand
		if err := json.Unmarshal(payload, &c); err != nil {
			r.log().Error("resume command unreadable", "id", id, "err", err)
			return
		}
		res := r.Resume(ctx, c.MigrationID)
		res.CommandID = id
		r.report(res)
	case CommandHook:
		var c HookCommand
		if err := json.Unmarshal(payload, &c); err != nil {
			r.log().Error("hook command unreadable", "id", id, "err", err)
			return
		}
		r.wg.Add(1)
		go func() {
			defer r.wg.Done()
			res := r.runHook(ctx, c.Hook, c.MigrationID, 0, c.Stage, false)
			res.CommandID = id
			r.report(res)
		}()
	default:
		r.log().Info("ignoring unknown command", "id", id, "type", typ)
	}
}

// Wait blocks until everything Handle started has finished.
func (r *CommandRunner) Wait() { r.wg.Wait() }

func (r *CommandRunner) handleSync(ctx context.Context, id string, c SyncCommand) {
	if len(c.Before) == 0 && (!c.Final || c.Quiesce == nil) {
		r.dispatch(ctx, id, c)
		return
	}
	key := strconv.Itoa(c.MigrationID) + "/" + strconv.Itoa(c.Pass)
	r.mu.Lock()
	if r.passes == nil {
		r.passes = map[string]*passHooks{}
	}
	st, seen := r.passes[key]
	switch {
	case seen && st.done && st.ok:
		r.mu.Unlock()
		r.dispatch(ctx, id, c) // a redelivery: the hooks ran, the disks dedupe
		return
	case seen && !st.done:
		r.mu.Unlock()
		return // the hooks run; the disks follow them
	}
	// First delivery, or a redelivery after a failed hook: run them (again).
	st = &passHooks{}
	r.passes[key] = st
	for k := range r.passes {
		if m, p, _ := strings.Cut(k, "/"); m == strconv.Itoa(c.MigrationID) && p != strconv.Itoa(c.Pass) {
			delete(r.passes, k) // an older pass's record
		}
	}
	r.mu.Unlock()
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		ok := true
		for _, h := range c.Before {
			stage := "before_sync"
			if c.Final {
				stage = "before_cutover"
			}
			res := r.runHook(ctx, h, c.MigrationID, c.Pass, stage, c.Final)
			res.CommandID = id
			r.report(res)
			if !res.OK && h.MustSucceed {
				ok = false
				r.log().Error("pass not started: a must-succeed hook failed", "migration", c.MigrationID, "pass", c.Pass, "hook", h.Name, "err", res.Error)
				break
			}
		}
		// The quiesce last: the pre-cutover hooks (a database's flush or
		// stop) need the filesystems writable, and nothing may change
		// after it.
		if ok && c.Final && c.Quiesce != nil {
			res := r.quiesce(ctx, c)
			res.CommandID = id
			r.report(res)
			ok = res.OK
		}
		r.mu.Lock()
		st.done, st.ok = true, ok
		r.mu.Unlock()
		if ok {
			r.dispatch(ctx, id, c)
		}
	}()
}

// quiesce quiesces the source for the final pass of c's migration, once:
// a redelivered final command finds it quiesced already.
func (r *CommandRunner) quiesce(ctx context.Context, c SyncCommand) CommandResult {
	res := CommandResult{Type: "quiesce", MigrationID: c.MigrationID, Pass: c.Pass, Started: time.Now()}
	r.mu.Lock()
	q := r.quiesced[c.MigrationID]
	r.mu.Unlock()
	if q != nil {
		res.OK, res.QuiescedAt, res.Finished = true, q.At, time.Now()
		return res
	}
	plan := quiesce.Plan{Mode: quiesce.Mode(c.Quiesce.Mode), Services: c.Quiesce.Services, Mounts: c.Quiesce.Mounts,
		Watchdog: time.Duration(c.Quiesce.WatchdogSeconds) * time.Second}
	q, err := quiesce.Quiesce(ctx, plan, r.QuiesceTools)
	res.Finished = time.Now()
	if err != nil {
		res.Error = err.Error()
		r.log().Error("final pass not started: the source could not be quiesced", "migration", c.MigrationID, "pass", c.Pass, "err", err)
		return res
	}
	r.mu.Lock()
	if r.quiesced == nil {
		r.quiesced = map[int]*quiesce.Quiesced{}
	}
	r.quiesced[c.MigrationID] = q
	r.mu.Unlock()
	res.OK, res.QuiescedAt = true, q.At
	r.log().Info("source quiesced for the cutover", "migration", c.MigrationID, "mode", plan.Mode, "services", q.Stopped, "frozen", q.Frozen)
	return res
}

// Resume brings back the source quiesced for migration's cutover (services
// restarted, filesystems thawed); nothing quiesced is not an error.
func (r *CommandRunner) Resume(ctx context.Context, migration int) CommandResult {
	res := CommandResult{Type: CommandResume, MigrationID: migration, Started: time.Now(), OK: true}
	r.mu.Lock()
	q := r.quiesced[migration]
	delete(r.quiesced, migration)
	r.mu.Unlock()
	if q != nil {
		if err := q.Resume(ctx); err != nil {
			res.OK, res.Error = false, err.Error()
		}
		r.log().Info("source resumed", "migration", migration, "err", res.Error)
	}
	res.Finished = time.Now()
	return res
}

// Quiesced reports whether the runner holds migration's source quiesced.
func (r *CommandRunner) Quiesced(migration int) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.quiesced[migration] != nil
}

// dispatch starts the pass, or queues it behind the migration's pass in
// progress: one pass of a migration runs at a time, all the disks of its
// command together (RunPass: one set of snapshots, so the recovery point
// taken from the pass is one point in time for the whole host). A newer
// pass waits for the running one; a duplicate of the running pass is
// ignored; a later copy of the queued pass replaces it (fresher
// credentials).
func (r *CommandRunner) dispatch(ctx context.Context, id string, c SyncCommand) {
	job := passJob{cmd: c, id: id}
	for _, d := range c.Disks {
		src, err := r.source(d)
		if err != nil {
			r.log().Error("sync command: no source for disk", "migration", c.MigrationID, "disk", d.Name, "err", err)
			r.report(CommandResult{CommandID: id, Type: CommandSync, MigrationID: c.MigrationID, Pass: c.Pass, Disk: d.Name, Error: err.Error()})
			continue
		}
		job.disks, job.srcs = append(job.disks, d), append(job.srcs, src)
	}
	if len(job.disks) == 0 {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.running == nil {
		r.running = map[int]*passRun{}
	}
	if run, ok := r.running[c.MigrationID]; ok {
		if c.Pass > run.pass && (run.next == nil || c.Pass >= run.next.cmd.Pass) {
			run.next = &job // a newer pass (or a fresher credential for it)
		}
		return
	}
	r.running[c.MigrationID] = &passRun{pass: c.Pass}
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		r.run(ctx, job)
	}()
}

// source maps a command's disk to a path on this host: a --disk-source, or
// only ever a device node, whatever the command says.
func (r *CommandRunner) source(d SyncCommandDisk) (string, error) {
	if len(r.Sources) > 0 {
		p, ok := r.Sources[d.Name]
		if !ok {
			return "", fmt.Errorf("disk %q is not one of the --disk-source disks", d.Name)
		}
		return p, nil
	}
	if dev := filepath.Clean(d.Device); strings.HasPrefix(dev, "/dev/") {
		return dev, nil
	}
	if d.Name == "" || strings.ContainsAny(d.Name, "/.") {
		return "", fmt.Errorf("disk name %q is not a block device name", d.Name)
	}
	return "/dev/" + d.Name, nil
}

func (r *CommandRunner) run(ctx context.Context, job passJob) {
	for {
		r.syncOnce(ctx, job)
		r.mu.Lock()
		run := r.running[job.cmd.MigrationID]
		if run.next == nil || ctx.Err() != nil {
			delete(r.running, job.cmd.MigrationID)
			r.mu.Unlock()
			return
		}
		job, run.pass, run.next = *run.next, run.next.cmd.Pass, nil
		r.mu.Unlock()
	}
}

// syncOnce runs one pass of the command's disks through RunPass, each disk
// to its own gateway; a cutover's final pass asks each gateway for a full
// verification of its target. Every disk's outcome is reported.
func (r *CommandRunner) syncOnce(ctx context.Context, job passJob) {
	c := job.cmd
	log := r.log().With("migration", c.MigrationID, "pass", c.Pass)
	results := make([]CommandResult, len(job.disks))
	for i, d := range job.disks {
		results[i] = CommandResult{CommandID: job.id, Type: CommandSync, MigrationID: c.MigrationID, Pass: c.Pass, Disk: d.Name}
	}
	defer func() {
		for _, res := range results {
			r.report(res)
		}
	}()
	failAll := func(msg string) {
		now := time.Now()
		for i := range results {
			results[i].Error, results[i].Started, results[i].Finished = msg, now, now
		}
	}
	var rate throttle.Rate
	if c.Rate != "" {
		// The migration's stored setting, as the control plane sent it: a
		// rate stored before the shared vocabulary keeps its old reading.
		rt, err := ferry.ParseStoredRate(c.Rate, ferry.EngineRates)
		if err != nil || rt == 0 {
			failAll(fmt.Sprintf("bad rate limit %q in the command: %v", c.Rate, err))
			log.Error("sync not started: bad rate limit in the command", "rate", c.Rate, "err", err)
			return
		}
		rate = rt
	}
	batch, retry := r.BatchBytes, r.RetryFor
	if batch <= 0 {
		batch = 32 << 20
	}
	if retry <= 0 {
		retry = 5 * time.Minute
	}
	po := PassOptions{Logf: func(f string, a ...any) { log.Info(fmt.Sprintf(f, a...)) }}
	for i, d := range job.disks {
		gw, fp := d.Gateway, d.Fingerprint
		if gw == "" {
			gw, fp = c.Gateway, c.Fingerprint
		}
		if gw == "" {
			gw = r.Server
		}
		dlog := log.With("disk", d.Name, "target", d.DiskID, "gateway", gw)
		opt := SyncOptions{
			Source: job.srcs[i], DiskID: d.DiskID, Gateway: gw, Credential: d.Credential, Fingerprint: fp,
			StateDir: r.StateDir, RetryFor: retry, BatchBytes: batch, ProgressEvery: 10 * time.Second, Rate: rate,
			VerifyFull: c.Final,
			Logf:       func(f string, a ...any) { dlog.Info(fmt.Sprintf(f, a...)) },
			Progress: func(p Progress) {
				dlog.Info("sync progress", "phase", p.Phase, "done", p.Done, "total", p.Total, "sent_bytes", p.SentBytes, "wire_rate", int64(p.Rate))
			},
		}
		if u, err := url.Parse(gw); err == nil && u.Scheme == "https" && fp == "" {
			// The control plane's own gateway: trust the system roots, as the
			// agent protocol does.
			tr := http.DefaultTransport.(*http.Transport).Clone()
			tr.DisableCompression = true
			opt.HTTPClient = &http.Client{Transport: tr}
		}
		po.Disks = append(po.Disks, PassDisk{Sync: opt})
	}
	po.Started = func(i int, _ *Syncer) { results[i].Started = time.Now() }
	log.Info("sync pass started", "disks", len(job.disks), "final", c.Final)
	res, err := RunPass(ctx, po)
	end := time.Now()
	stopped := -1 // the disk the pass stopped at; those before it completed (-1: none was started)
	if de := (*PassDiskError)(nil); errors.As(err, &de) {
		stopped = de.Index
	}
	for i := range results {
		if results[i].Started.IsZero() {
			results[i].Started = end
		}
		switch {
		case err == nil || i < stopped:
			p := res.Disks[i]
			results[i].OK, results[i].Finished = true, results[i].Started.Add(p.Elapsed)
			log.Info("disk synced, target verified", "disk", job.disks[i].Name, "target", job.disks[i].DiskID, "changed_bytes", p.ChangedBytes,
				"wire_bytes", p.SentBytes, "verified", ProofSummary(p), "elapsed", p.Elapsed.Round(time.Millisecond))
		case i == stopped:
			results[i].Error, results[i].Finished = err.Error(), end
		default:
			results[i].Error, results[i].Finished = fmt.Sprintf("not synced: the pass stopped before this disk: %v", err), end
		}
	}
	if err != nil {
		log.Error("sync failed; the control plane will ask again", "err", err)
		return
	}
	if cs := res.Consistency; cs.Consistent {
		log.Info("sync done, target verified; the pass is a point in time", "snapshot", cs.Method, "note", cs.Note)
	} else {
		log.Warn("sync done, target verified; the pass is NOT a point in time", "note", cs.Note)
	}
}

var hookName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

// runHook runs HooksDir/<name> in its own process group with the
// migration's facts in its environment, killed (group and all) when its
// timeout passes, and returns the outcome with the tail of its output.
func (r *CommandRunner) runHook(ctx context.Context, h Hook, migration, pass int, stage string, final bool) CommandResult {
	res := CommandResult{Type: CommandHook, MigrationID: migration, Pass: pass, Hook: h.Name, Stage: stage, Started: time.Now()}
	defer func() { res.Finished = time.Now() }()
	fail := func(format string, args ...any) CommandResult {
		res.Error = fmt.Sprintf(format, args...)
		return res
	}
	if r.HooksDir == "" {
		return fail("hook %q not run: hooks are off on this agent (start it with --hooks DIR holding the scripts)", h.Name)
	}
	if !hookName.MatchString(h.Name) {
		return fail("hook name %q: want a file name of letters, digits, '.', '_' and '-'", h.Name)
	}
	path := filepath.Join(r.HooksDir, h.Name)
	st, err := os.Stat(path)
	if err != nil || !st.Mode().IsRegular() || st.Mode()&0o111 == 0 {
		return fail("hook %q: no executable file %s on this host", h.Name, path)
	}
	timeout := time.Duration(h.TimeoutSeconds) * time.Second
	if timeout <= 0 {
		timeout = 5 * time.Minute
	}
	hctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmd := exec.CommandContext(hctx, path)
	cmd.Dir = r.HooksDir
	cmd.Env = append(os.Environ(), "FERRY_MIGRATION_ID="+strconv.Itoa(migration), "FERRY_PASS="+strconv.Itoa(pass),
		"FERRY_STAGE="+stage, "FERRY_FINAL="+strconv.FormatBool(final))
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	out := &tailBuffer{max: 4 << 10}
	cmd.Stdout, cmd.Stderr = out, out
	r.log().Info("hook started", "migration", migration, "pass", pass, "hook", h.Name, "stage", stage)
	err = cmd.Run()
	res.Output = out.String()
	var ee *exec.ExitError
	switch {
	case errors.Is(hctx.Err(), context.DeadlineExceeded):
		return fail("hook %q timed out after %s and was killed", h.Name, timeout)
	case errors.As(err, &ee):
		res.ExitCode = ee.ExitCode()
		return fail("hook %q exited with status %d", h.Name, ee.ExitCode())
	case err != nil:
		return fail("hook %q: %v", h.Name, err)
	}
	res.OK = true
	r.log().Info("hook done", "migration", migration, "hook", h.Name, "stage", stage)
	return res
}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	b   bytes.Buffer
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b.Write(p)
	if over := t.b.Len() - t.max; over > 0 {
		t.b.Next(over)
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.b.String()
}
