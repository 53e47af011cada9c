//go:build !agent

package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/ferry-migrate/ferry/discovery"
	"github.com/ferry-migrate/ferry/discovery/importer"
	"github.com/ferry-migrate/ferry/discovery/vcenter"
)

func init() {
	cmd := importCommand()
	cmd.AddCommand(importRVToolsSampleCommand(), importVCenterCommand())
	rootCmd.AddCommand(cmd)
}

// importOutput is what a dry run prints.
type importOutput struct {
	Estate        discovery.Estate           `json:"estate"`
	Hosts         []discovery.Host           `json:"hosts"`
	Connections   []discovery.HostConnection `json:"connections"`
	Errors        []discovery.RowError       `json:"errors"`
	ErrorsDropped int                        `json:"errors_dropped,omitempty"`
	Files         []importer.FileSummary     `json:"files"`
	Refused       []string                   `json:"refused,omitempty"`
}

func importCommand() *cobra.Command {
	var limits importer.Limits
	var estateOnly bool
	cmd := &cobra.Command{
		Use:   "import FILE...",
		Short: "Dry-run an import without a tenant or database: print the normalised hosts and per-row errors as JSON",
		Long: "Reads Ferry CSV templates (hosts.csv, connections.csv), RVTools exports (vInfo/vDisk/vPartition/vNetwork\n" +
			"CSV files or one .xlsx), ss -tanp / netstat -anp captures (one file per host) and estate JSON, merges\n" +
			"them into hosts by identity and prints the result. Nothing is stored.",
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			im := importer.New(limits, nil)
			var refused []string
			for _, p := range args {
				if err := im.AddFile(p); err != nil {
					refused = append(refused, err.Error())
				}
			}
			res := im.Finish()
			norm := discovery.Normalise(res.Records, res.Connections)
			enc := json.NewEncoder(cmd.OutOrStdout())
			enc.SetIndent("", "  ")
			var err error
			if estateOnly {
				err = enc.Encode(norm.ToEstate())
			} else {
				err = enc.Encode(importOutput{Estate: norm.ToEstate(), Hosts: norm.Hosts, Connections: norm.Connections,
					Errors: res.Errors, ErrorsDropped: res.ErrorsDropped, Files: res.Files, Refused: refused})
			}
			if err != nil {
				return err
			}
			if len(refused) > 0 {
				return fmt.Errorf("%d file(s) refused: %s", len(refused), strings.Join(refused, "; "))
			}
			return nil
		},
	}
	cmd.Flags().Int64Var(&limits.MaxBytes, "max-bytes", importer.DefaultLimits.MaxBytes, "refuse a file larger than this")
	cmd.Flags().IntVar(&limits.MaxRows, "max-rows", importer.DefaultLimits.MaxRows, "refuse a file with more rows than this")
	cmd.Flags().IntVar(&limits.MaxErrors, "max-errors", importer.DefaultLimits.MaxErrors, "row errors listed before the rest are only counted")
	cmd.Flags().BoolVar(&estateOnly, "estate", false, "print only the estate JSON the planner reads")
	return cmd
}

func importRVToolsSampleCommand() *cobra.Command {
	var vms int
	var out string
	var seed uint64
	cmd := &cobra.Command{
		Use:   "rvtools-sample --vms N --out FILE.xlsx|DIR",
		Short: "Write a synthetic RVTools export (one .xlsx, or RVTools_tab*.csv files in a directory) for trials and benchmarks",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if strings.HasSuffix(strings.ToLower(out), ".xlsx") {
				return importer.GenerateRVToolsXLSX(out, vms, seed)
			}
			if err := os.MkdirAll(out, 0o755); err != nil {
				return err
			}
			paths, err := importer.GenerateRVToolsCSV(filepath.Clean(out), vms, seed)
			if err == nil {
				fmt.Fprintln(cmd.OutOrStdout(), strings.Join(paths, "\n"))
			}
			return err
		},
	}
	cmd.Flags().IntVar(&vms, "vms", 20000, "number of VMs")
	cmd.Flags().StringVar(&out, "out", "rvtools.xlsx", "an .xlsx file, or a directory for CSV sheets")
	cmd.Flags().Uint64Var(&seed, "seed", 1, "random seed (same seed, same export)")
	return cmd
}

func importVCenterCommand() *cobra.Command {
	var url, user string
	var insecure bool
	cmd := &cobra.Command{
		Use:   "vcenter --url https://vc/sdk --user U",
		Short: "Dry-run agentless discovery from vCenter/ESXi (password from FERRY_VCENTER_PASSWORD); prints normalised hosts as JSON",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			c, err := vcenter.Connect(ctx, url, user, os.Getenv("FERRY_VCENTER_PASSWORD"), insecure)
			if err != nil {
				return err
			}
			defer c.Logout(ctx)
			recs, err := vcenter.Discover(ctx, c.Client, c.URL().Host, time.Now())
			if err != nil {
				return err
			}
			norm := discovery.Normalise(recs, nil)
			enc := json.NewEncoder(cmd.OutOrStdout())
			enc.SetIndent("", "  ")
			return enc.Encode(importOutput{Estate: norm.ToEstate(), Hosts: norm.Hosts, Connections: norm.Connections,
				Errors: []discovery.RowError{}, Files: []importer.FileSummary{}})
		},
	}
	cmd.Flags().StringVar(&url, "url", "", "vCenter or ESXi SDK URL")
	cmd.Flags().StringVar(&user, "user", "", "user name")
	cmd.Flags().BoolVar(&insecure, "insecure", false, "skip TLS certificate verification (lab vCenters)")
	return cmd
}
