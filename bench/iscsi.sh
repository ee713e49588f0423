#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# iSCSI: netdiskd's target (iscsi-listen) against Debian's tgt serving the same
# image file, side by side in one run, through libiscsi's iscsi-perf on the
# host (the kernel initiator needs a VM): sequential reads of 128 KiB and
# random 4 KiB reads, 16 in flight, alternating which target goes first.
. "$(dirname "$0")/lib.sh"
command -v tgtd >/dev/null && command -v iscsi-perf >/dev/null ||
	{ echo "bench iscsi: needs tgt and libiscsi-bin (make deps)" >&2; exit 1; }

img=$BENCH_TMP/iscsi.img
make_image "$img" "${BENCH_ISCSI_MIB:-512}"
TARGET=iqn.2026-01.org.netdisk.bench:img
p_nd=$(free_port); p_iscsi=$(free_port)
printf 'iscsi-listen = 127.0.0.1:%s\niscsi-exports = images\niscsi-target-prefix = iqn.2026-01.org.netdisk.bench\n[image img]\npath = %s\nmode = readonly\n' \
	"$p_iscsi" "$img" >"$BENCH_TMP/iscsi.conf"
"$BENCH_BUILD/netdiskd" --listen "127.0.0.1:$p_nd" --config "$BENCH_TMP/iscsi.conf" \
	2>"$BENCH_TMP/nd.log" &
BENCH_PIDS+=($!)
tgt_start && tgt_target 1 "$TARGET" "$img" || exit 1
p_tgt=$TGT_PORT
for p in "$p_iscsi" "$p_tgt"; do wait_port "$p" || { echo "no target on $p" >&2; exit 1; }; done

declare -A url=( [netdiskd]="iscsi://127.0.0.1:$p_iscsi/$TARGET/0"
		 [tgt]="iscsi://127.0.0.1:$p_tgt/$TARGET/1" )
subjects=(netdiskd tgt)

# iscsi-perf's final "iops average N (M MB/s)": the field wanted (1: IOPS, 2: MB/s).
perf() { # URL FIELD ARGS...
	local u=$1 f=$2
	shift 2
	cat "$img" >/dev/null # both start warm
	timeout 120 iscsi-perf -t "${BENCH_SECONDS:-5}" -m 16 "$@" "$u" 2>&1 | tr '\r' '\n' |
		grep -oE 'iops average [0-9]+ \([0-9]+ MB/s\)' | tail -1 |
		sed -E 's/iops average ([0-9]+) \(([0-9]+) MB\/s\)/\1 \2/' | cut -d' ' -f"$f"
}

for round in $(seq "$BENCH_ROUNDS"); do
	for i in 0 1; do
		s=${subjects[(i + round) % 2]}
		v=$(perf "${url[$s]}" 2 -b 256) && [ -n "$v" ] || { echo "iscsi-perf on $s failed" >&2; exit 1; }
		result iscsi seq-128k-MBps "$s" "$v" MB/s higher
		v=$(perf "${url[$s]}" 1 -b 8 -r) && [ -n "$v" ] || { echo "iscsi-perf -r on $s failed" >&2; exit 1; }
		result iscsi rand-4k-IOPS "$s" "$v" IOPS higher
	done
done
