#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# A real-VM boot storm on the LAN lab: one VM alone, then N VMs at once with multicast off and on, booting the demo disk to its root shell; server egress on the wire and the time to all roots.
#
# One line per run:
#   vmstorm vms=N multicast=on|off firmware=F server_egress_bytes=B one_vm_bytes=b egress_ratio=R
#           udp_unicast_bytes=U multicast_bytes=M multicast_capped=C join_spread_s=S tap_drops=D all_roots_s=T
# B is what the server's side of the lab sent into the bridge (br0's tx
# counter: netdiskd's UDP and NBD, dnsmasq's DHCP and TFTP), counted from
# the first VM's start to the last root shell; b is B of one VM alone with
# multicast off (the anchor), R = B / b.  U and M are netdiskd's own UDP
# counters (its exit line), C the READs the rate cap sent by unicast, S the
# seconds between the first VM's join of the group and the last's, D the
# frames the VMs' tap ports dropped on their way to a VM.  T: seconds from the first VM's start until
# every VM printed NETDISK-ROOT-OK.
# The stubs join the group in the firmware phase only (the Linux agent reads
# over NBD, by unicast), so multicast can save at most the firmware phase's
# share of a boot.  netdisk.efi joins; netdisk.pxe joins on its own
# virtio-net driver with a 768 KiB cache (docs/bios.md, *Multicast*).
# BENCH_VM_STORM_VMS (3), BENCH_VM_STORM_FIRMWARE (uefi, bios or mix),
# BENCH_VM_STORM_MODE (multicast "on": always or auto), ND_BOOT_TIMEOUT (300).
. "$(dirname "$0")/lib.sh"
if [ "$(id -u)" != 0 ] || ! command -v ip >/dev/null || ! command -v dnsmasq >/dev/null; then
	echo "vm-storm: needs root, ip(8) and dnsmasq for the lab: skipped" >&2
	exit 0
fi
export LAB_BUILD=$BENCH_BUILD
. "$BENCH_TOP/qemu-scripts/lab-lib.sh"
make -s -C "$BENCH_TOP" BUILD="$BENCH_BUILD" all demo-image >"$BENCH_TMP/make.log" 2>&1 ||
	{ tail -n 5 "$BENCH_TMP/make.log" >&2; exit 1; }

vms=${BENCH_VM_STORM_VMS:-3}
firmware=${BENCH_VM_STORM_FIRMWARE:-uefi}
mode=${BENCH_VM_STORM_MODE:-always}
limit=${ND_BOOT_TIMEOUT:-300}
LAB_VM_TIMEOUT=$((limit + 60))
[ -z "${BENCH_SMOKE:-}" ] || vms=2
image=$BENCH_TMP/demo.img
cp "$BENCH_BUILD/demo.img" "$image"

lab_up "$BENCH_TMP/lab" >&2 || exit 1
lab_tftp && lab_dnsmasq >&2 || exit 1

# serve MODE: netdiskd on the lab, multicast MODE (off, auto, always).
serve() {
	printf 'multicast = %s\nmulticast-group = 239.255.80.1\n' "$1" >"$BENCH_TMP/mc.conf"
	lab_netdiskd --config "$BENCH_TMP/mc.conf" --state-dir "$BENCH_TMP/state" --mode volatile \
		"demo=$image" >&2
}

# join_spread: seconds between the first and the last multicast join in the
# server's log ("-" without joins): how far apart the VMs reached their stub.
join_spread() {
	grep 'multicast join:' "$LAB_DIR/server.log" | cut -c12-23 |
		awk -F: '{ t = $1 * 3600 + $2 * 60 + $3; if (NR == 1) f = t; l = t }
			END { if (NR) printf "%.1f", l - f; else printf "-" }'
}

# unserve: stops netdiskd; its counters in U (UDP unicast), M (multicast), C (capped READs).
unserve() {
	lab_netdiskd_stop
	U=$LAB_UNICAST M=$LAB_MULTICAST C=$LAB_CAPPED
}

tx_bytes() { lab_in cat /sys/class/net/br0/statistics/tx_bytes; }
# tap_drops: frames the VMs' tap ports dropped on the way to their VM (a
# VM that does not empty its receive queue in time loses group datagrams).
tap_drops() { lab_in sh -c 'cat /sys/class/net/tap*/statistics/tx_dropped' | awk '{ n += $1 } END { print n + 0 }'; }

# firmware_of K: the Kth VM's firmware.
firmware_of() {
	case $firmware in
	mix) [ $(($1 % 2)) = 0 ] && echo uefi || echo bios ;;
	*) echo "$firmware" ;;
	esac
}

# storm N MC: N VMs at once, multicast MC (off/on); sets B (wire bytes) and T
# (seconds to all roots), or fails when a VM has no root within the limit.
run=0
storm() {
	local n=$1 mc=$2 k name names=() start before all
	run=$((run + 1))
	if [ "$mc" = on ]; then serve "$mode"; else serve off; fi || return 1
	before=$(tx_bytes)
	drops=$(tap_drops)
	start=$(date +%s.%N)
	for ((k = 1; k <= n; k++)); do
		name=r$run-vm$k
		names+=("$name")
		lab_vm "$name" "$(firmware_of "$k")" "$(printf '52:54:00:1a:c2:%02x' $(((run * 8 + k) % 256)))" >&2 || return 1
	done
	all_roots() {
		local v
		for v in "${names[@]}"; do tr -d '\r' <"$LAB_DIR/$v.log" 2>/dev/null | grep -aq '^NETDISK-ROOT-OK' || return 1; done
	}
	lab_wait "$limit" all_roots
	all=$?
	T=$(awk -v s="$start" -v e="$(date +%s.%N)" 'BEGIN { printf "%.1f", e - s }')
	B=$(($(tx_bytes) - before))
	D=$(($(tap_drops) - drops))
	for name in "${names[@]}"; do lab_vm_kill "$name"; done
	S=$(join_spread)
	unserve
	[ $all = 0 ] || { echo "vm-storm: $n VMs, multicast $mc: not every VM reached its root within $limit s" >&2; return 1; }
}

for round in $(seq "$BENCH_ROUNDS"); do
	storm 1 off || exit 1
	one=$B
	echo "vmstorm vms=1 multicast=off firmware=$(firmware_of 1) server_egress_bytes=$B one_vm_bytes=$one egress_ratio=1.00 udp_unicast_bytes=$U multicast_bytes=$M all_roots_s=$T"
	result vmstorm egress-ratio-mc-off vms-1 1.00 x lower
	result vmstorm all-roots-s-mc-off vms-1 "$T" s lower
	for mc in off on; do
		storm "$vms" $mc || exit 1
		ratio=$(awk -v b="$B" -v o="$one" 'BEGIN { printf "%.2f", b / o }')
		echo "vmstorm vms=$vms multicast=$mc firmware=$firmware server_egress_bytes=$B one_vm_bytes=$one egress_ratio=$ratio udp_unicast_bytes=$U multicast_bytes=$M multicast_capped=${C:-0} join_spread_s=$S tap_drops=$D all_roots_s=$T"
		result vmstorm "egress-ratio-mc-$mc" "vms-$vms" "$ratio" x lower
		result vmstorm "all-roots-s-mc-$mc" "vms-$vms" "$T" s lower
	done
done
