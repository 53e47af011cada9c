//go:build !agent

package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/ferry-migrate/ferry/planner/estate"
)

var estateCmd = &cobra.Command{
	Use:   "estate",
	Short: "Work with estate files (hosts and connections)",
}

func init() {
	var hosts int
	var seed uint64
	var labels float64
	var format, out string
	gen := &cobra.Command{
		Use:   "generate",
		Short: "Write a realistic synthetic estate (applications, shared services, cycles) for tests, demos and benchmarks",
		Long: "generate writes a deterministic synthetic estate: the same --hosts and --seed always give the same bytes.\n" +
			"JSON goes to --out (a file) or stdout; CSV writes hosts.csv and connections.csv into --out (a directory).",
		RunE: func(cmd *cobra.Command, args []string) error {
			if hosts < 1 {
				return fmt.Errorf("--hosts must be at least 1, got %d", hosts)
			}
			if labels < 0 || labels > 1 {
				return fmt.Errorf("--labels %g: want a share between 0 (no labels) and 1 (every application labelled)", labels)
			}
			opt := estate.Options{Hosts: hosts, Seed: seed, Labels: labels}
			if labels == 0 {
				opt.Labels = -1
			}
			e, _ := estate.Generate(opt)
			switch format {
			case "json":
				var w io.Writer = cmd.OutOrStdout()
				if out != "" && out != "-" {
					f, err := os.Create(out)
					if err != nil {
						return err
					}
					defer f.Close()
					bw := bufio.NewWriterSize(f, 1<<20)
					defer bw.Flush()
					w = bw
				}
				enc := json.NewEncoder(w)
				return enc.Encode(e)
			case "csv":
				if out == "" {
					return fmt.Errorf("--format csv needs --out DIR (it writes DIR/hosts.csv and DIR/connections.csv)")
				}
				if err := os.MkdirAll(out, 0o755); err != nil {
					return err
				}
				hf, err := os.Create(filepath.Join(out, "hosts.csv"))
				if err != nil {
					return err
				}
				defer hf.Close()
				cf, err := os.Create(filepath.Join(out, "connections.csv"))
				if err != nil {
					return err
				}
				defer cf.Close()
				hb, cb := bufio.NewWriter(hf), bufio.NewWriter(cf)
				if err := estate.WriteCSV(e, hb, cb); err != nil {
					return err
				}
				if err := hb.Flush(); err != nil {
					return err
				}
				return cb.Flush()
			default:
				return fmt.Errorf("--format %q: want json or csv", format)
			}
		},
	}
	f := gen.Flags()
	f.IntVar(&hosts, "hosts", envInt("FERRY_ESTATE_HOSTS", 200), "number of hosts (FERRY_ESTATE_HOSTS)")
	f.Uint64Var(&seed, "seed", 1, "random seed; the same seed gives the same estate")
	f.Float64Var(&labels, "labels", 0.7, "share of applications whose hosts carry their label (0 = none: the planner must infer them)")
	f.StringVar(&format, "format", "json", "json or csv")
	f.StringVar(&out, "out", "", "output file (json) or directory (csv); default stdout for json")
	estateCmd.AddCommand(gen)
	rootCmd.AddCommand(estateCmd)
}
