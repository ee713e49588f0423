#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Benchmark: 32 MiB read through UEFI BlockIo in 64 KiB calls, netdisk.efi vs iPXE's sanboot over iSCSI (tgt).
#
# The same disk image (tests/efi-lib.sh's pattern disk with build/bench/bio-bench.efi
# as its loader), the same QEMU (TCG, OVMF, virtio-net, user networking) and the
# same benchmark application on every side; only the disk transport differs:
#   netdisk-ovmf   netdisk.efi (own virtio-net driver), OVMF's own PXE (NIC without ROM)
#   netdisk-ipxe   netdisk.efi (own virtio-net driver), booted by iPXE's EFI ROM
#   iscsi-ipxe     iPXE's EFI ROM: `sanboot iscsi:` to tgtd on the host
#   netdiskd-iscsi-ipxe  the same to netdiskd's own iSCSI target (docs/iscsi.md)
# The time is taken on the host between the guest's "BENCH start" and "BENCH
# end" console lines.  Results go to $RESULTS (bench/results/efi-read.txt).
set -euo pipefail
cd "$(dirname "$0")/.."
export ND_TOP=$PWD ND_BUILD=${BUILD:-$PWD/build}
. tests/lib.sh
. tests/efi-lib.sh

RUNS=${RUNS:-${BENCH_ROUNDS:-3}}
SIDES=${SIDES:-netdisk-ovmf netdisk-ipxe iscsi-ipxe netdiskd-iscsi-ipxe}
TARGET=iqn.2026-11.org.netdisk:bench
RESULTS=${RESULTS:-bench/results/efi-read.txt}

make -s all >/dev/null

# bench_qemu NAME FIRMWARE TFTPDIR BOOTFILE: boot once; prints the seconds
# between the markers and the checksum, or fails.
bench_qemu() {
	local name=$1 fw=$2 tftp=$3 bootfile=$4 rom=()
	[ "$fw" = ipxe ] || rom=(--nic-rom none)
	mkdir -p "$ND_TMP/$name.vars"
	OVMF_CODE=$EFI_OVMF_CODE OVMF_VARS=$EFI_OVMF_VARS timeout 300 "$ND_TOP/qemu-scripts/boot-pxe" \
		--uefi --vars-dir "$ND_TMP/$name.vars" --tftp "$tftp" --bootfile "$bootfile" \
		"${rom[@]}" --serial stdio -- -nodefaults 2>&1 |
		python3 -c '
import sys, time, re
start = end = None
for raw in sys.stdin.buffer:
    line = raw.decode("latin1")
    if "BENCH start" in line:
        start = time.monotonic()
    m = re.search(r"BENCH end sum=([0-9a-fA-F]+)", line)
    if m and start is not None:
        print("%.2f %s" % (time.monotonic() - start, m.group(1).lower()))
        sys.exit(0)
    if "BENCH FAIL" in line:
        sys.exit(line.strip())
sys.exit("no BENCH end line")
'
}

disk=$ND_TMP/bench.img
efi_pattern_disk "$disk" "$ND_BUILD/bench/bio-bench.efi"

# netdisk: netdiskd read-only on the image, the stub patched to its port;
# its iSCSI target serves the image too (LUN 0), to any initiator.
mkdir -p "$ND_TMP/nd" "$ND_TMP/ndi"
nd_iscsi_port=$(free_port)
printf 'iscsi-listen = 127.0.0.1:%s\niscsi-exports = images\n[image bench]\npath = %s\nmode = readonly\n' \
	"$nd_iscsi_port" "$disk" >"$ND_TMP/nd.conf"
start_server bench-netdiskd --config "$ND_TMP/nd.conf"
efi_patch_stub "$ND_BUILD/netdisk.efi" "$ND_TMP/nd/netdisk.efi" "$ND_PORT"
printf '#!ipxe\ndhcp\nsanboot iscsi:10.0.2.2::%s:0:iqn.2026-01.org.netdisk:bench\n' "$nd_iscsi_port" \
	>"$ND_TMP/ndi/bench.ipxe"

# iSCSI: a private tgtd (own control port and portal), one LUN on the same image.
# tgtd ignores SIGTERM while it has targets: it is told to go instead.
stop_tgtd() {
	tgtadm -C "$control" --lld iscsi --mode target --op delete --force --tid 1
	tgtadm -C "$control" --mode system --op delete
	nd_cleanup
}
start_tgtd() {
	iscsi_port=$(free_port)
	control=$((iscsi_port % 1000 + 100))
	tgtd -f -C "$control" --iscsi "portal=127.0.0.1:$iscsi_port" >"$ND_TMP/tgtd.log" 2>&1 &
	trap 'stop_tgtd >/dev/null 2>&1' EXIT
	wait_for 10 tgtadm -C "$control" --lld iscsi --mode target --op show
	tgtadm -C "$control" --lld iscsi --mode target --op new --tid 1 --targetname "$TARGET"
	tgtadm -C "$control" --lld iscsi --mode logicalunit --op new --tid 1 --lun 1 --backing-store "$disk"
	tgtadm -C "$control" --lld iscsi --mode target --op bind --tid 1 --initiator-address ALL
	mkdir -p "$ND_TMP/is"
	printf '#!ipxe\ndhcp\nsanboot iscsi:10.0.2.2::%s:1:%s\n' "$iscsi_port" "$TARGET" >"$ND_TMP/is/bench.ipxe"
}
case " $SIDES " in *" iscsi-ipxe "*) start_tgtd ;; esac

declare -A times sums
# Sides alternate within each run, so a slow moment of the host hits them alike.
for run in $(seq "$RUNS"); do
	for side in $SIDES; do
		case $side in
		netdisk-*) out=$(bench_qemu "$side-$run" "${side#netdisk-}" "$ND_TMP/nd" netdisk.efi) ;;
		iscsi-ipxe) out=$(bench_qemu "$side-$run" ipxe "$ND_TMP/is" bench.ipxe) ;;
		netdiskd-iscsi-ipxe) out=$(bench_qemu "$side-$run" ipxe "$ND_TMP/ndi" bench.ipxe) ;;
		esac
		echo "$side run $run: ${out% *} s"
		case $side in
		netdisk-*) subject=netdisk.efi-${side#netdisk-} ;;
		netdiskd-iscsi-ipxe) subject=netdiskd-ipxe-sanboot-iscsi ;;
		*) subject=ipxe-sanboot-iscsi ;;
		esac
		echo "RESULT uefi blockio-read-32MiB $subject ${out% *} s lower"
		times[$side]+=" ${out% *}"
		sums[$side]=${out#* }
	done
done

[ "$(printf '%s\n' "${sums[@]}" | sort -u | wc -l)" -eq 1 ] ||
	{ echo "the sides read different data: ${sums[*]}" >&2; exit 1; }

median() { tr ' ' '\n' <<<"$1" | sed '/^$/d' | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
mkdir -p "$(dirname "$RESULTS")"
{
	echo "# 32 MiB through UEFI BlockIo in 64 KiB calls; QEMU $(qemu-system-x86_64 --version | head -1 | awk '{print $4}') -accel tcg, OVMF, virtio-net, user networking"
	echo "# seconds between the guest's BENCH start/end lines, median of $RUNS runs; $(date -u +%Y-%m-%d)"
	echo "# side               median  MiB/s   runs"
	for side in $SIDES; do
		m=$(median "${times[$side]}")
		printf '%-20s %6s  %6.1f  %s\n' "$side" "$m" "$(awk -v m="$m" 'BEGIN { print 32 / m }')" "${times[$side]# }"
	done
} | tee "$RESULTS"
