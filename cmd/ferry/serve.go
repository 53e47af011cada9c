//go:build !agent

package main

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/ferry-migrate/ferry/frontend"
	"github.com/ferry-migrate/ferry/internal/app"
	"github.com/ferry-migrate/ferry/internal/database"
	"github.com/ferry-migrate/ferry/internal/planning"
	"github.com/ferry-migrate/ferry/internal/telemetry"
	"github.com/ferry-migrate/ferry/internal/web"
)

// tracing is the OpenTelemetry configuration from flags and the environment.
func (c *serverConfig) tracing(service string) telemetry.Config {
	return telemetry.Config{File: c.TracesFile, OTLPEndpoint: os.Getenv("OTEL_EXPORTER_OTLP_ENDPOINT"), Service: service}
}

func init() {
	var cfg serverConfig
	var trustedProxies, clientIPHeader, metricsToken, metricsAddr, licenseFile, licenseKey string
	var market app.MarketplaceConfig
	var inlineHosts int
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
			proxies, err := web.ParseTrustedProxies(trustedProxies)
			if err != nil {
				return fmt.Errorf("--trusted-proxies (FERRY_TRUSTED_PROXIES): %w", err)
			}
			if _, err := web.ClientIPHeader(clientIPHeader); err != nil {
				return fmt.Errorf("--client-ip-header (FERRY_CLIENT_IP_HEADER): %w", err)
			}
			planning.InlineHosts = inlineHosts
			lic, err := loadLicense(licenseFile, licenseKey)
			if err != nil {
				return err
			}
			a, err := app.New(cmd.Context(), app.Config{
				DataDir: cfg.DataDir, KeysDir: cfg.KeysDir, DatabaseURL: cfg.databaseURL(), RedisURL: cfg.RedisURL,
				PublicURL: cfg.PublicURL, AdminEmail: cfg.AdminEmail, AdminPassword: cfg.AdminPassword, Workers: cfg.Workers,
				Migrate: !cfg.NoMigrate, SecureCookies: cfg.SecureCookies, UI: frontend.FS(), Log: log,
				TrustedProxies: proxies, ClientIPHeader: clientIPHeader, MetricsToken: metricsToken, License: lic,
				Marketplace: market, Tracing: cfg.tracing("ferry-serve"),
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
			if metricsAddr != "" {
				mln, err := net.Listen("tcp", metricsAddr)
				if err != nil {
					return fmt.Errorf("--metrics-addr: listen on %s: %w", metricsAddr, err)
				}
				log.Info("metrics are served on their own address", "url", "http://"+mln.Addr().String()+"/metrics", "token_required", metricsToken != "")
				go func() {
					if err := a.ServeMetrics(cmd.Context(), mln); err != nil && !errors.Is(err, http.ErrServerClosed) {
						log.Error("metrics listener", "error", err)
					}
				}()
			}
			queue := "embedded in-process queue"
			if !a.Queue.Embedded {
				queue = "redis"
			}
			log.Info("ferry is serving", "url", "http://"+ln.Addr().String(), "database", database.Redact(cfg.databaseURL()), "queue", queue, "workers", cfg.Workers, "version", version)
			if isTerminal(os.Stderr) {
				fmt.Fprintf(cmd.ErrOrStderr(), "Ferry is running at http://%s\n", ln.Addr())
			}
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
	f.StringVar(&trustedProxies, "trusted-proxies", env("FERRY_TRUSTED_PROXIES", ""), "comma-separated CIDRs of reverse proxies whose forwarded header names the client; default none: forwarded headers are ignored (FERRY_TRUSTED_PROXIES)")
	f.StringVar(&clientIPHeader, "client-ip-header", env("FERRY_CLIENT_IP_HEADER", web.HeaderXForwardedFor), "the one header the trusted proxies set: X-Forwarded-For, Forwarded or X-Real-IP (FERRY_CLIENT_IP_HEADER)")
	f.StringVar(&metricsToken, "metrics-token", env("FERRY_METRICS_TOKEN", ""), "bearer token that may read /metrics (the platform operator may too); without it /metrics is closed to scrapers (FERRY_METRICS_TOKEN)")
	f.StringVar(&metricsAddr, "metrics-addr", env("FERRY_METRICS_ADDR", ""), "also serve /metrics alone on this (private) address, open unless --metrics-token is set (FERRY_METRICS_ADDR)")
	f.StringVar(&licenseFile, "license-file", env("FERRY_LICENSE_FILE", ""), "signed licence file setting tenants' quotas and an expiry; none: no quotas (FERRY_LICENSE_FILE)")
	f.StringVar(&licenseKey, "license-key", env("FERRY_LICENSE_KEY", ""), "the licence issuer's Ed25519 public key, base64 (FERRY_LICENSE_KEY)")
	f.IntVar(&inlineHosts, "inline-hosts", envInt("FERRY_INLINE_HOSTS", planning.InlineHosts), "plans and assessments of estates up to this many hosts run inside the request, larger ones on the workers; -1 sends every one to the workers (FERRY_INLINE_HOSTS)")
	f.StringVar(&market.ISVKey, "marketplace-isv-key", env("FERRY_MARKETPLACE_ISV_KEY", ""), "the ISV key of the cloud marketplace's SPI token; empty: /marketplace/spi answers not configured (FERRY_MARKETPLACE_ISV_KEY)")
	f.StringVar(&market.TokenKey, "marketplace-token-key", env("FERRY_MARKETPLACE_TOKEN_KEY", ""), "the key that verifies the marketplace's accessToken on /api/{action}; empty: not configured (FERRY_MARKETPLACE_TOKEN_KEY)")
	f.DurationVar(&market.ReleaseAfter, "marketplace-release-after", 30*24*time.Hour, "how long a released marketplace instance's tenant is kept before its deletion is due")
	rootCmd.AddCommand(cmd)
}
