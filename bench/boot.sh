#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Boot time of the demo image and of a stock Debian 12: VM start to the kernel's first console line, to the root system's marker and to systemd's multi-user.target, BIOS and UEFI, netdisk (PXE-loaded and as option ROM) vs iPXE sanboot over iSCSI.
#
# Same VM (TCG, 512 MiB, virtio-net on QEMU user networking, iPXE ROM) and
# same image (build/demo-test.img, which powers off once up) on every side:
#   netdisk.pxe / netdisk.efi  the stub PXE-booted from TFTP, netdiskd volatile
#   netdisk-virtio.rom         the same stub as the NIC's option ROM (no iPXE,
#                              no TFTP: its own DHCP), BIOS only
#   iscsi-ipxe                 iPXE's `sanboot iscsi:` to tgtd on the same file
# kernel: the serial console shows "Linux version" (printed once the kernel's
# serial console is up, so it includes its first second or so of boot);
# multi-user (the stock Debian 12 of tools/mkdebian: GRUB, Debian's kernel,
# initramfs-tools with netdisk's hook, systemd; netdisk only): its unit's
# NETDISK-DEBIAN-UP once multi-user.target is active;
# root: NETDISK-ROOT-OK, the root system up on the network disk (netdisk
# only: the image's initramfs has no iSCSI initiator, so the iSCSI side stops
# in the initramfs and only its kernel time counts).
. "$(dirname "$0")/lib.sh"

make -s -C "$BENCH_TOP" BUILD="$BENCH_BUILD" all demo-test-image >"$BENCH_TMP/make.log" 2>&1 ||
	{ tail -n 5 "$BENCH_TMP/make.log" >&2; exit 1; }
image=$BENCH_TMP/demo.img
cp --sparse=always "$BENCH_BUILD/demo-test.img" "$image"
TARGET=iqn.2026-11.org.netdisk:boot

# netdiskd, volatile: every run starts from the same image.
port=$(free_port)
# The stock Debian image: build/compat-debian12.img, as make compat keeps it
# (tools/mkdebian, its debootstrapped root cached in build/cache).
debian=$BENCH_BUILD/compat-debian12.img
if [ ! -f "$debian" ]; then
	MKDEBIAN_APPEND="netdisk.test=poweroff panic=-1" "$BENCH_TOP/tools/mkdebian" --build "$BENCH_BUILD" \
		"$debian.new" >"$BENCH_TMP/mkdebian.log" 2>&1 && mv "$debian.new" "$debian" ||
		{ tail -n 5 "$BENCH_TMP/mkdebian.log" >&2; exit 1; }
fi
"$BENCH_BUILD/netdiskd" --listen "127.0.0.1:$port" --mode volatile "demo=$image" "debian12=$debian" \
	2>"$BENCH_TMP/server.log" &
BENCH_PIDS+=($!)
mkdir -p "$BENCH_TMP/nd" "$BENCH_TMP/deb"
for stub in netdisk.pxe netdisk.efi netdisk-virtio.rom; do
	cp "$BENCH_BUILD/$stub" "$BENCH_TMP/nd/$stub"
	"$BENCH_BUILD/netdisk" patch "$BENCH_TMP/nd/$stub" --server "10.0.2.2:$port" >/dev/null
	cp "$BENCH_BUILD/$stub" "$BENCH_TMP/deb/$stub"
	"$BENCH_BUILD/netdisk" patch "$BENCH_TMP/deb/$stub" --server "10.0.2.2:$port" --image debian12 >/dev/null
done

# tgtd with its own control port and portal, one LUN on the same file.
iscsi_port=$(free_port)
control=$((iscsi_port % 1000 + 100))
tgtd -f -C "$control" --iscsi "portal=127.0.0.1:$iscsi_port" >"$BENCH_TMP/tgtd.log" 2>&1 &
tgtd_pid=$!
# tgtd ignores SIGTERM while it has a logical unit.
trap 'kill -9 $tgtd_pid 2>/dev/null; bench_cleanup' EXIT
for _ in $(seq 100); do tgtadm -C "$control" --lld iscsi --mode target --op show >/dev/null 2>&1 && break; sleep 0.1; done
tgtadm -C "$control" --lld iscsi --mode target --op new --tid 1 --targetname "$TARGET" &&
	tgtadm -C "$control" --lld iscsi --mode logicalunit --op new --tid 1 --lun 1 --backing-store "$image" &&
	tgtadm -C "$control" --lld iscsi --mode target --op bind --tid 1 --initiator-address ALL || exit 1
mkdir -p "$BENCH_TMP/is"
printf '#!ipxe\nsanboot iscsi:10.0.2.2::%s:1:%s\n' "$iscsi_port" "$TARGET" >"$BENCH_TMP/is/boot.ipxe"

# run FIRMWARE SUBJECT TFTPDIR BOOTFILE: one boot; RESULT lines for what it
# reached.  A BOOTFILE ending in .rom is the NIC's ROM instead (no TFTP).
run() {
	local fw=$1 subject=$2 dir=$3 file=$4 flags=() out
	[ "$fw" = uefi ] && flags+=(--uefi)
	case $file in
	*.rom) flags+=(--nic-rom "$dir/$file") ;;
	*) flags+=(--tftp "$dir" --bootfile "$file") ;;
	esac
	out=$(SERIAL_LOG=$BENCH_TMP/$fw-$subject.log python3 "$BENCH_TOP/bench/boot-timer.py" 300 \
		"kernel=Linux version" "root=NETDISK-ROOT-OK" "off=NETDISK-POWEROFF" "multiuser=NETDISK-DEBIAN-UP" -- \
		"$BENCH_TOP/qemu-scripts/boot-pxe" "${flags[@]}" --serial stdio)
	echo "$fw $subject: $(tr '\n' ' ' <<<"$out")" >&2
	awk -v fw="$fw" -v s="$subject" '
		$1 == "kernel" { print "RESULT boot " fw "-to-kernel-s " s " " $2 " s lower" }
		$1 == "root"   { print "RESULT boot " fw "-to-root-s " s " " $2 " s lower" }
		$1 == "multiuser" { print "RESULT boot " fw "-to-multi-user-s " s " " $2 " s lower" }' <<<"$out"
	grep -q '^kernel ' <<<"$out"
}

status=0
for round in $(seq "$BENCH_ROUNDS"); do
	run bios netdisk.pxe "$BENCH_TMP/nd" netdisk.pxe || status=1
	run bios netdisk-virtio.rom "$BENCH_TMP/nd" netdisk-virtio.rom || status=1
	run uefi netdisk.efi "$BENCH_TMP/nd" netdisk.efi || status=1
	run bios iscsi-ipxe "$BENCH_TMP/is" boot.ipxe || status=1
	run uefi iscsi-ipxe "$BENCH_TMP/is" boot.ipxe || status=1
	run bios debian12-netdisk.pxe "$BENCH_TMP/deb" netdisk.pxe || status=1
	run bios debian12-netdisk-virtio.rom "$BENCH_TMP/deb" netdisk-virtio.rom || status=1
	run uefi debian12-netdisk.efi "$BENCH_TMP/deb" netdisk.efi || status=1
done
exit $status
