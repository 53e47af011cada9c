//go:build !agent

package main

import (
	"fmt"
	"net"

	"github.com/spf13/cobra"

	"github.com/ferry-migrate/ferry/frontend"
	"github.com/ferry-migrate/ferry/internal/app"
)

func init() {
	var cfg serverConfig
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the Ferry control plane: API, web UI and (by default) in-process workers",
		Long: `Run the Ferry control plane.

With no settings it uses embedded defaults: a SQLite database under ./var, an
in-process Redis-protocol queue, and serves the web UI on 127.0.0.1:8080. On
first start it creates the default tenant and its first account, printing a
one-time password unless FERRY_ADMIN_PASSWORD is set.

Every flag can also be set with the FERRY_* variable named in its help.`,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log := cfg.logger()
			a, err := app.New(cmd.Context(), app.Config{
				DataDir: cfg.DataDir, DatabaseURL: cfg.databaseURL(), RedisURL: cfg.RedisURL,
				PublicURL: cfg.PublicURL, AdminEmail: cfg.AdminEmail, AdminPassword: cfg.AdminPassword, Workers: cfg.Workers,
				Migrate: !cfg.NoMigrate, SecureCookies: cfg.SecureCookies, UI: frontend.FS(), Log: log,
			})
			if err != nil {
				return err
			}
			defer a.Close()
			if err := a.StartWorkers(); err != nil {
				return err
			}
			ln, err := net.Listen("tcp", cfg.Addr)
			if err != nil {
				return fmt.Errorf("listen on %s: %w", cfg.Addr, err)
			}
			queue := "embedded in-process queue"
			if !a.Queue.Embedded {
				queue = "redis"
			}
			log.Info("ferry is serving", "url", "http://"+ln.Addr().String(), "database", cfg.databaseURL(), "queue", queue, "workers", cfg.Workers, "version", version)
			fmt.Fprintf(cmd.ErrOrStderr(), "Ferry is running at http://%s\n", ln.Addr())
			return a.Serve(cmd.Context(), ln)
		},
	}
	cfg.bindData(cmd)
	cfg.bindQueue(cmd)
	f := cmd.Flags()
	f.StringVar(&cfg.Addr, "addr", env("FERRY_ADDR", "127.0.0.1:8080"), "address to listen on (FERRY_ADDR)")
	f.StringVar(&cfg.PublicURL, "public-url", env("FERRY_PUBLIC_URL", ""), "URL agents reach this server at, shown in install commands; default: the request's host (FERRY_PUBLIC_URL)")
	f.StringVar(&cfg.AdminEmail, "admin-email", env("FERRY_ADMIN_EMAIL", "admin@ferry.local"), "email of the first account, created on an empty database (FERRY_ADMIN_EMAIL)")
	f.StringVar(&cfg.AdminPassword, "admin-password", env("FERRY_ADMIN_PASSWORD", ""), "password of the first account; empty prints a one-time password (FERRY_ADMIN_PASSWORD)")
	f.IntVar(&cfg.Workers, "workers", envInt("FERRY_WORKERS", 4), "in-process task workers; 0 leaves tasks to `ferry worker` processes (FERRY_WORKERS)")
	f.BoolVar(&cfg.NoMigrate, "no-migrate", envBool("FERRY_NO_MIGRATE"), "do not apply database migrations on start (FERRY_NO_MIGRATE)")
	f.BoolVar(&cfg.SecureCookies, "secure-cookies", envBool("FERRY_SECURE_COOKIES"), "mark cookies Secure (when served over TLS) (FERRY_SECURE_COOKIES)")
	rootCmd.AddCommand(cmd)
}
