//go:build !agent

package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/ferry-migrate/ferry/internal/license"
)

// loadLicense reads FERRY_LICENSE_FILE with FERRY_LICENSE_KEY (the
// issuer's public key); with no file there is no licence and no quota.
func loadLicense(file, key string) (*license.License, error) {
	if file == "" {
		return nil, nil
	}
	if key == "" {
		return nil, fmt.Errorf("--license-file needs --license-key (FERRY_LICENSE_KEY): the issuer's Ed25519 public key")
	}
	pub, err := license.ParsePublicKey(key)
	if err != nil {
		return nil, err
	}
	return license.Load(file, pub)
}

func init() {
	var key string
	cmd := &cobra.Command{Use: "license", Short: "Licence files"}
	inspect := &cobra.Command{
		Use:   "inspect FILE",
		Short: "Check a licence file's signature and show its expiry and quotas",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if key == "" {
				return fmt.Errorf("--key (FERRY_LICENSE_KEY): the issuer's Ed25519 public key is needed to check the signature")
			}
			l, err := loadLicense(args[0], key)
			if err != nil {
				return err
			}
			fmt.Fprint(cmd.OutOrStdout(), l.Describe())
			return nil
		},
	}
	inspect.Flags().StringVar(&key, "key", os.Getenv("FERRY_LICENSE_KEY"), "the issuer's public key, base64 (FERRY_LICENSE_KEY)")
	cmd.AddCommand(inspect)
	rootCmd.AddCommand(cmd)
}
