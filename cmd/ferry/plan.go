//go:build !agent

package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/ferry-migrate/ferry/planner"
	"github.com/ferry-migrate/ferry/planner/assess"
)

// planFlags are shared by `ferry plan` and `ferry plan assess`.
type planFlags struct {
	estate, constraints, format, out, start string
}

// load reads the estate and the constraints file the flags name.
func (f *planFlags) load() (*planner.Estate, *planner.Config, error) {
	e, err := loadEstate(f.estate)
	if err != nil {
		return nil, nil, err
	}
	cfg, err := loadConfig(f.constraints, f.start, time.Now)
	if err != nil {
		return nil, nil, err
	}
	return e, cfg, nil
}

func (f *planFlags) bind(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringVar(&f.estate, "estate", env("FERRY_ESTATE", ""), "estate JSON (hosts and connections) (FERRY_ESTATE)")
	fl.StringVar(&f.constraints, "constraints", env("FERRY_CONSTRAINTS", ""), "constraints and rules YAML, e.g. planner/testdata/plan.yaml (FERRY_CONSTRAINTS)")
	fl.StringVar(&f.format, "format", "table", "stdout format: table, json or csv")
	fl.StringVar(&f.out, "out", "", "also write the full result as JSON to this file")
	fl.StringVar(&f.start, "start", "", "plan start date YYYY-MM-DD when the constraints file has none (default: tomorrow)")
}

func loadEstate(path string) (*planner.Estate, error) {
	if path == "" {
		return nil, fmt.Errorf("--estate is required")
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	e, err := planner.DecodeEstate(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if err := planner.ValidateEstate(e); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return e, nil
}

func loadConfig(path, start string, now func() time.Time) (*planner.Config, error) {
	cfg := &planner.Config{}
	if path != "" {
		f, err := os.Open(path)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		if cfg, err = planner.ReadConfig(f); err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
	}
	if cfg.Bandwidth == 0 && path == "" {
		cfg.Bandwidth = 100e6
	}
	if start != "" {
		cfg.Start = start
	}
	if cfg.Start == "" {
		cfg.Start = now().AddDate(0, 0, 1).Format("2006-01-02")
	}
	return cfg, nil
}

func writeJSONFile(path string, v any) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	bw := bufio.NewWriterSize(f, 1<<20)
	enc := json.NewEncoder(bw)
	enc.SetIndent("", " ")
	if err := enc.Encode(v); err != nil {
		f.Close()
		return err
	}
	if err := bw.Flush(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func init() {
	var pf planFlags
	var members bool
	var target string
	planCmd := &cobra.Command{
		Use:   "plan",
		Short: "Plan migration waves offline from an estate file and a constraints file",
		Long: "plan groups hosts into move groups and packs them into ordered waves under the constraints and rules,\n" +
			"prints the waves and writes the full plan as JSON with --out. It exits non-zero when something is infeasible\n" +
			"(after printing the chain of conflicting rules). See docs/planner.md.",
		RunE: func(cmd *cobra.Command, args []string) error {
			e, cfg, err := pf.load()
			if err != nil {
				return err
			}
			if target != "" {
				// Readiness feeds each wave's risk: not-ready hosts count against it.
				a, err := assess.New(assess.Options{Target: target, Link: cfg.Constraints})
				if err != nil {
					return err
				}
				cfg.NotReady = map[string]string{}
				for _, r := range a.Estate(e).Results {
					if r.Status == assess.NotReady {
						cfg.NotReady[r.HostID] = strings.Join(r.Reasons, "; ")
					}
				}
			}
			p, err := planner.Build(e, cfg.Rules, cfg.Constraints)
			if err != nil {
				return err
			}
			if pf.out != "" {
				if err := writeJSONFile(pf.out, p); err != nil {
					return err
				}
			}
			w := bufio.NewWriter(cmd.OutOrStdout())
			defer w.Flush()
			if err := writePlan(w, pf.format, p, members); err != nil {
				return err
			}
			if len(p.Infeasible) > 0 {
				w.Flush()
				return fmt.Errorf("%d infeasible group(s), %d host(s) not placed: fix the rules or constraints named above", len(p.Infeasible), len(p.Unplaced))
			}
			return nil
		},
	}
	pf.bind(planCmd)
	planCmd.Flags().BoolVar(&members, "members", false, "table format: list every host with the reason for its wave")
	planCmd.Flags().StringVar(&target, "target", "", "assess readiness for this target (alibaba or openstack) so not-ready hosts count in each wave's risk")
	planCmd.AddCommand(assessCmd())
	rootCmd.AddCommand(planCmd)
}

func writePlan(w io.Writer, format string, p *planner.Plan, members bool) error {
	switch format {
	case "table":
		return planner.WriteTable(w, p, members)
	case "json":
		enc := json.NewEncoder(w)
		enc.SetIndent("", " ")
		return enc.Encode(p)
	case "csv":
		return planner.WriteCSV(w, p)
	}
	return fmt.Errorf("--format %q: want table, json or csv", format)
}

func assessCmd() *cobra.Command {
	var pf planFlags
	var opt assess.Options
	var families []string
	var seedAfter time.Duration
	cmd := &cobra.Command{
		Use:   "assess",
		Short: "Assess readiness, right-sizing, monthly cost and transfer time per host for a target cloud",
		Long: "assess reads the estate (and, for bandwidth, transfer windows and compression, the constraints file) and prints\n" +
			"one line per host: ready / ready_with_actions / not_ready / unknown with the actions or reasons, as-is and\n" +
			"right-sized instance and monthly cost, and the transfer time with an offline-seeding recommendation.",
		RunE: func(cmd *cobra.Command, args []string) error {
			e, cfg, err := pf.load()
			if err != nil {
				return err
			}
			opt.Link = cfg.Constraints
			opt.Families = families
			opt.OfflineSeedingAfter = seedAfter
			a, err := assess.New(opt)
			if err != nil {
				return err
			}
			rep := a.Estate(e)
			if pf.out != "" {
				if err := writeJSONFile(pf.out, rep); err != nil {
					return err
				}
			}
			w := bufio.NewWriter(cmd.OutOrStdout())
			defer w.Flush()
			switch pf.format {
			case "table":
				return assess.WriteTable(w, rep)
			case "json":
				enc := json.NewEncoder(w)
				enc.SetIndent("", " ")
				return enc.Encode(rep)
			case "csv":
				return assess.WriteCSV(w, rep)
			}
			return fmt.Errorf("--format %q: want table, json or csv", pf.format)
		},
	}
	pf.bind(cmd)
	f := cmd.Flags()
	f.StringVar(&opt.Target, "target", env("FERRY_TARGET", "alibaba"), "target cloud: alibaba or openstack (FERRY_TARGET)")
	f.StringVar(&opt.Region, "region", env("FERRY_REGION", "cn-hangzhou"), "catalog region for prices (FERRY_REGION)")
	f.Float64Var(&opt.Headroom, "headroom", 0.2, "headroom over p95 utilisation when right-sizing (0.2 = 20%)")
	f.StringSliceVar(&families, "families", nil, "restrict right-sizing to these instance families, e.g. g7,c7,r7")
	f.DurationVar(&seedAfter, "offline-seeding-after", 14*24*time.Hour, "recommend offline seeding when one host's transfer takes longer than this")
	return cmd
}
