#!/usr/bin/env bash
# A tiny run of make bench's harness (UDP and NBD sections), so it cannot rot unnoticed.
. "$(dirname "$0")/lib.sh"

out=$ND_TMP/bench
if BENCH_SMOKE=1 BENCH_OUT=$out "$ND_TOP/bench/run" bench/udp.sh bench/nbd.sh >"$ND_TMP/bench.log" 2>&1; then
	pass bench-harness-runs
else
	fail bench-harness-runs "$(tail -n 5 "$ND_TMP/bench.log" | tr '\n' ' ')"
fi
for row in '| udp | seq-64k-MBps | netdisk |' '| nbd | nbdcopy-MBps | netdiskd | nbdkit |' \
	'| nbd | fio-rand-4k-IOPS | netdiskd | qemu-nbd |'; do
	grep -qF "$row" "$out/latest.md" && pass "bench-row ${row//[| ]/_}" ||
		fail "bench-row ${row//[| ]/_}" "missing from latest.md"
done
head -c 8 "$out/ratios.png" | grep -q PNG && pass bench-chart-png || fail bench-chart-png "no PNG chart"
