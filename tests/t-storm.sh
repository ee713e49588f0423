#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# The storm simulator on a namespace LAN: `netdisk storm` replays the recorded demo boot trace as 8 clients with multicast on and --verify (forked, then --one-process: threads sharing one group socket); every client reads right data, the group carries bytes, and the server sends less than 8 unicast copies.
. "$(dirname "$0")/lib.sh"
requires netns cmd:ip

make -s -C "$ND_TOP" BUILD="$ND_BUILD" "$ND_BUILD/netdiskd" "$ND_BUILD/netdisk" >"$ND_TMP/make.log" 2>&1 ||
	{ fail storm-build "$(tail -n 5 "$ND_TMP/make.log" | tr '\n' ' ')"; exit 1; }
STORM_BUILD=$ND_BUILD
. "$ND_TOP/tests/storm-lib.sh"
storm_reap_stale
trap 'storm_lan_down; nd_cleanup' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
storm_lan_up >"$ND_TMP/lan.log" 2>&1 || { fail storm-lan "$(tail -n 3 "$ND_TMP/lan.log" | tr '\n' ' ')"; exit 1; }

# The first 2 s of the real boot (the stub's reads), replayed 2 x faster.
gzip -dc "$ND_TOP/bench/traces/demo-bios.trace.gz" | awk '/^#/ || $1 < 2000' >"$ND_TMP/storm.trace"
head -c 100M /dev/urandom >"$ND_TMP/disk.img"

one_client() {
	storm_serve off "$ND_TMP/disk.img" "$ND_TMP/server-1.log" || { echo "server: $(tail -n 3 "$ND_TMP/server-1.log")"; return 1; }
	storm_run 1 off "$ND_TMP/storm.trace" "$ND_TMP/out-1" --no-times --verify "$ND_TMP/disk.img" ||
		{ echo "storm failed: $(tail -n 3 "$ND_TMP/out-1" "$ND_TMP/out-1.err")"; return 1; }
	storm_unserve "$ND_TMP/server-1.log" || { echo "no exit line"; return 1; }
	echo $((STORM_U + STORM_M)) >"$ND_TMP/one"
	grep -q '^storm clients=1 multicast=off ok=1 failed=0 ' "$ND_TMP/out-1" || { echo "$(cat "$ND_TMP/out-1")"; return 1; }
}
check "storm: one client replays the trace (the anchor)" one_client

storm8() {
	local t0=$SECONDS ONE
	ONE=$(cat "$ND_TMP/one" 2>/dev/null) && [ -n "$ONE" ] || { echo "no anchor (one client's bytes)"; return 1; }
	storm_serve always "$ND_TMP/disk.img" "$ND_TMP/server-8.log" || { echo "server: $(tail -n 3 "$ND_TMP/server-8.log")"; return 1; }
	storm_run 8 on "$ND_TMP/storm.trace" "$ND_TMP/out-8" --speed 2 --verify "$ND_TMP/disk.img"
	local rc=$?
	storm_unserve "$ND_TMP/server-8.log" || { echo "no exit line"; return 1; }
	[ $rc = 0 ] || { echo "storm rc $rc: $(grep -v 'verify=ok' "$ND_TMP/out-8" | head -n 3) $(tail -n 2 "$ND_TMP/out-8.err")"; return 1; }
	[ "$(grep -c '^client .* group=joined verify=ok$' "$ND_TMP/out-8")" = 8 ] || { echo "not 8 clients joined with right data"; return 1; }
	grep -q '^storm clients=8 multicast=on ok=8 failed=0 ' "$ND_TMP/out-8" || { echo "summary: $(grep '^storm' "$ND_TMP/out-8")"; return 1; }
	[ "$(storm_field "$ND_TMP/out-8" multicast_bytes)" -gt 0 ] || { echo "no client took data from the group"; return 1; }
	[ "$STORM_M" -gt 0 ] || { echo "the server sent no multicast bytes"; return 1; }
	[ $((STORM_U + STORM_M)) -lt $((8 * ONE)) ] || { echo "egress $((STORM_U + STORM_M)) not below 8 x $ONE"; return 1; }
	echo "# 8 clients: egress $((STORM_U + STORM_M)) bytes = $(awk -v b=$((STORM_U + STORM_M)) -v o="$ONE" 'BEGIN { printf "%.2f", b / o }') x one client ($ONE), $((SECONDS - t0)) s; $(grep '^storm' "$ND_TMP/out-8")" >"$ND_TMP/figures"
}
check "storm: 8 clients, multicast on: all done, data right, multicast bytes > 0, egress < 8 x one client" storm8
cat "$ND_TMP/figures" 2>/dev/null

# The same as threads of one process sharing one group socket.
storm8_one() {
	local ONE
	ONE=$(cat "$ND_TMP/one" 2>/dev/null) && [ -n "$ONE" ] || { echo "no anchor (one client's bytes)"; return 1; }
	storm_serve always "$ND_TMP/disk.img" "$ND_TMP/server-8o.log" || { echo "server: $(tail -n 3 "$ND_TMP/server-8o.log")"; return 1; }
	storm_run 8 on "$ND_TMP/storm.trace" "$ND_TMP/out-8o" --speed 2 --verify "$ND_TMP/disk.img" --one-process
	local rc=$?
	storm_unserve "$ND_TMP/server-8o.log" || { echo "no exit line"; return 1; }
	[ $rc = 0 ] || { echo "storm rc $rc: $(grep -v 'verify=ok' "$ND_TMP/out-8o" | head -n 3) $(tail -n 2 "$ND_TMP/out-8o.err")"; return 1; }
	grep -q '^netdisk storm: one group socket for every client' "$ND_TMP/out-8o.err" || { echo "not one shared group socket"; return 1; }
	[ "$(grep -c '^client .* group=joined verify=ok$' "$ND_TMP/out-8o")" = 8 ] || { echo "not 8 clients joined with right data"; return 1; }
	[ "$(storm_field "$ND_TMP/out-8o" multicast_bytes)" -gt 0 ] || { echo "no client took data from the group"; return 1; }
	[ $((STORM_U + STORM_M)) -lt $((8 * ONE)) ] || { echo "egress $((STORM_U + STORM_M)) not below 8 x $ONE"; return 1; }
	echo "# 8 clients, one process: egress $(awk -v b=$((STORM_U + STORM_M)) -v o="$ONE" 'BEGIN { printf "%.2f", b / o }') x one client; $(grep '^storm' "$ND_TMP/out-8o")" >"$ND_TMP/figures-o"
}
check "storm --one-process: 8 client threads on one group socket: data right, group used, egress < 8 x one client" storm8_one
cat "$ND_TMP/figures-o" 2>/dev/null
