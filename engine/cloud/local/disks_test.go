package local

import (
	"context"
	"errors"
	"os"
	"syscall"
	"testing"

	"github.com/ferry-migrate/ferry/engine/cloud"
)

func TestCreateDiskIsSparseAndUnique(t *testing.T) {
	ctx := context.Background()
	d := mustNew(t, "", nil)
	path := mustDisk(t, d, "web-1", 1<<30)
	var st syscall.Stat_t
	if err := syscall.Stat(path, &st); err != nil {
		t.Fatal(err)
	}
	if st.Size != 1<<30 || st.Blocks != 0 {
		t.Errorf("disk file: size %d, %d blocks allocated; want 1 GiB and 0 (sparse)", st.Size, st.Blocks)
	}
	if _, err := d.CreateDisk(ctx, cloud.DiskSpec{ID: "web-1", SizeBytes: 10}); !errors.Is(err, cloud.ErrConflict) {
		t.Errorf("second create: %v, want ErrConflict", err)
	}
	got, err := d.Disk(ctx, "web-1")
	if err != nil || got.SizeBytes != 1<<30 || got.MigrationID != "m1" {
		t.Errorf("Disk = %+v, %v", got, err)
	}
	// It survives a reopen.
	d2 := mustNew(t, d.Dir(), nil)
	if _, err := d2.Disk(ctx, "web-1"); err != nil {
		t.Errorf("after reopen: %v", err)
	}
}

func TestDiskBadInput(t *testing.T) {
	ctx := context.Background()
	d := mustNew(t, "", nil)
	mustDisk(t, d, "db", 4*mib)
	tests := []struct {
		name string
		do   func() error
		want error
	}{
		{"zero size", func() error { _, err := d.CreateDisk(ctx, cloud.DiskSpec{ID: "a", SizeBytes: 0}); return err }, cloud.ErrInvalid},
		{"negative size", func() error { _, err := d.CreateDisk(ctx, cloud.DiskSpec{ID: "a", SizeBytes: -5}); return err }, cloud.ErrInvalid},
		{"path traversal id", func() error { _, err := d.CreateDisk(ctx, cloud.DiskSpec{ID: "../etc", SizeBytes: 5}); return err }, cloud.ErrInvalid},
		{"slash id", func() error { _, err := d.CreateDisk(ctx, cloud.DiskSpec{ID: "a/b", SizeBytes: 5}); return err }, cloud.ErrInvalid},
		{"empty id", func() error { _, err := d.Disk(ctx, ""); return err }, cloud.ErrInvalid},
		{"unknown disk", func() error { _, err := d.Disk(ctx, "nope"); return err }, cloud.ErrNotFound},
		{"unknown path", func() error { _, err := d.DiskPath("nope"); return err }, cloud.ErrNotFound},
		{"resize unknown", func() error { _, err := d.ResizeDisk(ctx, "nope", 10); return err }, cloud.ErrNotFound},
		{"shrink", func() error { _, err := d.ResizeDisk(ctx, "db", mib); return err }, cloud.ErrInvalid},
		{"resize to zero", func() error { _, err := d.ResizeDisk(ctx, "db", 0); return err }, cloud.ErrInvalid},
		{"delete unknown", func() error { return d.DeleteDisk(ctx, "nope") }, cloud.ErrNotFound},
		{"gateway unknown", func() error { _, err := d.PrepareGateway(ctx, "nope"); return err }, cloud.ErrNotFound},
		{"point of unknown disk", func() error { _, err := d.CreateRecoveryPoint(ctx, "nope", nil); return err }, cloud.ErrNotFound},
		{"unknown point", func() error { _, err := d.RecoveryPoint(ctx, "rp-x"); return err }, cloud.ErrNotFound},
		{"delete unknown point", func() error { return d.DeleteRecoveryPoint(ctx, "rp-x") }, cloud.ErrNotFound},
		{"unknown machine", func() error { _, err := d.Machine(ctx, "i-x"); return err }, cloud.ErrNotFound},
		{"wait unknown", func() error { _, err := d.Wait(ctx, "i-x"); return err }, cloud.ErrNotFound},
		{"terminate unknown", func() error { return d.Terminate(ctx, "i-x") }, cloud.ErrNotFound},
		{"rollback unknown", func() error { return d.Rollback(ctx, "i-x") }, cloud.ErrNotFound},
		{"launch unknown point", func() error {
			_, err := d.CreateMachine(ctx, cloud.MachineSpec{Token: "t1", Kind: cloud.LaunchTest, Points: []string{"rp-x"}})
			return err
		}, cloud.ErrNotFound},
		{"launch bad kind", func() error {
			_, err := d.CreateMachine(ctx, cloud.MachineSpec{Token: "t1", Kind: "boot", Points: []string{"rp-x"}})
			return err
		}, cloud.ErrInvalid},
		{"launch no points", func() error {
			_, err := d.CreateMachine(ctx, cloud.MachineSpec{Token: "t1", Kind: cloud.LaunchTest})
			return err
		}, cloud.ErrInvalid},
		{"launch bad token", func() error {
			_, err := d.CreateMachine(ctx, cloud.MachineSpec{Token: "../x", Kind: cloud.LaunchTest, Points: []string{"rp-x"}})
			return err
		}, cloud.ErrInvalid},
		{"bad block size", func() error { _, err := New(t.TempDir(), Options{BlockSize: 1000}); return err }, cloud.ErrInvalid},
		{"bad mode", func() error { _, err := New(t.TempDir(), Options{Mode: "zfs"}); return err }, cloud.ErrInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.do(); !errors.Is(err, tt.want) {
				t.Errorf("error = %v, want %v", err, tt.want)
			}
		})
	}
	if got, _ := d.Disk(ctx, "db"); got.SizeBytes != 4*mib {
		t.Errorf("failed calls changed disk db: %+v", got)
	}
}

func TestResizeAndDeleteDisk(t *testing.T) {
	ctx := context.Background()
	d := mustNew(t, "", nil)
	path := mustDisk(t, d, "db", mib)
	writeBlocks(t, path, 1, 0)
	before := fileSHA(t, path)
	if _, err := d.ResizeDisk(ctx, "db", 3*mib); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) != 3*mib {
		t.Fatalf("resized file is %d bytes", len(b))
	}
	for i, c := range b[mib:] {
		if c != 0 {
			t.Fatalf("byte %d of the new tail is %d, want 0", mib+i, c)
		}
	}
	os.Truncate(path, mib) // compare the old part only
	if fileSHA(t, path) != before {
		t.Error("resize changed existing bytes")
	}
	if err := d.DeleteDisk(ctx, "db"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Errorf("image still there: %v", err)
	}
	if _, err := d.Disk(ctx, "db"); !errors.Is(err, cloud.ErrNotFound) {
		t.Errorf("deleted disk: %v", err)
	}
	mustDisk(t, d, "db2", mib)
	ep, err := d.PrepareGateway(ctx, "db2")
	if err != nil || ep.Path == "" || ep.SizeBytes != mib {
		t.Errorf("PrepareGateway = %+v, %v", ep, err)
	}
}

func TestReflinkModeRefusedWithoutFICLONE(t *testing.T) {
	dir := t.TempDir()
	if reflinkSupported(dir) {
		t.Skip("this filesystem supports FICLONE; the refusal path cannot be exercised here")
	}
	if _, err := New(dir, Options{Mode: ModeReflink}); !errors.Is(err, cloud.ErrUnsupported) {
		t.Errorf("New(reflink) = %v, want ErrUnsupported", err)
	}
	d, err := New(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if d.Mode() != ModeCAS {
		t.Errorf("auto mode chose %s, want cas", d.Mode())
	}
}
