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

// syncRunner carries out "sync" commands: one engine sync per disk at a
// time; a command for a newer pass that arrives while a disk syncs runs
// right after, and duplicates of the running pass are ignored. The agent
// only ever connects up, to the gateway named in the command.
type syncRunner struct {
	ctx      context.Context
	server   string // control plane URL, the default gateway
	stateDir string
	sources  map[string]string
	log      *slog.Logger

	mu      sync.Mutex
	running map[string]*diskRun
}

type diskRun struct {
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
	disk        engine.SyncCommandDisk
	source      string
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
	for _, d := range sc.Disks {
		src, err := s.source(d)
		if err != nil {
			s.log.Error("sync command: no source for disk", "migration", sc.MigrationID, "disk", d.Name, "err", err)
			continue
		}
		job := syncJob{rate: sc.Rate, migration: sc.MigrationID, pass: sc.Pass, final: sc.Final, gateway: gw, fingerprint: sc.Fingerprint, disk: d, source: src}
		s.mu.Lock()
		if r, ok := s.running[d.DiskID]; ok {
			if job.pass > r.pass && (r.next == nil || job.pass >= r.next.pass) {
				r.next = &job
			} else if r.next != nil && job.pass == r.next.pass {
				r.next = &job // fresher credential
			}
			s.mu.Unlock()
			continue
		}
		s.running[d.DiskID] = &diskRun{pass: job.pass}
		s.mu.Unlock()
		go s.run(job)
	}
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
		r := s.running[job.disk.DiskID]
		if r.next == nil || s.ctx.Err() != nil {
			delete(s.running, job.disk.DiskID)
			s.mu.Unlock()
			return
		}
		job, r.pass, r.next = *r.next, r.next.pass, nil
		s.mu.Unlock()
	}
}

func (s *syncRunner) syncOnce(job syncJob) {
	log := s.log.With("migration", job.migration, "disk", job.disk.Name, "target", job.disk.DiskID, "pass", job.pass)
	opt := engine.SyncOptions{
		Source: job.source, DiskID: job.disk.DiskID, Gateway: job.gateway, Credential: job.disk.Credential,
		Fingerprint: job.fingerprint, StateDir: s.stateDir, RetryFor: 5 * time.Minute,
		Logf:          func(f string, a ...any) { log.Info(fmt.Sprintf(f, a...)) },
		ProgressEvery: 10 * time.Second,
		// Smaller batches than the standalone default: each ends in a gateway
		// checkpoint (the progress the UI shows) and stays well inside the
		// control plane's request timeout on slow links.
		BatchBytes: 32 << 20,
		Progress: func(p engine.Progress) {
			log.Info("sync progress", "phase", p.Phase, "done", p.Done, "total", p.Total, "sent_bytes", p.SentBytes)
		},
	}
	if u, err := url.Parse(job.gateway); err == nil && u.Scheme == "https" && job.fingerprint == "" {
		// The control plane's own gateway: trust the system roots, as the
		// agent protocol does.
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.DisableCompression = true
		opt.HTTPClient = &http.Client{Transport: tr}
	}
	if job.rate != "" {
		r, err := throttle.ParseRate(job.rate)
		if err != nil || r == 0 {
			log.Error("sync not started: bad rate limit in the command", "rate", job.rate, "err", err)
			return
		}
		opt.Rate = r
	}
	syncer, err := engine.NewSyncer(opt)
	if err != nil {
		log.Error("sync not started", "err", err)
		return
	}
	log.Info("sync started", "source", job.source, "gateway", job.gateway, "final", job.final)
	p, err := syncer.Run(s.ctx)
	if err != nil {
		log.Error("sync failed; the control plane will ask again", "err", err)
		return
	}
	log.Info("sync done, target verified", "changed_bytes", p.ChangedBytes, "wire_bytes", p.SentBytes, "elapsed", p.Elapsed.Round(time.Millisecond))
}
