package main

import (
	"fmt"
	"os"

	"github.com/ferry-migrate/ferry/engine"
	"github.com/spf13/cobra"
)

func newSeedCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "seed",
		Short: "Offline seeding: carry a disk on a portable file, then sync only the delta",
	}
	var source, out, blockSize string
	export := &cobra.Command{
		Use:   "export",
		Short: "Write a portable seed file (zstd blocks + manifest) of a disk or image",
		RunE: func(cmd *cobra.Command, args []string) error {
			bs, err := parseBlockSize(blockSize)
			if err != nil {
				return fmt.Errorf("--block-size: %w", err)
			}
			m, err := engine.ExportSeedFile(cmd.Context(), source, bs, out, progressPrinter(cmd.ErrOrStderr()))
			if err != nil {
				return err
			}
			st, _ := os.Stat(out)
			fmt.Fprintf(cmd.OutOrStdout(), "wrote %s: %s disk in %d blocks, %s on file\n", out, humanBytes(m.Size), len(m.Hashes), humanBytes(st.Size()))
			return nil
		},
	}
	export.Flags().StringVar(&source, "source", "", "source block device or image")
	export.Flags().StringVar(&out, "out", "", "seed file to write")
	export.Flags().StringVar(&blockSize, "block-size", "1MiB", "block size; use the same for later syncs")
	export.MarkFlagRequired("source")
	export.MarkFlagRequired("out")

	var in, data, disk string
	imp := &cobra.Command{
		Use:   "import",
		Short: "Load a seed file into a gateway's target disk (gateway stopped or not using this disk)",
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := os.MkdirAll(data, 0o700); err != nil {
				return err
			}
			g, err := engine.NewGateway(engine.GatewayOptions{Dir: data, Create: true, Grow: true})
			if err != nil {
				return err
			}
			if err := g.ImportSeedFile(cmd.Context(), disk, in); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "imported %s into disk %s; the next sync sends only blocks changed since the export\n", in, disk)
			return nil
		},
	}
	imp.Flags().StringVar(&in, "in", "", "seed file to read")
	imp.Flags().StringVar(&data, "data", env("FERRY_GATEWAY_DATA", "./var/gateway"), "gateway data directory")
	imp.Flags().StringVar(&disk, "disk", "", "target disk id")
	imp.MarkFlagRequired("in")
	imp.MarkFlagRequired("disk")
	cmd.AddCommand(export, imp)
	return cmd
}

func init() {
	rootCmd.AddCommand(newSeedCmd())
}
