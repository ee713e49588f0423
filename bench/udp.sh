#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# UDP protocol: `netdisk bench` against netdiskd on loopback (1 GiB image).
. "$(dirname "$0")/lib.sh"

make_image "$BENCH_TMP/bench.img" "${BENCH_IMAGE_MIB:-1024}"
port=$(free_port)
"$BENCH_BUILD/netdiskd" --listen "127.0.0.1:$port" "$BENCH_TMP/bench.img" 2>"$BENCH_TMP/server.log" &
BENCH_PIDS+=($!)
for _ in $(seq 50); do grep -q 'listening on' "$BENCH_TMP/server.log" && break; sleep 0.1; done
for round in $(seq "$BENCH_ROUNDS"); do
	"$BENCH_BUILD/netdisk" bench "127.0.0.1:$port" --seconds "${BENCH_SECONDS:-5}" --size 64k |
		tee "$BENCH_TMP/out" >&2
	awk '/^sequential/ { print "RESULT udp seq-64k-MBps netdisk", $4, "MB/s higher" }
	     /^random/     { print "RESULT udp rand-4k-IOPS netdisk", $6, "req/s higher" }' "$BENCH_TMP/out"
done
