package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"github.com/ferry-migrate/ferry/engine"
	"github.com/ferry-migrate/ferry/engine/snapshot"
	"github.com/ferry-migrate/ferry/engine/throttle"
	"github.com/spf13/cobra"
)

func newAgentSyncCmd() *cobra.Command {
	var opt engine.SyncOptions
	var rate, blockSize, windows, tz, control, snapMode, snapSpace string
	var quiet bool
	var snap snapshot.Disk
	var snapOpt snapshot.Options
	cmd := &cobra.Command{
		Use:   "sync",
		Short: "Replicate a disk or image to a gateway; the next run sends only changed blocks",
		Long: `Replicates --source to the gateway in fixed-size blocks. Zero blocks are never
sent; the manifest of the last completed sync is kept in --state so that the
next run is incremental, and an interrupted run resumes at the gateway's
checkpoint. --windows limits sending to weekly transfer windows, e.g.
  --windows "Mon-Fri 20:00-06:00=8Mbps,Sat-Sun 00:00-24:00=20Mbps"
--control FILE is re-read every 2 s while the sync runs; lines "rate=RATE" and
"windows=SPEC" in it change the running sync.

Each run reads a point-in-time view of the source (--snapshot auto): the
filesystems on it are frozen for the instant a snapshot is created (a qcow2
overlay through --qmp/--qmp-node, an LVM snapshot, a btrfs subvolume snapshot
or a reflink copy), and the run reads the snapshot. Where none can be taken
the run reads the live source and says that the result is not a point in time.`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if os.Getenv("GOMEMLIMIT") == "" {
				// Keep the agent well inside its 256 MiB budget on any disk
				// size: the manifests are the only thing that grows with it.
				debug.SetMemoryLimit(160 << 20)
			}
			bs, err := parseBlockSize(blockSize)
			if err != nil {
				return fmt.Errorf("--block-size: %w", err)
			}
			opt.BlockSize = bs
			if rate != "" {
				r, err := throttle.ParseRate(rate)
				if err != nil {
					return fmt.Errorf("--rate: %w", err)
				}
				opt.Rate = r
				if r == 0 {
					return fmt.Errorf("--rate 0 would never send; use --windows to pause at times")
				}
			}
			loc := time.Local
			if tz != "" {
				if loc, err = time.LoadLocation(tz); err != nil {
					return fmt.Errorf("--tz: %w", err)
				}
			}
			if windows != "" {
				if opt.Windows, err = throttle.ParseWindows(windows, loc); err != nil {
					return fmt.Errorf("--windows: %w", err)
				}
			}
			errOut := cmd.ErrOrStderr()
			opt.Logf = func(f string, a ...any) { fmt.Fprintf(errOut, "\n"+f+"\n", a...) }
			if !quiet {
				opt.Progress = progressPrinter(errOut)
			}
			if snapMode != "auto" && snapMode != "off" {
				return fmt.Errorf("--snapshot %q: want auto or off", snapMode)
			}
			if snapSpace != "" {
				n, err := parseSize(snapSpace)
				if err != nil {
					return fmt.Errorf("--snapshot-space: %w", err)
				}
				snap.Space = n
			}
			snapOpt.Logf = opt.Logf
			res, err := engine.RunPass(cmd.Context(), engine.PassOptions{
				Disks: []engine.PassDisk{{Sync: opt, Snapshot: snap}}, Snapshot: snapOpt, Live: snapMode == "off", Logf: opt.Logf,
				Started: func(_ int, s *engine.Syncer) {
					if control != "" {
						go watchControl(cmd.Context(), control, loc, s, opt.Logf)
					}
				}})
			if err != nil {
				return err
			}
			p := res.Disks[0]
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "synced %s to disk %s: %s changed, %s on the wire in %s\n",
				opt.Source, opt.DiskID, humanBytes(p.ChangedBytes), humanBytes(p.SentBytes), p.Elapsed.Round(time.Millisecond))
			fmt.Fprintf(out, "verified: %s\n", engine.ProofSummary(p))
			if c := res.Consistency; c.Consistent {
				fmt.Fprintf(out, "point in time: %s\n", c.Note)
			} else {
				fmt.Fprintf(out, "NOT a point in time: %s\n", c.Note)
			}
			fmt.Fprintf(out, "summary: blocks_sent=%d blocks_unchanged=%d blocks_zero=%d blocks_resent=%d blocks_patched=%d blocks_copied=%d changed_bytes=%d copied_bytes=%d plain_bytes=%d wire_bytes=%d reread_bytes=%d trusted_bytes=%d full_read=%t consistent=%t level=%d proof_s=%.3f elapsed_s=%.3f\n",
				p.BlocksSent, p.BlocksSame, p.BlocksZero, p.BlocksResent, p.BlocksPatched, p.BlocksCopied, p.ChangedBytes, p.CopiedBytes, p.PlainBytes, p.SentBytes,
				p.Proof.RereadBytes, p.Proof.TrustedBytes, p.Proof.FullRead, res.Consistency.Consistent, p.Level, p.ProofTime.Seconds(), p.Elapsed.Seconds())
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&opt.Source, "source", os.Getenv("FERRY_SOURCE"), "source block device or image file (FERRY_SOURCE)")
	f.StringVar(&opt.Gateway, "gateway", os.Getenv("FERRY_GATEWAY"), "gateway URL, https://HOST:PORT (FERRY_GATEWAY)")
	f.StringVar(&opt.DiskID, "disk", os.Getenv("FERRY_DISK"), "target disk id (FERRY_DISK)")
	f.StringVar(&opt.Credential, "credential", os.Getenv("FERRY_CREDENTIAL"), "sync credential for the disk (FERRY_CREDENTIAL)")
	f.StringVar(&opt.Fingerprint, "fingerprint", os.Getenv("FERRY_FINGERPRINT"), "SHA-256 fingerprint of the gateway certificate (FERRY_FINGERPRINT)")
	f.StringVar(&rate, "rate", os.Getenv("FERRY_RATE"), "rate cap, e.g. 8Mbps, 20MiB/s (default unlimited) (FERRY_RATE)")
	f.StringVar(&blockSize, "block-size", env("FERRY_BLOCK_SIZE", "1MiB"), "block size, 64KiB to 4MiB, a power of two")
	f.StringVar(&windows, "windows", os.Getenv("FERRY_WINDOWS"), "weekly transfer windows, DAYS HH:MM-HH:MM[=RATE],... (paused outside them) (FERRY_WINDOWS)")
	f.StringVar(&tz, "tz", "", "time zone of --windows (default local time)")
	f.StringVar(&opt.StateDir, "state", env("FERRY_STATE", defaultStateDir()), "directory for the agent's manifests and sync ids (FERRY_STATE)")
	f.DurationVar(&opt.RetryFor, "retry-for", 5*time.Minute, "keep retrying an unreachable or restarting gateway this long")
	f.StringVar(&control, "control", "", "file re-read every 2 s for live rate=/windows= changes")
	f.BoolVar(&quiet, "quiet", false, "no progress output")
	f.StringVar(&snapMode, "snapshot", env("FERRY_SNAPSHOT", "auto"), "auto: read a point-in-time snapshot of the source (filesystems frozen for the instant); off: read it live (FERRY_SNAPSHOT)")
	f.StringVar(&snap.QMP, "qmp", os.Getenv("FERRY_QMP"), "QMP socket of the QEMU or qemu-storage-daemon serving the source (qcow2 overlay snapshot) (FERRY_QMP)")
	f.StringVar(&snap.Node, "qmp-node", os.Getenv("FERRY_QMP_NODE"), "block node name of the source under --qmp (FERRY_QMP_NODE)")
	f.StringVar(&snapSpace, "snapshot-space", "", "copy-on-write space a snapshot may use while it is read (default a tenth of the disk, at least 64MiB)")
	f.StringVar(&snapOpt.Dir, "snapshot-dir", "", "where overlay files and views go (default the temporary directory; not on the source's filesystems)")
	f.StringSliceVar(&snap.Mounts, "freeze", nil, "mount points to freeze for the snapshot (default: those found on the source)")
	f.BoolVar(&opt.VerifyFull, "verify-full", false, "ask the gateway to re-read the whole target for the final proof")
	f.IntVar(&opt.Level, "level", 0, "zstd level 1 (fastest) to 3; default adapts to the link")
	f.IntVar(&opt.Protocol, "protocol", 0, "highest data-path protocol to use (1: whole blocks, no sub-block deltas or content index)")
	f.MarkHidden("protocol")
	return cmd
}

func defaultStateDir() string {
	if d, err := os.UserConfigDir(); err == nil {
		return d + "/ferry/agent-state"
	}
	return ".ferry-agent-state"
}

// watchControl applies rate= and windows= lines from path whenever the file
// changes, so a running sync can be re-throttled without a restart.
func watchControl(ctx context.Context, path string, loc *time.Location, s *engine.Syncer, logf func(string, ...any)) {
	var last time.Time
	t := time.NewTicker(2 * time.Second)
	defer t.Stop()
	for {
		if st, err := os.Stat(path); err == nil && st.ModTime() != last {
			last = st.ModTime()
			b, _ := os.ReadFile(path)
			for _, line := range strings.Split(string(b), "\n") {
				k, v, ok := strings.Cut(strings.TrimSpace(line), "=")
				if !ok {
					continue
				}
				switch k {
				case "rate":
					if r, err := throttle.ParseRate(v); err != nil {
						logf("control %s: %v", path, err)
					} else {
						s.SetRate(r)
						logf("control: rate now %v", r)
					}
				case "windows":
					if v == "" || v == "none" {
						s.SetWindows(nil)
						logf("control: windows removed")
					} else if w, err := throttle.ParseWindows(v, loc); err != nil {
						logf("control %s: %v", path, err)
					} else {
						s.SetWindows(w)
						logf("control: windows now %s", w)
					}
				}
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// parseSize reads 1GiB, 512MiB, 65536.
func parseSize(s string) (int64, error) {
	t := strings.ToLower(strings.TrimSpace(s))
	mult := int64(1)
	for _, u := range []struct {
		suf string
		m   int64
	}{{"tib", 1 << 40}, {"gib", 1 << 30}, {"mib", 1 << 20}, {"kib", 1 << 10}, {"t", 1 << 40}, {"g", 1 << 30}, {"m", 1 << 20}, {"k", 1 << 10}, {"b", 1}} {
		if strings.HasSuffix(t, u.suf) {
			t, mult = strings.TrimSuffix(t, u.suf), u.m
			break
		}
	}
	n, err := strconv.ParseInt(strings.TrimSpace(t), 10, 64)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("%q: want a size such as 1GiB or 512MiB", s)
	}
	return n * mult, nil
}

// parseBlockSize reads 1MiB, 64KiB, 4M, 65536.
func parseBlockSize(s string) (int, error) {
	t := strings.ToLower(strings.TrimSpace(s))
	mult := 1
	for _, u := range []struct {
		suf string
		m   int
	}{{"mib", 1 << 20}, {"kib", 1 << 10}, {"mb", 1 << 20}, {"kb", 1 << 10}, {"m", 1 << 20}, {"k", 1 << 10}, {"b", 1}} {
		if strings.HasSuffix(t, u.suf) {
			t, mult = strings.TrimSuffix(t, u.suf), u.m
			break
		}
	}
	n, err := strconv.Atoi(strings.TrimSpace(t))
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("%q: want a size such as 1MiB or 64KiB", s)
	}
	return n * mult, nil
}

func humanBytes(n int64) string {
	f := float64(n)
	for _, u := range []string{"B", "KiB", "MiB", "GiB", "TiB"} {
		if f < 1024 || u == "TiB" {
			if u == "B" {
				return fmt.Sprintf("%d B", n)
			}
			return fmt.Sprintf("%.1f %s", f, u)
		}
		f /= 1024
	}
	return ""
}

// progressPrinter draws a bar on a terminal and prints a line every 5 s
// otherwise (logs, CI).
func progressPrinter(w io.Writer) func(engine.Progress) {
	tty := false
	if f, ok := w.(*os.File); ok {
		if st, err := f.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 {
			tty = true
		}
	}
	var lastLine time.Time
	return func(p engine.Progress) {
		pct := 0.0
		if p.Total > 0 {
			pct = float64(p.Done) / float64(p.Total) * 100
		}
		stats := fmt.Sprintf("%5.1f%% %s/%s wire %s/s sent %s (%d blocks, %d patched, %d copied, %d same, %d zero) ETA %s [%s]",
			pct, humanBytes(p.Done), humanBytes(p.Total), humanBytes(int64(p.Rate)), humanBytes(p.SentBytes), p.BlocksSent, p.BlocksPatched, p.BlocksCopied, p.BlocksSame, p.BlocksZero,
			p.ETA.Round(time.Second), p.Phase)
		if tty {
			const width = 30
			n := int(pct / 100 * width)
			fmt.Fprintf(w, "\r[%s%s] %s\033[K", strings.Repeat("=", n), strings.Repeat(" ", width-n), stats)
			if p.Phase == "done" {
				fmt.Fprintln(w)
			}
			return
		}
		if p.Phase == "done" || time.Since(lastLine) >= 5*time.Second {
			lastLine = time.Now()
			fmt.Fprintln(w, "progress:", stats)
		}
	}
}

func init() {
	agentCmd.AddCommand(newAgentSyncCmd())
}
