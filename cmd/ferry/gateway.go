//go:build !agent

package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime/debug"
	"time"

	"github.com/ferry-migrate/ferry/engine"
	"github.com/spf13/cobra"
)

func newGatewayCmd() *cobra.Command {
	var listen, data, verify string
	var hosts []string
	var create, grow, noDedup bool
	var ckptEvery, fullEvery time.Duration
	var register, ticket, deviceRoot string
	cmd := &cobra.Command{
		Use:   "gateway",
		Short: "Receive replicated disks over HTTPS (the target side of the data path)",
		Long: `Runs the replication gateway. On first start it creates, in --data, a
credential key and a self-signed TLS certificate; agents pin the certificate's
SHA-256 fingerprint, which is printed on every start. Target disks are
--data/disks/ID.img unless a cloud driver provides them.`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if os.Getenv("GOMEMLIMIT") == "" {
				// Manifests (16 B per block) are what grows with disk size;
				// a soft limit keeps the garbage of finished syncs from
				// pushing a gateway for 2 TiB disks past 256 MiB.
				debug.SetMemoryLimit(160 << 20)
			}
			if err := os.MkdirAll(data, 0o700); err != nil {
				return err
			}
			if verify != "auto" && verify != "full" {
				return fmt.Errorf("--verify %q: want auto or full", verify)
			}
			gopt := engine.GatewayOptions{Dir: data, Create: create, Grow: grow, VerifyFull: verify == "full",
				CheckpointEvery: ckptEvery, FullVerifyEvery: fullEvery, NoDedup: noDedup}
			var cg *cloudGateway
			var watch *engine.RevocationWatch
			if register != "" {
				if ticket == "" {
					return errors.New("--register needs --registration-token")
				}
				cg = newCloudGateway(register, ticket, deviceRoot, data)
				gopt.Resolve = cg.resolve
				// The control plane issues this gateway's sync credentials
				// and takes them back through its revocation feed, which
				// the gateway follows upward; with no word from it for 5 s
				// every credential answers busy (agents retry), so a
				// revoked agent never syncs on while the feed is cut.
				watch = &engine.RevocationWatch{Endpoint: cg.feedEndpoint, Logf: cg.logf}
				gopt.Authorize = watch.Authorize
			}
			g, err := engine.NewGateway(gopt)
			if err != nil {
				return err
			}
			cert, fp, err := engine.LoadOrCreateCertificate(data, hosts)
			if err != nil {
				return err
			}
			ln, err := net.Listen("tcp", listen)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "ferry gateway listening on https://%s\n", ln.Addr())
			fmt.Fprintf(out, "certificate fingerprint (SHA-256): %s\n", fp)
			fmt.Fprintf(out, "TLS key: %s  credential key: %s\n", filepath.Join(data, "gateway.key"), filepath.Join(data, "credential.key"))
			mux := http.NewServeMux()
			mux.Handle("/sync/v1/", g)
			mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) { fmt.Fprintln(w, "ok") })
			srv := &http.Server{Handler: mux, ReadHeaderTimeout: 30 * time.Second,
				TLSConfig: &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS13},
				ErrorLog:  log.New(os.Stderr, "gateway: ", log.LstdFlags)}
			go func() {
				<-cmd.Context().Done()
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				srv.Shutdown(ctx)
			}()
			if cg != nil {
				key, err := engine.LoadOrCreateCredentialKey(filepath.Join(data, "credential.key"))
				if err != nil {
					return err
				}
				port := ln.Addr().(*net.TCPAddr).Port
				go func() {
					if err := cg.register(cmd.Context(), fp, key, port); err != nil && cmd.Context().Err() == nil {
						cg.logf("gateway: %v", err)
					}
				}()
				go watch.Run(cmd.Context())
			}
			if err := srv.ServeTLS(ln, "", ""); !errors.Is(err, http.ErrServerClosed) {
				return err
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&listen, "listen", env("FERRY_GATEWAY_LISTEN", "127.0.0.1:8443"), "address to listen on (FERRY_GATEWAY_LISTEN)")
	f.StringVar(&data, "data", env("FERRY_GATEWAY_DATA", "./var/gateway"), "data directory: keys, certificate, disks, sync state (FERRY_GATEWAY_DATA)")
	f.StringSliceVar(&hosts, "host", nil, "extra DNS names or IPs for a newly generated certificate")
	f.BoolVar(&create, "create", true, "create a missing target disk as a sparse file of the source's size")
	f.BoolVar(&grow, "grow", true, "grow a target file smaller than the source")
	f.StringVar(&register, "register", "", "a cloud provider's callback URL: register there once (certificate fingerprint, credential key), find the target disks among the attached devices, and follow the control plane's revocation feed (credentials answer busy after 5 s without it)")
	f.StringVar(&ticket, "registration-token", "", "the one-time ticket of --register (the provider puts it in the instance's user data)")
	f.StringVar(&deviceRoot, "device-root", "", "with --register: where /dev/disk/by-id is (empty: the real one)")
	f.StringVar(&verify, "verify", "auto", "end-of-sync proof: auto (re-read what this sync wrote; everything after a crash or resume, or when --full-verify-every has passed) or full (re-read the whole target)")
	f.DurationVar(&fullEvery, "full-verify-every", 7*24*time.Hour, "with --verify auto, re-read the whole target at the end of a sync when its last full verification is older than this")
	f.DurationVar(&ckptEvery, "checkpoint-every", 10*time.Second, "fsync the target and persist a resumable checkpoint at least this often during a stream (what a crash can lose)")
	f.BoolVar(&noDedup, "no-dedup", false, "turn the content index off: send every block a target lacks even if another disk of the tenant holds it")

	var ttl time.Duration
	var disk, tenant string
	issue := &cobra.Command{
		Use:   "issue-credential",
		Short: "Print a sync credential for one disk (for standalone runs; the control plane issues them otherwise)",
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := os.MkdirAll(data, 0o700); err != nil {
				return err
			}
			g, err := engine.NewGateway(engine.GatewayOptions{Dir: data})
			if err != nil {
				return err
			}
			c, err := g.IssueTenantCredential(disk, tenant, ttl)
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), c)
			return nil
		},
	}
	issue.Flags().StringVar(&disk, "disk", "", "disk id the credential is for")
	issue.Flags().DurationVar(&ttl, "ttl", 24*time.Hour, "how long the credential stays valid")
	issue.Flags().StringVar(&tenant, "tenant", "", "tenant of the disk: blocks are shared (sent once) only among disks of one tenant")
	issue.Flags().StringVar(&data, "data", env("FERRY_GATEWAY_DATA", "./var/gateway"), "gateway data directory (holds the credential key)")
	issue.MarkFlagRequired("disk")
	cmd.AddCommand(issue)
	return cmd
}

func init() {
	rootCmd.AddCommand(newGatewayCmd())
}
