# SPDX-License-Identifier: GPL-2.0-or-later
# The LAN lab: a network namespace with a bridge, dnsmasq (DHCP+TFTP), netdiskd and QEMU VMs on tap ports, all removed on exit.
# Source it (tests/t-lab.sh, qemu-scripts/lab); nothing happens until lab_up is called.
#
#   lab_up DIR            namespace ndlab-PID-RANDOM, bridge br0 at $LAB_ADDR/24,
#                         traps that tear everything down on EXIT, INT, TERM, HUP
#   lab_tftp              TFTP root $LAB_DIR/tftp with netdisk.pxe and netdisk.efi
#   lab_dnsmasq           DHCP + TFTP on br0; option 93 (client architecture)
#                         7 or 9 gets netdisk.efi, anything else netdisk.pxe;
#                         next-server is $LAB_ADDR, where netdiskd listens
#   lab_netdiskd ARGS     netdiskd on $LAB_ADDR:$LAB_PORT, log $LAB_DIR/server.log
#   lab_netdiskd_stop     stops it; the counters of its exit line in LAB_*
#   lab_vm NAME FW MAC    a QEMU VM (bios|uefi) on tap port tapK of br0, console
#                         in $LAB_DIR/NAME.log (and socket $LAB_DIR/NAME.con);
#                         LAB_NIC_OPTS adds NIC properties (romfile= : OVMF's
#                         own PXE instead of iPXE's ROM)
#   lab_impair SPEC       impairment for the ports of VMs started from now on
#                         (and, live, for running impaired ports): see lab-port
#   lab_vm_wait NAME SECS / lab_vm_alive NAME / lab_vm_kill NAME
#   lab_down              everything above, in reverse order (the traps call it)
#
# Everything the lab starts runs inside its namespace, so lab_down can also
# kill whatever is left there (`ip netns pids`), and deleting the namespace
# removes the taps and the bridge with it.  Every wait has a time limit and
# every VM runs under `timeout $LAB_VM_TIMEOUT`.  Namespaces of labs whose
# shell was SIGKILLed (named after a PID that no longer exists) are swept by
# the next lab_up.
#
# Impairment: this machine's kernel has no sch_netem (nor tbf or tc
# classifiers), so tc cannot shape a tap.  A port started while LAB_IMPAIR is
# set is instead owned by qemu-scripts/lab-port, a relay between the tap and
# QEMU (a unix datagram netdev) that drops, duplicates, delays and reorders
# frames in both directions; without LAB_IMPAIR QEMU opens the tap itself.

LAB_HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
LAB_TOP=$(cd "$LAB_HERE/.." && pwd)
LAB_BUILD=${LAB_BUILD:-${ND_BUILD:-$LAB_TOP/build}}
. "$LAB_HERE/common.sh"

LAB_NET=${LAB_NET:-10.213.0}          # the /24 inside the namespace
LAB_ADDR=$LAB_NET.1                   # bridge, dnsmasq, netdiskd
LAB_PORT=${LAB_PORT:-10809}           # the stubs' default port
LAB_VM_TIMEOUT=${LAB_VM_TIMEOUT:-600} # seconds any VM may live
LAB_MEMORY=${LAB_MEMORY:-512}
LAB_IMPAIR=${LAB_IMPAIR:-}
LAB_NS=
LAB_DIR=
LAB_TAPS=0
LAB_SERVER_PID=
LAB_DNSMASQ_PID=
declare -A LAB_VM_PID=() LAB_VM_TAP=() LAB_PORT_PID=()
LAB_PREV_EXIT=

lab_log() { echo "lab: $*" >&2; }

# lab_in CMD...: CMD inside the lab's namespace.  Background processes
# whose PID the lab keeps (dnsmasq, netdiskd, lab-port, QEMU) are started
# with `ip netns exec` itself instead: it execs CMD, so $! is CMD's PID and
# lab_stop_pid stops CMD, not a subshell that leaves CMD running.
lab_in() { ip netns exec "$LAB_NS" "$@"; }

# lab_sweep: removes namespaces left by labs whose shell no longer exists
# (SIGKILL leaves no chance to clean up): their processes, then the namespace.
lab_sweep() {
	local ns pid
	for ns in $(ip netns list 2>/dev/null | awk '{ print $1 }'); do
		[[ $ns =~ ^ndlab-([0-9]+)-[0-9]+$ ]] || continue
		pid=${BASH_REMATCH[1]}
		kill -0 "$pid" 2>/dev/null && continue
		lab_log "removing $ns, left behind by process $pid"
		ip netns pids "$ns" 2>/dev/null | xargs -r kill -9 2>/dev/null
		ip netns del "$ns" 2>/dev/null
	done
}

# lab_up DIR: the namespace and its bridge; DIR (created) holds every file
# of the lab.  Installs the traps: the previous EXIT trap still runs, after
# lab_down.
lab_up() {
	LAB_DIR=$1
	mkdir -p "$LAB_DIR" || return 1
	lab_sweep
	LAB_NS=ndlab-$$-$RANDOM
	local prev
	prev=$(trap -p EXIT)
	if [ -n "$prev" ]; then
		eval "set -- $prev"
		LAB_PREV_EXIT=$3
	fi
	trap lab_on_exit EXIT
	trap 'exit 130' INT
	trap 'exit 143' TERM
	trap 'exit 129' HUP
	ip netns add "$LAB_NS" || { lab_log "ip netns add $LAB_NS failed"; LAB_NS=; return 1; }
	# Unix datagram queues (QEMU's side of an impaired port) hold 10 frames
	# by default: too few for a burst of reply fragments.
	lab_in sysctl -qw net.unix.max_dgram_qlen=512 2>/dev/null
	lab_in ip link set lo up &&
		lab_in ip link add br0 type bridge stp_state 0 forward_delay 0 &&
		lab_in ip addr add "$LAB_ADDR/24" dev br0 &&
		lab_in ip link set br0 up || { lab_log "bridge br0 in $LAB_NS failed"; return 1; }
}

lab_on_exit() {
	lab_down
	[ -z "$LAB_PREV_EXIT" ] || eval "$LAB_PREV_EXIT"
}

# lab_tftp: the TFTP root with both stubs as built (the caller may patch
# them: `netdisk patch $LAB_DIR/tftp/netdisk.efi ...`).
lab_tftp() {
	mkdir -p "$LAB_DIR/tftp" &&
		cp "$LAB_BUILD/netdisk.pxe" "$LAB_BUILD/netdisk.efi" "$LAB_DIR/tftp/"
}

# lab_dnsmasq [EXTRA-ARGS...]: DHCP and TFTP on br0, log $LAB_DIR/dnsmasq.log.
# PXE clients say their architecture in option 93: 7 (x86-64 UEFI, what OVMF
# and iPXE's EFI ROM send) and 9 (x86-64 in RFC 4578's original table) get
# netdisk.efi, every other client
# (0, x86 BIOS) netdisk.pxe.  The third field of dhcp-boot is the
# next-server (siaddr) the stubs send their requests to.
lab_dnsmasq() {
	: >"$LAB_DIR/dnsmasq.log"
	ip netns exec "$LAB_NS" dnsmasq --no-daemon --conf-file=/dev/null --port=0 --user=root --group=root \
		--interface=br0 --bind-interfaces --except-interface=lo \
		--dhcp-range="$LAB_NET.100,$LAB_NET.199,255.255.255.0,1h" \
		--dhcp-leasefile="$LAB_DIR/dnsmasq.leases" --pid-file= \
		--enable-tftp --tftp-root="$LAB_DIR/tftp" \
		--dhcp-match=set:efi64,option:client-arch,7 \
		--dhcp-match=set:efi64,option:client-arch,9 \
		--dhcp-boot="tag:!efi64,netdisk.pxe,,$LAB_ADDR" \
		--dhcp-boot="tag:efi64,netdisk.efi,,$LAB_ADDR" \
		--log-dhcp --log-facility="$LAB_DIR/dnsmasq.log" "$@" \
		>"$LAB_DIR/dnsmasq.out" 2>&1 &
	LAB_DNSMASQ_PID=$!
	lab_wait 10 grep -q 'DHCP, IP range' "$LAB_DIR/dnsmasq.log" ||
		{ lab_log "dnsmasq did not start: $(tail -n 3 "$LAB_DIR/dnsmasq.log")"; return 1; }
}

# lab_netdiskd ARGS...: netdiskd on the bridge address; ARGS are its own
# (images, --config, --mode ...).  Log: $LAB_DIR/server.log.
lab_netdiskd() {
	ip netns exec "$LAB_NS" "$LAB_BUILD/netdiskd" --listen "$LAB_ADDR:$LAB_PORT" "$@" >"$LAB_DIR/server.log" 2>&1 &
	LAB_SERVER_PID=$!
	lab_wait 10 grep -q 'listening on' "$LAB_DIR/server.log" ||
		{ lab_log "netdiskd did not start: $(tail -n 3 "$LAB_DIR/server.log")"; return 1; }
}

# lab_netdiskd_stop: stops netdiskd and reads its exit line (LAB_EXIT_LINE):
# bytes sent by UDP unicast (LAB_UNICAST) and to the group (LAB_MULTICAST),
# READs the multicast-rate cap sent by unicast (LAB_CAPPED).
lab_netdiskd_stop() {
	lab_stop_pid "$LAB_SERVER_PID"
	LAB_SERVER_PID=
	LAB_EXIT_LINE=$(grep 'stopping:' "$LAB_DIR/server.log")
	LAB_UNICAST=$(lab_exit_count unicast_bytes)
	LAB_MULTICAST=$(lab_exit_count multicast_bytes)
	LAB_CAPPED=$(lab_exit_count multicast_capped)
}

# lab_exit_count KEY: the number KEY=N of LAB_EXIT_LINE.
lab_exit_count() { grep -o "\b$1=[0-9]*" <<<"$LAB_EXIT_LINE" | cut -d= -f2; }

# lab_wait SECONDS CMD...: polls CMD every 0.2 s until it succeeds.
lab_wait() {
	local deadline=$((SECONDS + $1))
	shift
	until "$@" >/dev/null 2>&1; do
		[ "$SECONDS" -lt "$deadline" ] || return 1
		sleep 0.2
	done
}

# lab_impair SPEC: e.g. "loss=5 dup=2 reorder=10 delay=1 jitter=1" (percent,
# milliseconds; see qemu-scripts/lab-port --help); empty: none.  VMs started
# afterwards get an impaired port; ports already impaired switch to SPEC
# within a fraction of a second (lab-port rereads the file).
lab_impair() {
	LAB_IMPAIR=$1
	echo "$LAB_IMPAIR" >"$LAB_DIR/impair.new" && mv "$LAB_DIR/impair.new" "$LAB_DIR/impair"
}

# lab_tap: a new tap port on br0, named in LAB_NEW_TAP.
lab_tap() {
	LAB_NEW_TAP=tap$LAB_TAPS
	LAB_TAPS=$((LAB_TAPS + 1))
	lab_in ip tuntap add dev "$LAB_NEW_TAP" mode tap &&
		lab_in ip link set "$LAB_NEW_TAP" master br0 &&
		lab_in ip link set "$LAB_NEW_TAP" up
}

# lab_vm NAME FIRMWARE MAC [QEMU-ARGS...]: boots a disk-less VM (bios:
# SeaBIOS, uefi: OVMF; both with QEMU's iPXE ROM on the virtio NIC) from
# the lab's DHCP/TFTP.  Its serial console is the socket $LAB_DIR/NAME.con
# (one client at a time: qemu-scripts/lab-console) and everything it prints
# also goes to $LAB_DIR/NAME.log.
lab_vm() {
	local name=$1 firmware=$2 mac=$3 tap vmdir=$LAB_DIR/$1.vm netdev
	shift 3
	mkdir -p "$vmdir"
	lab_tap || { lab_log "$name: no tap port $LAB_NEW_TAP"; return 1; }
	tap=$LAB_NEW_TAP
	LAB_VM_TAP[$name]=$tap
	if [ -n "$LAB_IMPAIR" ]; then
		[ -f "$LAB_DIR/impair" ] || lab_impair "$LAB_IMPAIR"
		rm -f "$vmdir/port.sock" "$vmdir/qemu.sock"
		ip netns exec "$LAB_NS" python3 "$LAB_HERE/lab-port" --tap "$tap" --socket "$vmdir/port.sock" \
			--peer "$vmdir/qemu.sock" --impair-file "$LAB_DIR/impair" --stats "$vmdir/port.stats" \
			--seed "$RANDOM" >"$vmdir/port.log" 2>&1 &
		LAB_PORT_PID[$name]=$!
		lab_wait 10 test -S "$vmdir/port.sock" ||
			{ lab_log "$name: lab-port did not start: $(tail -n 3 "$vmdir/port.log")"; return 1; }
		netdev="dgram,id=n0,local.type=unix,local.path=$vmdir/qemu.sock,remote.type=unix,remote.path=$vmdir/port.sock"
	else
		netdev="tap,id=n0,ifname=$tap,script=no,downscript=no"
	fi
	QEMU_ARGS=()
	qemu_base_args "$firmware" "$vmdir" "$LAB_MEMORY"
	QEMU_ARGS+=(-display none -monitor none -pidfile "$vmdir/qemu.pid"
		-chardev "socket,id=con,path=$LAB_DIR/$name.con,server=on,wait=off,logfile=$LAB_DIR/$name.log"
		-serial chardev:con
		-netdev "$netdev" -device "virtio-net-pci,netdev=n0,mac=$mac,bootindex=1${LAB_NIC_OPTS:+,$LAB_NIC_OPTS}")
	ip netns exec "$LAB_NS" timeout -k 5 "$LAB_VM_TIMEOUT" qemu-system-x86_64 "${QEMU_ARGS[@]}" "$@" \
		>"$vmdir/qemu.out" 2>&1 &
	LAB_VM_PID[$name]=$!
}

# lab_vm_alive NAME: its QEMU still runs.
lab_vm_alive() { kill -0 "${LAB_VM_PID[$1]}" 2>/dev/null; }

# lab_vm_wait NAME SECONDS: waits for the VM to stop by itself; fails (and
# kills it) when it has not within SECONDS.
lab_vm_wait() {
	local pid=${LAB_VM_PID[$1]}
	[ -n "$pid" ] || return 1
	if lab_wait "$2" eval "! kill -0 $pid"; then
		wait "$pid" 2>/dev/null
		return 0
	fi
	lab_vm_kill "$1"
	return 1
}

# lab_vm_kill NAME: stops the VM (and its port relay) now.
lab_vm_kill() {
	lab_stop_pid "${LAB_VM_PID[$1]:-}"
	lab_stop_pid "${LAB_PORT_PID[$1]:-}"
}

# lab_stop_pid PID: TERM, up to 5 s, then KILL; reaps it.
lab_stop_pid() {
	local pid=$1
	[ -n "$pid" ] || return 0
	kill "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null; return 0; }
	lab_wait 5 eval "! kill -0 $pid" || kill -9 "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null
	return 0
}

# lab_down: stops the VMs, their port relays, dnsmasq and netdiskd, kills
# anything else still in the namespace, deletes the taps, the bridge and the
# namespace.  Safe to call more than once.
lab_down() {
	local name pid tap i
	[ -n "$LAB_NS" ] || return 0
	for name in "${!LAB_VM_PID[@]}"; do kill "${LAB_VM_PID[$name]}" 2>/dev/null; done
	for name in "${!LAB_VM_PID[@]}"; do lab_stop_pid "${LAB_VM_PID[$name]}"; done
	for name in "${!LAB_PORT_PID[@]}"; do lab_stop_pid "${LAB_PORT_PID[$name]}"; done
	lab_stop_pid "$LAB_DNSMASQ_PID"
	lab_stop_pid "$LAB_SERVER_PID"
	for pid in $(ip netns pids "$LAB_NS" 2>/dev/null); do kill -9 "$pid" 2>/dev/null; done
	for ((i = LAB_TAPS - 1; i >= 0; i--)); do
		tap=tap$i
		ip -n "$LAB_NS" link del "$tap" 2>/dev/null
	done
	ip -n "$LAB_NS" link del br0 2>/dev/null
	ip netns del "$LAB_NS" 2>/dev/null || lab_log "ip netns del $LAB_NS failed"
	LAB_NS=
	LAB_VM_PID=() LAB_PORT_PID=() LAB_VM_TAP=()
	LAB_DNSMASQ_PID= LAB_SERVER_PID= LAB_TAPS=0
}
