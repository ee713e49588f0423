#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# BIOS section: 32 MiB of INT 13h AH=42h reads, netdisk.pxe + netdiskd vs iPXE sanboot over iSCSI (tgt) and HTTP.
#
# Both sides PXE-boot the same image in the same QEMU set-up (TCG, user
# networking, the NIC's iPXE ROM); its boot sector is bench/readbench.asm,
# which reads 32 MiB in 64-sector calls between two serial markers that the
# host times (bench/serial-timer.py).  NICs: BENCH_BIOS_NICS (default
# "virtio-net-pci e1000"; iPXE's own iSCSI sanboot stalls on rtl8139 here).
. "$(dirname "$0")/lib.sh"

NICS=(${BENCH_BIOS_NICS:-virtio-net-pci e1000})
IQN=iqn.2026-11.org.netdisk:bench
img=$BENCH_TMP/bench.img
cp "$BENCH_BUILD/bench/readbench.bin" "$img"
truncate -s 64M "$img"
# Into the page cache before the first round: otherwise the side that runs
# first (netdisk) pays for the file's first read (0.21-0.28 s instead of
# 0.11 s in round one).
cat "$img" >/dev/null

serve_pxe "$BENCH_TMP/tftp-netdisk" readonly "$img"
mkdir -p "$BENCH_TMP/tftp-ipxe"

# tgt serves the same file as an iSCSI LUN; tgtd ignores SIGTERM while it has
# targets, so it is stopped with SIGKILL.
iport=$(free_port)
ctl=$((20000 + RANDOM % 10000))
tgtd -f -C "$ctl" --iscsi "portal=127.0.0.1:$iport" >"$BENCH_TMP/tgtd.log" 2>&1 &
tgtd_pid=$!
trap 'kill -KILL $tgtd_pid 2>/dev/null; bench_cleanup' EXIT
for _ in $(seq 100); do
	tgtadm -C "$ctl" --lld iscsi --op show --mode target >/dev/null 2>&1 && break
	sleep 0.1
done
tgtadm -C "$ctl" --lld iscsi --op new --mode target --tid 1 -T "$IQN" &&
	tgtadm -C "$ctl" --lld iscsi --op new --mode logicalunit --tid 1 --lun 1 -b "$img" &&
	tgtadm -C "$ctl" --lld iscsi --op bind --mode target --tid 1 -I ALL || exit 1
printf '#!ipxe\ndhcp\nsanboot iscsi:10.0.2.2::%s:1:%s\n' "$iport" "$IQN" >"$BENCH_TMP/tftp-ipxe/boot.ipxe"

# The same file over HTTP, for iPXE's HTTP SAN boot (range requests).
hport=$(free_port)
python3 "$BENCH_TOP/bench/http-range-server.py" "$hport" "$img" &
BENCH_PIDS+=($!)
mkdir -p "$BENCH_TMP/tftp-http"
printf '#!ipxe\ndhcp\nsanboot http://10.0.2.2:%s/bench.img\n' "$hport" >"$BENCH_TMP/tftp-http/boot.ipxe"

# read_seconds NIC TFTPDIR BOOTFILE: seconds for the 32 MiB, or nothing on failure.
read_seconds() {
	local secs errors
	read -r secs errors < <(python3 "$BENCH_TOP/bench/serial-timer.py" 300 \
		"$BENCH_TOP/qemu-scripts/boot-pxe" --tftp "$2" --bootfile "$3" --nic "$1" \
		--serial stdio 2>/dev/null)
	[ "${errors:-1}" = 0 ] && echo "$secs"
}

for round in $(seq "$BENCH_ROUNDS"); do
	for nic in "${NICS[@]}"; do
		s=$(read_seconds "$nic" "$BENCH_TMP/tftp-netdisk" netdisk.pxe)
		[ -z "$s" ] || result bios "int13-read-32MiB-$nic" netdisk.pxe "$s" s lower
		s=$(read_seconds "$nic" "$BENCH_TMP/tftp-ipxe" boot.ipxe)
		[ -z "$s" ] || result bios "int13-read-32MiB-$nic" ipxe-sanboot-iscsi "$s" s lower
		s=$(read_seconds "$nic" "$BENCH_TMP/tftp-http" boot.ipxe)
		[ -z "$s" ] || result bios "int13-read-32MiB-$nic" ipxe-sanboot-http "$s" s lower
	done
done
