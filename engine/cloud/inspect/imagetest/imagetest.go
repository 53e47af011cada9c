// Package imagetest owns building disk images for tests: GPT and MBR tables
// written byte by byte (with real CRC32s), hand-made superblocks for the
// filesystems inspect recognises, and real images from sfdisk and mkfs.ext4
// when the machine has them (Debian packages fdisk and e2fsprogs).
package imagetest

import (
	"encoding/binary"
	"hash/crc32"
	"io"
	"os/exec"
	"strconv"
	"testing"
	"unicode/utf16"
)

// Part is one partition to write; Start and Size are in bytes, multiples of 512.
type Part struct {
	Start, Size int64
	GPTType     string // GUID, upper or lower case, for GPT
	MBRType     byte   // for MBR
	Name        string
}

// GUIDs used by tests.
const (
	GUIDLinux = "0FC63DAF-8483-4772-8E79-3D69D8477DE4"
	GUIDESP   = "C12A7328-F81F-11D2-BA4B-00A0C93EC93B"
	GUIDBIOS  = "21686148-6449-6E6F-744E-656564454649"
)

func guidBytes(s string) []byte {
	h := make([]byte, 0, 32)
	for _, c := range s {
		if c != '-' {
			h = append(h, byte(c))
		}
	}
	raw := make([]byte, 16)
	for i := 0; i < 16; i++ {
		v, _ := strconv.ParseUint(string(h[2*i:2*i+2]), 16, 8)
		raw[i] = byte(v)
	}
	out := make([]byte, 16)
	// first three fields little-endian
	out[0], out[1], out[2], out[3] = raw[3], raw[2], raw[1], raw[0]
	out[4], out[5] = raw[5], raw[4]
	out[6], out[7] = raw[7], raw[6]
	copy(out[8:], raw[8:])
	return out
}

// WriteGPT writes a protective MBR, the primary GPT header and 128-entry
// array, and the backup array and header at the end of a disk of size bytes.
func WriteGPT(w io.WriterAt, size int64, parts []Part) error {
	lastLBA := uint64(size/512) - 1
	pmbr := make([]byte, 512)
	e := pmbr[446:]
	e[4] = 0xEE
	binary.LittleEndian.PutUint32(e[8:], 1)
	cnt := lastLBA
	if cnt > 0xFFFFFFFF {
		cnt = 0xFFFFFFFF
	}
	binary.LittleEndian.PutUint32(e[12:], uint32(cnt))
	pmbr[510], pmbr[511] = 0x55, 0xAA
	if _, err := w.WriteAt(pmbr, 0); err != nil {
		return err
	}
	arr := make([]byte, 128*128)
	for i, p := range parts {
		en := arr[i*128:]
		copy(en[0:], guidBytes(p.GPTType))
		copy(en[16:], guidBytes("12345678-1234-1234-1234-1234567890"+strconv.FormatInt(int64(10+i), 10)))
		binary.LittleEndian.PutUint64(en[32:], uint64(p.Start/512))
		binary.LittleEndian.PutUint64(en[40:], uint64((p.Start+p.Size)/512-1))
		for j, c := range utf16.Encode([]rune(p.Name)) {
			if j < 36 {
				binary.LittleEndian.PutUint16(en[56+2*j:], c)
			}
		}
	}
	arrCRC := crc32.ChecksumIEEE(arr)
	header := func(my, alt, entLBA uint64) []byte {
		h := make([]byte, 512)
		copy(h, "EFI PART")
		binary.LittleEndian.PutUint32(h[8:], 0x00010000)
		binary.LittleEndian.PutUint32(h[12:], 92)
		binary.LittleEndian.PutUint64(h[24:], my)
		binary.LittleEndian.PutUint64(h[32:], alt)
		binary.LittleEndian.PutUint64(h[40:], 34)
		binary.LittleEndian.PutUint64(h[48:], lastLBA-33)
		copy(h[56:], guidBytes("A1B2C3D4-0000-1111-2222-333344445555"))
		binary.LittleEndian.PutUint64(h[72:], entLBA)
		binary.LittleEndian.PutUint32(h[80:], 128)
		binary.LittleEndian.PutUint32(h[84:], 128)
		binary.LittleEndian.PutUint32(h[88:], arrCRC)
		binary.LittleEndian.PutUint32(h[16:], crc32.ChecksumIEEE(h[:92]))
		return h
	}
	for _, wr := range []struct {
		b   []byte
		off int64
	}{
		{header(1, lastLBA, 2), 512},
		{arr, 1024},
		{arr, int64(lastLBA-32) * 512},
		{header(lastLBA, 1, lastLBA-32), int64(lastLBA) * 512},
	} {
		if _, err := w.WriteAt(wr.b, wr.off); err != nil {
			return err
		}
	}
	return nil
}

// WriteMBR writes a classic MBR with up to four primary partitions.
func WriteMBR(w io.WriterAt, parts []Part) error {
	s := make([]byte, 512)
	copy(s, []byte{0xFA, 0x31, 0xC0}) // a few bytes of boot code
	for i, p := range parts {
		e := s[446+16*i:]
		e[4] = p.MBRType
		binary.LittleEndian.PutUint32(e[8:], uint32(p.Start/512))
		binary.LittleEndian.PutUint32(e[12:], uint32(p.Size/512))
	}
	s[510], s[511] = 0x55, 0xAA
	_, err := w.WriteAt(s, 0)
	return err
}

// Superblock returns the first bytes of a filesystem of the named kind, as
// its mkfs would lay them out, enough for recognition: "xfs", "btrfs",
// "ntfs", "fat32", "exfat", "swap", "lvm2-pv", "ext2", "ext3", "ext4".
func Superblock(kind, label string) []byte {
	b := make([]byte, 68<<10)
	switch kind {
	case "xfs":
		copy(b, "XFSB")
		binary.BigEndian.PutUint32(b[4:], 4096)
		copy(b[108:120], label)
	case "btrfs":
		copy(b[0x10040:], "_BHRfS_M")
		copy(b[0x10000+0x12B:], label)
	case "ntfs", "exfat":
		b[0], b[1], b[2] = 0xEB, 0x52, 0x90
		if kind == "ntfs" {
			copy(b[3:], "NTFS    ")
		} else {
			copy(b[3:], "EXFAT   ")
		}
		b[510], b[511] = 0x55, 0xAA
	case "fat32":
		b[0], b[1], b[2] = 0xEB, 0x58, 0x90
		copy(b[3:], "mkfs.fat")
		binary.LittleEndian.PutUint16(b[11:], 512)
		b[13] = 8
		copy(b[71:82], padRight(label, 11))
		copy(b[82:], "FAT32   ")
		b[510], b[511] = 0x55, 0xAA
	case "swap":
		copy(b[4096-10:], "SWAPSPACE2")
		binary.LittleEndian.PutUint32(b[1024:], 1)
		copy(b[1052:1068], label)
	case "lvm2-pv":
		copy(b[512:], "LABELONE")
		binary.LittleEndian.PutUint64(b[512+8:], 1)
		copy(b[512+24:], "LVM2 001")
	case "ext2", "ext3", "ext4":
		sb := b[1024:]
		binary.LittleEndian.PutUint32(sb[0:], 2048) // inodes
		binary.LittleEndian.PutUint32(sb[4:], 8192) // blocks
		binary.LittleEndian.PutUint32(sb[24:], 0)   // 1 KiB blocks
		binary.LittleEndian.PutUint16(sb[56:], 0xEF53)
		if kind != "ext2" {
			binary.LittleEndian.PutUint32(sb[0x5C:], 0x4)
		}
		if kind == "ext4" {
			binary.LittleEndian.PutUint32(sb[0x60:], 0x2C2)
		}
		copy(sb[0x78:0x88], label)
	default:
		panic("imagetest: unknown superblock kind " + kind)
	}
	return b
}

func padRight(s string, n int) string {
	for len(s) < n {
		s += " "
	}
	return s[:n]
}

// Need returns the path of a required tool or fails the test naming the
// Debian package to install. Launch-check tests use real tools rather than
// skipping without them.
func Need(tb testing.TB, tool, debPackage string) string {
	tb.Helper()
	p, err := exec.LookPath(tool)
	if err != nil {
		tb.Fatalf("%s not found: apt-get install -y %s (make test installs it)", tool, debPackage)
	}
	return p
}

// Run runs a command and fails the test with its output on error.
func Run(tb testing.TB, name string, args ...string) {
	tb.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		tb.Fatalf("%s %v: %v\n%s", name, args, err, out)
	}
}
