package inspect_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/ferry-migrate/ferry/engine/cloud/inspect"
	"github.com/ferry-migrate/ferry/engine/cloud/inspect/imagetest"
)

// memDisk is an in-memory image that implements io.ReaderAt and io.WriterAt.
type memDisk []byte

func (m memDisk) ReadAt(p []byte, off int64) (int, error) { return bytes.NewReader(m).ReadAt(p, off) }
func (m memDisk) WriteAt(p []byte, off int64) (int, error) {
	return copy(m[off:], p), nil
}

const mib = 1 << 20

// gptImage returns an 8 MiB GPT image with one 1 MiB partition per kind,
// each holding that kind's superblock.
func gptImage(t testing.TB, kinds []string) memDisk {
	d := make(memDisk, 8*mib)
	var parts []imagetest.Part
	for i, k := range kinds {
		start := int64(i+1) * mib
		parts = append(parts, imagetest.Part{Start: start, Size: mib, GPTType: imagetest.GUIDLinux, Name: "p-" + k})
		copy(d[start:start+mib], imagetest.Superblock(k, "L"+k)[:mib/16])
	}
	if err := imagetest.WriteGPT(d, int64(len(d)), parts); err != nil {
		t.Fatal(err)
	}
	return d
}

func TestGPTRecognisesEveryFilesystem(t *testing.T) {
	kinds := []string{"ext2", "ext3", "ext4", "xfs", "btrfs", "fat32", "ntfs", "swap", "lvm2-pv"}
	d := make(memDisk, 16*mib)
	var parts []imagetest.Part
	var want []inspect.Partition
	for i, k := range kinds {
		start := int64(i+1) * mib
		parts = append(parts, imagetest.Part{Start: start, Size: mib, GPTType: imagetest.GUIDLinux, Name: "p-" + k})
		sb := imagetest.Superblock(k, "L"+k)
		copy(d[start:start+mib], sb)
		label := "L" + k
		if k == "ntfs" || k == "lvm2-pv" {
			label = ""
		}
		want = append(want, inspect.Partition{Index: i + 1, Start: start, Size: mib, Type: imagetest.GUIDLinux,
			TypeName: "Linux filesystem", Name: "p-" + k, Filesystem: k, Label: label})
	}
	// A BIOS boot partition holds no filesystem and must not be probed.
	parts = append(parts, imagetest.Part{Start: 12 * mib, Size: mib, GPTType: imagetest.GUIDBIOS, Name: "bios"})
	want = append(want, inspect.Partition{Index: 10, Start: 12 * mib, Size: mib, Type: imagetest.GUIDBIOS, TypeName: "BIOS boot", Name: "bios", NoFilesystem: true})
	if err := imagetest.WriteGPT(d, int64(len(d)), parts); err != nil {
		t.Fatal(err)
	}
	rep, err := inspect.Disk(d, int64(len(d)))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(inspect.Report{Table: inspect.TableGPT, Partitions: want}, rep); diff != "" {
		t.Errorf("Disk (-want +got):\n%s", diff)
	}
}

func TestMBRWithRawFilesystemsAndSuperfloppy(t *testing.T) {
	d := make(memDisk, 4*mib)
	copy(d[mib:], imagetest.Superblock("ext4", "root"))
	copy(d[2*mib:], imagetest.Superblock("swap", ""))
	if err := imagetest.WriteMBR(d, []imagetest.Part{{Start: mib, Size: mib, MBRType: 0x83}, {Start: 2 * mib, Size: mib, MBRType: 0x82}}); err != nil {
		t.Fatal(err)
	}
	rep, err := inspect.Disk(d, int64(len(d)))
	if err != nil {
		t.Fatal(err)
	}
	want := inspect.Report{Table: inspect.TableMBR, Partitions: []inspect.Partition{
		{Index: 1, Start: mib, Size: mib, Type: "0x83", TypeName: "Linux", Filesystem: "ext4", Label: "root"},
		{Index: 2, Start: 2 * mib, Size: mib, Type: "0x82", TypeName: "Linux swap", Filesystem: "swap"},
	}}
	if diff := cmp.Diff(want, rep); diff != "" {
		t.Errorf("MBR (-want +got):\n%s", diff)
	}

	// NTFS written straight on the disk: its boot sector ends in 0x55AA too,
	// yet it is a filesystem, not a partition table.
	raw := make(memDisk, mib)
	copy(raw, imagetest.Superblock("ntfs", ""))
	rep, err = inspect.Disk(raw, int64(len(raw)))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(inspect.Report{Table: inspect.TableNone, Filesystem: "ntfs"}, rep); diff != "" {
		t.Errorf("superfloppy (-want +got):\n%s", diff)
	}

	blank := make(memDisk, mib)
	rep, err = inspect.Disk(blank, int64(len(blank)))
	if err != nil || rep.Table != inspect.TableNone || rep.Filesystem != "" {
		t.Errorf("blank disk: %+v, %v; want no table, no filesystem, no error", rep, err)
	}
}

func TestDamagedTablesAreMalformed(t *testing.T) {
	tests := []struct {
		name    string
		damage  func(d memDisk)
		size    int64 // 0: whole image
		message string
	}{
		{"header CRC", func(d memDisk) { d[512+40]++ }, 0, "GPT header CRC32"},
		{"entry CRC", func(d memDisk) { d[1024+32]++ }, 0, "entry array CRC32"},
		{"no GPT behind protective MBR", func(d memDisk) { copy(d[512:], "NOT PART") }, 0, "no GPT signature"},
		{"truncated image", func(memDisk) {}, 4 * mib, "do not fit"},
		{"MBR partition past the end", func(d memDisk) {
			clear(d[:1024])
			imagetest.WriteMBR(d, []imagetest.Part{{Start: mib, Size: 64 * mib, MBRType: 0x83}})
		}, 0, "ends past the disk"},
		{"MBR overlap", func(d memDisk) {
			clear(d[:1024])
			imagetest.WriteMBR(d, []imagetest.Part{{Start: mib, Size: 2 * mib, MBRType: 0x83}, {Start: 2 * mib, Size: mib, MBRType: 0x83}})
		}, 0, "overlap"},
		{"EBR loop", func(d memDisk) {
			clear(d[:1024])
			imagetest.WriteMBR(d, []imagetest.Part{{Start: mib, Size: 4 * mib, MBRType: 0x05}})
			ebr := d[mib : mib+512]
			binary.LittleEndian.PutUint32(ebr[446+16+8:], 0) // next EBR points at itself
			binary.LittleEndian.PutUint32(ebr[446+16+12:], 1)
			ebr[446+16+4] = 0x05
			ebr[510], ebr[511] = 0x55, 0xAA
		}, 0, "loops"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := gptImage(t, []string{"ext4"})
			tt.damage(d)
			size := int64(len(d))
			if tt.size != 0 {
				size = tt.size
			}
			_, err := inspect.Disk(d, size)
			if !errors.Is(err, inspect.ErrMalformed) || !strings.Contains(err.Error(), tt.message) {
				t.Errorf("error = %v, want ErrMalformed mentioning %q", err, tt.message)
			}
		})
	}
}

// TestRealToolImages checks the parser against images made by sfdisk,
// mkfs.ext4 and mkswap (Debian: fdisk, e2fsprogs, util-linux).
func TestRealToolImages(t *testing.T) {
	sfdisk := imagetest.Need(t, "sfdisk", "fdisk")
	mkfs := imagetest.Need(t, "mkfs.ext4", "e2fsprogs")
	mkswap := imagetest.Need(t, "mkswap", "util-linux")
	for _, label := range []string{"gpt", "dos"} {
		t.Run(label, func(t *testing.T) {
			img := filepath.Join(t.TempDir(), "disk.img")
			if err := os.Truncate(img, 0); err == nil || !os.IsNotExist(err) {
				t.Fatal("temp dir not empty")
			}
			f, err := os.Create(img)
			if err != nil {
				t.Fatal(err)
			}
			f.Truncate(48 * mib)
			f.Close()
			script := "label: " + label + "\nstart=2048, size=32768, type=L\nstart=34816, size=8192, type=S\n"
			cmd := exec.Command(sfdisk, "-q", img)
			cmd.Stdin = strings.NewReader(script)
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("sfdisk: %v\n%s", err, out)
			}
			imagetest.Run(t, mkfs, "-q", "-F", "-L", "ferryroot", "-E", "offset=1048576", img, "16M")
			swap := filepath.Join(t.TempDir(), "swap")
			os.WriteFile(swap, make([]byte, 4*mib), 0o644)
			imagetest.Run(t, mkswap, "-L", "ferryswap", swap)
			b, _ := os.ReadFile(swap)
			f, _ = os.OpenFile(img, os.O_RDWR, 0)
			f.WriteAt(b, 34816*512)
			defer f.Close()
			rep, err := inspect.Disk(f, 48*mib)
			if err != nil {
				t.Fatal(err)
			}
			type got struct{ Table, FS1, L1, FS2, L2 string }
			wantTable := inspect.TableGPT
			if label == "dos" {
				wantTable = inspect.TableMBR
			}
			if len(rep.Partitions) != 2 {
				t.Fatalf("partitions = %+v, want 2", rep.Partitions)
			}
			g := got{rep.Table, rep.Partitions[0].Filesystem, rep.Partitions[0].Label, rep.Partitions[1].Filesystem, rep.Partitions[1].Label}
			if diff := cmp.Diff(got{wantTable, "ext4", "ferryroot", "swap", "ferryswap"}, g); diff != "" {
				t.Errorf("report (-want +got):\n%s", diff)
			}
		})
	}
}

// FuzzDisk feeds arbitrary images to the parser: it must not panic, must not
// hang, and every partition it reports must lie inside the image.
func FuzzDisk(f *testing.F) {
	seed := func(d memDisk) []byte { return []byte(d[:64<<10]) }
	f.Add(seed(gptImage(f, []string{"ext4", "xfs"})))
	f.Add(seed(gptImage(f, []string{"btrfs"})))
	m := make(memDisk, 64<<10)
	imagetest.WriteMBR(m, []imagetest.Part{{Start: 4096, Size: 8192, MBRType: 0x83}, {Start: 16384, Size: 32768, MBRType: 0x05}})
	copy(m[16384:], []byte{})
	f.Add([]byte(m))
	f.Add(imagetest.Superblock("fat32", "BOOT")[:4096])
	f.Add(imagetest.Superblock("lvm2-pv", "")[:4096])
	f.Fuzz(func(t *testing.T, b []byte) {
		rep, err := inspect.Disk(memDisk(b), int64(len(b)))
		if err != nil {
			return
		}
		for _, p := range rep.Partitions {
			if p.Start < 0 || p.Size <= 0 || p.Start+p.Size > int64(len(b)) {
				t.Fatalf("partition %+v lies outside the %d-byte image", p, len(b))
			}
		}
	})
}
