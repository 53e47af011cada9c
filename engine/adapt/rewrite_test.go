package adapt

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

var parts = resolver{parts: []part{
	{disk: 0, num: 1, dev: "/dev/loop0p1", fstype: "ext4", uuid: "1111-root", label: "root"},
	{disk: 0, num: 2, dev: "/dev/loop0p2", fstype: "swap", uuid: "2222-swap"},
	{disk: 1, num: 1, dev: "/dev/loop1p1", fstype: "xfs", uuid: "3333-data", partuuid: "abcd-01"},
}}

func TestDiskIndex(t *testing.T) {
	for dev, want := range map[string][2]int{"/dev/sda1": {0, 1}, "/dev/sdb": {1, 0}, "/dev/vdc3": {2, 3}, "/dev/hda2": {0, 2},
		"/dev/xvdb1": {1, 1}, "/dev/nvme1n1p2": {1, 2}, "/dev/sdaa1": {26, 1}} {
		d, n, ok := diskIndex(dev)
		if !ok || d != want[0] || n != want[1] {
			t.Errorf("%s: got %d %d %v, want %v", dev, d, n, ok, want)
		}
	}
	for _, dev := range []string{"/dev/mapper/vg-root", "/dev/md0", "UUID=x", "/dev/sda1x"} {
		if _, _, ok := diskIndex(dev); ok {
			t.Errorf("%s parsed as a disk", dev)
		}
	}
}

func TestRewriteFstab(t *testing.T) {
	in := `# /etc/fstab: static file system information.
/dev/sda1	/	ext4	errors=remount-ro	0	1
/dev/sda2 none swap sw 0 0
UUID=3333-data /data xfs defaults 0 2
/dev/sdc1 /backup ext4 defaults 0 2
proc /proc proc defaults 0 0
nas:/export /mnt/nas nfs defaults 0 0
`
	got, notes, err := rewriteFstab(in, parts)
	if err != nil {
		t.Fatal(err)
	}
	want := `# /etc/fstab: static file system information.
UUID=1111-root	/	ext4	errors=remount-ro	0	1
UUID=2222-swap none swap sw 0 0
UUID=3333-data /data xfs defaults 0 2
/dev/sdc1 /backup ext4 defaults,nofail,x-systemd.device-timeout=10s 0 2
proc /proc proc defaults 0 0
nas:/export /mnt/nas nfs defaults 0 0
`
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("fstab (-want +got):\n%s", d)
	}
	if len(notes) != 1 || !strings.Contains(notes[0], "/dev/sdc1 (/backup) is not on the launched disks") {
		t.Errorf("notes %q", notes)
	}
	for _, bad := range []struct{ fstab, want string }{
		{"/dev/mapper/vg-root / ext4 defaults 0 1\n", "device-mapper"},
		{"/dev/vg0/root / ext4 defaults 0 1\n", "LVM"},
		{"/dev/sdd1 / ext4 defaults 0 1\n", "root filesystem /dev/sdd1 is not on the launched disks"},
	} {
		if _, _, err := rewriteFstab(bad.fstab, parts); err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("%q: %v, want %q", bad.fstab, err, bad.want)
		}
	}
}

func TestRewriteCmdline(t *testing.T) {
	add := []string{"console=tty0", "console=ttyS0,115200", "net.ifnames=0"}
	grub := "menuentry 'Debian' {\n\tsearch --no-floppy --fs-uuid --set=root 1111-root\n\tlinux\t/boot/vmlinuz-6.1 root=/dev/sda1 ro quiet resume=/dev/sda2\n\tinitrd\t/boot/initrd.img-6.1\n}\n"
	got, err := rewriteCmdline(grub, parts, grubLinuxLine, add)
	if err != nil {
		t.Fatal(err)
	}
	if want := "\tlinux\t/boot/vmlinuz-6.1 root=UUID=1111-root ro quiet resume=UUID=2222-swap console=tty0 console=ttyS0,115200 net.ifnames=0\n"; !strings.Contains(got, want) {
		t.Errorf("grub.cfg:\n%s\nwant line %q", got, want)
	}
	def := "GRUB_DEFAULT=0\nGRUB_CMDLINE_LINUX=\"\"\nGRUB_CMDLINE_LINUX_DEFAULT=\"quiet\"\n"
	got, _ = rewriteCmdline(def, parts, grubDefaultLine, add)
	if want := "GRUB_CMDLINE_LINUX=\"console=tty0 console=ttyS0,115200 net.ifnames=0\"\n"; !strings.Contains(got, want) {
		t.Errorf("default/grub:\n%s", got)
	}
	// Already there: nothing added twice.
	def = "GRUB_CMDLINE_LINUX=\"console=ttyS0,9600 net.ifnames=1 console=tty0\"\n"
	if got, _ := rewriteCmdline(def, parts, grubDefaultLine, add); got != def {
		t.Errorf("changed a complete line: %q", got)
	}
	if _, err := rewriteCmdline("\tlinux /vmlinuz root=/dev/sdq1 ro\n", parts, grubLinuxLine, nil); err == nil {
		t.Error("a root not on the disks passed")
	}
}

var static = Network{CIDR: "10.0.2.0/24"}

func TestRewriteInterfaces(t *testing.T) {
	in := "auto lo\niface lo inet loopback\n\nauto eth0\niface eth0 inet static\n    address 192.168.50.10\n    netmask 255.255.255.0\n    gateway 192.168.50.1\n    dns-nameservers 192.168.50.1\n    mtu 1500\n"
	e := rewriteInterfaces(in, static)
	want := "auto lo\niface lo inet loopback\n\nauto eth0\niface eth0 inet dhcp\n    dns-nameservers 192.168.50.1\n    mtu 1500\n"
	if d := cmp.Diff(want, e.text); d != "" {
		t.Errorf("(-want +got):\n%s", d)
	}
	if len(e.notes) != 1 || !strings.Contains(e.notes[0], "192.168.50.10/24 replaced by DHCP") || !cmp.Equal(e.names, []string{"eth0"}) {
		t.Errorf("notes %q names %q", e.notes, e.names)
	}
	// Inside a target network that allows static addresses: kept.
	keep := rewriteInterfaces(in, Network{CIDR: "192.168.50.0/24", KeepStatic: true})
	if keep.text != in || !strings.Contains(keep.notes[0], "kept: it lies in the target network 192.168.50.0/24") {
		t.Errorf("kept: %q %q", keep.text, keep.notes)
	}
	out := rewriteInterfaces(in, Network{CIDR: "10.0.2.0/24", KeepStatic: true})
	if !strings.Contains(out.text, "inet dhcp") || !strings.Contains(out.notes[0], "outside the target network 10.0.2.0/24") {
		t.Errorf("outside: %q %q", out.text, out.notes)
	}
}

func TestRewriteNetworkd(t *testing.T) {
	in := "[Match]\nMACAddress=00:50:56:8a:10:01\n\n[Network]\nAddress=192.168.50.10/24\nGateway=192.168.50.1\nDNS=192.168.50.1\n\n[Route]\nDestination=10.9.0.0/16\nGateway=192.168.50.254\n"
	e := rewriteNetworkd(in, static)
	want := "[Match]\n\nName=en* eth*\n[Network]\nDNS=192.168.50.1\n\nDHCP=yes"
	if d := cmp.Diff(want, e.text); d != "" {
		t.Errorf("(-want +got):\n%s", d)
	}
}

func TestRewriteKeyfile(t *testing.T) {
	in := "[connection]\nid=eth0\ninterface-name=eth0\n\n[ethernet]\nmac-address=00:50:56:8A:10:01\n\n[ipv4]\nmethod=manual\naddress1=192.168.50.10/24,192.168.50.1\ndns=192.168.50.1;\n"
	e := rewriteKeyfile(in, static)
	want := "[connection]\nid=eth0\ninterface-name=eth0\n\n[ethernet]\n\n[ipv4]\nmethod=auto\ndns=192.168.50.1;\n"
	if d := cmp.Diff(want, e.text); d != "" {
		t.Errorf("(-want +got):\n%s", d)
	}
}

func TestRewriteIfcfg(t *testing.T) {
	in := "DEVICE=eth0\nHWADDR=00:50:56:8a:10:01\nBOOTPROTO=none\nONBOOT=yes\nIPADDR=192.168.50.10\nPREFIX=24\nGATEWAY=192.168.50.1\n"
	e := rewriteIfcfg(in, static)
	want := "DEVICE=eth0\nBOOTPROTO=dhcp\nONBOOT=yes\n"
	if d := cmp.Diff(want, e.text); d != "" {
		t.Errorf("(-want +got):\n%s", d)
	}
	suse := "BOOTPROTO='static'\nSTARTMODE='auto'\nIPADDR='192.168.50.10/24'\n"
	if got := rewriteIfcfg(suse, static).text; got != "BOOTPROTO='dhcp'\nSTARTMODE='auto'\n" {
		t.Errorf("wicked: %q", got)
	}
	if got := rewriteIfcfg("DEVICE=eth0\nBOOTPROTO=dhcp\n", static).text; got != "DEVICE=eth0\nBOOTPROTO=dhcp\n" {
		t.Errorf("dhcp changed: %q", got)
	}
}

func TestRewriteNetplan(t *testing.T) {
	in := `network:
  version: 2
  ethernets:
    id0:
      match:
        macaddress: "00:50:56:8a:10:01"
      set-name: eth0
      addresses: [192.168.50.10/24]
      gateway4: 192.168.50.1
      nameservers:
        addresses: [192.168.50.1]
`
	e, err := rewriteNetplan(in, static)
	if err != nil {
		t.Fatal(err)
	}
	want := `network:
    ethernets:
        id0:
            dhcp4: true
            match:
                name: e*
            nameservers:
                addresses:
                    - 192.168.50.1
    version: 2
`
	if d := cmp.Diff(want, e.text); d != "" {
		t.Errorf("(-want +got):\n%s", d)
	}
	if _, err := rewriteNetplan("network: [unclosed", static); err == nil {
		t.Error("bad YAML passed")
	}
}

func TestLineDiff(t *testing.T) {
	rm, add := lineDiff("a\nb\nc\n", "a\nB\nc\nd\n")
	if rm != "b" || add != "B\nd" {
		t.Errorf("got %q %q", rm, add)
	}
}

func TestDpkgInstalled(t *testing.T) {
	st := "Package: open-vm-tools\nStatus: install ok installed\nVersion: 2\n\nPackage: gone\nStatus: deinstall ok config-files\n"
	if got := dpkgInstalled(st); !got["open-vm-tools"] || got["gone"] {
		t.Errorf("got %v", got)
	}
}

// FuzzRewrite: whatever a guest's config files hold, the rewriters return
// without panicking.
func FuzzRewrite(f *testing.F) {
	f.Add("/dev/sda1 / ext4 defaults 0 1\n")
	f.Add("iface eth0 inet static\n address 1.2.3.4\n netmask 255.0.0.0\n")
	f.Add("[Match]\nMACAddress=x\n[Network]\nAddress=1.2.3.4/8\n")
	f.Add("network:\n  ethernets:\n    e:\n      addresses: [1.2.3.4/8]\n")
	f.Fuzz(func(t *testing.T, s string) {
		rewriteFstab(s, parts)
		rewriteCmdline(s, parts, anyLine, []string{"console=ttyS0,115200", "net.ifnames=0"})
		rewriteInterfaces(s, static)
		rewriteNetworkd(s, static)
		rewriteKeyfile(s, static)
		rewriteIfcfg(s, static)
		rewriteNetplan(s, static)
		lineDiff(s, strings.ToUpper(s))
	})
}
