#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Lock contention: UDP 4 KiB random-read latency (netdisk bench, one read due every
# millisecond, latency counted from when it was due) while one NBD client
# loops 32 MiB WRITE + FLUSH on another session of the same server, against the same
# reads with the server otherwise idle.  Goal: p99 under load <= 5 ms on loopback.
# The anchor: the same NBD load sent to a second netdiskd process, which shares
# no lock with the reader's server, so what it costs is the machine's (CPU,
# loopback, page cache), not the server's locking; the ratio of the two is
# what the server's locks add.
. "$(dirname "$0")/lib.sh"

make_image "$BENCH_TMP/contention.img" "${BENCH_IMAGE_MIB:-256}"
port=$(free_port)
# The reader and the server's UDP thread (its main thread) run at a real-time
# priority when they can (root), so that other load on a shared machine does not
# drown what the server's locks do in scheduling delays.  The NBD writer and the
# server's NBD threads keep the normal priority: the main thread is made
# real-time only while no NBD connection is being accepted (threads inherit it).
rt=()
chrt -f 10 true 2>/dev/null && rt=(chrt -f 10)
"$BENCH_BUILD/netdiskd" --listen "127.0.0.1:$port" --nbd-exports images --state-dir "$BENCH_TMP/state" \
	"img=$BENCH_TMP/contention.img" 2>"$BENCH_TMP/server.log" &
server=$!
BENCH_PIDS+=("$server")
wait_port "$port" || { echo "netdiskd did not start" >&2; exit 1; }
port2=$(free_port)
"$BENCH_BUILD/netdiskd" --listen "127.0.0.1:$port2" --nbd-exports images --state-dir "$BENCH_TMP/state2" \
	"img=$BENCH_TMP/contention.img" 2>"$BENCH_TMP/server2.log" &
BENCH_PIDS+=("$!")
wait_port "$port2" || { echo "second netdiskd did not start" >&2; exit 1; }
secs=${BENCH_SECONDS:-5}

# p99 and max of the random pass: "... p99 X ms  max Y ms".
read_latency() {
	cat "$BENCH_TMP/contention.img" >/dev/null # reads from the page cache: measure locks, not the disk
	"${rt[@]}" "$BENCH_BUILD/netdisk" bench "127.0.0.1:$port" --seconds "$secs" --size 4k --pace 1000 | tee "$BENCH_TMP/out" >&2
	awk '/^random/ { for (i = 1; i < NF; i++) if ($i == "p99") p = $(i + 1); else if ($i == "max") m = $(i + 1) }
	     END { print p, m }' "$BENCH_TMP/out"
}

# realtime on|off: the server's main thread's priority (only with rt).
realtime() {
	[ ${#rt[@]} -gt 0 ] || return 0
	if [ "$1" = on ]; then chrt -f -p 10 "$server"; else chrt -o -p 0 "$server"; fi
}

# under_load SUBJECT PORT: the reader's p99 while the NBD loop writes to PORT.
under_load() {
	python3 "$(dirname "$0")/nbd-write-loop.py" "$2" img "$((2 * secs + 4))" >"$BENCH_TMP/load" 2>&1 &
	load=$!
	sleep 1
	realtime on
	read -r p99 max < <(read_latency)
	realtime off
	wait "$load" || { echo "NBD write loop failed: $(cat "$BENCH_TMP/load")" >&2; exit 1; }
	echo "NBD load on $1: $(cat "$BENCH_TMP/load") of 32 MiB WRITE + FLUSH; read max $max ms" >&2
	result contention udp-read-p99-under-nbd-write-flush-ms "$1" "$p99" ms lower
}

for round in $(seq "$BENCH_ROUNDS"); do
	realtime on
	read -r p99 max < <(read_latency)
	result contention udp-read-p99-idle-ms netdisk "$p99" ms lower
	realtime off
	under_load netdisk "$port"
	under_load load-on-other-server "$port2"
done
