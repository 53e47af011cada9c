#!/usr/bin/env bash
# build.sh: the bootable Debian test images that Ferry's launch tests boot.
#
#   scripts/testimage/build.sh [VARIANT...]   prints one image path per variant
#
# Variants (all 2 GiB raw, one bootable dos partition, ext4):
#   base          Debian bookworm minbase, cloud kernel, grub-pc, systemd, serial
#                 console, DHCP by systemd-networkd (ifupdown and isc-dhcp-client
#                 are installed but idle, as on a stock Debian), python3 -m
#                 http.server on port 80 (ferry-http.service) and a phone-home
#                 unit that GETs http://<own /24>.100:8080/phone-home every 2 s
#                 until answered (see ferry-phone-home).
#                 Also writes base-HASH.vmlinuz and base-HASH.initrd beside it
#                 (the accelerator probe boots them).
#   vmware        base made to look like a guest imported from VMware: fstab and
#                 the kernel command line by /dev/sda1, an initramfs without
#                 virtio drivers (MODULES=list), a static address on eth0
#                 (ifupdown, networkd off), a persistent-net rule for a VMware
#                 MAC, and an open-vm-tools package (a stand-in .deb with its
#                 config and unit) installed.
#   nobootloader  base with its first MiB (MBR boot code, partition table and
#                 GRUB's core image) zeroed.
#   corruptroot   base with the inode of /usr/lib/systemd/systemd cleared
#                 (debugfs clri): GRUB still reads /boot, init cannot start.
#   panic         base with rdinit=/nonexistent on the kernel command line: the
#                 kernel cannot run the initramfs and panics mounting root.
#
# Images are cached outside the clone in $FERRY_TESTIMAGE_DIR (default
# ${XDG_CACHE_HOME:-$HOME/.cache}/ferry/testimage) as VARIANT-HASH.img, where
# HASH covers every file in this directory, so editing the recipe rebuilds.
# A flock on the cache directory makes concurrent callers build once; images of
# an older HASH are deleted when a new one is built. The Debian mirror is the
# one apt uses (first .../debian URI in /etc/apt/sources.list*), or
# $FERRY_DEBIAN_MIRROR. Needs root, debootstrap, fdisk, e2fsprogs, util-linux.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
cache=${FERRY_TESTIMAGE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/ferry/testimage}
mkdir -p "$cache"
hash=$(cd "$here" && find . -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum | sha256sum | cut -c1-16)

log() { echo "testimage: $*" >&2; }

# Cleanup stack: every attach/mount pushes its undo; the EXIT trap runs them
# in reverse, so a failed build leaves no mount or loop device behind.
undo=()
push_undo() { undo+=("$1"); }
run_undo() {
  local i
  for ((i = ${#undo[@]} - 1; i >= 0; i--)); do eval "${undo[$i]}" || true; done
  undo=()
}
# tmpimg is the image being built; it is removed unless it was renamed into place.
tmpimg=
trap 'run_undo; [ -z "$tmpimg" ] || rm -f "$tmpimg"' EXIT

mirror() {
  if [ -n "${FERRY_DEBIAN_MIRROR:-}" ]; then echo "$FERRY_DEBIAN_MIRROR"; return; fi
  local u
  u=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources 2>/dev/null |
    awk '/^URIs:/ {for (i = 2; i <= NF; i++) print $i} /^deb / {for (i = 2; i <= NF; i++) if ($i !~ /^\[/ && $i !~ /\]$/) {print $i; break}}' |
    grep -E '/debian/?$' | head -n1 || true)
  echo "${u:-http://deb.debian.org/debian}"
}

# attach IMG: LOOP=/dev/loopN, PART=/dev/loopNp1 (no udev here: partx adds the
# partition, and the node is made by hand when devtmpfs did not).
attach() {
  LOOP=$(losetup -f --show "$1")
  push_undo "partx -d $LOOP 2>/dev/null; losetup -d $LOOP"
  partx -a "$LOOP" 2>/dev/null || partx -u "$LOOP"
  PART=${LOOP}p1
  local n=${LOOP#/dev/} i
  for i in $(seq 50); do [ -e "/sys/block/$n/${n}p1/dev" ] && break; sleep 0.1; done
  if [ ! -b "$PART" ]; then
    mknod "$PART" b $(tr ':' ' ' <"/sys/block/$n/${n}p1/dev")
    push_undo "rm -f $PART"
  fi
}

mount_root() { # mount_root DIR
  mount "$PART" "$1"
  push_undo "umount -R $1 2>/dev/null || umount -l $1"
}

chroot_binds() { # chroot_binds DIR
  local d
  for d in dev proc sys; do mount --bind /$d "$1/$d"; done
}

in_root() { # in_root DIR CMD...: a command in the image, with a sane environment
  local dir=$1; shift
  chroot "$dir" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin DEBIAN_FRONTEND=noninteractive LANG=C.UTF-8 "$@"
}

build_base() { # build_base OUT
  local out=$1 img=$1.tmp mnt uuid
  rm -f "$img"
  tmpimg=$img
  truncate -s 2G "$img"
  printf 'label: dos\nstart=2048, type=83, bootable\n' | sfdisk -q "$img"
  attach "$img"
  mkfs.ext4 -q -L root "$PART"
  uuid=$(blkid -s UUID -o value "$PART")
  mnt=$(mktemp -d)
  push_undo "rmdir $mnt"
  mount_root "$mnt"
  log "debootstrap bookworm from $(mirror) (≈ 1–2 min)"
  debootstrap --variant=minbase \
    --include=systemd-sysv,udev,kmod,dbus,iproute2,netbase,ifupdown,isc-dhcp-client,python3,e2fsprogs,initramfs-tools,linux-image-cloud-amd64,grub-pc \
    bookworm "$mnt" "$(mirror)" >"$cache/debootstrap.log" 2>&1 ||
    { tail -n 30 "$cache/debootstrap.log" >&2; return 1; }

  echo ferry-test >"$mnt/etc/hostname"
  printf '127.0.0.1 localhost\n127.0.1.1 ferry-test\n' >"$mnt/etc/hosts"
  printf 'UUID=%s / ext4 errors=remount-ro 0 1\n' "$uuid" >"$mnt/etc/fstab"
  : >"$mnt/etc/machine-id"
  printf 'auto lo\niface lo inet loopback\n' >"$mnt/etc/network/interfaces"
  mkdir -p "$mnt/etc/systemd/network" "$mnt/srv/www"
  printf '[Match]\nName=en* eth*\n\n[Network]\nDHCP=yes\n' >"$mnt/etc/systemd/network/50-dhcp.network"
  echo "ferry test image $hash" >"$mnt/srv/www/index.html"
  echo "$hash" >"$mnt/etc/ferry-testimage"
  install -m 0644 "$here/ferry-http.service" "$here/ferry-phone-home.service" "$mnt/etc/systemd/system/"
  install -m 0755 "$here/ferry-phone-home" "$mnt/usr/local/bin/"
  in_root "$mnt" systemctl enable systemd-networkd.service ferry-http.service ferry-phone-home.service >/dev/null 2>&1
  # e2scrub_reap holds multi-user.target for seconds under TCG; nothing here needs it.
  in_root "$mnt" systemctl disable e2scrub_reap.service >/dev/null 2>&1 || true
  # The serial console carries the kernel log, the getty and GRUB's menu.
  cat >"$mnt/etc/default/grub" <<'EOF'
GRUB_DEFAULT=0
GRUB_TIMEOUT=0
GRUB_DISTRIBUTOR=Debian
GRUB_CMDLINE_LINUX_DEFAULT=""
GRUB_CMDLINE_LINUX="console=tty0 console=ttyS0,115200"
GRUB_TERMINAL="serial console"
GRUB_SERIAL_COMMAND="serial --speed=115200"
EOF
  chroot_binds "$mnt"
  # Without udev GRUB cannot map the root to a UUID: it would write
  # root=/dev/loopNp1. The symlink gives it the by-uuid name it looks for.
  mkdir -p /dev/disk/by-uuid
  ln -sf "../../${PART#/dev/}" "/dev/disk/by-uuid/$uuid"
  push_undo "rm -f /dev/disk/by-uuid/$uuid"
  in_root "$mnt" grub-install --target=i386-pc "$LOOP" >>"$cache/debootstrap.log" 2>&1
  in_root "$mnt" update-grub >>"$cache/debootstrap.log" 2>&1
  grep -q "root=UUID=$uuid" "$mnt/boot/grub/grub.cfg" || { log "grub.cfg has no root=UUID=$uuid"; return 1; }
  in_root "$mnt" apt-get clean
  rm -rf "$mnt"/var/lib/apt/lists/* "$mnt"/var/log/*.log "$mnt"/var/cache/debconf/*-old
  cp "$mnt"/boot/vmlinuz-* "${out%.img}.vmlinuz"
  cp "$mnt"/boot/initrd.img-* "${out%.img}.initrd"
  run_undo
  mv "$img" "$out"
  tmpimg=
}

# derive OUT FUNCTION: a sparse copy of base, changed by FUNCTION with the root
# mounted at $mnt (and $LOOP/$PART attached), renamed into place when done.
derive() {
  local out=$1 fn=$2 img=$1.tmp
  tmpimg=$img
  cp --sparse=always "$(image base)" "$img"
  attach "$img"
  mnt=$(mktemp -d)
  push_undo "rmdir $mnt"
  mount_root "$mnt"
  "$fn"
  run_undo
  mv "$img" "$out"
  tmpimg=
}

vmware() {
  local uuid
  uuid=$(blkid -s UUID -o value "$PART")
  printf '/dev/sda1 / ext4 errors=remount-ro 0 1\n' >"$mnt/etc/fstab"
  sed -i 's/^GRUB_CMDLINE_LINUX=.*/GRUB_CMDLINE_LINUX="console=tty0 console=ttyS0,115200 net.ifnames=0"/' "$mnt/etc/default/grub"
  echo 'GRUB_DISABLE_LINUX_UUID=true' >>"$mnt/etc/default/grub"
  sed -i "s|root=UUID=$uuid|root=/dev/sda1|; s|\(root=/dev/sda1 ro\)|\1 net.ifnames=0|" "$mnt/boot/grub/grub.cfg"
  # An initramfs built for VMware's controllers only.
  sed -i 's/^MODULES=.*/MODULES=list/' "$mnt/etc/initramfs-tools/initramfs.conf"
  printf 'ahci\nsd_mod\nmptspi\nvmw_pvscsi\nvmxnet3\ne1000\n' >"$mnt/etc/initramfs-tools/modules"
  # Static address, ifupdown, no networkd.
  rm -f "$mnt/etc/systemd/network/50-dhcp.network"
  rm -f "$mnt"/etc/systemd/system/*.wants/systemd-networkd*
  cat >"$mnt/etc/network/interfaces" <<'EOF'
auto lo
iface lo inet loopback

auto eth0
iface eth0 inet static
    address 192.168.50.10/24
    gateway 192.168.50.1
EOF
  echo 'SUBSYSTEM=="net", ACTION=="add", DRIVERS=="?*", ATTR{address}=="00:50:56:8a:10:01", NAME="eth0"' \
    >"$mnt/etc/udev/rules.d/70-persistent-net.rules"
  # A stand-in open-vm-tools package: its config, a unit and dpkg's record of
  # it, so removal goes through the guest's package manager.
  local pkg
  pkg=$(mktemp -d)
  push_undo "rm -rf $pkg"
  mkdir -p "$pkg/DEBIAN" "$pkg/etc/vmware-tools" "$pkg/lib/systemd/system"
  printf 'Package: open-vm-tools\nVersion: 2:12.2.0-1+ferrytest\nArchitecture: amd64\nMaintainer: Ferry tests <tests@ferry.invalid>\nDescription: stand-in for the VMware guest tools\n' >"$pkg/DEBIAN/control"
  printf '[logging]\nlog = true\n' >"$pkg/etc/vmware-tools/tools.conf"
  printf '[Unit]\nDescription=Service for virtual machines hosted on VMware\nConditionVirtualization=vmware\n\n[Service]\nExecStart=/usr/bin/vmtoolsd\n\n[Install]\nWantedBy=multi-user.target\n' >"$pkg/lib/systemd/system/open-vm-tools.service"
  dpkg-deb -Zgzip --build "$pkg" "$mnt/tmp/open-vm-tools.deb" >/dev/null
  chroot_binds "$mnt"
  in_root "$mnt" dpkg -i /tmp/open-vm-tools.deb >/dev/null
  in_root "$mnt" systemctl enable open-vm-tools.service >/dev/null 2>&1
  rm -f "$mnt/tmp/open-vm-tools.deb"
  in_root "$mnt" update-initramfs -u -k all >/dev/null 2>&1
  if in_root "$mnt" sh -c 'lsinitramfs /boot/initrd.img-* | grep -q virtio_blk'; then
    log "vmware: the initramfs still carries virtio_blk"; return 1
  fi
}

nobootloader() {
  dd if=/dev/zero of="$LOOP" bs=1M count=1 conv=notrunc status=none
}

corruptroot() {
  local ino
  ino=$(stat -c %i "$mnt/usr/lib/systemd/systemd")
  umount "$mnt"
  debugfs -w -R "clri <$ino>" "$PART" >/dev/null 2>&1
  mount "$PART" "$mnt" # run_undo unmounts it
}

panic() {
  sed -i 's|\(root=UUID=[^ ]* ro\)|\1 rdinit=/nonexistent|' "$mnt/boot/grub/grub.cfg"
  grep -q 'rdinit=/nonexistent' "$mnt/boot/grub/grub.cfg"
}

image() { echo "$cache/$1-$hash.img"; }

build() { # build VARIANT: under the lock, unless already cached
  local v=$1 out
  out=$(image "$v")
  [ -f "$out" ] && return 0
  log "building $v ($out)"
  local t0=$SECONDS
  case $v in
    base) build_base "$out" ;;
    vmware | nobootloader | corruptroot | panic)
      build base
      derive "$out" "$v"
      ;;
    *) log "unknown variant $v (base, vmware, nobootloader, corruptroot, panic)"; return 2 ;;
  esac
  find "$cache" -maxdepth 1 -name "$v-*" ! -name "$v-$hash.*" -delete
  log "built $v in $((SECONDS - t0)) s"
}

[ "$(id -u)" = 0 ] || { log "needs root (losetup, mount, chroot)"; exit 1; }
[ $# -gt 0 ] || set -- base
exec 9>"$cache/.lock"
flock 9
for v in "$@"; do
  build "$v"
  image "$v"
done
