#!/usr/bin/env bash
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
