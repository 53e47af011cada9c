package main

import (
	"context"
	"fmt"
	"path/filepath"
	"sort"
	"strings"

	"github.com/ferry-migrate/ferry/discovery"
	"github.com/ferry-migrate/ferry/engine"
)

// parseDiskSources reads --disk-source NAME=PATH values: the disk NAME of
// this host is the image file (or device) PATH. With any given, the agent
// reports exactly those disks and replicates nothing else (demos, tests).
func parseDiskSources(vals []string) (map[string]string, error) {
	out := map[string]string{}
	for _, v := range vals {
		name, path, ok := strings.Cut(v, "=")
		name, path = strings.TrimSpace(name), strings.TrimSpace(path)
		if !ok || name == "" || path == "" {
			return nil, fmt.Errorf("--disk-source %q: want NAME=PATH, e.g. vda=/srv/images/web1.img", v)
		}
		if _, dup := out[name]; dup {
			return nil, fmt.Errorf("--disk-source: disk %q given twice", name)
		}
		abs, err := filepath.Abs(path)
		if err != nil {
			return nil, err
		}
		src, err := engine.OpenSource(abs)
		if err != nil {
			return nil, fmt.Errorf("--disk-source %s: %w", name, err)
		}
		src.Close()
		out[name] = abs
	}
	return out, nil
}

// withDiskSources makes the inventory report the --disk-source disks in
// place of the machine's block devices.
func withDiskSources(inv func(context.Context) (discovery.Inventory, error), sources map[string]string) func(context.Context) (discovery.Inventory, error) {
	if len(sources) == 0 {
		return inv
	}
	names := make([]string, 0, len(sources))
	for n := range sources {
		names = append(names, n)
	}
	sort.Strings(names)
	return func(ctx context.Context) (discovery.Inventory, error) {
		i, err := inv(ctx)
		if err != nil {
			return i, err
		}
		i.BlockDevices = []discovery.BlockDevice{}
		for _, n := range names {
			src, err := engine.OpenSource(sources[n])
			if err != nil {
				return i, fmt.Errorf("disk source %s: %w", n, err)
			}
			i.BlockDevices = append(i.BlockDevices, discovery.BlockDevice{Name: n, SizeBytes: uint64(src.Size()), Model: "image " + sources[n]})
			src.Close()
		}
		return i, nil
	}
}
