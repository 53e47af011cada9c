//go:build !agent

package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/ferry-migrate/ferry/ent/tenant"
	"github.com/ferry-migrate/ferry/internal/audit"
	"github.com/ferry-migrate/ferry/internal/database"
	"github.com/ferry-migrate/ferry/internal/viewer"
)

func init() {
	var cfg serverConfig
	var slug string
	auditCmd := &cobra.Command{Use: "audit", Short: "Check the audit log"}
	verify := &cobra.Command{
		Use:   "verify",
		Short: "Walk each tenant's audit hash chain and report gaps and altered events (exit status 1 if any)",
		RunE: func(cmd *cobra.Command, _ []string) error {
			db, err := database.Open(cmd.Context(), cfg.databaseURL(), false)
			if err != nil {
				return err
			}
			defer db.Close()
			sys := viewer.SystemContext(cmd.Context())
			q := db.Client.Tenant.Query()
			if slug != "" {
				q = q.Where(tenant.Slug(slug))
			}
			ts, err := q.All(sys)
			if err != nil {
				return err
			}
			if len(ts) == 0 {
				return fmt.Errorf("no tenant %q", slug)
			}
			broken := 0
			out := cmd.OutOrStdout()
			for _, t := range ts {
				rep, err := audit.Verify(cmd.Context(), db.Client, t.ID)
				if err != nil {
					return err
				}
				status := "ok"
				if !rep.OK() {
					status = fmt.Sprintf("%d problem(s)", len(rep.Problems))
					broken++
				}
				fmt.Fprintf(out, "%s: %d chained events (head seq %d), %d from before the chain: %s\n", t.Slug, rep.Events, rep.HeadSeq, rep.Legacy, status)
				for _, p := range rep.Problems {
					fmt.Fprintf(out, "  %s\n", p)
				}
			}
			if broken > 0 {
				return fmt.Errorf("the audit chain of %d tenant(s) is broken", broken)
			}
			return nil
		},
	}
	cfg.bindData(verify)
	verify.Flags().StringVar(&slug, "tenant", "", "only this tenant (its slug)")
	auditCmd.AddCommand(verify)
	rootCmd.AddCommand(auditCmd)
}
