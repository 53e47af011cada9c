package main

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/ferry-migrate/ferry/discovery"
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
