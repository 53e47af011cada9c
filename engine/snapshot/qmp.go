package snapshot

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// qmp is a minimal client of the QEMU Machine Protocol: one command at a
// time over a unix socket, events skipped.
type qmp struct {
	c  net.Conn
	rd *bufio.Reader
}

func dialQMP(ctx context.Context, path string) (*qmp, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, "unix", path)
	if err != nil {
		return nil, fmt.Errorf("QMP socket %s: %w", path, err)
	}
	q := &qmp{c: c, rd: bufio.NewReaderSize(c, 1<<16)}
	var greet struct {
		QMP json.RawMessage `json:"QMP"`
	}
	if err := q.read(ctx, &greet); err != nil || greet.QMP == nil {
		c.Close()
		return nil, fmt.Errorf("QMP socket %s: no greeting: %v", path, err)
	}
	if err := q.do(ctx, "qmp_capabilities", nil, nil); err != nil {
		c.Close()
		return nil, err
	}
	return q, nil
}

func (q *qmp) Close() error { return q.c.Close() }

func (q *qmp) read(ctx context.Context, v any) error {
	if dl, ok := ctx.Deadline(); ok {
		q.c.SetReadDeadline(dl)
	} else {
		q.c.SetReadDeadline(time.Now().Add(30 * time.Second))
	}
	line, err := q.rd.ReadBytes('\n')
	if err != nil {
		return err
	}
	return json.Unmarshal(line, v)
}

// do runs one command; out receives its "return" value.
func (q *qmp) do(ctx context.Context, cmd string, args map[string]any, out any) error {
	msg := map[string]any{"execute": cmd}
	if args != nil {
		msg["arguments"] = args
	}
	b, _ := json.Marshal(msg)
	if _, err := q.c.Write(append(b, '\n')); err != nil {
		return fmt.Errorf("QMP %s: %w", cmd, err)
	}
	for {
		var r struct {
			Event  string          `json:"event"`
			Return json.RawMessage `json:"return"`
			Error  *struct {
				Class string `json:"class"`
				Desc  string `json:"desc"`
			} `json:"error"`
		}
		if err := q.read(ctx, &r); err != nil {
			return fmt.Errorf("QMP %s: %w", cmd, err)
		}
		switch {
		case r.Event != "":
			continue
		case r.Error != nil:
			return fmt.Errorf("QMP %s: %s", cmd, r.Error.Desc)
		}
		if out != nil {
			return json.Unmarshal(r.Return, out)
		}
		return nil
	}
}

// QCOW2 takes a point-in-time view of a disk served by QEMU or
// qemu-storage-daemon (Disk.QMP, Disk.Node) with a qcow2 overlay: a
// temporary qcow2 backed by the live node, filled by a copy-before-write
// job (blockdev-backup sync=none) that saves each block the guest
// overwrites before the write lands, and exported read-only (FUSE) as the
// view. Starting the job is the instant of the snapshot. Unlike
// blockdev-snapshot, which moves the guest onto a new overlay that must be
// committed back afterwards (an active commit that some consumers' block
// permissions refuse, and a chain that grows with every pass otherwise),
// this leaves the guest's own chain untouched; releasing the view is
// cancelling the job and deleting the overlay.
type QCOW2 struct{}

func (QCOW2) Name() string { return "qcow2-overlay" }

func (QCOW2) Prepare(ctx context.Context, d Disk, opt Options) (Pending, error) {
	if d.QMP == "" || d.Node == "" {
		return nil, fmt.Errorf("%w: no QMP socket and block node given for %s", ErrUnsupported, d.Source)
	}
	for _, tool := range []string{"qemu-img"} {
		if _, err := exec.LookPath(tool); err != nil {
			return nil, fmt.Errorf("%w: %s is not installed (qemu-utils)", ErrUnsupported, tool)
		}
	}
	q, err := dialQMP(ctx, d.QMP)
	if err != nil {
		return nil, err
	}
	var nodes []struct {
		Node  string `json:"node-name"`
		Image struct {
			Size int64 `json:"virtual-size"`
		} `json:"image"`
	}
	if err := q.do(ctx, "query-named-block-nodes", map[string]any{"flat": true}, &nodes); err != nil {
		q.Close()
		return nil, err
	}
	var size int64 = -1
	for _, n := range nodes {
		if n.Node == d.Node {
			size = n.Image.Size
		}
	}
	if size < 0 {
		q.Close()
		return nil, fmt.Errorf("block node %q is not served at %s", d.Node, d.QMP)
	}
	name := strings.TrimPrefix(uniq(d.Node), ".")
	p := &qcowSnap{d: d, q: q, name: name, size: size, space: d.space(size),
		overlay: filepath.Join(opt.Dir, name+".qcow2"), view: filepath.Join(opt.Dir, name+".raw")}
	if out, err := exec.CommandContext(ctx, "qemu-img", "create", "-q", "-f", "qcow2", p.overlay, strconv.FormatInt(size, 10)).CombinedOutput(); err != nil {
		q.Close()
		return nil, fmt.Errorf("qemu-img create: %v: %s", err, strings.TrimSpace(string(out)))
	}
	if err := q.do(ctx, "blockdev-add", map[string]any{"driver": "qcow2", "node-name": name,
		"file": map[string]any{"driver": "file", "filename": p.overlay}, "backing": d.Node}, nil); err != nil {
		p.Abort(ctx)
		return nil, err
	}
	p.added = true
	return p, nil
}

type qcowSnap struct {
	d                   Disk
	q                   *qmp
	name, overlay, view string
	size, space         int64
	added, job, export  bool
}

func (p *qcowSnap) WritesTo() string { return p.overlay }

func (p *qcowSnap) Take(ctx context.Context) (*View, error) {
	if err := p.q.do(ctx, "blockdev-backup", map[string]any{"job-id": p.name, "device": p.d.Node, "target": p.name, "sync": "none"}, nil); err != nil {
		return nil, err
	}
	p.job = true
	// The export needs a file to mount over; it is made after the instant
	// (the guest's writes are already being saved).
	if err := os.WriteFile(p.view, nil, 0o600); err != nil {
		return nil, err
	}
	if err := p.q.do(ctx, "block-export-add", map[string]any{"type": "fuse", "id": p.name, "node-name": p.name, "mountpoint": p.view, "writable": false}, nil); err != nil {
		return nil, err
	}
	p.export = true
	return &View{Disk: p.d, Path: p.view, Method: "qcow2-overlay", check: p.check, release: p.Abort}, nil
}

// check measures the overlay: every block the guest overwrote since the
// instant is saved in it.
func (p *qcowSnap) check() error {
	st, err := os.Stat(p.overlay)
	if err != nil {
		return fmt.Errorf("%w: the overlay %s is gone: %v", ErrFilled, p.overlay, err)
	}
	if used := allocated(st); used > p.space {
		return fmt.Errorf("%w: the qcow2 overlay holds %d MiB of blocks the guest overwrote, more than its %d MiB of space", ErrFilled, used>>20, p.space>>20)
	}
	return nil
}

func (p *qcowSnap) Abort(ctx context.Context) error {
	ctx = context.WithoutCancel(ctx)
	var errs []string
	if p.export {
		if err := p.q.do(ctx, "block-export-del", map[string]any{"id": p.name}, nil); err != nil {
			errs = append(errs, err.Error())
		}
		p.export = false
		// The export unmounts asynchronously; the file is removed when it has.
		for i := 0; i < 100 && mounted(p.view); i++ {
			time.Sleep(20 * time.Millisecond) // waiting for the kernel to drop the FUSE mount
		}
	}
	if p.job {
		if err := p.q.do(ctx, "block-job-cancel", map[string]any{"device": p.name, "force": true}, nil); err != nil {
			errs = append(errs, err.Error())
		}
		p.job = false
		for i := 0; i < 100; i++ {
			var jobs []struct {
				ID string `json:"id"`
			}
			if p.q.do(ctx, "query-jobs", nil, &jobs) != nil || !hasJob(jobs, p.name) {
				break
			}
			time.Sleep(20 * time.Millisecond) // the cancelled job winds down
		}
	}
	if p.added {
		if err := p.q.do(ctx, "blockdev-del", map[string]any{"node-name": p.name}, nil); err != nil {
			errs = append(errs, err.Error())
		}
		p.added = false
	}
	os.Remove(p.view)
	os.Remove(p.overlay)
	p.q.Close()
	if len(errs) > 0 {
		return fmt.Errorf("release qcow2 overlay %s: %s", p.name, strings.Join(errs, "; "))
	}
	return nil
}

func hasJob(jobs []struct {
	ID string `json:"id"`
}, id string) bool {
	for _, j := range jobs {
		if j.ID == id {
			return true
		}
	}
	return false
}

// mounted reports whether path is a mount point.
func mounted(path string) bool {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return false
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) > 4 && unescape(f[4]) == path {
			return true
		}
	}
	return false
}
