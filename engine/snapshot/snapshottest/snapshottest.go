// Package snapshottest builds the real storage stacks the snapshot tests
// run on: loop devices, ext4 and btrfs filesystems, qcow2 disks served by
// qemu-storage-daemon over FUSE and QMP, and a writer process appending
// numbered records through a mounted filesystem. Everything is torn down by
// t.Cleanup. The tests need root (loop devices, mount) and the Debian
// packages in the Makefile's APT_PKGS.
package snapshottest

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Run runs a command and fails the test with its output if it fails.
func Run(t testing.TB, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out))
}

// Loop attaches file to a free loop device and returns the device.
func Loop(t testing.TB, file string) string {
	t.Helper()
	dev := Run(t, "losetup", "-f", "--show", file)
	t.Cleanup(func() { exec.Command("losetup", "-d", dev).Run() })
	return dev
}

// Mount mounts dev at dir (created) and unmounts it at cleanup.
func Mount(t testing.TB, dev, dir string, opts ...string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	args := []string{dev, dir}
	if len(opts) > 0 {
		args = append([]string{"-o", strings.Join(opts, ",")}, args...)
	}
	Run(t, "mount", args...)
	t.Cleanup(func() { Unmount(dir) })
}

// Unmount unmounts dir, retrying while it is busy (a writer that was just
// killed may still hold a file open for a moment).
func Unmount(dir string) {
	exec.Command("fsfreeze", "-u", dir).Run()
	for i := 0; i < 50; i++ {
		if exec.Command("umount", dir).Run() == nil || !isMount(dir) {
			return
		}
		time.Sleep(100 * time.Millisecond) // waiting for the last file to close
	}
	exec.Command("umount", "-l", dir).Run()
}

func isMount(dir string) bool {
	b, _ := os.ReadFile("/proc/self/mountinfo")
	return bytes.Contains(b, []byte(" "+dir+" "))
}

// Ext4Image makes an ext4 filesystem in a new image file of size bytes.
func Ext4Image(t testing.TB, path string, size int64) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	f.Truncate(size)
	f.Close()
	Run(t, "mkfs.ext4", "-q", "-F", "-E", "lazy_itable_init=0,lazy_journal_init=0", path)
}

// Btrfs makes a btrfs filesystem on a loop device and mounts it at dir.
func Btrfs(t testing.TB, dir string, size int64) {
	t.Helper()
	img := dir + ".btrfs.img"
	f, err := os.Create(img)
	if err != nil {
		t.Fatal(err)
	}
	f.Truncate(size)
	f.Close()
	Run(t, "mkfs.btrfs", "-q", "-f", img)
	Mount(t, Loop(t, img), dir)
}

// QSD is a qemu-storage-daemon serving one qcow2 disk: Export is the FUSE
// file through which it is read and written (as a guest would), QMP its
// control socket, Node the disk's block node.
type QSD struct {
	Export, QMP, Node, Image string
	cmd                      *exec.Cmd
}

// StartQSD creates a qcow2 of size bytes in dir and serves it.
func StartQSD(t testing.TB, dir string, size int64) *QSD {
	t.Helper()
	q := &QSD{Export: filepath.Join(dir, "disk.raw"), QMP: filepath.Join(dir, "qmp.sock"), Node: "disk0", Image: filepath.Join(dir, "disk.qcow2")}
	Run(t, "qemu-img", "create", "-q", "-f", "qcow2", q.Image, strconv.FormatInt(size, 10))
	if err := os.WriteFile(q.Export, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	q.cmd = exec.Command("qemu-storage-daemon",
		"--blockdev", "driver=file,node-name=file0,filename="+q.Image,
		"--blockdev", "driver=qcow2,node-name="+q.Node+",file=file0",
		"--export", "type=fuse,id=guest,node-name="+q.Node+",mountpoint="+q.Export+",writable=on",
		"--chardev", "socket,id=mon,path="+q.QMP+",server=on,wait=off",
		"--monitor", "chardev=mon")
	var out bytes.Buffer
	q.cmd.Stdout, q.cmd.Stderr = &out, &out
	if err := q.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		q.cmd.Process.Kill()
		q.cmd.Wait()
		exec.Command("umount", "-l", q.Export).Run()
	})
	deadline := time.Now().Add(20 * time.Second)
	for !isMount(q.Export) {
		if time.Now().After(deadline) {
			t.Fatalf("qemu-storage-daemon did not export %s: %s", q.Export, out.String())
		}
		time.Sleep(20 * time.Millisecond) // polling for the FUSE mount
	}
	if _, err := os.Stat(q.QMP); err != nil {
		t.Fatalf("no QMP socket: %v", err)
	}
	return q
}

// RecordSize is the length of one writer record: "rec 0000000042 ...\n".
const RecordSize = 64

// Writer is a separate process appending numbered records, one write(2)
// each, to a file.
type Writer struct {
	cmd  *exec.Cmd
	File string
}

// StartWriter starts appending records to file (through whatever
// filesystem holds it) until Stop.
func StartWriter(t testing.TB, file string) *Writer {
	t.Helper()
	// dash's printf writes each record with one write(2).
	script := `i=0; while :; do printf 'rec %010d %048s\n' "$i" x >> "$1" || exit 1; i=$((i+1)); done`
	w := &Writer{File: file, cmd: exec.Command("sh", "-c", script, "writer", file)}
	if err := w.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Stop)
	return w
}

// Stop ends the writer.
func (w *Writer) Stop() {
	if w.cmd.ProcessState == nil {
		w.cmd.Process.Kill()
		w.cmd.Wait()
	}
}

// WaitRecords waits until the writer has written at least n records.
func (w *Writer) WaitRecords(t testing.TB, n int) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		if st, err := os.Stat(w.File); err == nil && st.Size() >= int64(n*RecordSize) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("writer did not write %d records", n)
		}
		time.Sleep(10 * time.Millisecond) // polling the writer's progress
	}
}

// CheckRecords reads a writer's file and reports how many records it holds,
// failing unless they are exactly 0, 1, …, n-1 with no torn record.
func CheckRecords(t testing.TB, data []byte) int {
	t.Helper()
	if len(data)%RecordSize != 0 {
		t.Fatalf("records file is %d bytes: a torn record at the end (records are %d bytes)", len(data), RecordSize)
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	n := 0
	for sc.Scan() {
		line := sc.Text()
		want := fmt.Sprintf("rec %010d %48s", n, "x")
		if line != want {
			t.Fatalf("record %d is %q, want %q: not a prefix of the sequence", n, line, want)
		}
		n++
	}
	return n
}

// FileFromExt4 reads a file out of an ext4 image without mounting it.
func FileFromExt4(t testing.TB, image, path string) []byte {
	t.Helper()
	out, err := exec.Command("debugfs", "-R", "cat "+path, image).Output()
	if err != nil {
		t.Fatalf("debugfs cat %s in %s: %v", path, image, err)
	}
	return out
}

// Fsck runs e2fsck -fn on an image and fails the test unless it is clean.
func Fsck(t testing.TB, image string) {
	t.Helper()
	out, err := exec.Command("e2fsck", "-fn", image).CombinedOutput()
	if err != nil {
		t.Fatalf("e2fsck -fn %s: %v\n%s", image, err, out)
	}
}
