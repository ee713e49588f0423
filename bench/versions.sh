#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Image versions: whole-image read throughput through chains of 1, 5 and 20
# version deltas against the flat (never-versioned) image, over UDP (`netdisk
# read`) and NBD (nbdcopy), page cache warm; then the merge throughput of the
# 20-version chain while a client reads.
. "$(dirname "$0")/lib.sh"

MIB=${BENCH_VERSIONS_MIB:-${BENCH_IMAGE_MIB:-256}}
ADMIN=02:00:00:00:be:01
make_image "$BENCH_TMP/gold.img" "$MIB"
head -c 256k /dev/urandom >"$BENCH_TMP/patch"
SECTORS=$((MIB * 2048))

now() { date +%s.%N; }
mbps() { python3 -c "import sys; print('%.1f' % ($MIB * 1.048576 / (float(sys.argv[2]) - float(sys.argv[1]))))" "$1" "$2"; }

start() { # the server on a fresh state directory
	rm -rf "$BENCH_TMP/state"
	port=$(free_port)
	cat >"$BENCH_TMP/gold.conf" <<CONF
nbd-exports = images
state-dir = $BENCH_TMP/state
[image gold]
path = $BENCH_TMP/gold.img
[client $ADMIN]
mode = maintenance
CONF
	"$BENCH_BUILD/netdiskd" --listen "127.0.0.1:$port" --config "$BENCH_TMP/gold.conf" \
		2>"$BENCH_TMP/server.log" &
	pid=$!
	BENCH_PIDS+=($pid)
	for _ in $(seq 50); do grep -q 'listening on' "$BENCH_TMP/server.log" && break; sleep 0.1; done
}
img() { "$BENCH_BUILD/netdisk" image --control "$BENCH_TMP/state/control" "$@" >/dev/null; }

# N versions, each writing eight 256 KiB pieces spread over the disk, promoted in turn.
build_chain() {
	local v i lba
	for v in $(seq "$1"); do
		img new-version gold --note "bench $v" || return 1
		for i in $(seq 0 7); do
			lba=$(( (i * SECTORS / 8 + v * 4096) % (SECTORS - 512) ))
			"$BENCH_BUILD/netdisk" write "127.0.0.1:$port" "$lba" -i "$BENCH_TMP/patch" \
				--mac "$ADMIN" >/dev/null || return 1
		done
		img promote gold $((v + 1)) || return 1
	done
}

measure() { # LABEL: warm once, then BENCH_ROUNDS timed whole-image reads each way
	local label=$1 r t0 t1
	"$BENCH_BUILD/netdisk" read "127.0.0.1:$port" 0 "$SECTORS" -o /dev/null --dgram 65024
	for r in $(seq "$BENCH_ROUNDS"); do
		t0=$(now)
		"$BENCH_BUILD/netdisk" read "127.0.0.1:$port" 0 "$SECTORS" -o /dev/null --dgram 65024 || return 1
		t1=$(now)
		result versions udp-read-MBps "$label" "$(mbps "$t0" "$t1")" MB/s higher
		t0=$(now)
		nbdcopy "nbd://127.0.0.1:$port/gold" null: || return 1
		t1=$(now)
		result versions nbd-read-MBps "$label" "$(mbps "$t0" "$t1")" MB/s higher
	done
}

start
measure flat || exit 1
kill "$pid"; wait "$pid" 2>/dev/null
for n in 1 5 20; do
	start
	build_chain "$n" || { echo "versions: building a chain of $n failed" >&2; exit 1; }
	measure "chain-$n" || exit 1
	if [ "$n" = 20 ]; then
		# Merge throughput while a client reads the whole image in a loop.
		rm -f "$BENCH_TMP/stop"
		( while [ ! -e "$BENCH_TMP/stop" ]; do "$BENCH_BUILD/netdisk" read "127.0.0.1:$port" 0 \
			"$SECTORS" -o /dev/null --dgram 65024 --mac 02:00:00:00:be:02 || break; done ) &
		reader=$!
		"$BENCH_BUILD/netdisk" image --control "$BENCH_TMP/state/control" merge gold \
			>"$BENCH_TMP/merge.out" 2>/dev/null
		touch "$BENCH_TMP/stop"
		wait "$reader" 2>/dev/null
		awk '/^done:/ { print "RESULT versions merge-MBps while-reading", $2, "MB/s higher" }' \
			"$BENCH_TMP/merge.out"
		measure chain-20-merged || exit 1
	fi
	kill "$pid"; wait "$pid" 2>/dev/null
done
