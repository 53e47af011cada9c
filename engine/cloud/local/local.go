// Package local owns Ferry's embedded-default target cloud: everything lives
// under one data directory on the machine running the engine. Disks are
// sparse files; a recovery point is an immutable reflink copy where the
// filesystem supports FICLONE, otherwise a manifest over a content-addressed
// block store (xxh3-128 keys, zstd, zero blocks never stored, shared blocks
// stored once, unreferenced blocks collected); a machine materialises the
// points of all the disks of a host into new disks and runs the inspect
// checks on them (and, optionally, boots them together in qemu).
//
// Layout under the data directory:
//
//	disks/<id>.img            sparse disk images (the gateway pwrites here)
//	points/<id>.manifest      block manifest of a recovery point
//	points/<id>.img           reflink copy (reflink mode only)
//	blocks/<2 hex>/<32 hex>   stored blocks (1-byte codec header + payload)
//	meta/{disks,points,machines}/<id>.json   metadata, written atomically
//	meta/instances/<id>.json  one-disk machines of older versions (read only)
//	owner.lock                held by the process that opened the Driver (Provider)
//	tmp/                      work in progress; emptied on open
//
// An object exists exactly when its meta file exists; meta files are written
// last (temp file, fsync, rename, fsync directory), so a crash at any point
// leaves either the whole object or nothing visible, and New cleans the rest.
// A machine's meta file is written first, in state creating, and its disks
// carry its id (LaunchedBy): a crash mid-launch leaves a machine that
// CreateMachine with the same token finishes. One Driver per data directory
// and process; Provider takes a lock file so that a second process cannot.
package local

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/klauspost/compress/zstd"

	"github.com/ferry-migrate/ferry/engine/cloud"
	"github.com/ferry-migrate/ferry/engine/vm"
)

var _ cloud.Driver = (*Driver)(nil)

// Mode chooses how recovery points are stored.
type Mode string

const (
	ModeAuto    Mode = "auto"    // reflink when the data directory supports FICLONE, else CAS
	ModeCAS     Mode = "cas"     // content-addressed block store
	ModeReflink Mode = "reflink" // FICLONE copies; New fails with ErrUnsupported without it
)

// Options configure a Driver. The zero value is usable.
type Options struct {
	Clock     func() time.Time // default time.Now
	BlockSize int              // CAS block size, power of two in [64 KiB, 4 MiB]; default 1 MiB
	Mode      Mode             // default ModeAuto
	Workers   int              // parallel hash/compress/IO workers; default GOMAXPROCS
	Boot      *BootOptions     // nil: launches skip the boot check
	// VM makes every launch a real boot: adapted copy-on-write copies of
	// the machine's disks booted in qemu with health checks (vmlaunch.go).
	// It takes precedence over Boot.
	VM *VMOptions
	// NoBootWhy says why neither Boot nor VM is set ("qemu-system-x86_64
	// not installed"), for the launches' skipped boot check.
	NoBootWhy string
}

// Driver is the local cloud. Safe for concurrent use.
type Driver struct {
	dir     string
	clock   func() time.Time
	bs      int
	mode    Mode // resolved: ModeCAS or ModeReflink
	workers int
	boot    *BootOptions
	noBoot  string // Options.NoBootWhy
	vmOpts  VMOptions
	vms     *vm.Host // nil unless Options.VM

	enc *zstd.Encoder
	dec *zstd.Decoder

	storeMu sync.Mutex // serialises point creation, deletion and GC

	mu       sync.Mutex
	disks    map[string]cloud.Disk
	points   map[string]pointMeta
	machines map[string]cloud.Machine
	seq      int64
	// busy serialises the work on one machine (creation, the boot), so two
	// callers holding the same token never materialise a disk twice.
	busy sync.Map // machine id → *sync.Mutex

	// testHookAfterBlock, when set, runs after each block a point creation
	// has processed (tests use it to crash or cancel half-way).
	testHookAfterBlock func(n int)
}

type pointMeta struct {
	cloud.RecoveryPoint
	Seq       int64
	BlockSize int
}

// New opens (creating if needed) the local cloud under dir, removes whatever
// a crash left half-done, and collects unreferenced blocks. Errors:
// ErrInvalid (options), ErrUnsupported (ModeReflink without FICLONE), I/O.
func New(dir string, opts Options) (*Driver, error) {
	d := &Driver{dir: dir, clock: opts.Clock, bs: opts.BlockSize, workers: opts.Workers, boot: opts.Boot, noBoot: opts.NoBootWhy,
		disks: map[string]cloud.Disk{}, points: map[string]pointMeta{}, machines: map[string]cloud.Machine{}}
	if d.clock == nil {
		d.clock = time.Now
	}
	if d.bs == 0 {
		d.bs = 1 << 20
	}
	if d.bs < 64<<10 || d.bs > 4<<20 || d.bs&(d.bs-1) != 0 {
		return nil, fmt.Errorf("local cloud: block size %d must be a power of two between 64 KiB and 4 MiB: %w", d.bs, cloud.ErrInvalid)
	}
	if d.workers <= 0 {
		d.workers = runtime.GOMAXPROCS(0)
	}
	for _, sub := range []string{"disks", "points", "blocks", "meta/disks", "meta/points", "meta/machines", "tmp"} {
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o700); err != nil {
			return nil, fmt.Errorf("local cloud: create %s: %w", sub, err)
		}
	}
	if err := removeContents(filepath.Join(dir, "tmp")); err != nil {
		return nil, fmt.Errorf("local cloud: clean tmp: %w", err)
	}
	switch opts.Mode {
	case "", ModeAuto:
		d.mode = ModeCAS
		if reflinkSupported(filepath.Join(dir, "tmp")) {
			d.mode = ModeReflink
		}
	case ModeCAS:
		d.mode = ModeCAS
	case ModeReflink:
		if !reflinkSupported(filepath.Join(dir, "tmp")) {
			return nil, fmt.Errorf("local cloud: reflink mode: the filesystem under %s does not support FICLONE: %w", dir, cloud.ErrUnsupported)
		}
		d.mode = ModeReflink
	default:
		return nil, fmt.Errorf("local cloud: mode %q (want auto, cas or reflink): %w", opts.Mode, cloud.ErrInvalid)
	}
	var err error
	if d.enc, err = zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedFastest), zstd.WithEncoderConcurrency(d.workers)); err != nil {
		return nil, err
	}
	if d.dec, err = zstd.NewReader(nil, zstd.WithDecoderConcurrency(d.workers)); err != nil {
		return nil, err
	}
	if opts.VM != nil {
		if d.vms, err = newVMHost(filepath.Join(dir, "vms"), *opts.VM); err != nil {
			return nil, err
		}
		d.vmOpts = *opts.VM
	}
	if err := d.load(); err != nil {
		return nil, err
	}
	if err := d.reapVMs(context.Background()); err != nil {
		return nil, err
	}
	if _, _, err := d.GC(context.Background()); err != nil {
		return nil, err
	}
	return d, nil
}

// Name implements cloud.Driver.
func (d *Driver) Name() string { return "local" }

// Mode reports how this driver stores recovery points (ModeCAS or ModeReflink).
func (d *Driver) Mode() Mode { return d.mode }

// Dir is the data directory.
func (d *Driver) Dir() string { return d.dir }

// Close releases the compressor. The Driver must not be used afterwards.
func (d *Driver) Close() error {
	d.enc.Close()
	d.dec.Close()
	return nil
}

func (d *Driver) load() error {
	var maxSeq int64
	if err := loadJSON(filepath.Join(d.dir, "meta/disks"), func(id string, b []byte) error {
		var m cloud.Disk
		if err := json.Unmarshal(b, &m); err != nil {
			return err
		}
		d.disks[id] = m
		return nil
	}); err != nil {
		return err
	}
	if err := loadJSON(filepath.Join(d.dir, "meta/points"), func(id string, b []byte) error {
		var m pointMeta
		if err := json.Unmarshal(b, &m); err != nil {
			return err
		}
		d.points[id] = m
		maxSeq = max(maxSeq, m.Seq)
		return nil
	}); err != nil {
		return err
	}
	if err := loadJSON(filepath.Join(d.dir, "meta/machines"), func(id string, b []byte) error {
		var m cloud.Machine
		if err := json.Unmarshal(b, &m); err != nil {
			return err
		}
		d.machines[id] = m
		return nil
	}); err != nil {
		return err
	}
	if err := d.loadLegacyInstances(); err != nil {
		return err
	}
	d.seq = maxSeq
	// A launch of an older version that crashed after making its disk but
	// before recording its instance left a disk nobody owns.
	for id, disk := range d.disks {
		if _, ok := d.machines[disk.LaunchedBy]; disk.LaunchedBy != "" && !ok {
			if err := d.deleteDiskLocked(id); err != nil {
				return err
			}
		}
	}
	// Files without a meta file were left by a crash before commit.
	for _, sub := range []struct{ dir, ext string }{{"points", ".manifest"}, {"points", ".img"}, {"disks", ".img"}} {
		ents, err := os.ReadDir(filepath.Join(d.dir, sub.dir))
		if err != nil {
			return err
		}
		for _, e := range ents {
			id, ok := strings.CutSuffix(e.Name(), sub.ext)
			if !ok {
				continue
			}
			_, isPoint := d.points[id]
			_, isDisk := d.disks[id]
			if (sub.dir == "points" && !isPoint) || (sub.dir == "disks" && !isDisk) {
				if err := os.Remove(filepath.Join(d.dir, sub.dir, e.Name())); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

func loadJSON(dir string, fn func(id string, b []byte) error) error {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range ents {
		id, ok := strings.CutSuffix(e.Name(), ".json")
		if !ok {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			return err
		}
		if err := fn(id, b); err != nil {
			return fmt.Errorf("local cloud: read %s: %w: %w", filepath.Join(dir, e.Name()), err, cloud.ErrCorrupt)
		}
	}
	return nil
}

var idPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$`)

func checkID(kind, id string) error {
	if !idPattern.MatchString(id) {
		return fmt.Errorf("%s id %q: want 1-128 characters of [A-Za-z0-9._-], starting with a letter or digit: %w", kind, id, cloud.ErrInvalid)
	}
	return nil
}

func newID(prefix string) string {
	b := make([]byte, 8)
	rand.Read(b)
	return prefix + "-" + hex.EncodeToString(b)
}

// writeAtomic makes path hold data durably, or leaves it as it was.
func (d *Driver) writeAtomic(path string, data []byte) error {
	f, err := os.CreateTemp(filepath.Join(d.dir, "tmp"), "w-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return err
	}
	return syncDir(filepath.Dir(path))
}

func (d *Driver) writeMeta(kind, id string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return d.writeAtomic(filepath.Join(d.dir, "meta", kind, id+".json"), b)
}

func (d *Driver) removeMeta(kind, id string) error {
	err := os.Remove(filepath.Join(d.dir, "meta", kind, id+".json"))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return syncDir(filepath.Join(d.dir, "meta", kind))
}

func syncDir(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer f.Close()
	return f.Sync()
}

func removeContents(dir string) error {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range ents {
		if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
			return err
		}
	}
	return nil
}

func (d *Driver) diskFile(id string) string { return filepath.Join(d.dir, "disks", id+".img") }

// pointsOf returns a disk's points, oldest first. Caller holds d.mu.
func (d *Driver) pointsOf(diskID string) []pointMeta {
	var out []pointMeta
	for _, p := range d.points {
		if p.DiskID == diskID {
			out = append(out, p)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Seq < out[j].Seq })
	return out
}

func ctxErr(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return nil
}
