#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Multicast on a LAN of network namespaces (a bridge, veth pairs): 3 netdisk CLI clients read one image at once with multicast off (the unicast anchor), auto and always; server egress, every client's checksum, a flood of forged group datagrams, the group joined and left.
. "$(dirname "$0")/lib.sh"
requires netns cmd:python3 cmd:ip

make -s -C "$ND_TOP" BUILD="$ND_BUILD" "$ND_BUILD/netdiskd" "$ND_BUILD/netdisk" >"$ND_TMP/make.log" 2>&1 ||
	{ fail mcast-build "$(tail -n 5 "$ND_TMP/make.log" | tr '\n' ' ')"; exit 1; }

NET=10.214.$((RANDOM % 200 + 20))     # the /24 on the bridge
SRV=$NET.1
PORT=10809
GROUP=239.255.78.1
GPORT=10810
MB=${ND_MCAST_MB:-24}                 # image size
# ND_MCAST_SERVER: another netdiskd build (build/asan/netdiskd) to run
NS=ndmc-$$-$RANDOM                    # namespaces: $NS-s (bridge, server), $NS-1.. (clients)
CLIENTS="1 2 3"

mc_down() {
	local ns
	for ns in $(ip netns list 2>/dev/null | awk '{ print $1 }' | grep "^$NS-"); do
		ip netns pids "$ns" 2>/dev/null | xargs -r kill -9 2>/dev/null
		ip netns del "$ns" 2>/dev/null
	done
}
# Namespaces left by a run that was SIGKILLed (named after a PID gone).
for ns in $(ip netns list 2>/dev/null | awk '{ print $1 }' | grep '^ndmc-'); do
	pid=${ns#ndmc-}
	pid=${pid%%-*}
	kill -0 "$pid" 2>/dev/null || { ip netns pids "$ns" | xargs -r kill -9; ip netns del "$ns"; }
done 2>/dev/null
trap 'mc_down; nd_cleanup' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# (Background processes to be killed are started with ip netns exec itself,
# which execs them: $! is then their PID, not a subshell's.)
in_ns() { local ns=$1; shift; ip netns exec "$NS-$ns" "$@"; }
# client_ip K: client K's address (the forger f: .20).
client_ip() { if [ "$1" = f ]; then echo "$NET.20"; else echo "$NET.$((10 + $1))"; fi; }

# The LAN: the server's namespace holds the bridge; every client (and the
# forger, f) has a namespace of its own on a veth pair whose other end is a
# port of the bridge.
lan_up() {
	local k
	ip netns add "$NS-s" && in_ns s ip link set lo up &&
		in_ns s ip link add br0 type bridge stp_state 0 forward_delay 0 &&
		in_ns s ip addr add "$SRV/24" dev br0 && in_ns s ip link set br0 up || return 1
	for k in $CLIENTS f; do
		ip netns add "$NS-$k" && in_ns "$k" ip link set lo up &&
			ip link add "ndmc$$$k" type veth peer name "p$k" &&
			ip link set "ndmc$$$k" netns "$NS-$k" && ip link set "p$k" netns "$NS-s" &&
			in_ns s ip link set "p$k" master br0 && in_ns s ip link set "p$k" up &&
			in_ns "$k" ip link set "ndmc$$$k" name eth0 &&
			in_ns "$k" ip addr add "$(client_ip "$k")/24" dev eth0 &&
			in_ns "$k" ip link set eth0 up || return 1
	done
}

if ! lan_up >"$ND_TMP/lan.log" 2>&1; then
	fail mcast-lan "$(tail -n 3 "$ND_TMP/lan.log" | tr '\n' ' ')"
	exit 1
fi
# Wait for every port to forward (no STP, but the links come up one by one).
ports_forward() { [ "$(in_ns s bridge link | grep -c 'state forwarding')" = 4 ]; }
wait_for 10 ports_forward || { fail mcast-lan "bridge ports not forwarding: $(in_ns s bridge link)"; exit 1; }

head -c "${MB}M" /dev/urandom >"$ND_TMP/disk.img"
SECTORS=$((MB * 2048))
SUM=$(sha256sum <"$ND_TMP/disk.img" | cut -d' ' -f1)

# serve MODE [EXTRA-KEY-LINES]: netdiskd on the bridge with multicast = MODE.
serve() {
	printf 'multicast = %s\nmulticast-group = %s\nmulticast-port = %s\n%s\n' "$1" "$GROUP" "$GPORT" "${2:-}" \
		>"$ND_TMP/mc.conf"
	: >"$ND_TMP/server.log"
	ip netns exec "$NS-s" "${ND_MCAST_SERVER:-$ND_BUILD/netdiskd}" --config "$ND_TMP/mc.conf" --listen "$SRV:$PORT" \
		"disk=$ND_TMP/disk.img" >"$ND_TMP/server.log" 2>&1 &
	SERVER=$!
	ND_PIDS+=("$SERVER")
	wait_for 10 grep -q 'listening on' "$ND_TMP/server.log"
}

# unserve: stop the server; its exit line's counters in U (unicast bytes),
# M (multicast bytes), R (repairs), C (READs over multicast-rate).
unserve() {
	kill "$SERVER" 2>/dev/null
	wait "$SERVER" 2>/dev/null
	local line
	line=$(grep 'stopping:' "$ND_TMP/server.log")
	U=$(grep -o 'unicast_bytes=[0-9]*' <<<"$line" | cut -d= -f2)
	M=$(grep -o 'multicast_bytes=[0-9]*' <<<"$line" | cut -d= -f2)
	R=$(grep -o 'repairs=[0-9]*' <<<"$line" | cut -d= -f2)
	C=$(grep -o 'multicast_capped=[0-9]*' <<<"$line" | cut -d= -f2)
	[ -n "$U" ] && [ -n "$M" ]
}

# readers N-LIST: every client of the list reads the whole image at the same
# time (--multicast); outputs $ND_TMP/out-K, stderr $ND_TMP/err-K.
readers() {
	local k pids=()
	for k in "$@"; do
		in_ns "$k" "$ND_BUILD/netdisk" read "$SRV:$PORT" 0 "$SECTORS" -o "$ND_TMP/out-$k" --multicast \
			--mac "52:54:00:6d:00:0$k" --timeout 20 2>"$ND_TMP/err-$k" &
		pids+=($!)
	done
	local rc=0
	for k in "${pids[@]}"; do wait "$k" || rc=1; done
	return $rc
}

# sums_ok K...: every client's output is the image.
sums_ok() {
	local k
	for k in "$@"; do
		[ "$(sha256sum <"$ND_TMP/out-$k" | cut -d' ' -f1)" = "$SUM" ] ||
			{ echo "client $k read other data: $(tail -n 2 "$ND_TMP/err-$k")"; return 1; }
	done
}

# The anchor: multicast off, one client, then three.
serve off || { fail mcast-server "$(tail -n 3 "$ND_TMP/server.log")"; exit 1; }
readers 1 && sums_ok 1
unserve
ONE=$((U + M))
check "mcast: one client alone reads the image ($ONE bytes of egress, multicast off)" test "$ONE" -gt $((SECTORS * 512))
serve off
t0=$(date +%s.%N)
readers $CLIENTS
rc=$?
off_s=$(echo "$(date +%s.%N) - $t0" | bc)
unserve
off3() {
	[ $rc = 0 ] || { echo "a reader failed: $(cat "$ND_TMP"/err-*)"; return 1; }
	sums_ok $CLIENTS || return 1
	[ "$M" = 0 ] || { echo "multicast=off sent $M multicast bytes"; return 1; }
	[ "$U" -ge $((ONE * 29 / 10)) ] || { echo "3 unicast clients cost $U bytes, one $ONE"; return 1; }
	! grep -q 'multicast join' "$ND_TMP/server.log" || { echo "a client joined with multicast off"; return 1; }
}
check "mcast: off, 3 clients: each its own unicast copy ($U bytes = $(echo "scale=2; $U / $ONE" | bc) x one client, ${off_s}s)" off3

# auto and always: the group carries what several clients want.  The rate
# cap is lifted here (it has its own check below): at the default 400 Mbit/s
# an unloaded machine's readers outrun it, and capped READs go by unicast.
for mode in auto always; do
	serve "$mode" "multicast-rate = 100000"
	t0=$(date +%s.%N)
	readers $CLIENTS
	rc=$?
	secs=$(echo "$(date +%s.%N) - $t0" | bc)
	sleep 0.2
	for k in $CLIENTS; do cp "$ND_TMP/err-$k" "$ND_TMP/err-$mode-$k"; done
	unserve
	cp "$ND_TMP/server.log" "$ND_TMP/server-$mode.log"
	storm() {
		[ $rc = 0 ] || { echo "a reader failed: $(cat "$ND_TMP"/err-*)"; return 1; }
		sums_ok $CLIENTS || return 1
		[ "$M" -gt 0 ] || { echo "no multicast bytes"; return 1; }
		[ "$C" = 0 ] || { echo "$C READs over the lifted rate cap"; return 1; }
		[ $((U + M)) -lt $((3 * ONE)) ] || { echo "egress $((U + M)) not below 3 x $ONE"; return 1; }
		# always: every READ of a member goes to the group, so unicast is
		# only repairs: less than one client's copy.  (How often a block
		# goes to the group twice depends on how far apart the readers
		# run: bench/storm.sh measures that, this test does not assert it.)
		[ "$mode" = auto ] || [ "$U" -lt "$ONE" ] ||
			{ echo "always: unicast $U not below one client's $ONE"; return 1; }
		[ "$(grep -c 'multicast join: mac=52:54:00:6d:00:0' "$ND_TMP/server.log")" = 3 ] ||
			{ echo "not 3 joins logged: $(grep multicast "$ND_TMP/server.log")"; return 1; }
		grep -q "group_disk=$GROUP:$GPORT,clients=0,peak=3" "$ND_TMP/server.log" ||
			{ echo "exit line: $(grep stopping: "$ND_TMP/server.log")"; return 1; }
		for k in $CLIENTS; do
			grep -q "joined multicast group $GROUP:$GPORT" "$ND_TMP/err-$k" ||
				{ echo "client $k did not join: $(cat "$ND_TMP/err-$k")"; return 1; }
		done
	}
	check "mcast: $mode, 3 clients: data right, egress $((U + M)) bytes = $(echo "scale=2; ($U + $M) / $ONE" | bc) x one client (multicast $M, unicast $U, $R repairs, $C capped, ${secs}s)" storm
done

# Joined while reading, left at the end: the kernel's group table says so.
left_group() {
	in_ns 1 "$ND_BUILD/netdisk" read "$SRV:$PORT" 0 "$SECTORS" -o /dev/null --multicast \
		--mac 52:54:00:6d:00:01 --timeout 20 2>"$ND_TMP/err-leave" &
	local pid=$! seen=0
	for _ in $(seq 50); do
		in_ns 1 ip maddr show dev eth0 | grep -q "$GROUP" && { seen=1; break; }
		sleep 0.02
	done
	wait $pid || { echo "read failed: $(cat "$ND_TMP/err-leave")"; return 1; }
	[ $seen = 1 ] || { echo "never saw $GROUP joined on eth0"; return 1; }
	! in_ns 1 ip maddr show dev eth0 | grep -q "$GROUP" || { echo "$GROUP still joined after exit"; return 1; }
}
serve always
check "mcast: the CLI joins the group (IP_ADD_MEMBERSHIP) while reading and leaves it when done" left_group

# A flood of forged group datagrams, from the server's own address and port
# (raw IPv4) and from the forger's: the clients read right data and count them.
flood() {
	local k
	rm -f "$ND_TMP/forge.ready"
	ip netns exec "$NS-f" python3 "$ND_TOP/tests/mcast-forge.py" "$(client_ip f)" "$GROUP" "$GPORT" "$SRV" "$PORT" \
		"$ND_TMP/forge.ready" 6000 2>"$ND_TMP/forge.log" &
	FORGER=$!
	ND_PIDS+=("$FORGER")
	# Past the hold-back (multicast-resend, 500 ms) of the blocks the check
	# before read on this server: within it they are not sent to the group
	# again, a new session gets them by repair, and the forger sees nothing.
	sleep 1
	readers 1 >/dev/null 2>&1 # teaches the forger the stream id
	wait_for 10 test -s "$ND_TMP/forge.ready" || { echo "forger learnt nothing: $(cat "$ND_TMP/forge.log")"; return 1; }
	sleep 0.5
	readers $CLIENTS || { echo "a reader failed under the flood: $(cat "$ND_TMP"/err-*)"; return 1; }
	kill "$FORGER"
	wait "$FORGER" 2>/dev/null
	sums_ok $CLIENTS || return 1
	for k in $CLIENTS; do
		grep -Eq 'dropped [1-9][0-9]* malformed, [1-9][0-9]* of another stream, [1-9][0-9]* out of range, [1-9][0-9]* not from the server' \
			"$ND_TMP/err-$k" || { echo "client $k: $(grep multicast: "$ND_TMP/err-$k") (forger: $(cat "$ND_TMP/forge.log"))"; return 1; }
	done
	grep 'multicast:' "$ND_TMP/err-1" | sed 's/^/# /' >&2
}
check "mcast: a flood of forged group datagrams: dropped and counted by every client, data right" flood
unserve

# The rate cap: with multicast-rate 1 Mbit/s the group gets at most the
# burst, the rest goes by unicast, and nothing is lost.
capped() {
	serve always "multicast-rate = 1"
	readers $CLIENTS || { echo "a reader failed: $(cat "$ND_TMP"/err-*)"; return 1; }
	unserve
	sums_ok $CLIENTS || return 1
	local capped
	capped=$(grep -o 'multicast_capped=[0-9]*' "$ND_TMP/server.log" | cut -d= -f2)
	[ "$capped" -gt 0 ] && [ "$M" -lt $((SECTORS * 512 / 4)) ] ||
		{ echo "multicast $M bytes, $capped READs over the cap"; return 1; }
}
check "mcast: multicast-rate caps the group; the rest goes by unicast" capped

# Image versions share the image's group address but not its stream: a
# tester reading the test version and two clients reading production, all at
# once with multicast = always, each get their own version's bytes.
versions() {
	mkdir -p "$ND_TMP/state"
	serve always "$(printf 'state-dir = %s\n[client 52:54:00:6d:00:01]\ntester = yes\n[client 52:54:00:6d:00:09]\nmode = direct' "$ND_TMP/state")" ||
		{ echo "server: $(tail -n 3 "$ND_TMP/server.log")"; return 1; }
	local img=("$ND_BUILD/netdisk" image --control "$ND_TMP/state/control")
	"${img[@]}" new-version disk --note "mcast test" >"$ND_TMP/v.log" 2>&1 || { cat "$ND_TMP/v.log"; return 1; }
	head -c 4M /dev/urandom >"$ND_TMP/patch"
	in_ns 1 "$ND_BUILD/netdisk" write "$SRV:$PORT" 0 -i "$ND_TMP/patch" --mac 52:54:00:6d:00:09 \
		--key "$ND_TMP/state/admin.key" --timeout 20 >"$ND_TMP/w.log" 2>&1 || { echo "maintenance write: $(cat "$ND_TMP/w.log")"; return 1; }
	"${img[@]}" promote disk 2 --to test >>"$ND_TMP/v.log" 2>&1 || { cat "$ND_TMP/v.log"; return 1; }
	readers $CLIENTS || { echo "a reader failed: $(cat "$ND_TMP"/err-*)"; return 1; }
	unserve
	[ "$M" -gt 0 ] || { echo "no multicast bytes"; return 1; }
	sums_ok 2 3 || return 1
	cp "$ND_TMP/disk.img" "$ND_TMP/v2.img"
	dd if="$ND_TMP/patch" of="$ND_TMP/v2.img" conv=notrunc status=none
	cmp -s "$ND_TMP/out-1" "$ND_TMP/v2.img" ||
		{ echo "the tester read other data than version 2: $(cmp "$ND_TMP/out-1" "$ND_TMP/v2.img")"; return 1; }
}
check "mcast: versions of one image share its group, never its stream: a tester (test version) and two production clients read at once, each its own version" versions
