package ecsemu

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/ferry-migrate/ferry/engine/vm"
)

// VMOptions configure the instances of custom images, which boot their
// disks under qemu.
type VMOptions struct {
	// Qemu and QemuImg programs (default from PATH).
	Qemu, QemuImg string
	// Probe is the kernel the accelerator probe boots (engine/vm); without
	// one, TCG.
	Probe vm.Probe
	// AccelCache is where the probe's verdict is kept (default DIR/vm/accel.json).
	AccelCache string
	// MaxMemoryMiB caps an instance type's memory (default 1024) and MaxCPUs
	// its vCPUs (default 1): the emulator's host is not a cloud.
	MaxMemoryMiB int
	MaxCPUs      int
	// NoBoot runs custom-image instances without booting them (they reach
	// Running and their disks hold the image's bytes; the console says the
	// VM was not started): for tests about the API, not the guest.
	NoBoot bool
}

// runtime runs instances on this host: a process for an instance of a
// public image, a qemu VM for one of a custom image, and the listeners on
// each instance's private address that serve its security groups' TCP
// rules.
type runtime struct {
	s       *Server
	mu      sync.Mutex
	procs   map[string]*proc
	vms     map[string]bool
	ingress map[string][]net.Listener
	host    *vm.Host
	closed  bool
}

type proc struct {
	pid  int
	done chan struct{}
}

func newRuntime(s *Server) *runtime {
	return &runtime{s: s, procs: map[string]*proc{}, vms: map[string]bool{}, ingress: map[string][]net.Listener{}}
}

// launchSpec is what start needs, copied under the state lock.
type launchSpec struct {
	id, kind, userData, privateIP, bindIP, typ string
	disks                                      []launchDisk
}

type launchDisk struct{ path, device, serial string }

func (r *runtime) spec(in *instance) launchSpec {
	sp := launchSpec{id: in.ID, kind: in.Kind, userData: in.UserData, privateIP: in.PrivateIP, bindIP: in.BindIP, typ: in.Type}
	for _, d := range r.s.st.Disks {
		if d.InstanceID == in.ID && d.Device != "" && (d.Status == "In_use" || d.Type == "system") {
			sp.disks = append(sp.disks, launchDisk{r.s.diskPath(d.ID), d.Device, serialOf(d.ID)})
		}
	}
	sort.Slice(sp.disks, func(i, j int) bool { return sp.disks[i].device < sp.disks[j].device })
	return sp
}

// start brings up in's runtime in the background; when it is up the
// instance may become Running. Called with s.mu held.
func (r *runtime) start(in *instance) {
	sp := r.spec(in)
	go func() {
		pid, err := r.launch(sp)
		s := r.s
		s.mu.Lock()
		defer s.mu.Unlock()
		cur := s.st.Instances[sp.id]
		if cur == nil || cur.Status != "Starting" {
			// Stopped or deleted while it came up.
			go r.kill(sp.id, sp.kind)
			return
		}
		if err != nil {
			cur.RuntimeErr = err.Error()
			r.appendConsole(sp.id, "ecsemu: the instance did not start: "+err.Error()+"\n")
		} else {
			cur.RuntimeUp, cur.PID = true, pid
			r.serveIngress(cur)
		}
		s.save()
	}()
}

// stop ends in's runtime in the background. Called with s.mu held.
func (r *runtime) stop(in *instance) {
	id, kind := in.ID, in.Kind
	r.closeIngress(id)
	go func() {
		r.kill(id, kind)
		r.s.mu.Lock()
		defer r.s.mu.Unlock()
		if cur := r.s.st.Instances[id]; cur != nil {
			cur.RuntimeUp, cur.PID = false, 0
		}
	}()
}

// remove ends in's runtime and deletes its directory and VM. Called with
// s.mu held.
func (r *runtime) remove(in *instance) {
	id, kind := in.ID, in.Kind
	r.closeIngress(id)
	go func() {
		r.kill(id, kind)
		if kind == "vm" {
			if h, err := r.vmHost(); err == nil {
				h.Delete(context.Background(), id)
			}
		}
		os.RemoveAll(r.s.instanceDir(id))
		r.mu.Lock()
		delete(r.vms, id)
		r.mu.Unlock()
	}()
}

func (r *runtime) consolePath(in *instance) string {
	if in.Kind == "vm" && !r.s.opt.VM.NoBoot {
		if h, err := r.vmHost(); err == nil {
			return filepath.Join(h.Dir(), in.ID, "console.log")
		}
	}
	return filepath.Join(r.s.instanceDir(in.ID), "console.log")
}

func (r *runtime) appendConsole(id, line string) {
	dir := r.s.instanceDir(id)
	os.MkdirAll(dir, 0o700)
	if f, err := os.OpenFile(filepath.Join(dir, "console.log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600); err == nil {
		f.WriteString(line)
		f.Close()
	}
}

func (r *runtime) launch(sp launchSpec) (int, error) {
	r.mu.Lock()
	closed := r.closed
	r.mu.Unlock()
	if closed {
		return 0, errors.New("the emulator is shutting down")
	}
	if sp.kind == "vm" {
		if r.s.opt.VM.NoBoot {
			r.appendConsole(sp.id, "ecsemu: "+sp.id+" is Running without a VM (VMOptions.NoBoot)\n")
			return 0, nil
		}
		return 0, r.launchVM(sp)
	}
	return r.launchProcess(sp)
}

// deviceName maps ECS's /dev/xvdX to the guest's virtio name /dev/vdX.
func deviceName(device string) string {
	return "vd" + strings.TrimPrefix(device, "/dev/xvd")
}

func (r *runtime) launchProcess(sp launchSpec) (int, error) {
	dir := r.s.instanceDir(sp.id)
	root := filepath.Join(dir, "root")
	if err := os.MkdirAll(filepath.Join(root, "dev"), 0o700); err != nil {
		return 0, err
	}
	for _, d := range sp.disks {
		if err := linkDevice(root, d.path, d.device, d.serial); err != nil {
			return 0, err
		}
	}
	raw, err := base64.StdEncoding.DecodeString(sp.userData)
	if err != nil {
		return 0, err
	}
	r.appendConsole(sp.id, fmt.Sprintf("ecsemu: %s booted (%s, private address %s)\n", sp.id, sp.typ, sp.privateIP))
	if !bytes.HasPrefix(raw, []byte("#!")) {
		// No script: an image booted with nothing to run (cloud-config
		// user data is not interpreted).
		return 0, nil
	}
	script := filepath.Join(root, "user-data")
	if err := os.WriteFile(script, raw, 0o700); err != nil {
		return 0, err
	}
	console, err := os.OpenFile(filepath.Join(dir, "console.log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		return 0, err
	}
	defer console.Close()
	cmd := exec.Command(script)
	cmd.Dir = root
	path := strings.Join(append(append([]string{}, r.s.opt.Path...), os.Getenv("PATH")), string(os.PathListSeparator))
	cmd.Env = append(os.Environ(), "PATH="+path, "HOME="+root,
		"ECSEMU_INSTANCE_ID="+sp.id, "ECSEMU_PRIVATE_IP="+sp.privateIP, "ECSEMU_BIND_IP="+sp.bindIP, "ECSEMU_DEVICE_ROOT="+root)
	cmd.Stdout, cmd.Stderr = console, console
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return 0, errors.New("the emulator is shutting down")
	}
	if err := cmd.Start(); err != nil {
		return 0, err
	}
	p := &proc{pid: cmd.Process.Pid, done: make(chan struct{})}
	r.procs[sp.id] = p
	go func() {
		err := cmd.Wait()
		r.appendConsole(sp.id, fmt.Sprintf("ecsemu: user data script ended: %v\n", errOrOK(err)))
		close(p.done)
	}()
	return p.pid, nil
}

func errOrOK(err error) string {
	if err == nil {
		return "exit status 0"
	}
	return err.Error()
}

func (r *runtime) vmHost() (*vm.Host, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.host != nil {
		return r.host, nil
	}
	o := r.s.opt.VM
	h, err := vm.NewHost(filepath.Join(r.s.opt.Dir, "vm"), vm.Options{Qemu: o.Qemu, QemuImg: o.QemuImg, Probe: o.Probe, AccelCache: o.AccelCache, Now: r.s.opt.Now})
	if err != nil {
		return nil, err
	}
	r.host = h
	return h, nil
}

func (r *runtime) launchVM(sp launchSpec) error {
	h, err := r.vmHost()
	if err != nil {
		return err
	}
	o := r.s.opt.VM
	mem, cpus := 1024, 1
	if o.MaxMemoryMiB > 0 {
		mem = o.MaxMemoryMiB
	}
	if o.MaxCPUs > 0 {
		cpus = o.MaxCPUs
	}
	if it := findType(sp.typ); it != nil {
		mem, cpus = min(mem, it.memGiB*1024), min(cpus, it.cpus)
	}
	r.s.mu.Lock()
	var ports []int
	if in := r.s.st.Instances[sp.id]; in != nil {
		ports = r.s.ingressPorts(in.SecurityGroupIDs)
	}
	r.s.mu.Unlock()
	spec := vm.Spec{Name: sp.id, CPUs: cpus, MemoryMiB: mem, Network: vm.Network{Mode: vm.NetTarget, Ports: ports}}
	for _, d := range sp.disks {
		spec.Disks = append(spec.Disks, vm.Disk{Image: d.path, Format: "raw"})
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if _, err := h.Create(ctx, spec); err != nil && !errors.Is(err, vm.ErrExists) {
		return err
	}
	r.mu.Lock()
	r.vms[sp.id] = true
	r.mu.Unlock()
	if _, err := h.Start(ctx, sp.id); err != nil && !errors.Is(err, vm.ErrRunning) {
		r.mu.Lock()
		delete(r.vms, sp.id)
		r.mu.Unlock()
		return err
	}
	return nil
}

// kill ends the instance's process group or VM and waits for it.
func (r *runtime) kill(id, kind string) {
	if kind == "vm" {
		if h, err := r.vmHost(); err == nil {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			h.Stop(ctx, id, 0)
			cancel()
		}
		r.mu.Lock()
		delete(r.vms, id)
		r.mu.Unlock()
		return
	}
	r.mu.Lock()
	p := r.procs[id]
	r.mu.Unlock()
	if p == nil {
		return
	}
	syscall.Kill(-p.pid, syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(5 * time.Second):
		syscall.Kill(-p.pid, syscall.SIGKILL)
		<-p.done
	}
	// The script's children in its group, if the script itself went first.
	syscall.Kill(-p.pid, syscall.SIGKILL)
	r.mu.Lock()
	if r.procs[id] == p {
		delete(r.procs, id)
	}
	r.mu.Unlock()
}

// alive counts the processes and VMs running.
func (r *runtime) alive() (procs, vms int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, p := range r.procs {
		select {
		case <-p.done:
		default:
			procs++
		}
	}
	return procs, len(r.vms)
}

// diskAttached shows a newly attached disk to a running process instance.
// Called with s.mu held.
func (r *runtime) diskAttached(d *disk) {
	in := r.s.st.Instances[d.InstanceID]
	if in == nil || in.Kind != "process" {
		return
	}
	if err := linkDevice(filepath.Join(r.s.instanceDir(in.ID), "root"), r.s.diskPath(d.ID), d.Device, serialOf(d.ID)); err != nil {
		r.s.opt.Logf("ecsemu: instance %s: show disk %s: %v", in.ID, d.ID, err)
	}
}

// serialOf is a cloud disk's serial number as ECS gives it to the guest:
// its id without "d-".
func serialOf(id string) string { return strings.TrimPrefix(id, "d-") }

// linkDevice shows a disk to a process instance the ways Linux on ECS
// does: /dev/vdX (virtio name) and /dev/disk/by-id/virtio-SERIAL.
func linkDevice(root, path, device, serial string) error {
	byID := filepath.Join(root, "dev", "disk", "by-id")
	if err := os.MkdirAll(byID, 0o700); err != nil {
		return err
	}
	for _, link := range []string{filepath.Join(root, "dev", deviceName(device)), filepath.Join(byID, "virtio-"+serial)} {
		os.Remove(link)
		if err := os.Symlink(path, link); err != nil {
			return err
		}
	}
	return nil
}

// diskDetached hides a detached disk again. Called with s.mu held.
func (r *runtime) diskDetached(d *disk) {
	if in := r.s.st.Instances[d.InstanceID]; in != nil && in.Kind == "process" {
		root := filepath.Join(r.s.instanceDir(in.ID), "root", "dev")
		os.Remove(filepath.Join(root, deviceName(d.Device)))
		os.Remove(filepath.Join(root, "disk", "by-id", "virtio-"+serialOf(d.ID)))
	}
}

// rulesChanged re-serves the ingress of running instances in group sg.
// Called with s.mu held.
func (r *runtime) rulesChanged(sg string) {
	for _, in := range r.s.st.Instances {
		if in.RuntimeUp && containsFold(in.SecurityGroupIDs, sg) {
			r.closeIngress(in.ID)
			r.serveIngress(in)
		}
	}
}

// serveIngress listens on in's private address on every TCP port its
// security groups accept from somewhere and forwards each connection the
// rules admit (by source address, priority, drop over accept) to where the
// instance really listens: its bind address for a process, qemu's forward
// for a VM. Called with s.mu held.
func (r *runtime) serveIngress(in *instance) {
	id := in.ID
	for _, port := range r.s.ingressPorts(in.SecurityGroupIDs) {
		ln, err := net.Listen("tcp", net.JoinHostPort(in.PrivateIP, fmt.Sprint(port)))
		if err != nil {
			r.s.opt.Logf("ecsemu: instance %s: serve port %d: %v", id, port, err)
			continue
		}
		r.mu.Lock()
		r.ingress[id] = append(r.ingress[id], ln)
		r.mu.Unlock()
		go r.accept(ln, id, port)
	}
}

func (r *runtime) accept(ln net.Listener, id string, port int) {
	for {
		conn, err := ln.Accept()
		if err != nil {
			return
		}
		go r.forward(conn, id, port)
	}
}

func (r *runtime) forward(conn net.Conn, id string, port int) {
	defer conn.Close()
	from, _ := netip.ParseAddrPort(conn.RemoteAddr().String())
	r.s.mu.Lock()
	in := r.s.st.Instances[id]
	ok := in != nil && r.s.ingressAllows(in.SecurityGroupIDs, port, from.Addr().Unmap())
	var kind, bind string
	if in != nil {
		kind, bind = in.Kind, in.BindIP
	}
	r.s.mu.Unlock()
	if !ok {
		return
	}
	target := net.JoinHostPort(bind, fmt.Sprint(port))
	if kind == "vm" {
		h, err := r.vmHost()
		if err != nil {
			return
		}
		vin, err := h.Get(id)
		if err != nil || vin.HostAddr(port) == "" {
			return
		}
		target = vin.HostAddr(port)
	}
	up, err := net.DialTimeout("tcp", target, 5*time.Second)
	if err != nil {
		return
	}
	defer up.Close()
	done := make(chan struct{}, 2)
	go func() { io.Copy(up, conn); up.(*net.TCPConn).CloseWrite(); done <- struct{}{} }()
	go func() { io.Copy(conn, up); conn.(*net.TCPConn).CloseWrite(); done <- struct{}{} }()
	<-done
	<-done
}

func (r *runtime) closeIngress(id string) {
	r.mu.Lock()
	lns := r.ingress[id]
	delete(r.ingress, id)
	r.mu.Unlock()
	for _, ln := range lns {
		ln.Close()
	}
}

// recover reconciles the saved state with this host after a restart: the
// processes and VMs of a previous run are ended, and instances that were
// running start again (as after a host reboot). Called with s.mu held.
func (r *runtime) recover() error {
	now := r.s.opt.Now().UTC()
	for _, in := range r.s.st.Instances {
		if in.PID > 0 && ours(in.PID, in.ID) {
			syscall.Kill(-in.PID, syscall.SIGKILL)
		}
		in.PID, in.RuntimeUp, in.RuntimeErr = 0, false, ""
	}
	if _, err := os.Stat(filepath.Join(r.s.opt.Dir, "vm")); err == nil {
		if h, err := r.vmHost(); err == nil {
			if list, err := h.List(); err == nil {
				for _, v := range list {
					h.Stop(context.Background(), v.Name(), 0)
				}
			}
		}
	}
	for _, in := range r.s.st.Instances {
		switch in.Status {
		case "Running", "Starting":
			in.Status, in.Since = "Starting", now
			r.start(in)
		case "Stopping":
			in.Status, in.Since = "Stopped", now
		}
	}
	return nil
}

// ours reports whether pid is still the script of instance id.
func ours(pid int, id string) bool {
	env, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", pid))
	return err == nil && bytes.Contains(env, []byte("ECSEMU_INSTANCE_ID="+id+"\x00"))
}

// shutdown ends everything this host runs, synchronously. Called with s.mu
// held; it does not touch the state.
func (r *runtime) shutdown() {
	r.mu.Lock()
	r.closed = true
	ids := make([]string, 0, len(r.ingress))
	for id := range r.ingress {
		ids = append(ids, id)
	}
	procs := r.procs
	r.procs = map[string]*proc{}
	vms := make([]string, 0, len(r.vms))
	for id := range r.vms {
		vms = append(vms, id)
	}
	r.mu.Unlock()
	for _, id := range ids {
		r.closeIngress(id)
	}
	for _, p := range procs {
		syscall.Kill(-p.pid, syscall.SIGTERM)
	}
	for _, p := range procs {
		select {
		case <-p.done:
		case <-time.After(5 * time.Second):
			syscall.Kill(-p.pid, syscall.SIGKILL)
			<-p.done
		}
		syscall.Kill(-p.pid, syscall.SIGKILL)
	}
	for _, id := range vms {
		r.kill(id, "vm")
	}
}
