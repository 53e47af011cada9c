//go:build !agent

package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/ferry-migrate/ferry/internal/database"
)

func init() {
	var cfg serverConfig
	var status bool
	cmd := &cobra.Command{
		Use:   "migrate",
		Short: "Apply pending database migrations (serve does this on start unless --no-migrate)",
		RunE: func(cmd *cobra.Command, _ []string) error {
			db, err := database.Open(cmd.Context(), cfg.databaseURL(), false)
			if err != nil {
				return err
			}
			defer db.Close()
			if status {
				p, err := db.Pending(cmd.Context())
				if err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "%d pending migration(s) %v\n", len(p), p)
				return nil
			}
			done, err := db.Migrate(cmd.Context())
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "applied %d migration(s) %v\n", len(done), done)
			return nil
		},
	}
	cfg.bindData(cmd)
	cmd.Flags().BoolVar(&status, "status", false, "only list pending migrations")
	rootCmd.AddCommand(cmd)
}
