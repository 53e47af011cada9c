//go:build !agent

package main

import (
	"errors"

	"github.com/spf13/cobra"

	"github.com/ferry-migrate/ferry/internal/app"
)

func init() {
	var cfg serverConfig
	cmd := &cobra.Command{
		Use:   "worker",
		Short: "Run task workers against a shared Redis (scale-out; serve runs workers in-process by default)",
		RunE: func(cmd *cobra.Command, _ []string) error {
			if cfg.RedisURL == "" {
				return errors.New("worker needs FERRY_REDIS_URL (or --redis-url): the embedded queue lives inside `ferry serve`")
			}
			a, err := app.New(cmd.Context(), app.Config{
				DataDir: cfg.DataDir, KeysDir: cfg.KeysDir, DatabaseURL: cfg.databaseURL(), RedisURL: cfg.RedisURL,
				Workers: cfg.Workers, Migrate: false, Log: cfg.logger(), PublicURL: cfg.PublicURL,
				Tracing: cfg.tracing("ferry-worker"),
			})
			if err != nil {
				return err
			}
			defer a.Close()
			if err := a.StartWorkers(); err != nil {
				return err
			}
			a.Log.Info("worker running", "concurrency", cfg.Workers)
			<-cmd.Context().Done()
			a.Log.Info("worker stopping: finishing in-flight tasks")
			return nil
		},
	}
	cfg.bindData(cmd)
	cfg.bindQueue(cmd)
	// A cloud provider's instances (an Alibaba migration's gateway) call
	// back to the control plane at this URL; the worker that prepares the
	// migration writes it into their user data.
	cmd.Flags().StringVar(&cfg.PublicURL, "public-url", env("FERRY_PUBLIC_URL", ""), "URL the control plane is reached at by the instances a cloud provider starts (FERRY_PUBLIC_URL; as given to serve)")
	cmd.Flags().IntVar(&cfg.Workers, "concurrency", envInt("FERRY_WORKERS", 8), "tasks processed at once (FERRY_WORKERS)")
	rootCmd.AddCommand(cmd)
}
