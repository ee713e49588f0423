#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Inside the VM: sequential read MB/s of the root's network disk (/dev/nbd0) once Linux took it over, BIOS boot.
. "$(dirname "$0")/lib.sh"
ND_TOP=$BENCH_TOP ND_BUILD=$BENCH_BUILD ND_TMP=$BENCH_TMP
. "$BENCH_TOP/tests/image-lib.sh"
. "$BENCH_TOP/tests/e2e-lib.sh"

make -s -C "$BENCH_TOP" BUILD="$BENCH_BUILD" all demo-test-image >"$BENCH_TMP/make.log" 2>&1 ||
	{ tail -n 5 "$BENCH_TMP/make.log" >&2; exit 1; }

# The guest reads the whole disk with O_DIRECT, timed with /proc/uptime.
mkdir -p "$BENCH_TMP/hook"
cat >"$BENCH_TMP/hook/read.sh" <<'HOOK'
#!/bin/sh
size=$(($(cat /sys/block/nbd0/size) * 512))
start=$(cut -d' ' -f1 /proc/uptime)
dd if=/dev/nbd0 of=/dev/null bs=1M iflag=direct 2>/dev/null
end=$(cut -d' ' -f1 /proc/uptime)
echo
echo "VMREAD $size $start $end"
HOOK
chmod +x "$BENCH_TMP/hook/read.sh"
img=$BENCH_TMP/vm.img
image_with_hook "$img" "$BENCH_TMP/hook" "netdisk.test=poweroff panic=-1 netdisk.test.hook=/e2e/read.sh" ||
	{ echo "cannot put the hook on the image" >&2; exit 1; }

serve_pxe "$BENCH_TMP/tftp" volatile "demo=$img"
for round in $(seq "$BENCH_ROUNDS"); do
	timeout 300 "$BENCH_TOP/qemu-scripts/boot-pxe" --tftp "$BENCH_TMP/tftp" \
		--bootfile netdisk.pxe --log "$BENCH_TMP/vm-$round.serial" >/dev/null 2>&1
	tr -d '\r' <"$BENCH_TMP/vm-$round.serial" | awk '{ sub(/.*VMREAD/, "VMREAD") } $1 == "VMREAD" && $4 > $3 {
		printf "RESULT vm nbd-root-seq-read-MBps netdisk %.1f MB/s higher\n", $2 / ($4 - $3) / 1e6 }'
done
