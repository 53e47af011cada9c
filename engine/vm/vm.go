// Package vm owns running recovery points as real virtual machines with
// qemu-system-x86_64, driven directly over QMP (no libvirt daemon; see
// docs/launch.md for why): copy-on-write qcow2 overlays over the recovery
// point images (which qemu only ever opens read-only), virtio-blk disks, a
// virtio-net NIC on qemu's user-mode network (isolated with restrict=on for
// test launches, with egress for cutover launches), the serial console and
// the firmware log captured to files, a QMP socket for control, and the
// accelerator chosen by a cached probe boot.
//
// A Host keeps every instance in its own directory under one state
// directory (instance.json, overlays, console.log, qmp.sock, qemu.pid), so
// instances can be listed, stopped and deleted by any process, including one
// started after a crash, and nothing is orphaned.
package vm

import (
	"errors"
	"fmt"
	"regexp"
	"time"
)

// Errors returned by Host methods (wrapped with the instance name).
var (
	ErrNotFound = errors.New("no such instance")
	ErrExists   = errors.New("instance already exists")
	ErrRunning  = errors.New("instance is running")
	ErrInvalid  = errors.New("invalid instance spec")
	ErrExited   = errors.New("qemu exited")
)

// Accel is the qemu accelerator.
type Accel string

// Accelerators a Host chooses between.
const (
	AccelTCG Accel = "tcg"
	AccelKVM Accel = "kvm"
)

// Spec says what to run.
type Spec struct {
	// Name identifies the instance within its Host: 1–63 of [a-z0-9-],
	// starting with a letter or digit.
	Name string `json:"name"`
	// Disks in boot order; each becomes a virtio-blk device backed by a qcow2
	// overlay of Disk.Image.
	Disks []Disk `json:"disks"`
	// CPUs and MemoryMiB are the shape (default 1 vCPU, 1024 MiB).
	CPUs      int     `json:"cpus"`
	MemoryMiB int     `json:"memory_mib"`
	Network   Network `json:"network"`
	// Accel forces an accelerator; empty means the Host's probed choice.
	Accel Accel `json:"accel,omitempty"`
	// NoReboot makes a guest reboot (a kernel panic with panic=N, a
	// firmware retry) end qemu instead of starting over.
	NoReboot bool `json:"no_reboot,omitempty"`
	// Labels are the caller's (migration id, launch kind), kept with the
	// instance so List can be filtered by them.
	Labels map[string]string `json:"labels,omitempty"`
}

// Disk is one recovery point to boot from.
type Disk struct {
	// Image is the recovery point file. It becomes the read-only backing file
	// of the instance's overlay and is never written.
	Image string `json:"image"`
	// Format of Image: "raw" (default) or "qcow2".
	Format string `json:"format,omitempty"`
	// Overlay is set by Create: the instance's writable qcow2 file.
	Overlay string `json:"overlay,omitempty"`
}

// NetMode is how the instance's network reaches the world.
type NetMode string

// Network modes.
const (
	// NetIsolated is for test launches: qemu's user network with
	// restrict=on. The guest has no route anywhere (not the source
	// network, not the control plane); only the host-forwarded ports and the
	// guest forwards below cross it.
	NetIsolated NetMode = "isolated"
	// NetTarget is for cutover launches: the same user network with
	// outbound NAT, the stand-in for the target VPC, plus the forwards.
	NetTarget NetMode = "target"
)

// Network describes the instance's one NIC (virtio-net-pci).
type Network struct {
	Mode NetMode `json:"mode"`
	// CIDR of the user network; default 10.0.2.0/24. Its .2 is the gateway,
	// .3 the DNS server and DHCP hands out .15 onward.
	CIDR string `json:"cidr,omitempty"`
	// Gateway is qemu's own address in CIDR (default .2): the guest's
	// default route, DHCP and DNS server.
	Gateway string `json:"gateway,omitempty"`
	// GuestAddr is where forwarded ports go: default the first DHCP address
	// (.15); a static address the adaptation kept otherwise.
	GuestAddr string `json:"guest_addr,omitempty"`
	// Ports are guest TCP ports forwarded from 127.0.0.1 on the host (the
	// health check's way in). Create picks the host ports.
	Ports []int `json:"ports,omitempty"`
	// GuestForwards let the guest reach chosen host endpoints (the control
	// plane's agent endpoint) even when isolated.
	GuestForwards []GuestForward `json:"guest_forwards,omitempty"`
	// MAC of the NIC; default a locally administered address from the name.
	MAC string `json:"mac,omitempty"`
}

// GuestForward makes Guest ("10.0.2.100:8080", inside CIDR) reach the host:
// each guest connection runs Command with the connection on its stdin and
// stdout (qemu's guestfwd cmd:), e.g. a program calling Relay.
type GuestForward struct {
	Guest   string   `json:"guest"`
	Command []string `json:"command"`
}

// Forward is a guest port and where the host reaches it.
type Forward struct {
	GuestPort int    `json:"guest_port"`
	HostAddr  string `json:"host_addr"` // 127.0.0.1:PORT
}

// State of an instance.
type State string

// States an instance is in.
const (
	StateCreated State = "created" // overlays made, never started
	StateRunning State = "running" // qemu process alive
	StateStopped State = "stopped" // qemu ended
)

// Instance is what a Host knows about one VM.
type Instance struct {
	Spec  Spec   `json:"spec"`
	Dir   string `json:"dir"`
	State State  `json:"state"`
	// Accel is what qemu runs with and AccelReason why (the probe's verdict).
	Accel       Accel     `json:"accel,omitempty"`
	AccelReason string    `json:"accel_reason,omitempty"`
	Forwards    []Forward `json:"forwards,omitempty"`
	PID         int       `json:"pid,omitempty"`
	CreatedAt   time.Time `json:"created_at"`
	StartedAt   time.Time `json:"started_at,omitzero"`
	StoppedAt   time.Time `json:"stopped_at,omitzero"`
	// Exit is how qemu ended when this process saw it end ("exit status 0",
	// "signal: killed"); empty when unknown.
	Exit string `json:"exit,omitempty"`
}

// Name is the instance's name.
func (in *Instance) Name() string { return in.Spec.Name }

// ConsolePath is the serial console log (ttyS0), appended as the guest writes.
func (in *Instance) ConsolePath() string { return in.Dir + "/console.log" }

// FirmwarePath is SeaBIOS's debug log (isa-debugcon 0x402): "Booting from
// Hard Disk", "Boot failed: not a bootable disk".
func (in *Instance) FirmwarePath() string { return in.Dir + "/firmware.log" }

// QMPPath is the QMP control socket.
func (in *Instance) QMPPath() string { return in.Dir + "/qmp.sock" }

// LogPath is qemu's own stdout and stderr.
func (in *Instance) LogPath() string { return in.Dir + "/qemu.log" }

// HostAddr is where the host reaches guest TCP port p, or "" when p is not
// forwarded.
func (in *Instance) HostAddr(p int) string {
	for _, f := range in.Forwards {
		if f.GuestPort == p {
			return f.HostAddr
		}
	}
	return ""
}

var nameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,62}$`)

func (s *Spec) validate() error {
	if !nameRE.MatchString(s.Name) {
		return fmt.Errorf("%w: name %q (want 1–63 of a-z, 0-9, '-')", ErrInvalid, s.Name)
	}
	if len(s.Disks) == 0 {
		return fmt.Errorf("%w: instance %s has no disks", ErrInvalid, s.Name)
	}
	for i, d := range s.Disks {
		if d.Image == "" {
			return fmt.Errorf("%w: instance %s disk %d has no image", ErrInvalid, s.Name, i)
		}
		if d.Format != "" && d.Format != "raw" && d.Format != "qcow2" {
			return fmt.Errorf("%w: instance %s disk %d format %q (want raw or qcow2)", ErrInvalid, s.Name, i, d.Format)
		}
	}
	if s.CPUs < 0 || s.CPUs > 64 || s.MemoryMiB < 0 || (s.MemoryMiB > 0 && s.MemoryMiB < 128) {
		return fmt.Errorf("%w: instance %s shape %d vCPU / %d MiB (want 1–64 vCPU, ≥ 128 MiB)", ErrInvalid, s.Name, s.CPUs, s.MemoryMiB)
	}
	switch s.Network.Mode {
	case NetIsolated, NetTarget:
	default:
		return fmt.Errorf("%w: instance %s network mode %q (want isolated or target)", ErrInvalid, s.Name, s.Network.Mode)
	}
	for _, p := range s.Network.Ports {
		if p < 1 || p > 65535 {
			return fmt.Errorf("%w: instance %s port %d", ErrInvalid, s.Name, p)
		}
	}
	for _, g := range s.Network.GuestForwards {
		if g.Guest == "" || len(g.Command) == 0 {
			return fmt.Errorf("%w: instance %s guest forward %q needs an address and a command", ErrInvalid, s.Name, g.Guest)
		}
	}
	if s.Accel != "" && s.Accel != AccelTCG && s.Accel != AccelKVM {
		return fmt.Errorf("%w: instance %s accel %q", ErrInvalid, s.Name, s.Accel)
	}
	return nil
}

func (s *Spec) defaults() {
	if s.CPUs == 0 {
		s.CPUs = 1
	}
	if s.MemoryMiB == 0 {
		s.MemoryMiB = 1024
	}
	for i := range s.Disks {
		if s.Disks[i].Format == "" {
			s.Disks[i].Format = "raw"
		}
	}
}
