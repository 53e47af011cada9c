// Command ferry is the single Ferry binary. Each subcommand lives in its own
// file and attaches itself to rootCmd (or agentCmd) in an init function, so
// that the packages behind them stay independent of one another.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"
)

// version is stamped at build time with -ldflags "-X main.version=...".
var version = "dev"

var rootCmd = &cobra.Command{
	Use:           "ferry",
	Short:         "Ferry moves servers to the cloud: discover, plan, replicate, cut over, roll back",
	SilenceUsage:  true,
	SilenceErrors: true,
	PersistentPreRun: func(cmd *cobra.Command, _ []string) {
		if privateCommands[cmd.CommandPath()] {
			// Databases, keys, credentials, replicated disks and their
			// state: readable by this user only, whatever the shell's
			// umask (files are also created 0600 where they are made).
			syscall.Umask(0o077)
		}
	},
}

// privateCommands keep state (a data directory, an agent's credential);
// the others write files the user asked for (exports, plans) with the
// user's umask.
var privateCommands = map[string]bool{
	"ferry serve": true, "ferry worker": true, "ferry migrate": true,
	"ferry gateway": true, "ferry gateway issue-credential": true, "ferry seed import": true,
	"ferry agent register": true, "ferry agent run": true, "ferry agent sync": true,
}

// agentCmd groups everything that runs on a source host. Discovery adds
// register/inventory/run; the engine adds sync.
var agentCmd = &cobra.Command{
	Use:   "agent",
	Short: "Source-side agent: registration, inventory, replication (only ever calls up)",
}

var versionCmd = &cobra.Command{
	Use:   "version",
	Short: "Print the version",
	Run: func(cmd *cobra.Command, args []string) {
		fmt.Fprintln(cmd.OutOrStdout(), "ferry", version)
	},
}

func init() {
	rootCmd.AddCommand(agentCmd, versionCmd)
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := rootCmd.ExecuteContext(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "ferry:", err)
		os.Exit(1)
	}
}
