#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Personalization layers (issue #18): milliseconds and bytes to build one
# client's layer (hostname, /etc/hosts, machine-id, two SSH host keys made
# with ssh-keygen, a file template) on an ext4 image, the cost of reusing a
# cached layer, and 100 clients attaching at once (an attach storm from one
# address: the ATTACH rate limit, 10 a second in bursts of 40, paces them);
# each unlisted (keys from the pool made ahead, persona-key-pool, or made at
# the first attach) and listed in [client] sections (keys made ahead in the
# background at start); and how long another client's attach and 1 MiB read
# of an unpersonalized image take while the 100 unlisted clients' layers are
# being built (builds in the main loop delayed it by their sum).
# Goal: < 50 ms and < 64 KiB a client.
# Before/after: BUILD=DIR picks the netdiskd and netdisk to measure.
. "$(dirname "$0")/lib.sh"
for tool in mke2fs sfdisk ssh-keygen; do
	command -v "$tool" >/dev/null || { echo "bench persona: needs $tool" >&2; exit 0; }
done
CLIENTS=${BENCH_PERSONA_CLIENTS:-100}
[ -n "${BENCH_SMOKE:-}" ] && CLIENTS=10

# A 256 MiB disk: an MBR with one ext4 partition at 1 MiB holding /etc, /etc/ssh.
root=$BENCH_TMP/root
mkdir -p "$root/etc/ssh" "$root/usr/bin"
echo golden >"$root/etc/hostname"
head -c 8M /dev/urandom >"$root/usr/bin/payload"
mke2fs -q -F -t ext4 -L ndroot -d "$root" "$BENCH_TMP/part.img" 255M >/dev/null
truncate -s 256M "$BENCH_TMP/gold.img"
printf 'label: dos\nstart=2048, type=83\n' | sfdisk --quiet "$BENCH_TMP/gold.img"
dd if="$BENCH_TMP/part.img" of="$BENCH_TMP/gold.img" bs=1M seek=1 conv=notrunc,sparse status=none
cp --sparse=always "$BENCH_TMP/gold.img" "$BENCH_TMP/plain.img"

start() { # start [LISTED]: the first LISTED clients get [client] sections
	local i
	rm -rf "$BENCH_TMP/state"
	port=$(free_port)
	cat >"$BENCH_TMP/nd.conf" <<CONF
state-dir = $BENCH_TMP/state
max-sessions = 4096
[image gold]
path = $BENCH_TMP/gold.img
hostname = {image}-{index}
file /etc/motd = Welcome to {hostname} ({mac})\n
[image plain]
path = $BENCH_TMP/plain.img
mode = readonly
CONF
	for i in $(seq "${1:-0}"); do printf '[client %s]\n' "$(mac "$i")"; done >>"$BENCH_TMP/nd.conf"
	"$BENCH_BUILD/netdiskd" --listen "127.0.0.1:$port" --config "$BENCH_TMP/nd.conf" \
		2>"$BENCH_TMP/server.log" &
	pid=$!
	BENCH_PIDS+=($pid)
	for _ in $(seq 50); do grep -q 'listening on' "$BENCH_TMP/server.log" && break; sleep 0.1; done
}
stop() { kill "$pid"; wait "$pid" 2>/dev/null; }
# keys_ahead: until the server says it made the listed clients' keys (120 s at most).
keys_ahead() { for _ in $(seq 1200); do grep -q 'persona keys made ahead' "$BENCH_TMP/server.log" && break; sleep 0.1; done; }
# pool_ready: until the unlisted clients' key pool is full (a server without one: at once).
pool_ready() {
	grep -q 'persona key pool' "$BENCH_BUILD/netdiskd" || return 0
	for _ in $(seq 600); do grep -q 'persona key pool: .* ready' "$BENCH_TMP/server.log" && break; sleep 0.1; done
}
mac() { printf '52:54:00:be:%02x:%02x' $(($1 / 256)) $(($1 % 256)); }
info() { "$BENCH_BUILD/netdisk" info "127.0.0.1:$port" --mac "$(mac "$1")" >/dev/null 2>&1; }
# field WHAT KEY: KEY's values from the server's "persona WHAT" lines.
field() { grep "persona $1 " "$BENCH_TMP/server.log" | grep -o " $2=[0-9.]*" | cut -d= -f2; }
median() { sort -n | awk '{a[NR]=$1} END {if (NR) print a[int((NR+1)/2)]; else print "nan"}'; }
maxof() { sort -n | tail -n 1; }

for round in $(seq "$BENCH_ROUNDS"); do
	start
	pool_ready
	info 1 && info 1 # built, then reused
	result persona build-ms one-client "$(field built ms | head -n 1)" ms lower
	result persona layer-bytes one-client "$(field built bytes | head -n 1)" bytes lower
	result persona reuse-ms one-client "$(field reused ms | head -n 1)" ms lower
	# The same without the SSH keys' first generation (kept in the state dir).
	rm -rf "$BENCH_TMP/state/persona/gold"
	info 1
	result persona build-ms one-client-keys-kept "$(field built ms | sed -n 2p)" ms lower
	stop

	start
	pool_ready
	# Another client, attached to an image nobody personalizes, reads a 4 KiB
	# block every 2 ms throughout (latency counted from when each was due, so
	# a stalled main loop shows in p99 and max).
	"$BENCH_BUILD/netdisk" bench "127.0.0.1:$port" --image plain --mac 52:54:00:bf:00:01 \
		--size 4k --seconds 4 --pace 2000 >"$BENCH_TMP/other.out" 2>&1 &
	other=$!
	sleep 0.3
	t0=$(date +%s.%N)
	for i in $(seq 2 $((CLIENTS + 1))); do info "$i" & done
	wait $(jobs -p | grep -v "^$pid\$" | grep -v "^$other\$") 2>/dev/null
	t1=$(date +%s.%N)
	wait "$other"
	line=$(grep '^sequential' "$BENCH_TMP/other.out")
	result persona other-client-p99-ms "4k-reads-during-$CLIENTS-attaches" \
		"$(sed -n 's/.* p99 \([0-9.]*\) ms.*/\1/p' <<<"$line")" ms lower
	result persona other-client-max-ms "4k-reads-during-$CLIENTS-attaches" \
		"$(sed -n 's/.* max \([0-9.]*\) ms.*/\1/p' <<<"$line")" ms lower
	built=$(field built ms | wc -l)
	result persona build-ms "median-of-$CLIENTS" "$(field built ms | median)" ms lower
	result persona build-ms "max-of-$CLIENTS" "$(field built ms | maxof)" ms lower
	result persona layer-bytes "max-of-$CLIENTS" "$(field built bytes | maxof)" bytes lower
	result persona storm-seconds "$CLIENTS-clients-$built-built" \
		"$(python3 -c "print('%.2f' % ($t1 - $t0))")" s lower
	stop

	# Listed clients: their keys are made in the background at start.
	start $((CLIENTS + 1))
	keys_ahead
	info 1
	result persona build-ms one-client-listed "$(field built ms | head -n 1)" ms lower
	for i in $(seq 2 $((CLIENTS + 1))); do info "$i" & done
	wait $(jobs -p | grep -v "^$pid\$") 2>/dev/null
	result persona build-ms "median-of-$CLIENTS-listed" "$(field built ms | median)" ms lower
	result persona build-ms "max-of-$CLIENTS-listed" "$(field built ms | maxof)" ms lower
	result persona keys-ahead-ms "$CLIENTS-listed" \
		"$(grep -o 'persona keys made ahead .* in [0-9]* ms' "$BENCH_TMP/server.log" | grep -o '[0-9]* ms' | cut -d' ' -f1)" ms lower
	stop
done
