#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Stock distributions take the disk over: initramfs-tools (hook) and dracut (module) initramfs images, and Debian's zero-install nbdroot=, booted through netdisk.pxe and netdisk.efi.
#
# The initramfs images are made by the real mkinitramfs and dracut, for the
# demo image's Debian kernel, in a throw-away root (an overlay of this
# machine's root in a private mount namespace, as t-install.sh does) into
# which `make install` put the hook and the module.  Each replaces the
# project's initramfs in a copy of the e2e image (tests/e2e-lib.sh: firmware
# phase marker, tests/e2e/guest.sh), whose kernel command line then says
# root=UUID=... (or nbdroot=).  Four VMs boot side by side, through
# netdisk.pxe unless said:
#   tools   initramfs-tools + hook: the stub's session, server A (default
#           nbd-exports = sessions); and tools-uefi, the same image through
#           netdisk.efi (the boot table as ACPI table NDSK)
#   dracut  dracut + module, the same checks
#   zero    initramfs-tools + Debian's nbd-client hook only, nbdroot=HOST:PORT/
#           IMAGE: a session of its own on server B (nbd-exports = images)
# then a fifth, fallback: the hook's initramfs started by QEMU itself (no
# stub, no boot table) with netdisk.server=/netdisk.image= on server B.
. "$(dirname "$0")/lib.sh"
requires root qemu ipxe ovmf cmd:mkinitramfs cmd:dracut cmd:unshare cmd:nbd-client cmd:lsinitramfs
. "$(dirname "$0")/image-lib.sh"
. "$(dirname "$0")/e2e-lib.sh"

MAC_T=52:54:00:5e:00:01
MAC_D=52:54:00:5e:00:02
MAC_Z=52:54:00:5e:00:03
MAC_U=52:54:00:5e:00:04
# What server/nbd.c's peer_mac makes of 127.0.0.1, the address QEMU's user
# network gives every guest's connection to the host.
MAC_NAT=02:4e:7f:00:00:01
CACHE=${NETDISK_CACHE:-$ND_BUILD/cache}

make -s -C "$ND_TOP" BUILD="$ND_BUILD" programs "$ND_BUILD/tests/fwmark-mbr.bin" "$ND_BUILD/tests/fwmark.efi" \
	demo-test-image >"$ND_TMP/make.log" 2>&1 || {
	fail build "$(tail -n 5 "$ND_TMP/make.log" | tr '\n' ' ')"
	exit 1
}

# image_kernel IMAGE: the cached Debian kernel whose vmlinuz is IMAGE's
# /linux, as "VERSION DIR".
image_kernel() {
	local linux=$ND_TMP/linux dir version
	mcopy -n -i "$(esp_at "$1")" ::/linux "$linux" || return 1
	for dir in "$CACHE"/kernel-*; do
		version=${dir##*/kernel-}
		cmp -s "$dir/boot/vmlinuz-$version" "$linux" && { echo "$version $dir"; return 0; }
	done
	return 1
}

# build_initramfs_images VERSION KERNELDIR: initrd-plain (initramfs-tools
# with what this machine has: nbd-client's hook), then `make install`, then
# initrd-tools (with our hook), initrd-dracut, and nohook.log (the hook
# refusing a missing agent), all in $ND_TMP.
build_initramfs_images() {
	cat >"$ND_TMP/mkinitrd.sh" <<'EOF'
set -e
R=$1 T=$2 KV=$3 KDIR=$4 TOP=$5 BUILD=$6
mount --make-rprivate /
mount -t tmpfs tmpfs "$R"
mkdir -p "$R/u" "$R/w" "$R/m" "$R/ku" "$R/kw"
mount -t overlay overlay -o lowerdir=/,upperdir="$R/u",workdir="$R/w" "$R/m"
for d in proc sys dev; do mount --rbind /$d "$R/m/$d"; done
for d in run tmp; do mount -t tmpfs tmpfs "$R/m/$d"; done
mkdir -p "$R/m$T" && mount --bind "$T" "$R/m$T"
# The kernel's modules as if its package were installed; depmod writes the
# indexes kmod needs into the overlay, not into the cache.
mkdir -p "$R/m/lib/modules/$KV" && mount -t overlay overlay \
	-o lowerdir="$KDIR/lib/modules/$KV",upperdir="$R/ku",workdir="$R/kw" "$R/m/lib/modules/$KV"
cp "$KDIR/boot/config-$KV" "$R/m/boot/"
chroot "$R/m" depmod -a "$KV"
chroot "$R/m" mkinitramfs -o "$T/initrd-plain" "$KV" >"$T/mkinitramfs-plain.log" 2>&1
make -s -C "$TOP" BUILD="$BUILD" install DESTDIR="$R/m" PREFIX=/usr >"$T/install.log" 2>&1
# dracut beside initramfs-tools (the slower of the two); its binaries are
# Debian's, stripped already, and the kernel reads zstd.
chroot "$R/m" dracut --no-hostonly --nostrip --compress zstd --kver "$KV" --force "$T/initrd-dracut" \
	>"$T/dracut-build.log" 2>&1 &
dracut=$!
chroot "$R/m" mkinitramfs -o "$T/initrd-tools" "$KV" >"$T/mkinitramfs-tools.log" 2>&1
chroot "$R/m" env NETDISK_ATTACH=/nonexistent mkinitramfs -o "$T/initrd-nohook" "$KV" >"$T/nohook.log" 2>&1 &&
	echo "nohook-status 0" >>"$T/nohook.log" || echo "nohook-status $?" >>"$T/nohook.log"
wait $dracut
EOF
	mkdir -p "$ND_TMP/root"
	timeout 300 unshare --mount --fork bash "$ND_TMP/mkinitrd.sh" "$ND_TMP/root" "$ND_TMP" "$1" "$2" \
		"$ND_TOP" "$ND_BUILD" >"$ND_TMP/mkinitrd.log" 2>&1
}

# stock_image OUT INITRD APPEND: a copy of the e2e image ($ND_TMP/demo.img)
# whose ESP has INITRD as /initrd.gz and whose boot menus (syslinux for BIOS
# and UEFI) pass APPEND.
stock_image() {
	local out=$1 esp
	cp --sparse=always "$ND_TMP/demo.img" "$out" || return 1
	esp=$(esp_at "$out")
	cat >"$ND_TMP/syslinux.cfg" <<CFG
SERIAL 0 115200
DEFAULT stock
PROMPT 0
TIMEOUT 0
LABEL stock
  LINUX /linux
  INITRD /initrd.gz
  APPEND console=tty0 console=ttyS0,115200 $3
CFG
	mcopy -o -i "$esp" "$2" ::/initrd.gz && mcopy -o -i "$esp" "$ND_TMP/syslinux.cfg" ::/syslinux/syslinux.cfg &&
		mcopy -o -i "$esp" "$ND_TMP/syslinux.cfg" ::/EFI/BOOT/syslinux.cfg
}

# boot_stock NAME MAC TFTPDIR [--uefi]: PXE-boots a VM through the stub in
# TFTPDIR (netdisk.pxe, or netdisk.efi with --uefi).
boot_stock() {
	local nbp=netdisk.pxe
	[ "${4:-}" = --uefi ] && nbp=netdisk.efi
	timeout "${ND_BOOT_TIMEOUT:-300}" "$ND_TOP/qemu-scripts/boot-pxe" ${4:-} --tftp "$3" --bootfile $nbp \
		--mac "$2" --log "$ND_TMP/$1.log" >"$ND_TMP/$1.qemu" 2>&1 &
	E2E_VM_PIDS+=($!)
	ND_PIDS+=($!)
}

# stub_dir DIR PORT: a TFTP root with both stubs patched for 10.0.2.2:PORT;
# netdisk.efi starts the e2e image's firmware-phase writer first.
stub_dir() {
	mkdir -p "$1" && cp "$ND_BUILD/netdisk.pxe" "$ND_BUILD/netdisk.efi" "$1/" &&
		"$ND_BUILD/netdisk" patch "$1/netdisk.pxe" --server "10.0.2.2:$2" >/dev/null &&
		"$ND_BUILD/netdisk" patch "$1/netdisk.efi" --server "10.0.2.2:$2" \
			--boot-path '\EFI\E2E\FWMARK.EFI' >/dev/null
}

# watch_status CONTROL OUT: appends `netdisk status` to OUT every second
# while the VMs run (a client shows phase os only while it is connected).
watch_status() {
	local i
	for i in $(seq 400); do
		"$ND_BUILD/netdisk" status --control "$1" >>"$2" 2>&1
		sleep 1
	done
}

# in_phase_os OUT MAC IMAGE: OUT saw MAC on IMAGE in the OS phase over NBD.
in_phase_os() {
	grep -qE "^$2 +[^ ]+ +$3(@[0-9]+)? +[a-z]+ +os +nbd " "$1" || { grep -E "^$2 " "$1" | tail -n 2; return 1; }
}

# overlay_has STATE IMAGE MAC TEXT: the persistent overlay of MAC on IMAGE holds TEXT.
overlay_has() {
	[ -n "$4" ] && grep -aqF "$4" "$1/persistent/$2/$3.data"
}

# took_over NAME MAC IMAGE WHERE: the stock initramfs (not the project's) handed
# the stub's session to the kernel, and / is on it, found by UUID.
took_over() {
	local name=$1 mount
	! console_has "$name" NETDISK-INITRAMFS-OK || { echo "the project's initramfs ran"; return 1; }
	# The agent's lines: on its stderr (initramfs-tools), through the
	# journal (dracut-initqueue[PID]: ...) and in the kernel log.
	console_has "$name" "netdisk-attach: boot table in $4" || { echo "no boot table read"; return 1; }
	console_has "$name" 'netdisk-attach: attached /dev/nbd0: 10\.0\.2\.2:[0-9]+ export session [0-9a-f]{8},' ||
		{ echo "agent did not take over the stub's session"; tail -n 5 "$ND_TMP/$name.log"; return 1; }
	! console_has "$name" '(netdisk|session).*[0-9a-f]{32}' || { echo "a session token on the console"; return 1; }
	[[ $(e2e_value "$name" E2E-CMDLINE) =~ root=UUID=$ROOT_UUID\  ]] || { echo "not booted with root=UUID="; return 1; }
	mount=$(e2e_value "$name" E2E-ROOT-MOUNT)
	[[ $mount =~ ^/dev/nbd0p2\ /\ ext4\ rw ]] || { echo "/ is not /dev/nbd0p2: '$mount'"; return 1; }
	grep -q "nbd connect mac=$2 .* image=$3" "$ND_TMP/server-a.log" || { echo "no NBD connection on $2's session"; return 1; }
	console_has "$name" '^NETDISK-HOOK-DONE /e2e/guest.sh status 0$' || { echo "guest script did not finish"; return 1; }
}

# --- the initramfs images -------------------------------------------------------
e2e_image "$ND_TMP/demo.img" || { fail image "cannot build the e2e image"; exit 1; }
read -r KV KDIR < <(image_kernel "$ND_TMP/demo.img") || { fail kernel "the demo image's kernel is not in $CACHE"; exit 1; }
extract_partition "$ND_TMP/demo.img" 2 "$ND_TMP/root.part"
ROOT_UUID=$(blkid -p -s UUID -o value "$ND_TMP/root.part")
rm -f "$ND_TMP/root.part"
start=$SECONDS
build_initramfs_images "$KV" "$KDIR"
echo "# initramfs images for $KV built in $((SECONDS - start)) s"
sed 's/^/# mkinitrd: /' "$ND_TMP/mkinitrd.log"
check "mkinitramfs (initramfs-tools) builds the stock image" test -s "$ND_TMP/initrd-plain"
check "make install puts the hook where initramfs-tools finds it" grep -q '^netdisk$' \
	<(lsinitramfs "$ND_TMP/initrd-tools" | sed -n 's|^scripts/local-top/||p')
lsinitramfs "$ND_TMP/initrd-tools" >"$ND_TMP/tools.list"
# listed FILE PATTERN...: the image listing FILE has a line matching each PATTERN.
listed() {
	local list=$1 pattern
	shift
	for pattern in "$@"; do grep -qE "$pattern" "$list" || { echo "no $pattern"; return 1; }; done
}
check "mkinitramfs with the hook: agent, nbd and the NIC drivers in the image" \
	listed "$ND_TMP/tools.list" '^usr/sbin/netdisk-attach$' '/nbd\.ko$' '/virtio_net\.ko$'
# hook_refused: mkinitramfs failed because the hook said the agent is missing.
hook_refused() {
	grep -q 'E: netdisk: /nonexistent is missing' "$ND_TMP/nohook.log" &&
		! grep -q '^nohook-status 0$' "$ND_TMP/nohook.log"
}
check "the hook refuses a missing agent: mkinitramfs fails, saying why" hook_refused
if lsinitrd "$ND_TMP/initrd-dracut" >"$ND_TMP/dracut.list" 2>&1 && grep -q 'usr/sbin/netdisk-attach$' "$ND_TMP/dracut.list" &&
	grep -q 'hooks/cmdline/90-netdisk-cmdline.sh$' "$ND_TMP/dracut.list"; then
	pass "dracut --no-hostonly includes the netdisk module (agent, cmdline hook)"
else
	fail "dracut image" "$(grep -iE 'error|fail' "$ND_TMP/dracut-build.log" | head -n 3)"
fi


# --- servers, disk images, stubs ----------------------------------------------------
# Server A serves only stub sessions over NBD (the default); B also serves
# images by name, as Debian's nbdroot= needs (docs/security.md).
# panic=1: an initramfs that gives up on root= reboots after a second (the
# VM then stops: -no-reboot) rather than waiting in a shell.
BASE="rw netdisk.test=poweroff panic=1 netdisk.test.hook=/e2e/guest.sh"
stock_image "$ND_TMP/tools.img" "$ND_TMP/initrd-tools" "root=UUID=$ROOT_UUID $BASE" &&
	stock_image "$ND_TMP/dracut.img" "$ND_TMP/initrd-dracut" "root=UUID=$ROOT_UUID rd.shell=0 rd.emergency=poweroff $BASE" ||
	{ fail images "cannot put the initramfs images into the e2e image"; exit 1; }
cp --sparse=always "$ND_TMP/tools.img" "$ND_TMP/tools.orig"
cat >"$ND_TMP/a.conf" <<CONF
state-dir = $ND_TMP/state-a
[image tools]
path = tools.img
[image dracut]
path = dracut.img
[client $MAC_T]
image = tools
mode = persistent
[client $MAC_D]
image = dracut
mode = persistent
[client $MAC_U]
image = tools
mode = persistent
CONF
start_server server-a --config "$ND_TMP/a.conf" || { fail server-a "$(cat "$ND_TMP/server-a.log")"; exit 1; }
PORT_A=$ND_PORT
stub_dir "$ND_TMP/tftp-a" "$PORT_A"
PORT_B=$(free_port)
stock_image "$ND_TMP/zero.img" "$ND_TMP/initrd-plain" \
	"ip=dhcp nbdroot=10.0.2.2:$PORT_B/zero root=/dev/nbd0p2 $BASE" || { fail images "zero-install image"; exit 1; }
cat >"$ND_TMP/b.conf" <<CONF
state-dir = $ND_TMP/state-b
nbd-exports = images
[image zero]
path = zero.img
mode = persistent
[client $MAC_Z]
image = zero
CONF
ND_PORT_FIXED=$PORT_B start_server server-b --config "$ND_TMP/b.conf" || { fail server-b "$(cat "$ND_TMP/server-b.log")"; exit 1; }
stub_dir "$ND_TMP/tftp-b" "$PORT_B"

# --- the boots: four VMs side by side ---------------------------------------------------
watch_status "$ND_TMP/state-a/control" "$ND_TMP/status-a.txt" &
ND_PIDS+=($!)
watch_status "$ND_TMP/state-b/control" "$ND_TMP/status-b.txt" &
ND_PIDS+=($!)
start=$SECONDS
boot_stock tools "$MAC_T" "$ND_TMP/tftp-a"
boot_stock dracut "$MAC_D" "$ND_TMP/tftp-a"
boot_stock zero "$MAC_Z" "$ND_TMP/tftp-b"
boot_stock tools-uefi "$MAC_U" "$ND_TMP/tftp-a" --uefi
e2e_wait
echo "# four VMs done in $((SECONDS - start)) s"

# The hook-path boots: VM, MAC, image, and where the agent finds the boot table.
for vm in "tools $MAC_T tools base memory" "dracut $MAC_D dracut base memory" "tools-uefi $MAC_U tools ACPI table NDSK"; do
	read -r name mac image where <<<"$vm"
	check "$name: the stock initramfs took the stub's session over ($where); / is /dev/nbd0p2 by root=UUID=" \
		took_over "$name" "$mac" "$image" "$where"
	check "$name: netdisk status showed the client in the OS phase" in_phase_os "$ND_TMP/status-a.txt" "$mac" "$image"
	check "$name: Linux reads what the firmware phase wrote (same session)" e2e_fw_sector "$name"
	check "$name: the VM's file lands in the client's overlay" \
		overlay_has "$ND_TMP/state-a" "$image" "$mac" "$(e2e_wrote "$name")"
done
check "tools: initramfs-tools ran its local-top scripts" console_has tools 'Running /scripts/local-top'
check "dracut: dracut's initqueue ran the module's job" console_has dracut 'dracut-initqueue\[[0-9]+\]: netdisk-attach: attached '
check "persistent clients leave the image file alone" cmp -s "$ND_TMP/tools.img" "$ND_TMP/tools.orig"

# zero_install: Debian's nbd-client mounted / from an export name, with no agent.
zero_install() {
	local mount
	! console_has zero 'netdisk-attach|NETDISK-INITRAMFS-OK' || { echo "netdisk's own code ran"; return 1; }
	mount=$(e2e_value zero E2E-ROOT-MOUNT)
	[[ $mount =~ ^/dev/nbd0p2\ /\ ext4\ rw ]] || { echo "/ is not /dev/nbd0p2: '$mount'"; tail -n 5 "$ND_TMP/zero.log"; return 1; }
	console_has zero '^NETDISK-HOOK-DONE /e2e/guest.sh status 0$' || { echo "guest script did not finish"; return 1; }
}
check "zero-install: ip=dhcp nbdroot=HOST:PORT/IMAGE root=/dev/nbd0p2 boots the image" zero_install
check "zero-install: its session is its own, under $MAC_NAT (02:4e + the IPv4 it came from)" \
	grep -q "nbd connect mac=$MAC_NAT .* image=zero" "$ND_TMP/server-b.log"
check "zero-install: netdisk status showed $MAC_NAT in the OS phase" in_phase_os "$ND_TMP/status-b.txt" "$MAC_NAT" zero
check "zero-install: the stub's session never reached the OS phase" \
	sh -c "! grep -qE '^$MAC_Z .* os ' '$ND_TMP/status-b.txt'"
# fw_sector_unseen: Linux read sector 2 and found something else than the marker.
fw_sector_unseen() {
	console_has zero '^E2E-FW-SECTOR' && [ "$(e2e_value zero E2E-FW-SECTOR)" != "$E2E_FW_MARK" ]
}
check "zero-install: what the firmware phase wrote is not visible to Linux" fw_sector_unseen
check "zero-install: the firmware phase's write is in the stub's overlay" \
	overlay_has "$ND_TMP/state-b" zero "$MAC_Z" "$E2E_FW_MARK"
check "zero-install: the VM's file lands in $MAC_NAT's overlay, not the stub's" \
	sh -c "grep -aqF '$(e2e_wrote zero)' '$ND_TMP/state-b/persistent/zero/$MAC_NAT.data' &&
		! grep -aqF '$(e2e_wrote zero)' '$ND_TMP/state-b/persistent/zero/$MAC_Z.data'"

# --- no boot table: the hook's netdisk.server= fallback ----------------------------------
# A fifth VM, once the zero-install one is off: the same kernel and hook
# initramfs started by QEMU itself (its NIC has no ROM, so no stub runs and
# no boot table exists), with initramfs-tools' own DHCP and the image by
# name on server B.  From QEMU's NAT it is 02:4e:7f:00:00:01 again: it must
# find the file the zero-install VM wrote (clients behind one NAT share a
# session's overlay, docs/handoff.md).
MAC_F=52:54:00:5e:00:05
timeout "${ND_BOOT_TIMEOUT:-300}" "$ND_TOP/qemu-scripts/boot-pxe" --nic-rom none --tftp "$ND_TMP/tftp-b" \
	--bootfile netdisk.pxe --mac "$MAC_F" --log "$ND_TMP/fallback.log" -- -kernel "$ND_TMP/linux" \
	-initrd "$ND_TMP/initrd-tools" -append "console=ttyS0,115200 netdisk.server=10.0.2.2:$PORT_B \
netdisk.image=zero root=UUID=$ROOT_UUID $BASE" >"$ND_TMP/fallback.qemu" 2>&1
# fallback_attached: no table, the agent attached the export name, / on it.
fallback_attached() {
	! console_has fallback 'netdisk-attach: boot table in' || { echo "a boot table was found"; return 1; }
	console_has fallback "netdisk-attach: attached /dev/nbd0: 10\\.0\\.2\\.2:$PORT_B export zero," ||
		{ echo "no attach by export name"; tail -n 5 "$ND_TMP/fallback.log"; return 1; }
	[[ $(e2e_value fallback E2E-ROOT-MOUNT) =~ ^/dev/nbd0p2\ /\ ext4\ rw ]] || { echo "/ is not /dev/nbd0p2"; return 1; }
}
check "no boot table: the hook attaches netdisk.server= netdisk.image= after initramfs-tools' DHCP" fallback_attached
check "no boot table: another machine behind the same NAT sees the zero-install VM's file" \
	test -n "$(e2e_wrote zero)" -a "$(e2e_value fallback E2E-MARK-SEEN)" = "$(e2e_wrote zero)"
