# SPDX-License-Identifier: GPL-2.0-or-later
# The storm simulator's LAN, shared by tests/t-storm.sh and bench/storm.sh: a server namespace with a bridge and netdiskd, a client namespace on a veth port where `netdisk storm` runs its N clients; removed by storm_lan_down (callers trap EXIT).
# Set before sourcing: STORM_BUILD (build dir).  Namespaces are ndst-PID-RANDOM-{s,c}.

STORM_NET=10.215.$((RANDOM % 200 + 20))
STORM_SRV=$STORM_NET.1
STORM_PORT=10809
STORM_GROUP=239.255.78.2
STORM_GPORT=10810
STORM_NS=ndst-$$-$RANDOM
STORM_SERVER_PID=

storm_lan_down() {
	local ns
	[ -n "$STORM_SERVER_PID" ] && kill "$STORM_SERVER_PID" 2>/dev/null
	for ns in "$STORM_NS-c" "$STORM_NS-s"; do
		ip netns pids "$ns" 2>/dev/null | xargs -r kill -9 2>/dev/null
		ip netns del "$ns" 2>/dev/null
	done
	return 0
}

# Namespaces left by a run that was SIGKILLed (named after a PID gone).
storm_reap_stale() {
	local ns pid
	for ns in $(ip netns list 2>/dev/null | awk '{ print $1 }' | grep '^ndst-'); do
		pid=${ns#ndst-}
		pid=${pid%%-*}
		kill -0 "$pid" 2>/dev/null || { ip netns pids "$ns" | xargs -r kill -9; ip netns del "$ns"; }
	done 2>/dev/null
	return 0
}

storm_in() { local ns=$1; shift; ip netns exec "$STORM_NS-$ns" "$@"; }

# storm_lan_up: the bridge (server side, $STORM_SRV) and the clients'
# namespace (eth0, $STORM_NET.10) on one of its ports.
storm_lan_up() {
	local veth=ndst$$c i
	ip netns add "$STORM_NS-s" && storm_in s ip link set lo up &&
		storm_in s ip link add br0 type bridge stp_state 0 forward_delay 0 &&
		storm_in s ip addr add "$STORM_SRV/24" dev br0 && storm_in s ip link set br0 up &&
		ip netns add "$STORM_NS-c" && storm_in c ip link set lo up &&
		ip link add "$veth" type veth peer name pc &&
		ip link set "$veth" netns "$STORM_NS-c" && ip link set pc netns "$STORM_NS-s" &&
		storm_in s ip link set pc master br0 && storm_in s ip link set pc up &&
		storm_in c ip link set "$veth" name eth0 &&
		storm_in c ip addr add "$STORM_NET.10/24" dev eth0 &&
		storm_in c ip link set eth0 up || return 1
	for i in $(seq 100); do
		storm_in s bridge link | grep -q 'state forwarding' && return 0
		sleep 0.1
	done
	return 1
}

# storm_serve MODE IMAGE LOG [KEY-LINES]: netdiskd on the bridge serving
# IMAGE as "demo" with multicast = MODE; its pid in STORM_SERVER_PID.
storm_serve() {
	printf 'multicast = %s\nmulticast-group = %s\nmulticast-port = %s\n%s\n' "$1" "$STORM_GROUP" \
		"$STORM_GPORT" "${4:-}" >"$3.conf"
	: >"$3"
	ip netns exec "$STORM_NS-s" "$STORM_BUILD/netdiskd" --config "$3.conf" \
		--listen "$STORM_SRV:$STORM_PORT" "demo=$2" >"$3" 2>&1 &
	STORM_SERVER_PID=$!
	local i
	for i in $(seq 100); do
		grep -q 'listening on' "$3" && return 0
		kill -0 "$STORM_SERVER_PID" 2>/dev/null || return 1
		sleep 0.1
	done
	return 1
}

# storm_unserve LOG: stops the server; its exit line's counters in
# STORM_U (unicast bytes) and STORM_M (multicast bytes).
storm_unserve() {
	kill "$STORM_SERVER_PID" 2>/dev/null
	wait "$STORM_SERVER_PID" 2>/dev/null
	STORM_SERVER_PID=
	local line
	line=$(grep 'stopping:' "$1")
	STORM_U=$(grep -o 'unicast_bytes=[0-9]*' <<<"$line" | cut -d= -f2)
	STORM_M=$(grep -o 'multicast_bytes=[0-9]*' <<<"$line" | cut -d= -f2)
	[ -n "$STORM_U" ] && [ -n "$STORM_M" ]
}

# storm_run N on|off TRACE OUT [ARGS...]: netdisk storm with N clients in the
# client namespace; stdout in OUT, stderr in OUT.err.
storm_run() {
	local n=$1 mc=$2 trace=$3 out=$4 flag=
	shift 4
	[ "$mc" = on ] && flag=--multicast
	storm_in c timeout 300 "$STORM_BUILD/netdisk" storm "$STORM_SRV:$STORM_PORT" "$trace" --clients "$n" \
		$flag --timeout 30 "$@" >"$out" 2>"$out.err"
}

# storm_field FILE KEY: KEY's value on the summary line.
storm_field() { grep '^storm ' "$1" | grep -o "$2=[0-9.]*" | cut -d= -f2; }
