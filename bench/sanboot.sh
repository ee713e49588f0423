#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# iPXE's own `sanboot iscsi:` (QEMU's iPXE ROM under SeaBIOS) against
# netdiskd's iSCSI target and against Debian's tgt serving the same files,
# alternating within each round: the firmware-phase read time.
#
#   int13-read-32MiB  bench/readbench.asm as the disk's boot sector reads
#                     32 MiB through iPXE's INT 13h (64-sector calls),
#                     timed on the host between its serial markers
#   loader-read-s     the demo image (build/demo-test.img): from syslinux's
#                     banner to its "Loading /initrd.gz...ok", i.e. syslinux
#                     reading its modules, the kernel and the initramfs
#   to-kernel-s       the demo image: VM start to the kernel's first line
# netdiskd serves the images as a volatile client of its own per initiator
# (an empty overlay over the file, what an iPXE user gets), tgt as LUN 1.
. "$(dirname "$0")/lib.sh"
command -v tgtd >/dev/null ||
	{ echo "bench sanboot: needs tgt (make deps)" >&2; exit 1; }
make -s -C "$BENCH_TOP" BUILD="$BENCH_BUILD" all demo-test-image >"$BENCH_TMP/make.log" 2>&1 ||
	{ tail -n 5 "$BENCH_TMP/make.log" >&2; exit 1; }

PFX=iqn.2026-01.org.netdisk.bench
read_img=$BENCH_TMP/read.img
cp "$BENCH_BUILD/bench/readbench.bin" "$read_img"
truncate -s 64M "$read_img"
demo_img=$BENCH_TMP/demo.img
cp --sparse=always "$BENCH_BUILD/demo-test.img" "$demo_img"
cat "$read_img" "$demo_img" >/dev/null # both sides start with the files in the page cache

iport=$(free_port)
cat >"$BENCH_TMP/sanboot.conf" <<CONF
iscsi-listen = 127.0.0.1:$iport
iscsi-exports = images
iscsi-target-prefix = $PFX
[image read]
path = $read_img
mode = volatile
[image demo]
path = $demo_img
mode = volatile
CONF
"$BENCH_BUILD/netdiskd" --listen "127.0.0.1:$(free_port)" --config "$BENCH_TMP/sanboot.conf" \
	2>"$BENCH_TMP/netdiskd.log" &
BENCH_PIDS+=($!)
tgt_start && tgt_target 1 "$PFX:read" "$read_img" && tgt_target 2 "$PFX:demo" "$demo_img" || exit 1
wait_port "$iport" || { echo "netdiskd's iSCSI target did not start: $(cat "$BENCH_TMP/netdiskd.log")" >&2; exit 1; }

# An iPXE script per side and image: tftp-SIDE/IMAGE.ipxe (netdiskd's LUN is 0, tgt's 1).
for side in netdiskd tgt; do
	mkdir -p "$BENCH_TMP/tftp-$side"
	for image in read demo; do
		case $side in
		netdiskd) where=$iport:0 ;;
		tgt) where=$TGT_PORT:1 ;;
		esac
		printf '#!ipxe\nsanboot iscsi:10.0.2.2::%s:%s:%s\n' "$where" "$PFX" "$image" \
			>"$BENCH_TMP/tftp-$side/$image.ipxe"
	done
done

# read_seconds SIDE: seconds for readbench's 32 MiB, or nothing on failure.
read_seconds() {
	local secs errors
	read -r secs errors < <(python3 "$BENCH_TOP/bench/serial-timer.py" 300 \
		"$BENCH_TOP/qemu-scripts/boot-pxe" --tftp "$BENCH_TMP/tftp-$1" --bootfile read.ipxe \
		--serial stdio 2>/dev/null)
	[ "${errors:-1}" = 0 ] && echo "$secs"
}

# demo_boot SIDE: RESULT lines for the demo image's loader read and kernel start.
demo_boot() {
	local out
	out=$(SERIAL_LOG=$BENCH_TMP/demo-$1.log python3 "$BENCH_TOP/bench/boot-timer.py" 300 \
		"loader=SYSLINUX " "loaded=Loading /initrd.gz" "kernel=Linux version" -- \
		"$BENCH_TOP/qemu-scripts/boot-pxe" --tftp "$BENCH_TMP/tftp-$1" --bootfile demo.ipxe \
		--serial stdio) || { echo "demo boot over $1 failed: $out" >&2; return 1; }
	awk -v s="$1" '
		{ t[$1] = $2 }
		END {
			printf "RESULT sanboot bios-loader-read-s %s %.2f s lower\n", s, t["loaded"] - t["loader"]
			printf "RESULT sanboot bios-to-kernel-s %s %.2f s lower\n", s, t["kernel"]
		}' <<<"$out"
}

status=0
sides=(netdiskd tgt)
for round in $(seq "$BENCH_ROUNDS"); do
	for i in 0 1; do
		side=${sides[(i + round) % 2]}
		s=$(read_seconds "$side")
		[ -n "$s" ] && result sanboot bios-int13-read-32MiB "$side" "$s" s lower ||
			{ echo "readbench over $side failed" >&2; status=1; }
		demo_boot "$side" || status=1
	done
done
exit $status
