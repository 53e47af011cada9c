package local

import (
	"errors"
	"os"
	"testing"

	"github.com/ferry-migrate/ferry/engine/cloud"
	"github.com/ferry-migrate/ferry/engine/cloud/drivertest"
)

// The local cloud passes the provider conformance suite: data reaches its
// disks the way the in-process gateway writes it (pwrite into the endpoint's
// Path).
func TestConformance(t *testing.T) {
	drivertest.Run(t, drivertest.Harness{
		Open: func(t *testing.T) cloud.Driver { return mustNew(t, "", nil) },
		Write: func(t *testing.T, _ cloud.Driver, ep cloud.GatewayEndpoint, off int64, b []byte) {
			f, err := os.OpenFile(ep.Path, os.O_WRONLY, 0)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			if _, err := f.WriteAt(b, off); err != nil {
				t.Fatal(err)
			}
		},
		Read: func(t *testing.T, d cloud.Driver, id string) []byte {
			p, err := d.(*Driver).DiskPath(id)
			if err != nil {
				t.Fatal(err)
			}
			b, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			return b
		},
		Provider: &Provider{Dir: t.TempDir()},
	})
}

// Provider takes the data directory for one process: a second Provider on
// the same directory (another process, as far as flock goes) is refused
// with ErrConflict, and the first hands out one Driver.
func TestProviderOwnsTheDirectory(t *testing.T) {
	dir := t.TempDir()
	a := &Provider{Dir: dir}
	defer a.Close()
	d1, err := a.Driver()
	if err != nil {
		t.Fatal(err)
	}
	if d2, _ := a.Open(t.Context(), cloud.Account{}); d2 != cloud.Driver(d1) {
		t.Error("a second Open returned another Driver")
	}
	b := &Provider{Dir: dir}
	if _, err := b.Driver(); err == nil || !errors.Is(err, cloud.ErrConflict) {
		t.Fatalf("second owner: %v, want ErrConflict", err)
	}
	a.Close()
	if _, err := b.Driver(); err != nil {
		t.Fatalf("after the owner closed: %v", err)
	}
	b.Close()
}
