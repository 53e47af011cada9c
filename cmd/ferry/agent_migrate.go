package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/ferry-migrate/ferry/discovery"
	"github.com/ferry-migrate/ferry/discovery/agentapi"
	"github.com/ferry-migrate/ferry/engine"
	"github.com/ferry-migrate/ferry/engine/throttle"
)

// parseDiskSources reads --disk-source NAME=PATH values: the disk NAME of
// this host is the image file (or device) PATH. With any given, the agent
// reports exactly those disks and replicates nothing else (demos, tests).
func parseDiskSources(vals []string) (map[string]string, error) {
	out := map[string]string{}
	for _, v := range vals {
		name, path, ok := strings.Cut(v, "=")
		name, path = strings.TrimSpace(name), strings.TrimSpace(path)
		if !ok || name == "" || path == "" {
			return nil, fmt.Errorf("--disk-source %q: want NAME=PATH, e.g. vda=/srv/images/web1.img", v)
		}
		if _, dup := out[name]; dup {
			return nil, fmt.Errorf("--disk-source: disk %q given twice", name)
		}
		abs, err := filepath.Abs(path)
		if err != nil {
			return nil, err
		}
		src, err := engine.OpenSource(abs)
		if err != nil {
			return nil, fmt.Errorf("--disk-source %s: %w", name, err)
		}
		src.Close()
		out[name] = abs
	}
	return out, nil
}

// withDiskSources makes the inventory report the --disk-source disks in
// place of the machine's block devices.
func withDiskSources(inv func(context.Context) (discovery.Inventory, error), sources map[string]string) func(context.Context) (discovery.Inventory, error) {
	if len(sources) == 0 {
		return inv
	}
	names := make([]string, 0, len(sources))
	for n := range sources {
		names = append(names, n)
	}
	sort.Strings(names)
	return func(ctx context.Context) (discovery.Inventory, error) {
		i, err := inv(ctx)
		if err != nil {
			return i, err
		}
		i.BlockDevices = []discovery.BlockDevice{}
		for _, n := range names {
			src, err := engine.OpenSource(sources[n])
			if err != nil {
				return i, fmt.Errorf("disk source %s: %w", n, err)
			}
			i.BlockDevices = append(i.BlockDevices, discovery.BlockDevice{Name: n, SizeBytes: uint64(src.Size()), Model: "image " + sources[n]})
			src.Close()
		}
		return i, nil
	}
}

// syncRunner carries out "sync" commands: one pass of a migration's disks
// at a time, all the disks of the command from one point in time (they are
// snapshotted together); a command for a newer pass that arrives while a
// pass runs runs right after, and duplicates of the running pass are
// ignored. The agent only ever connects up, to the gateway named in the
// command.
type syncRunner struct {
	ctx      context.Context
	server   string // control plane URL, the default gateway
	stateDir string
	sources  map[string]string
	log      *slog.Logger

	mu      sync.Mutex
	running map[int]*passRun // by migration
}

type passRun struct {
	pass int
	next *syncJob
}

type syncJob struct {
	rate        string
	migration   int
	pass        int
	final       bool
	gateway     string
	fingerprint string
	disks       []engine.SyncCommandDisk
	sources     []string
}

func (s *syncRunner) handle(c agentapi.Command) {
	if c.Type != engine.CommandSync {
		s.log.Info("ignoring unknown command", "id", c.ID, "type", c.Type)
		return
	}
	var sc engine.SyncCommand
	if err := json.Unmarshal(c.Payload, &sc); err != nil {
		s.log.Error("sync command unreadable", "id", c.ID, "err", err)
		return
	}
	gw := sc.Gateway
	if gw == "" {
		gw = s.server
	}
	job := syncJob{rate: sc.Rate, migration: sc.MigrationID, pass: sc.Pass, final: sc.Final, gateway: gw, fingerprint: sc.Fingerprint}
	for _, d := range sc.Disks {
		src, err := s.source(d)
		if err != nil {
			s.log.Error("sync command: no source for disk", "migration", sc.MigrationID, "disk", d.Name, "err", err)
			continue
		}
		job.disks, job.sources = append(job.disks, d), append(job.sources, src)
	}
	if len(job.disks) == 0 {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if r, ok := s.running[job.migration]; ok {
		if job.pass > r.pass && (r.next == nil || job.pass >= r.next.pass) {
			r.next = &job
		} else if r.next != nil && job.pass == r.next.pass {
			r.next = &job // fresher credentials
		}
		return
	}
	s.running[job.migration] = &passRun{pass: job.pass}
	go s.run(job)
}

// source maps a command's disk to a path on this host.
func (s *syncRunner) source(d engine.SyncCommandDisk) (string, error) {
	if len(s.sources) > 0 {
		p, ok := s.sources[d.Name]
		if !ok {
			return "", fmt.Errorf("disk %q is not one of the --disk-source disks", d.Name)
		}
		return p, nil
	}
	if dev := filepath.Clean(d.Device); strings.HasPrefix(dev, "/dev/") {
		return dev, nil // only ever a device node, whatever the command says
	}
	if d.Name == "" || strings.ContainsAny(d.Name, "/.") {
		return "", fmt.Errorf("disk name %q is not a block device name", d.Name)
	}
	return "/dev/" + d.Name, nil
}

func (s *syncRunner) run(job syncJob) {
	for {
		s.syncOnce(job)
		s.mu.Lock()
		r := s.running[job.migration]
		if r.next == nil || s.ctx.Err() != nil {
			delete(s.running, job.migration)
			s.mu.Unlock()
			return
		}
		job, r.pass, r.next = *r.next, r.next.pass, nil
		s.mu.Unlock()
	}
}

// syncOnce runs one pass: every disk of the command from one set of
// snapshots. A cutover's final pass asks the gateway for a full
// verification of each target.
func (s *syncRunner) syncOnce(job syncJob) {
	log := s.log.With("migration", job.migration, "pass", job.pass)
	var rate throttle.Rate
	if job.rate != "" {
		r, err := throttle.ParseRate(job.rate)
		if err != nil || r == 0 {
			log.Error("sync not started: bad rate limit in the command", "rate", job.rate, "err", err)
			return
		}
		rate = r
	}
	var client *http.Client
	if u, err := url.Parse(job.gateway); err == nil && u.Scheme == "https" && job.fingerprint == "" {
		// The control plane's own gateway: trust the system roots, as the
		// agent protocol does.
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.DisableCompression = true
		client = &http.Client{Transport: tr}
	}
	var po engine.PassOptions
	for i, d := range job.disks {
		dlog := log.With("disk", d.Name, "target", d.DiskID)
		po.Disks = append(po.Disks, engine.PassDisk{Sync: engine.SyncOptions{
			Source: job.sources[i], DiskID: d.DiskID, Gateway: job.gateway, Credential: d.Credential,
			Fingerprint: job.fingerprint, StateDir: s.stateDir, RetryFor: 5 * time.Minute, Rate: rate, HTTPClient: client,
			VerifyFull:    job.final,
			Logf:          func(f string, a ...any) { dlog.Info(fmt.Sprintf(f, a...)) },
			ProgressEvery: 10 * time.Second,
			// Smaller batches than the standalone default: each ends in a
			// gateway checkpoint and stays well inside the control plane's
			// request timeout on slow links.
			BatchBytes: 32 << 20,
			Progress: func(p engine.Progress) {
				dlog.Info("sync progress", "phase", p.Phase, "done", p.Done, "total", p.Total, "sent_bytes", p.SentBytes, "wire_rate", int64(p.Rate))
			},
		}})
	}
	po.Logf = func(f string, a ...any) { log.Info(fmt.Sprintf(f, a...)) }
	log.Info("sync pass started", "disks", len(job.disks), "gateway", job.gateway, "final", job.final)
	res, err := engine.RunPass(s.ctx, po)
	if err != nil {
		log.Error("sync failed; the control plane will ask again", "err", err)
		return
	}
	if c := res.Consistency; c.Consistent {
		log.Info("sync done, target verified; the pass is a point in time", "snapshot", c.Method, "note", c.Note)
	} else {
		log.Warn("sync done, target verified; the pass is NOT a point in time", "note", c.Note)
	}
	for i, p := range res.Disks {
		log.Info("disk synced", "target", job.disks[i].DiskID, "changed_bytes", p.ChangedBytes, "wire_bytes", p.SentBytes,
			"verified", engine.ProofSummary(p), "elapsed", p.Elapsed.Round(time.Millisecond))
	}
}
