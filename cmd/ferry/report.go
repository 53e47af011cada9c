//go:build !agent

package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/ferry-migrate/ferry/ent"
	"github.com/ferry-migrate/ferry/ent/tenant"
	"github.com/ferry-migrate/ferry/graph"
	"github.com/ferry-migrate/ferry/graph/model"
	"github.com/ferry-migrate/ferry/internal/database"
	"github.com/ferry-migrate/ferry/internal/planning"
	"github.com/ferry-migrate/ferry/internal/reporting"
	"github.com/ferry-migrate/ferry/internal/viewer"
	"github.com/ferry-migrate/ferry/planner/assess"
	"github.com/ferry-migrate/ferry/report"
)

// tenantContext opens the server's database and returns a context acting
// as the named tenant (by slug), as the server would for its users.
func tenantContext(ctx context.Context, cfg *serverConfig, slug string) (*database.DB, context.Context, error) {
	db, err := database.Open(ctx, cfg.databaseURL(), false)
	if err != nil {
		return nil, nil, err
	}
	t, err := db.Client.Tenant.Query().Where(tenant.Slug(slug)).Only(viewer.SystemContext(ctx))
	if ent.IsNotFound(err) {
		db.Close()
		return nil, nil, fmt.Errorf("--tenant %q: no such tenant (slugs are shown on the Administration screen)", slug)
	}
	if err != nil {
		db.Close()
		return nil, nil, err
	}
	return db, viewer.TenantContext(viewer.SystemContext(ctx), t.ID), nil
}

func init() {
	var cfg serverConfig
	var slug, format, out, lang, target, assumptions string
	var planID, wave int
	cmd := &cobra.Command{
		Use:   "report --format xlsx|pdf|html|jira --out FILE",
		Short: "Write the assessment report (XLSX workbook, PDF or HTML with charts and business case) or a wave's Jira CSV from the server's database",
		Long: "report reads a tenant's estate, assessment and plan from the database (the same rows the UI shows) and writes\n" +
			"the workbook (sheets Summary, Inventory, Readiness, Sizing & Cost, Dependencies, Move groups, Waves, Schedule),\n" +
			"the printable report (HTML, or PDF through headless Chromium) or one wave's Jira issue-import CSV. Rows stream:\n" +
			"memory stays bounded at 20,000 hosts. See docs/reports.md.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			db, ctx, err := tenantContext(cmd.Context(), &cfg, slug)
			if err != nil {
				return err
			}
			defer db.Close()
			var in model.BusinessCaseAssumptionsInput
			if assumptions != "" {
				b, err := os.ReadFile(assumptions)
				if err != nil {
					return err
				}
				if err := json.Unmarshal(b, &in); err != nil {
					return fmt.Errorf("%s: %w", assumptions, err)
				}
			}
			a := graph.AssumptionsOf(&in)
			if err := a.Validate(); err != nil {
				return err
			}
			src, err := reporting.New(ctx, db.Client, target, planID, &a, time.Now)
			if err != nil {
				return err
			}
			var w io.Writer = cmd.OutOrStdout()
			var f *os.File
			if out != "" && out != "-" {
				if f, err = os.Create(out); err != nil {
					return err
				}
				defer f.Close()
				w = f
			}
			bw := bufio.NewWriterSize(w, 1<<20)
			switch format {
			case "xlsx":
				err = report.WriteXLSX(ctx, bw, src, lang)
			case "pdf":
				err = report.WritePDF(ctx, bw, src, lang)
			case "html":
				err = report.WriteHTML(ctx, bw, src, lang)
			case "jira":
				if src.Plan() == nil {
					return fmt.Errorf("no plan to export: generate one first")
				}
				err = report.WriteJiraCSV(ctx, bw, src, wave, lang)
			default:
				return fmt.Errorf("--format %q: want xlsx, pdf, html or jira", format)
			}
			if err != nil {
				return err
			}
			if err := bw.Flush(); err != nil {
				return err
			}
			if f != nil {
				return f.Close()
			}
			return nil
		},
	}
	cfg.bindData(cmd)
	fl := cmd.Flags()
	fl.StringVar(&slug, "tenant", "default", "tenant slug")
	fl.StringVar(&format, "format", "xlsx", "xlsx, pdf, html or jira")
	fl.StringVar(&out, "out", "", "file to write (default stdout)")
	fl.StringVar(&lang, "lang", "en", "en or zh-CN")
	fl.StringVar(&target, "target", "alibaba", "assessment target: alibaba or openstack")
	fl.IntVar(&planID, "plan", 0, "plan id (default: the newest ready plan)")
	fl.IntVar(&wave, "wave", 1, "jira: the wave to export")
	fl.StringVar(&assumptions, "assumptions", "", "business-case assumptions as a JSON file (keys as in the businessCase query)")
	rootCmd.AddCommand(cmd)

	var ccfg serverConfig
	var cslug, source, date, currency string
	catalog := &cobra.Command{Use: "catalog", Short: "The price list assessments use"}
	imp := &cobra.Command{
		Use:   "import FILE.csv --source TEXT --date YYYY-MM-DD",
		Short: "Import a price list (CSV) for a tenant: the next assessment prices with it",
		Long: "The CSV has a header with region, monthly (or hourly), and for instance rows name, vcpus, memory_gib\n" +
			"(family, arch, uefi optional); kind=disk rows price storage per GiB-month. See docs/planner.md.",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			f, err := os.Open(args[0])
			if err != nil {
				return err
			}
			defer f.Close()
			if source == "" {
				source = "price list imported from " + args[0]
			}
			cat, err := assess.ParseCatalogCSV(f, "alibaba", source, date, currency)
			if err != nil {
				return fmt.Errorf("%s: %w", args[0], err)
			}
			db, ctx, err := tenantContext(cmd.Context(), &ccfg, cslug)
			if err != nil {
				return err
			}
			defer db.Close()
			row, err := planning.ImportCatalog(ctx, db.Client, cat, "ferry catalog import")
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "imported %d instance types in %s (prices of %s) as price list %d for tenant %s; run the assessment again to use it\n",
				cat.Types(), strings.Join(cat.Regions(), ", "), cat.Date, row.ID, cslug)
			return nil
		},
	}
	ccfg.bindData(imp)
	imp.Flags().StringVar(&cslug, "tenant", "default", "tenant slug")
	imp.Flags().StringVar(&source, "source", "", "where the prices come from (printed with every cost)")
	imp.Flags().StringVar(&date, "date", time.Now().Format("2006-01-02"), "the day the prices were taken")
	imp.Flags().StringVar(&currency, "currency", "USD", "currency of the prices")
	catalog.AddCommand(imp)
	rootCmd.AddCommand(catalog)
}
