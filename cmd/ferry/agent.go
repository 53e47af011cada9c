package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/ferry-migrate/ferry/discovery"
	"github.com/ferry-migrate/ferry/discovery/agentapi"
	"github.com/ferry-migrate/ferry/discovery/collect"
	"github.com/ferry-migrate/ferry/engine"
)

// discoveryAgentStateDir is where a registered agent keeps its credential
// and spool unless --state says otherwise.
const discoveryAgentStateDir = "/var/lib/ferry-agent"

// agentDrainMax bounds how long a refused agent waits for its syncs in
// flight to stop before it exits.
const agentDrainMax = 20 * time.Second

func init() {
	agentCmd.AddCommand(agentRegisterCommand(), agentInventoryCommand(), agentRunCommand())
}

func agentHostInfo(ctx context.Context, ident hostIdentity) agentapi.HostInfo {
	inv, err := (&collect.Collector{}).Inventory(ctx)
	if err != nil {
		h, _ := os.Hostname()
		inv = discovery.Inventory{Hostname: h}
	}
	ident.inventory(&inv)
	return hostInfoOf(inv)
}

// hostInfoOf is what an agent registers of the host its inventory names.
func hostInfoOf(inv discovery.Inventory) agentapi.HostInfo {
	return agentapi.HostInfo{Hostname: inv.Hostname, MachineID: inv.MachineID, BIOSUUID: inv.BIOSUUID,
		OS: inv.OS.PrettyName, Arch: inv.Arch, AgentVersion: version}
}

func agentRegisterCommand() *cobra.Command {
	var server, token, state string
	var force bool
	var ident hostIdentity
	cmd := &cobra.Command{
		Use:   "register --server URL --token T",
		Short: "Exchange a registration token for this agent's own credential (stored 0600 in the state dir)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if server == "" || token == "" {
				return fmt.Errorf("--server and --token are required")
			}
			if err := ident.validate(); err != nil {
				return err
			}
			ctx := cmd.Context()
			client := &agentapi.Client{Server: server}
			st := agentapi.State{Dir: state}
			var id agentapi.Identity
			err := agentapi.Retry(ctx, agentapi.Backoff{Base: time.Second, Max: 30 * time.Second}, 5, nil, func() error {
				var err error
				id, err = agentapi.Register(ctx, client, st, token, agentHostInfo(ctx, ident), time.Now(), force)
				return err
			})
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "registered as agent %s (tenant %s); credential saved in %s\n", id.AgentID, id.TenantID, state)
			return nil
		},
	}
	cmd.Flags().StringVar(&server, "server", "", "control plane URL, e.g. https://ferry.example.com")
	cmd.Flags().StringVar(&token, "token", "", "registration token (frt_…) from the Ferry UI")
	cmd.Flags().StringVar(&state, "state", discoveryAgentStateDir, "state directory")
	cmd.Flags().BoolVar(&force, "force", false, "replace an existing registration in the state directory")
	ident.addFlags(cmd)
	return cmd
}

func agentInventoryCommand() *cobra.Command {
	var root string
	var stats bool
	var ident hostIdentity
	cmd := &cobra.Command{
		Use:   "inventory",
		Short: "Print, as JSON and without contacting any server, exactly what the agent would send about this host",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := ident.validate(); err != nil {
				return err
			}
			inv, err := ident.wrap((&collect.Collector{Root: root}).Inventory)(cmd.Context())
			if err != nil {
				return err
			}
			enc := json.NewEncoder(cmd.OutOrStdout())
			enc.SetIndent("", "  ")
			if err := enc.Encode(inv); err != nil {
				return err
			}
			if stats {
				// The cost of the pass itself, so an owner can check the
				// agent is as quiet as promised.
				var ru syscall.Rusage
				_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
				cpu := time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
				fmt.Fprintf(cmd.ErrOrStderr(), "inventory pass: cpu %v, max rss %.1f MiB\n", cpu.Round(time.Millisecond), float64(ru.Maxrss)/1024)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&root, "root", "/", "read /proc, /sys and /etc under this directory (for images and tests)")
	cmd.Flags().BoolVar(&stats, "stats", false, "print the CPU time and peak RSS of the pass to stderr")
	ident.addFlags(cmd)
	return cmd
}

func agentRunCommand() *cobra.Command {
	var server, state string
	var once bool
	var every time.Duration
	var spoolMax int64
	var diskSourceFlags []string
	var hooks string
	var ident hostIdentity
	cmd := &cobra.Command{
		Use:   "run",
		Short: "Run the agent: inventory, utilisation samples, heartbeats and a long-poll for commands (only ever calls up)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			st := agentapi.State{Dir: state}
			id, cred, err := st.Load()
			if err != nil {
				return err
			}
			if server == "" {
				server = id.Server
			}
			log := slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), nil)).With("agent", id.AgentID)
			diskSources, err := parseDiskSources(diskSourceFlags)
			if err != nil {
				return err
			}
			if err := ident.validate(); err != nil {
				return err
			}
			col := &collect.Collector{}
			sampler := &collect.Sampler{Collector: col}
			r := &agentapi.Runner{
				Client:    &agentapi.Client{Server: server, Credential: cred},
				Spool:     &agentapi.Spool{Dir: st.SpoolDir(), MaxBytes: spoolMax},
				Inventory: ident.wrap(withDiskSources(col.Inventory, diskSources)),
				Sample:    sampler.Sample,
				Connections: func() ([]discovery.Connection, error) {
					_, conns, _, err := col.Sockets()
					return conns, err
				},
				Version:     version,
				Logger:      log,
				Backoff:     agentapi.Backoff{Base: 5 * time.Second, Max: 10 * time.Minute},
				SampleEvery: every,
			}
			runner := &engine.CommandRunner{Server: server, StateDir: filepath.Join(state, "sync"), Sources: diskSources, HooksDir: hooks, Log: log,
				Report: func(res engine.CommandResult) {
					// The outcome goes to the agent's log; the control plane
					// learns a pass's outcome from its gateway.
					level := slog.LevelInfo
					if !res.OK {
						level = slog.LevelError
					}
					log.Log(ctx, level, "command result", "type", res.Type, "migration", res.MigrationID, "pass", res.Pass,
						"disk", res.Disk, "hook", res.Hook, "stage", res.Stage, "ok", res.OK, "error", res.Error, "output", res.Output)
				}}
			r.OnCommand = func(c agentapi.Command) { runner.Handle(ctx, c.ID, c.Type, c.Payload) }
			if once {
				// Two readings make one sample; a second between them is
				// enough for a snapshot.
				_, _, _ = sampler.Sample()
				if err := agentapi.SleepContext(ctx, time.Second); err != nil {
					return err
				}
				if err := r.Once(ctx, true); err != nil {
					return err
				}
				fmt.Fprintln(cmd.OutOrStdout(), "inventory, samples and heartbeat sent")
				return nil
			}
			log.Info("agent running", "server", server, "sample_every", every)
			err = r.Run(ctx)
			if errors.Is(err, agentapi.ErrTokenRevoked) || errors.Is(err, agentapi.ErrUnauthenticated) {
				// No new commands; a sync in flight ends at its gateway,
				// which refuses this credential within seconds, and says
				// so in this log before the agent exits.
				log.Error("the control plane refused this agent's credential; waiting for work in progress to end", "err", err)
				done := make(chan struct{})
				go func() { runner.Wait(); close(done) }()
				select {
				case <-done:
				case <-time.After(agentDrainMax):
				case <-ctx.Done():
				}
			}
			return err
		},
	}
	cmd.Flags().StringVar(&server, "server", "", "control plane URL (default: the one registered with)")
	cmd.Flags().StringVar(&state, "state", discoveryAgentStateDir, "state directory")
	cmd.Flags().BoolVar(&once, "once", false, "send one inventory, sample batch and heartbeat, then exit")
	cmd.Flags().DurationVar(&every, "sample-every", time.Minute, "utilisation sampling interval")
	cmd.Flags().Int64Var(&spoolMax, "spool-max-bytes", 16<<20, "disk space for samples buffered while the server is unreachable")
	cmd.Flags().StringVar(&hooks, "hooks", os.Getenv("FERRY_HOOKS"), "directory of hook scripts the control plane may run on this host (before a cutover's final pass, for instance); empty runs none (FERRY_HOOKS)")
	ident.addFlags(cmd)
	cmd.Flags().StringArrayVar(&diskSourceFlags, "disk-source", nil, "replicate image file (or device) PATH as this host's disk NAME; repeatable; when given, only these disks are reported and synced (NAME=PATH)")
	return cmd
}
