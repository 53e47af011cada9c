// Package inspect owns reading a raw disk image the way a firmware and a
// kernel would before booting it: the partition table (MBR with extended
// partitions, GPT behind a protective MBR, verified by CRC32) and the
// filesystem on each partition or on the whole disk, recognised by its
// superblock (ext2/3/4, XFS, Btrfs, NTFS, exFAT, FAT12/16/32, Linux swap,
// LVM2 physical volume). Launch checks are built on it. It reads through an
// io.ReaderAt and never writes.
package inspect

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"strings"
	"unicode/utf16"
)

// SectorSize is the logical sector size assumed for partition tables.
const SectorSize = 512

// Table kinds.
const (
	TableNone = "none"
	TableMBR  = "mbr"
	TableGPT  = "gpt"
)

// Partition is one entry of a partition table.
type Partition struct {
	Index      int    // 1-based, as Linux numbers them (logical MBR partitions from 5)
	Start      int64  // bytes from the start of the disk
	Size       int64  // bytes
	Type       string // MBR "0x83", or the GPT type GUID in upper case
	TypeName   string // "Linux filesystem", "EFI System", ... when known
	Name       string // GPT partition name
	Filesystem string // "" when nothing was recognised
	Label      string // filesystem label when the superblock carries one
	// NoFilesystem is true for partition types that never hold one (BIOS
	// boot, MBR extended container).
	NoFilesystem bool
}

// Report is what Disk found.
type Report struct {
	Table      string // TableNone, TableMBR or TableGPT
	Partitions []Partition
	// Filesystem is the filesystem found on the whole disk when there is no
	// partition table (a "superfloppy" or an LVM PV on the raw disk).
	Filesystem string
	Label      string
}

// ErrMalformed is wrapped by every error about a damaged table.
var ErrMalformed = errors.New("malformed partition table")

// Disk reads the partition table and the filesystems of the image r of size
// bytes. A disk with neither a table nor a known filesystem is not an error
// (Report.Table is TableNone, Report.Filesystem ""). Errors: read errors, and
// ErrMalformed with the offending offset for a table that is present but
// damaged (bad CRC, entries outside the disk, overlapping or looping).
func Disk(r io.ReaderAt, size int64) (Report, error) {
	if size < SectorSize {
		return Report{Table: TableNone}, nil
	}
	sec0 := make([]byte, SectorSize)
	if err := readFull(r, sec0, 0, size); err != nil {
		return Report{}, fmt.Errorf("read sector 0: %w", err)
	}
	// A filesystem that starts at sector 0 (NTFS/FAT boot sectors also end
	// in 0x55AA) wins over an MBR reading of the same bytes.
	if fs, label := Filesystem(r, 0, size); fs != "" {
		return Report{Table: TableNone, Filesystem: fs, Label: label}, nil
	}
	if sec0[510] != 0x55 || sec0[511] != 0xAA {
		return Report{Table: TableNone}, nil
	}
	entries := parseMBREntries(sec0)
	for _, e := range entries {
		if e.typ == 0xEE {
			parts, err := readGPT(r, size)
			if err != nil {
				return Report{}, err
			}
			return finish(r, size, Report{Table: TableGPT, Partitions: parts}), nil
		}
	}
	parts, err := readMBR(r, size, entries)
	if err != nil {
		return Report{}, err
	}
	return finish(r, size, Report{Table: TableMBR, Partitions: parts}), nil
}

func finish(r io.ReaderAt, size int64, rep Report) Report {
	for i := range rep.Partitions {
		p := &rep.Partitions[i]
		if p.NoFilesystem {
			continue
		}
		p.Filesystem, p.Label = Filesystem(r, p.Start, p.Start+p.Size)
	}
	return rep
}

type mbrEntry struct {
	typ          byte
	start, count uint32
}

func parseMBREntries(sec []byte) []mbrEntry {
	var out []mbrEntry
	for i := 0; i < 4; i++ {
		b := sec[446+16*i : 446+16*(i+1)]
		e := mbrEntry{typ: b[4], start: binary.LittleEndian.Uint32(b[8:]), count: binary.LittleEndian.Uint32(b[12:])}
		if e.typ == 0 || e.count == 0 {
			out = append(out, mbrEntry{}) // keep numbering
			continue
		}
		out = append(out, e)
	}
	return out
}

func isExtended(t byte) bool { return t == 0x05 || t == 0x0F || t == 0x85 }

// maxLogical bounds the EBR chain so a looping chain cannot hang us.
const maxLogical = 128

func readMBR(r io.ReaderAt, size int64, entries []mbrEntry) ([]Partition, error) {
	var parts []Partition
	for i, e := range entries {
		if e.count == 0 {
			continue
		}
		p, err := mbrPartition(i+1, 0, e, size)
		if err != nil {
			return nil, err
		}
		parts = append(parts, p)
		if !isExtended(e.typ) {
			continue
		}
		logical, err := readEBRChain(r, size, int64(e.start), int64(e.start)+int64(e.count))
		if err != nil {
			return nil, err
		}
		parts = append(parts, logical...)
	}
	if err := checkOverlap(parts); err != nil {
		return nil, err
	}
	return parts, nil
}

func mbrPartition(index int, base int64, e mbrEntry, size int64) (Partition, error) {
	start := (base + int64(e.start)) * SectorSize
	length := int64(e.count) * SectorSize
	if start+length > size {
		return Partition{}, fmt.Errorf("MBR partition %d (start byte %d, %d bytes) ends past the disk's %d bytes: %w",
			index, start, length, size, ErrMalformed)
	}
	return Partition{
		Index: index, Start: start, Size: length,
		Type: fmt.Sprintf("0x%02x", e.typ), TypeName: mbrTypeName(e.typ),
		NoFilesystem: isExtended(e.typ),
	}, nil
}

func readEBRChain(r io.ReaderAt, size int64, extStart, extEnd int64) ([]Partition, error) {
	var parts []Partition
	sec := make([]byte, SectorSize)
	ebr := extStart
	seen := map[int64]bool{}
	for n := 0; ; n++ {
		if n >= maxLogical || seen[ebr] {
			return nil, fmt.Errorf("extended partition at sector %d: EBR chain loops or exceeds %d entries: %w", extStart, maxLogical, ErrMalformed)
		}
		seen[ebr] = true
		if ebr < extStart || ebr >= extEnd {
			return nil, fmt.Errorf("EBR at sector %d lies outside the extended partition [%d,%d): %w", ebr, extStart, extEnd, ErrMalformed)
		}
		if err := readFull(r, sec, ebr*SectorSize, size); err != nil {
			return nil, fmt.Errorf("read EBR at sector %d: %w", ebr, err)
		}
		if sec[510] != 0x55 || sec[511] != 0xAA {
			return nil, fmt.Errorf("EBR at sector %d has no 0x55AA signature: %w", ebr, ErrMalformed)
		}
		es := parseMBREntries(sec)
		if es[0].count != 0 {
			p, err := mbrPartition(5+len(parts), ebr, es[0], size)
			if err != nil {
				return nil, err
			}
			if p.Start+p.Size > extEnd*SectorSize {
				return nil, fmt.Errorf("logical partition %d ends past its extended partition: %w", p.Index, ErrMalformed)
			}
			parts = append(parts, p)
		}
		if es[1].count == 0 {
			return parts, nil
		}
		ebr = extStart + int64(es[1].start)
	}
}

func checkOverlap(parts []Partition) error {
	for i := range parts {
		for j := i + 1; j < len(parts); j++ {
			a, b := parts[i], parts[j]
			if a.NoFilesystem || b.NoFilesystem { // an extended container holds its logicals
				continue
			}
			if a.Start < b.Start+b.Size && b.Start < a.Start+a.Size {
				return fmt.Errorf("partitions %d and %d overlap: %w", a.Index, b.Index, ErrMalformed)
			}
		}
	}
	return nil
}

// GPT limits: the UEFI spec's usual 128 entries of 128 bytes; we accept up to
// 1024 entries of up to 4 KiB to stay bounded on hostile input.
const (
	maxGPTEntries   = 1024
	maxGPTEntrySize = 4096
)

func readGPT(r io.ReaderAt, size int64) ([]Partition, error) {
	hdr := make([]byte, SectorSize)
	if err := readFull(r, hdr, SectorSize, size); err != nil {
		return nil, fmt.Errorf("read GPT header at LBA 1: %w", err)
	}
	if string(hdr[0:8]) != "EFI PART" {
		return nil, fmt.Errorf("protective MBR present but no GPT signature at LBA 1: %w", ErrMalformed)
	}
	hsize := binary.LittleEndian.Uint32(hdr[12:])
	if hsize < 92 || hsize > SectorSize {
		return nil, fmt.Errorf("GPT header size %d at LBA 1 is outside [92,512]: %w", hsize, ErrMalformed)
	}
	want := binary.LittleEndian.Uint32(hdr[16:])
	h := make([]byte, hsize)
	copy(h, hdr[:hsize])
	binary.LittleEndian.PutUint32(h[16:], 0)
	if got := crc32.ChecksumIEEE(h); got != want {
		return nil, fmt.Errorf("GPT header CRC32 at LBA 1 is %08x, header says %08x: %w", got, want, ErrMalformed)
	}
	lastLBA := uint64(size/SectorSize) - 1
	firstUsable := binary.LittleEndian.Uint64(hdr[40:])
	lastUsable := binary.LittleEndian.Uint64(hdr[48:])
	entLBA := binary.LittleEndian.Uint64(hdr[72:])
	count := binary.LittleEndian.Uint32(hdr[80:])
	esize := binary.LittleEndian.Uint32(hdr[84:])
	entCRC := binary.LittleEndian.Uint32(hdr[88:])
	if lastUsable > lastLBA || firstUsable > lastUsable {
		return nil, fmt.Errorf("GPT usable LBAs [%d,%d] do not fit the disk's %d sectors (was the image truncated?): %w",
			firstUsable, lastUsable, lastLBA+1, ErrMalformed)
	}
	if count > maxGPTEntries || esize < 128 || esize > maxGPTEntrySize || esize%8 != 0 {
		return nil, fmt.Errorf("GPT entry array of %d entries of %d bytes is out of bounds: %w", count, esize, ErrMalformed)
	}
	arrBytes := int64(count) * int64(esize)
	if entLBA < 2 || entLBA > lastLBA || int64(entLBA)*SectorSize+arrBytes > size {
		return nil, fmt.Errorf("GPT entry array at LBA %d (%d bytes) lies outside the disk: %w", entLBA, arrBytes, ErrMalformed)
	}
	arr := make([]byte, arrBytes)
	if err := readFull(r, arr, int64(entLBA)*SectorSize, size); err != nil {
		return nil, fmt.Errorf("read GPT entries at LBA %d: %w", entLBA, err)
	}
	if got := crc32.ChecksumIEEE(arr); got != entCRC {
		return nil, fmt.Errorf("GPT entry array CRC32 at LBA %d is %08x, header says %08x: %w", entLBA, got, entCRC, ErrMalformed)
	}
	var parts []Partition
	for i := 0; i < int(count); i++ {
		e := arr[i*int(esize) : (i+1)*int(esize)]
		if allZero(e[0:16]) {
			continue
		}
		first := binary.LittleEndian.Uint64(e[32:])
		last := binary.LittleEndian.Uint64(e[40:])
		if first > last || first < firstUsable || last > lastUsable {
			return nil, fmt.Errorf("GPT partition %d spans LBAs [%d,%d], outside the usable [%d,%d]: %w",
				i+1, first, last, firstUsable, lastUsable, ErrMalformed)
		}
		typ := guidString(e[0:16])
		parts = append(parts, Partition{
			Index: i + 1, Start: int64(first) * SectorSize, Size: int64(last-first+1) * SectorSize,
			Type: typ, TypeName: gptTypeNames[typ], Name: utf16Name(e[56:128]),
			NoFilesystem: typ == gptBIOSBoot,
		})
	}
	if err := checkOverlap(parts); err != nil {
		return nil, err
	}
	return parts, nil
}

// guidString renders a GPT mixed-endian GUID.
func guidString(b []byte) string {
	return fmt.Sprintf("%08X-%04X-%04X-%X-%X",
		binary.LittleEndian.Uint32(b[0:]), binary.LittleEndian.Uint16(b[4:]), binary.LittleEndian.Uint16(b[6:]), b[8:10], b[10:16])
}

func utf16Name(b []byte) string {
	u := make([]uint16, 0, len(b)/2)
	for i := 0; i+1 < len(b); i += 2 {
		c := binary.LittleEndian.Uint16(b[i:])
		if c == 0 {
			break
		}
		u = append(u, c)
	}
	return string(utf16.Decode(u))
}

const gptBIOSBoot = "21686148-6449-6E6F-744E-656564454649"

var gptTypeNames = map[string]string{
	"C12A7328-F81F-11D2-BA4B-00A0C93EC93B": "EFI System",
	gptBIOSBoot:                            "BIOS boot",
	"0FC63DAF-8483-4772-8E79-3D69D8477DE4": "Linux filesystem",
	"0657FD6D-A4AB-43C4-84E5-0933C84B4F4F": "Linux swap",
	"E6D6D379-F507-44C2-A23C-238F2A3DF928": "Linux LVM",
	"4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709": "Linux root (x86-64)",
	"BC13C2FF-59E6-4262-A352-B275FD6F7172": "Linux extended boot",
	"EBD0A0A2-B9E5-4433-87C0-68B6B72699C7": "Microsoft basic data",
	"E3C9E316-0B5C-4DB8-817D-F92DF00215AE": "Microsoft reserved",
	"DE94BBA4-06D1-4D40-A16A-BFD50179D6AC": "Windows recovery",
}

func mbrTypeName(t byte) string {
	switch t {
	case 0x01, 0x04, 0x06, 0x0B, 0x0C, 0x0E:
		return "FAT"
	case 0x05, 0x0F, 0x85:
		return "extended"
	case 0x07:
		return "NTFS/exFAT"
	case 0x82:
		return "Linux swap"
	case 0x83:
		return "Linux"
	case 0x8E:
		return "Linux LVM"
	case 0xEF:
		return "EFI System"
	}
	return ""
}

// Filesystem recognises the filesystem whose superblock starts at byte start
// of r, reading nothing at or past end. It returns the name ("ext4", "xfs",
// "btrfs", "ntfs", "exfat", "fat32", "fat16", "fat12", "swap", "lvm2-pv") and
// the label when the superblock has one, or "" when nothing is recognised.
func Filesystem(r io.ReaderAt, start, end int64) (name, label string) {
	// 68 KiB covers every superblock we look for (Btrfs's is at 64 KiB).
	const window = 68 << 10
	n := end - start
	if n <= 0 {
		return "", ""
	}
	if n > window {
		n = window
	}
	buf := make([]byte, n)
	got, err := r.ReadAt(buf, start)
	if err != nil && !errors.Is(err, io.EOF) {
		return "", ""
	}
	return identify(buf[:got])
}

func identify(b []byte) (string, string) {
	at := func(off int, s string) bool {
		return len(b) >= off+len(s) && string(b[off:off+len(s)]) == s
	}
	// LVM2: "LABELONE" in one of the first four sectors, "LVM2 001" 24 bytes in.
	for s := 0; s < 4; s++ {
		if at(s*512, "LABELONE") && at(s*512+24, "LVM2 001") {
			return "lvm2-pv", ""
		}
	}
	if at(4096-10, "SWAPSPACE2") || at(4096-10, "SWAP-SPACE") {
		label := ""
		if len(b) >= 1068 {
			label = cstr(b[1024+28 : 1024+44])
		}
		return "swap", label
	}
	if at(0, "XFSB") && len(b) >= 120 {
		return "xfs", cstr(b[108:120])
	}
	if at(0x10040, "_BHRfS_M") && len(b) >= 0x10000+0x12B+256 {
		return "btrfs", cstr(b[0x10000+0x12B : 0x10000+0x12B+256])
	}
	if len(b) >= 2048 && binary.LittleEndian.Uint16(b[1024+56:]) == 0xEF53 {
		sb := b[1024:]
		if logBlock := binary.LittleEndian.Uint32(sb[24:]); logBlock <= 6 {
			compat := binary.LittleEndian.Uint32(sb[0x5C:])
			incompat := binary.LittleEndian.Uint32(sb[0x60:])
			name := "ext2"
			switch {
			case incompat&(0x40|0x80|0x200) != 0: // extents, 64bit, flex_bg
				name = "ext4"
			case compat&0x4 != 0: // has_journal
				name = "ext3"
			}
			return name, cstr(sb[0x78:0x88])
		}
	}
	if len(b) >= 512 && b[510] == 0x55 && b[511] == 0xAA {
		switch {
		case at(3, "NTFS    "):
			return "ntfs", ""
		case at(3, "EXFAT   "):
			return "exfat", ""
		case at(82, "FAT32   ") && binary.LittleEndian.Uint16(b[11:]) >= 512:
			return "fat32", strings.TrimRight(string(b[71:82]), " ")
		case at(54, "FAT16   ") && binary.LittleEndian.Uint16(b[11:]) >= 512:
			return "fat16", strings.TrimRight(string(b[43:54]), " ")
		case at(54, "FAT12   ") && binary.LittleEndian.Uint16(b[11:]) >= 512:
			return "fat12", strings.TrimRight(string(b[43:54]), " ")
		}
	}
	return "", ""
}

func cstr(b []byte) string {
	if i := bytes.IndexByte(b, 0); i >= 0 {
		b = b[:i]
	}
	return strings.TrimSpace(string(b))
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// readFull reads len(p) bytes at off, refusing reads past size.
func readFull(r io.ReaderAt, p []byte, off, size int64) error {
	if off < 0 || off+int64(len(p)) > size {
		return fmt.Errorf("%d bytes at offset %d lie past the disk's %d bytes: %w", len(p), off, size, ErrMalformed)
	}
	n, err := r.ReadAt(p, off)
	if n == len(p) {
		return nil
	}
	if err == nil || errors.Is(err, io.EOF) {
		err = io.ErrUnexpectedEOF
	}
	return err
}
