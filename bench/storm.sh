#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Boot storms: `netdisk storm` replays the demo image's boot trace (bench/traces) as 1, 8, 32, 128, 256 clients on a namespace LAN, multicast off and on; server egress from netdiskd's exit line.
# One line per run: storm clients=N multicast=on|off server_egress_bytes=B one_client_bytes=b egress_ratio=R all_done_s=T p99_ms=L
# From BENCH_STORM_ONE_PROCESS (default 32) clients on, multicast runs are threads of one process
# sharing one group socket (--one-process): 32 or more processes each copying every group datagram measure
# the host.  Unicast runs stay forked (no group to share; as threads, 128 measured 550 x, forked 244 x).
# Unicast runs above BENCH_STORM_UNICAST_MAX clients (default 128) are skipped: on two cores they
# measure the host's retransmissions (128 clients: 244-550 x one client's bytes, 21-102 s).
# BENCH_STORM_CLIENTS (default "1 8 32 128 256"), BENCH_STORM_MODE (multicast "on" = always, or auto),
# BENCH_STORM_TRACE (a trace file, .gz or not), BENCH_STORM_SPEED (replay the trace's times F x faster: 1);
# BENCH_SMOKE: 1 and 4 clients, 4 x faster.
. "$(dirname "$0")/lib.sh"
if [ "$(id -u)" != 0 ] || ! command -v ip >/dev/null; then
	echo "storm: needs root and ip(8) for network namespaces: skipped" >&2
	exit 0
fi
STORM_BUILD=$BENCH_BUILD
. "$BENCH_TOP/tests/storm-lib.sh"
trap 'storm_lan_down; bench_cleanup' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
make -s -C "$BENCH_TOP" BUILD="$BENCH_BUILD" "$BENCH_BUILD/netdiskd" "$BENCH_BUILD/netdisk" >&2 || exit 1
storm_reap_stale
storm_lan_up >"$BENCH_TMP/lan.log" 2>&1 || { echo "storm: LAN: $(cat "$BENCH_TMP/lan.log")" >&2; exit 1; }

trace=${BENCH_STORM_TRACE:-$BENCH_TOP/bench/traces/demo-bios.trace.gz}
case $trace in
*.gz) gzip -dc "$trace" >"$BENCH_TMP/storm.trace" ;;
*) cp "$trace" "$BENCH_TMP/storm.trace" ;;
esac
# The image: random bytes of the traced image's size (the data does not
# change what is sent; every client checks it with --verify).
sectors=$(head -n 1 "$BENCH_TMP/storm.trace" | grep -o 'sectors [0-9]*' | cut -d' ' -f2)
[ -n "$sectors" ] || { echo "storm: $trace has no 'sectors N' header" >&2; exit 1; }
head -c $((sectors * 512)) /dev/urandom >"$BENCH_TMP/storm.img"
mode=${BENCH_STORM_MODE:-always}
speed=${BENCH_STORM_SPEED:-1}
clients=${BENCH_STORM_CLIENTS:-1 8 32 128 256}
one_from=${BENCH_STORM_ONE_PROCESS:-32}
unicast_max=${BENCH_STORM_UNICAST_MAX:-128}
if [ -n "${BENCH_SMOKE:-}" ]; then # the harness check: tiny
	clients=${BENCH_STORM_CLIENTS:-1 4}
	speed=${BENCH_STORM_SPEED:-4}
fi

for round in $(seq "$BENCH_ROUNDS"); do
	one=
	for n in $clients; do
		for mc in off on; do
			[ $mc = off ] && [ "$n" -gt "$unicast_max" ] && continue
			m=off
			[ $mc = on ] && m=$mode
			storm_serve "$m" "$BENCH_TMP/storm.img" "$BENCH_TMP/server.log" ||
				{ echo "storm: server: $(tail -n 3 "$BENCH_TMP/server.log")" >&2; exit 1; }
			one_process=
			[ "$n" -ge "$one_from" ] && [ $mc = on ] && one_process=--one-process
			storm_run "$n" "$mc" "$BENCH_TMP/storm.trace" "$BENCH_TMP/out" --speed "$speed" \
				--verify "$BENCH_TMP/storm.img" $one_process
			rc=$?
			storm_unserve "$BENCH_TMP/server.log" || { echo "storm: no exit line" >&2; exit 1; }
			if [ $rc != 0 ]; then
				echo "storm: $n clients, multicast $mc failed (rc $rc):" >&2
				grep -v '^client .*verify=ok' "$BENCH_TMP/out" "$BENCH_TMP/out.err" | tail -n 5 >&2
				exit 1
			fi
			egress=$((STORM_U + STORM_M))
			# The anchor: one client, multicast off.
			[ -n "$one" ] || one=$egress
			done_s=$(storm_field "$BENCH_TMP/out" all_done_s)
			p99=$(storm_field "$BENCH_TMP/out" p99_ms)
			ratio=$(awk -v b="$egress" -v o="$one" 'BEGIN { printf "%.2f", b / o }')
			echo "storm clients=$n multicast=$mc server_egress_bytes=$egress one_client_bytes=$one egress_ratio=$ratio all_done_s=$done_s p99_ms=$p99"
			result storm "egress-ratio-mc-$mc" "clients-$n" "$ratio" x lower
			result storm "all-done-s-mc-$mc" "clients-$n" "$done_s" s lower
			result storm "p99-ms-mc-$mc" "clients-$n" "$p99" ms lower
		done
	done
done
