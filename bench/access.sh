#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# The site key's cost: ATTACH latency (median of 16, `netdisk bench`) against one netdiskd
# without a key and one with `site-key`, alternating, on loopback (read-only images, so
# that no overlay is made: the protocol and the crypto are what is timed).  The signed ATTACH is two
# round trips (the challenge) and two HMAC-SHA256 each side (docs/security.md).
. "$(dirname "$0")/lib.sh"

make_image "$BENCH_TMP/access.img" 64
openssl rand -hex 32 >"$BENCH_TMP/site.key"
printf 'site-key = %s\n' "$BENCH_TMP/site.key" >"$BENCH_TMP/keyed.conf"
p_plain=$(free_port)
p_keyed=$(free_port)
"$BENCH_BUILD/netdiskd" --listen "127.0.0.1:$p_plain" --mode readonly "img=$BENCH_TMP/access.img" \
	2>"$BENCH_TMP/plain.log" &
BENCH_PIDS+=($!)
"$BENCH_BUILD/netdiskd" --listen "127.0.0.1:$p_keyed" --config "$BENCH_TMP/keyed.conf" --mode readonly \
	"img=$BENCH_TMP/access.img" 2>"$BENCH_TMP/keyed.log" &
BENCH_PIDS+=($!)
for _ in $(seq 50); do
	grep -q 'listening on' "$BENCH_TMP/plain.log" && grep -q 'listening on' "$BENCH_TMP/keyed.log" && break
	sleep 0.1
done
attach_us() { # PORT [--key FILE]: the median and the least ATTACH latency, microseconds
	"$BENCH_BUILD/netdisk" bench "127.0.0.1:$1" --seconds 1 --size 4096 "${@:2}" |
		awk '/^attach/ { print $4, $7 }'
}
for round in $(seq "$BENCH_ROUNDS"); do
	read -r plain plain_min < <(attach_us "$p_plain")
	read -r keyed keyed_min < <(attach_us "$p_keyed" --key "$BENCH_TMP/site.key")
	[ -n "$plain" ] && [ -n "$keyed" ] || { echo "access: netdisk bench failed" >&2; exit 1; }
	result access attach-median-us unkeyed "$plain" us lower
	result access attach-median-us site-key "$keyed" us lower
	result access attach-min-us unkeyed "$plain_min" us lower
	result access attach-min-us site-key "$keyed_min" us lower
done
