package main

import (
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
)

// env returns the FERRY_* variable or def.
func env(name, def string) string {
	if v, ok := os.LookupEnv(name); ok && v != "" {
		return v
	}
	return def
}

func envInt(name string, def int) int {
	if v, ok := os.LookupEnv(name); ok && v != "" {
		if n, err := strconv.Atoi(v); err == nil {
			return n
		}
	}
	return def
}

func envBool(name string) bool {
	v := strings.ToLower(os.Getenv(name))
	return v == "1" || v == "true" || v == "yes"
}

// serverConfig is what serve, worker and migrate share.
type serverConfig struct {
	Addr          string
	DataDir       string
	DatabaseURL   string
	RedisURL      string
	PublicURL     string
	AdminEmail    string
	AdminPassword string
	Workers       int
	NoMigrate     bool
	SecureCookies bool
	LogLevel      string
	KeysDir       string
	TracesFile    string
}

func (c *serverConfig) bindData(cmd *cobra.Command) {
	f := cmd.Flags()
	f.StringVar(&c.DataDir, "data-dir", env("FERRY_DATA_DIR", "./var"), "directory for the database, keys and the local cloud (FERRY_DATA_DIR)")
	f.StringVar(&c.DatabaseURL, "database-url", env("FERRY_DATABASE_URL", ""), "database: a SQLite path or sqlite:// URL (default DATA_DIR/ferry.db), or postgres://user:password@host/db (FERRY_DATABASE_URL)")
	f.StringVar(&c.KeysDir, "keys-dir", env("FERRY_KEYS_DIR", ""), "directory of secrets.key and hmac.key, the same for every replica (a mounted secret); default DATA_DIR/keys (FERRY_KEYS_DIR)")
	f.StringVar(&c.TracesFile, "traces-file", env("FERRY_TRACES_FILE", ""), "write OpenTelemetry spans to this file as JSON lines; OTEL_EXPORTER_OTLP_ENDPOINT sends them to a collector (FERRY_TRACES_FILE)")
	f.StringVar(&c.LogLevel, "log-level", env("FERRY_LOG_LEVEL", "info"), "debug, info, warn or error (FERRY_LOG_LEVEL)")
}

func (c *serverConfig) bindQueue(cmd *cobra.Command) {
	cmd.Flags().StringVar(&c.RedisURL, "redis-url", env("FERRY_REDIS_URL", ""), "Redis for the task queue, redis://host:port/db; empty starts an embedded in-process queue (FERRY_REDIS_URL)")
}

func (c *serverConfig) databaseURL() string {
	if c.DatabaseURL != "" {
		return c.DatabaseURL
	}
	return filepath.Join(c.DataDir, "ferry.db")
}

func (c *serverConfig) logger() *slog.Logger {
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(c.LogLevel)); err != nil {
		lvl = slog.LevelInfo
	}
	l := slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: lvl}))
	// Libraries that write through the standard log package (asynq's
	// metrics exporter, net/http's server errors) come out as JSON too.
	slog.SetDefault(l)
	return l
}

// isTerminal reports whether f is a terminal (human-facing lines go there
// only; everything else is JSON).
func isTerminal(f *os.File) bool {
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
