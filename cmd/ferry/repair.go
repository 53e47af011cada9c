//go:build !agent

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/ferry-migrate/ferry/engine/adapt"
	"github.com/ferry-migrate/ferry/engine/cloud"
	"github.com/ferry-migrate/ferry/engine/cloud/alibaba"
	"github.com/ferry-migrate/ferry/engine/cloud/inspect"
	"github.com/spf13/cobra"
)

func newRepairCmd() *cobra.Command {
	var serials []string
	var root, report, token, bootMode string
	var wait time.Duration
	cmd := &cobra.Command{
		Use:    "repair",
		Short:  "Inspect and adapt a launch's disks on a cloud repair instance, and report upward (started by a cloud provider)",
		Hidden: true,
		Long: `Runs on the repair instance a cloud provider starts for a launch, with the
disks made from the recovery points attached: waits for each (by its ECS
serial, /dev/disk/by-id/virtio-SERIAL under --device-root), inspects their
partition tables and filesystems, adapts the guest to the cloud's virtual
hardware (the same adaptation as local launches: virtio drivers in the
initramfs, fstab and boot loader by UUID, DHCP) and posts the result to
--report with the one-time --token.`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(serials) == 0 || report == "" || token == "" {
				return errors.New("--disk (at least one), --report and --token are required")
			}
			ctx := cmd.Context()
			rep := repair(ctx, root, serials, wait)
			rep.Token = token
			fmt.Fprintf(cmd.OutOrStdout(), "ferry repair: %d checks, os %q, %d changes, error %q\n", len(rep.Checks), rep.OS, len(rep.Changes), rep.Error)
			return postReport(ctx, strings.TrimRight(report, "/")+"/report", rep)
		},
	}
	f := cmd.Flags()
	f.StringSliceVar(&serials, "disk", nil, "ECS serial of a launch disk, in attach order (boot disk first); repeat")
	f.StringVar(&root, "device-root", "", "where /dev/disk/by-id is (empty: the real one)")
	f.StringVar(&report, "report", "", "the provider's callback URL")
	f.StringVar(&token, "token", "", "the one-time ticket of the report")
	f.StringVar(&bootMode, "boot-mode", "bios", "the firmware the instance boots with (bios or uefi)")
	f.DurationVar(&wait, "wait", 10*time.Minute, "how long to wait for the disks to be attached")
	return cmd
}

// repair inspects and adapts; failures become the report's checks and
// Error, never an early exit, so the control plane always hears why.
func repair(ctx context.Context, root string, serials []string, wait time.Duration) alibaba.RepairReport {
	var rep alibaba.RepairReport
	paths := make([]string, len(serials))
	deadline := time.Now().Add(wait)
	for i, s := range serials {
		paths[i] = filepath.Join(root, "/dev/disk/by-id", "virtio-"+s)
		for {
			if _, err := os.Stat(paths[i]); err == nil {
				break
			}
			if time.Now().After(deadline) || ctx.Err() != nil {
				rep.Error = fmt.Sprintf("disk %s (%s) was not attached within %s", s, paths[i], wait)
				return rep
			}
			time.Sleep(500 * time.Millisecond) // the provider attaches the disks after the instance starts
		}
	}
	linux := false
	for i, p := range paths {
		cs, fs := diskChecks(p, serials[i])
		rep.Checks = append(rep.Checks, cs...)
		for _, f := range fs {
			switch f {
			case "ext2", "ext3", "ext4", "xfs", "btrfs":
				linux = true
			}
		}
	}
	if !linux {
		rep.Checks = append(rep.Checks, cloud.Check{Name: "adaptation", Passed: true, Skipped: true,
			Message: "no Linux filesystem on the disks: nothing to adapt"})
		return rep
	}
	res, err := adapt.Linux(ctx, paths, adapt.Options{})
	var se *adapt.StepError
	switch {
	case err == nil:
		rep.OS = res.OS.PrettyName
		for _, c := range res.Changes {
			rep.Changes = append(rep.Changes, fmt.Sprintf("%s %s: %s", c.Step, c.File, c.Action))
		}
		rep.Checks = append(rep.Checks, cloud.Check{Name: "adaptation", Passed: true,
			Message: fmt.Sprintf("%s on %s: %d changes in %s", res.OS.PrettyName, res.Root, len(res.Changes), res.Duration.Round(time.Millisecond))})
	case errors.As(err, &se) && se.Step == adapt.StepDetect && res.OS.Family == "":
		// Data disks only, or filesystems without a guest on them.
		rep.Checks = append(rep.Checks, cloud.Check{Name: "adaptation", Passed: true, Skipped: true, Message: "no operating system on the disks: " + err.Error()})
	default:
		rep.Checks = append(rep.Checks, cloud.Check{Name: "adaptation", Message: err.Error()})
		rep.Error = err.Error()
	}
	return rep
}

// diskChecks inspects one disk: its partition table and a filesystem on
// every partition that should hold one. It returns the checks (Disk: the
// serial) and the filesystems found.
func diskChecks(path, serial string) ([]cloud.Check, []string) {
	f, err := os.Open(path)
	if err != nil {
		return []cloud.Check{{Name: "partition-table", Disk: serial, Message: err.Error()}}, nil
	}
	defer f.Close()
	size, err := f.Seek(0, io.SeekEnd)
	if err != nil {
		return []cloud.Check{{Name: "partition-table", Disk: serial, Message: err.Error()}}, nil
	}
	rep, err := inspect.Disk(f, size)
	var cs []cloud.Check
	var fss []string
	switch {
	case err != nil:
		cs = append(cs, cloud.Check{Name: "partition-table", Message: err.Error()})
	case rep.Table == inspect.TableNone && rep.Filesystem == "":
		cs = append(cs, cloud.Check{Name: "partition-table", Message: "no MBR or GPT partition table and no filesystem on the raw disk"})
	case rep.Table == inspect.TableNone:
		fss = append(fss, rep.Filesystem)
		cs = append(cs, cloud.Check{Name: "partition-table", Passed: true, Message: "no partition table: the whole disk is one filesystem"},
			cloud.Check{Name: "filesystem disk", Passed: true, Message: rep.Filesystem})
	default:
		cs = append(cs, cloud.Check{Name: "partition-table", Passed: len(rep.Partitions) > 0,
			Message: fmt.Sprintf("%s with %d partitions", rep.Table, len(rep.Partitions))})
		for _, p := range rep.Partitions {
			if p.NoFilesystem {
				continue
			}
			c := cloud.Check{Name: fmt.Sprintf("filesystem p%d", p.Index)}
			if p.Filesystem != "" {
				fss = append(fss, p.Filesystem)
				c.Passed, c.Message = true, p.Filesystem
				if p.Label != "" {
					c.Message += fmt.Sprintf(" (label %q)", p.Label)
				}
			} else {
				c.Message = fmt.Sprintf("partition %d (type %s %s, %d bytes at byte %d): no recognised filesystem superblock",
					p.Index, p.Type, p.TypeName, p.Size, p.Start)
			}
			cs = append(cs, c)
		}
	}
	for i := range cs {
		cs[i].Disk = serial
	}
	return cs, fss
}

// postReport sends the report, retrying a control plane that is not there
// yet; a refusal (the ticket spent or the launch discarded) ends it.
func postReport(ctx context.Context, url string, rep alibaba.RepairReport) error {
	body, _ := json.Marshal(rep)
	wait := time.Second
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
		if err != nil {
			return err
		}
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
			resp.Body.Close()
			switch {
			case resp.StatusCode == http.StatusOK:
				return nil
			case resp.StatusCode >= 400 && resp.StatusCode < 500:
				return fmt.Errorf("report refused (%s): %s", resp.Status, strings.TrimSpace(string(b)))
			}
			err = fmt.Errorf("%s", resp.Status)
		}
		fmt.Fprintf(os.Stderr, "ferry repair: report: %v; again in %s\n", err, wait)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(wait):
		}
		wait = min(2*wait, time.Minute)
	}
}

func init() {
	rootCmd.AddCommand(newRepairCmd())
}
