package main

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/ferry-migrate/ferry/discovery"
	"github.com/ferry-migrate/ferry/engine"
)

func TestDiskSourcesReplaceTheInventoryDisks(t *testing.T) {
	dir := t.TempDir()
	img := filepath.Join(dir, "web1.img")
	if err := os.WriteFile(img, make([]byte, 3<<20), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, bad := range [][]string{{"vda"}, {"=x"}, {"vda=" + filepath.Join(dir, "missing.img")}, {"vda=" + img, "vda=" + img}} {
		if _, err := parseDiskSources(bad); err == nil {
			t.Errorf("parseDiskSources(%q) accepted", bad)
		}
	}
	src, err := parseDiskSources([]string{"vda=" + img})
	if err != nil {
		t.Fatal(err)
	}
	inv := withDiskSources(func(context.Context) (discovery.Inventory, error) {
		return discovery.Inventory{Hostname: "h", BlockDevices: []discovery.BlockDevice{{Name: "sda", SizeBytes: 1 << 40}}}, nil
	}, src)
	got, err := inv(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(got.BlockDevices) != 1 || got.BlockDevices[0].Name != "vda" || got.BlockDevices[0].SizeBytes != 3<<20 {
		t.Fatalf("block devices %+v, want only vda of 3 MiB", got.BlockDevices)
	}
}

func TestSyncSourceStaysOnDevicesOrDiskSources(t *testing.T) {
	r := &syncRunner{}
	cases := []struct {
		disk engine.SyncCommandDisk
		want string
	}{
		{engine.SyncCommandDisk{Name: "sda"}, "/dev/sda"},
		{engine.SyncCommandDisk{Name: "sda", Device: "/dev/nvme0n1"}, "/dev/nvme0n1"},
		{engine.SyncCommandDisk{Name: "sda", Device: "/dev/../etc/shadow"}, "/dev/sda"},
		{engine.SyncCommandDisk{Name: "../etc/shadow"}, ""},
	}
	for _, tc := range cases {
		got, err := r.source(tc.disk)
		if tc.want == "" {
			if err == nil {
				t.Errorf("source(%+v) = %q, want refused", tc.disk, got)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("source(%+v) = %q, %v; want %q", tc.disk, got, err, tc.want)
		}
	}
	r.sources = map[string]string{"vda": "/srv/web1.img"}
	if got, err := r.source(engine.SyncCommandDisk{Name: "vda", Device: "/dev/vda"}); err != nil || got != "/srv/web1.img" {
		t.Errorf("with --disk-source: %q, %v", got, err)
	}
	if _, err := r.source(engine.SyncCommandDisk{Name: "sda"}); err == nil {
		t.Error("with --disk-source, a disk not listed must not fall back to /dev")
	}
}
