#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# A tiny run of make bench's harness (UDP and NBD sections), so it cannot rot unnoticed.
. "$(dirname "$0")/lib.sh"
requires cmd:nbdcopy

out=$ND_TMP/bench
if BENCH_SMOKE=1 BENCH_OUT=$out "$ND_TOP/bench/run" bench/udp.sh bench/nbd.sh >"$ND_TMP/bench.log" 2>&1; then
	pass bench-harness-runs
else
	fail bench-harness-runs "$(tail -n 5 "$ND_TMP/bench.log" | tr '\n' ' ')"
fi
expect_row() {
	grep -qF "$2" "$out/latest.md" && pass "$1" || fail "$1" "no row '$2' in latest.md"
}
expect_row bench-udp-median '| udp | seq-64k-MBps | netdisk |'
expect_row bench-nbd-ratio-nbdkit '| nbd | nbdcopy-MBps | netdiskd | nbdkit |'
expect_row bench-nbd-ratio-qemu-nbd '| nbd | fio-rand-4k-IOPS | netdiskd | qemu-nbd |'
head -c 8 "$out/ratios.png" | grep -q PNG && pass bench-chart-png || fail bench-chart-png "no PNG chart"

# The storm chart, from storm and vmstorm lines alone (those sections need
# namespaces and minutes): a PNG with them, none without them.
storm_chart() {
	local dir=$ND_TMP/storm-chart
	mkdir -p "$dir" && rm -f "$out/storm.png"
	printf 'RESULT storm egress-ratio-mc-%s clients-%s %s x lower\n' off 1 1 on 1 1 off 8 8.1 on 8 1.02 >"$dir/raw.txt"
	printf 'RESULT vmstorm egress-ratio-mc-%s vms-%s %s x lower\n' off 1 1 off 3 3 on 3 1.5 >>"$dir/raw.txt"
	python3 "$ND_TOP/bench/summarize.py" "$dir/raw.txt" "$dir" >/dev/null || { echo "summarize.py failed"; return 1; }
	head -c 8 "$dir/storm.png" | grep -q PNG || { echo "no storm.png from storm lines"; return 1; }
	[ ! -e "$out/storm.png" ] || { echo "storm.png written by a run without storm sections"; return 1; }
}
check bench-storm-chart storm_chart
