//go:build !agent

package main

import (
	"context"
	"errors"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/ferry-migrate/ferry/engine/cloud/alibaba/ecsemu"
	"github.com/spf13/cobra"
)

func newECSEmuCmd() *cobra.Command {
	var listen, data, region, keyID, keySecret, admin string
	var quiet bool
	cmd := &cobra.Command{
		Use:   "ecsemu",
		Short: "Run an emulator of Alibaba Cloud ECS on this machine, to try the Alibaba path without an account",
		Long: `Serves the ECS RPC API (version 2014-05-26) and STS AssumeRole on --listen,
checking every call's signature, timestamp and nonce like ECS does. Disks are
sparse files under --data; an instance of a public image runs its user data
as a shell script here (a migration's gateway is a real ferry gateway); an
instance of a custom image boots under qemu. Each instance gets a private
address in 127.16.0.0/12 where its security groups' TCP rules are served.

Point a Ferry cloud account of provider alibaba at it with the endpoint
printed below (the account's endpoint field), or any SDK with
client.Domain = the listen address and the HTTP scheme.`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if keyID == "" || keySecret == "" {
				return errors.New("--access-key-id and --access-key-secret must not be empty")
			}
			logf := log.New(os.Stderr, "", log.LstdFlags).Printf
			if quiet {
				logf = func(string, ...any) {}
			}
			srv, err := ecsemu.New(ecsemu.Options{Dir: data, Region: region, AdminToken: admin, Logf: logf,
				Keys: []ecsemu.Key{{ID: keyID, Secret: keySecret}}})
			if err != nil {
				return err
			}
			defer srv.Close()
			ln, err := net.Listen("tcp", listen)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "ferry ecsemu: ECS %s and STS %s on http://%s (region %s)\n", ecsemu.ECSVersion, ecsemu.STSVersion, ln.Addr(), region)
			fmt.Fprintf(out, "AccessKey ID: %s\nAccessKey secret: %s\n", keyID, keySecret)
			vpc, vsw, zone, cidr := srv.DefaultVSwitch()
			fmt.Fprintf(out, "default VPC %s, vSwitch %s (zone %s, %s): instances get addresses there\n", vpc, vsw, zone, cidr)
			fmt.Fprintf(out, "a Ferry cloud account: provider alibaba, region %s, this key, settings endpoint=http://%s vswitch_id=%s source_cidrs=127.0.0.0/8\n", region, ln.Addr(), vsw)
			if admin != "" {
				fmt.Fprintf(out, "admin routes: http://%s/_ecsemu/v1/{inventory,calls,faults} with Authorization: Bearer <--admin-token>\n", ln.Addr())
			}
			hs := &http.Server{Handler: srv, ReadHeaderTimeout: 30 * time.Second}
			go func() {
				<-cmd.Context().Done()
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				hs.Shutdown(ctx)
			}()
			if err := hs.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
				return err
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&listen, "listen", env("FERRY_ECSEMU_LISTEN", "127.0.0.1:8790"), "address to serve the API on (FERRY_ECSEMU_LISTEN)")
	f.StringVar(&data, "data", env("FERRY_ECSEMU_DATA", "./var/ecsemu"), "state, disks, snapshots and instances (FERRY_ECSEMU_DATA)")
	f.StringVar(&region, "region", env("FERRY_ECSEMU_REGION", "cn-hangzhou"), "the region it emulates (FERRY_ECSEMU_REGION)")
	f.StringVar(&keyID, "access-key-id", env("FERRY_ECSEMU_ACCESS_KEY_ID", ecsemu.DefaultKeyID), "the AccessKey ID it accepts (FERRY_ECSEMU_ACCESS_KEY_ID)")
	f.StringVar(&keySecret, "access-key-secret", env("FERRY_ECSEMU_ACCESS_KEY_SECRET", ecsemu.DefaultKeySecret), "its secret (FERRY_ECSEMU_ACCESS_KEY_SECRET)")
	f.StringVar(&admin, "admin-token", env("FERRY_ECSEMU_ADMIN_TOKEN", ""), "enables /_ecsemu/v1/ (fault injection, inventory, call counts) for this Bearer token (FERRY_ECSEMU_ADMIN_TOKEN)")
	f.BoolVar(&quiet, "quiet", false, "do not log every call")
	return cmd
}

func init() {
	rootCmd.AddCommand(newECSEmuCmd())
	privateCommands["ferry ecsemu"] = true
}
