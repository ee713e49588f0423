#!/usr/bin/env bash
# The firmware stubs' own Ethernet/ARP/IPv4/UDP stack (client/ipstack.c) against the Linux kernel's, on a TAP device in a network namespace.
. "$(dirname "$0")/lib.sh"
requires netns

# The host's ndtest runs the client core on the stack; the kernel is the
# server's side of the wire: it answers and asks ARP, fragments the large
# datagrams netdiskd sends and reassembles the ones the stack fragments.
NS=nd-ipstack-$$
TAP=ndtap0
NET=10.77.0
BASE=$ND_TMP/base.img
head -c 32M /dev/urandom >"$BASE"

cleanup_ns() { ip netns del "$NS" 2>/dev/null; }
trap 'cleanup_ns; nd_cleanup' EXIT

if ! ip netns add "$NS" || ! ip -n "$NS" tuntap add dev "$TAP" mode tap ||
	! ip -n "$NS" addr add "$NET.1/24" dev "$TAP" || ! ip -n "$NS" link set "$TAP" up; then
	fail ipstack-namespace "could not create a network namespace with a TAP device (root needed)"
	exit 1
fi
ip netns exec "$NS" "$ND_BUILD/netdiskd" --listen "$NET.1:10809" "$BASE" >"$ND_TMP/server.log" 2>&1 &
ND_PIDS+=($!)
wait_for 10 grep -q 'listening on' "$ND_TMP/server.log" ||
	{ fail ipstack-server "$(cat "$ND_TMP/server.log")"; exit 1; }

# over NAME MAC [VAR=VALUE...] SCENARIO...: ndtest on the stack, checks renamed NAME-*.
over() {
	local name=$1 mac=$2
	shift 2
	ip netns exec "$NS" env NDTEST_TAP="$TAP,$NET.2" "$@" "$ND_BUILD/tests/ndtest" \
		"$NET.1:10809" "$BASE" rw "$mac" | sed "s/^\(PASS\|FAIL\) /\1 $name-/"
}

# One Ethernet frame per datagram, then datagrams of 16 KiB (12 fragments
# each way) and of 63 KiB (45 fragments: the largest the protocol has).
over frame 02:00:00:00:77:01
over frag16k 02:00:00:00:77:02 NDTEST_DGRAM=16432
over frag63k 02:00:00:00:77:03 NDTEST_DGRAM=64560

# The same with a device that sums the data as it copies it (the BIOS
# stub's virtio-net copy does): the kernel's checksums must still hold.
over frame-device-sums 02:00:00:00:77:08 NDTEST_TAP_SUMS=1
over frag16k-device-sums 02:00:00:00:77:09 NDTEST_DGRAM=16432 NDTEST_TAP_SUMS=1

# Lost, duplicated and late fragments: retransmissions, never wrong data.
over frame-faults 02:00:00:00:77:04 NDTEST_DGRAM=16432 NDTEST_TAP_FAULTS=3,3,10

# Lost, duplicated and reordered datagrams above the stack (ndtest's own
# fault layer), with 1472-byte and 9000-byte datagrams.  Meanwhile (it takes
# seconds) someone on the wire asks for the stack's address.
ip netns exec "$NS" python3 "$ND_TOP/tests/arp-probe.py" "$TAP" "$NET.2" "$NET.1" 20 \
	>"$ND_TMP/arp.out" &
probe=$!
ip netns exec "$NS" env NDTEST_TAP="$TAP,$NET.2" "$ND_BUILD/tests/ndtest" "$NET.1:10809" "$BASE" \
	faults 02:00:00:00:77:05 20 10 10 | sed 's/^\(PASS\|FAIL\) /\1 ipstack-/'
wait $probe
if [ "$(cat "$ND_TMP/arp.out")" = 02:00:00:00:77:05 ]; then
	pass ipstack-answers-arp
else
	fail ipstack-answers-arp "wanted 02:00:00:00:77:05, got '$(cat "$ND_TMP/arp.out")'"
fi

# Nobody answers ARP for the server: the stack says so instead of hanging.
if ip netns exec "$NS" env NDTEST_TAP="$TAP,$NET.2" timeout 30 "$ND_BUILD/tests/ndtest" \
	"$NET.9:10809" "$BASE" rw 02:00:00:00:77:06 2>"$ND_TMP/noarp.err" | grep -q 'FAIL rw-attach' &&
	grep -q 'no ARP answer' "$ND_TMP/noarp.err"; then
	pass ipstack-no-arp-answer
else
	fail ipstack-no-arp-answer "$(cat "$ND_TMP/noarp.err")"
fi
