#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# The LAN recipe (docs/lan.md) proven on the lab network: VMs PXE-boot through dnsmasq configured only by `netdisk dnsmasq-conf`, as proxy-DHCP beside a separate plain DHCP server and as the only DHCP server.
#
# Host checks first: the generated text (proxy range, option 93 lines, the
# images and listen address read from a netdiskd.conf, the patch hint for a
# port the stubs do not know) and its refusals of bad arguments.
#
# Proxy phase: the "site router" is a namespace of its own on a port of the
# lab bridge with a plain dnsmasq giving addresses only (no boot file, no
# TFTP).  netdisk's dnsmasq runs the `--proxy` snippet unchanged, beside
# netdiskd.  Three VMs boot at once: BIOS (iPXE), UEFI with iPXE's EFI ROM,
# UEFI with OVMF's own PXE.  Each must take its address from the router,
# its firmware's stub from the proxy (option 93), find netdiskd at the
# proxy's next-server, and boot the served disk: the INT 13h test program
# (BIOS) or bio-test.efi through the stub's BlockIo (UEFI).  Full phase:
# the router is gone, netdisk's dnsmasq runs the `--range` snippet, and a
# BIOS and a UEFI VM (OVMF's own PXE) boot the same way with addresses from
# that range.  iPXE's EFI ROM and OVMF's PXE both send option 93 = 7, a
# BIOS 0; the line for 9 (dnsmasq's BC_EFI) is checked in the text only.
. "$(dirname "$0")/lib.sh"
requires root netns qemu ovmf ipxe cmd:dnsmasq cmd:python3 cmd:mkfs.fat cmd:mcopy
. "$(dirname "$0")/bios/qemu.sh"
. "$(dirname "$0")/image-lib.sh"
. "$(dirname "$0")/efi-lib.sh"
. "$ND_TOP/qemu-scripts/lab-lib.sh"

BOOT_LIMIT=${ND_BOOT_TIMEOUT:-240}
LAB_VM_TIMEOUT=$((BOOT_LIMIT + 30))
LAB_MEMORY=256
ROUTER=$LAB_NET.254
ROUTER_RANGE=(100 149) # the router's leases
OWN_RANGE=(150 199)    # netdisk's dnsmasq's, in the full phase
RTR_NS=ndlanr-$$-$RANDOM
RTR_PID=
NDC=$ND_BUILD/netdisk

# The router's namespace goes with the lab (lab_up chains this trap after
# its own); ones left by a SIGKILLed run are swept first.
lan_down() {
	[ -n "$RTR_PID" ] && kill "$RTR_PID" 2>/dev/null
	ip netns pids "$RTR_NS" 2>/dev/null | xargs -r kill -9 2>/dev/null
	ip netns del "$RTR_NS" 2>/dev/null
	nd_cleanup
}
for ns in $(ip netns list 2>/dev/null | awk '{ print $1 }' | grep '^ndlanr-'); do
	pid=${ns#ndlanr-}
	kill -0 "${pid%%-*}" 2>/dev/null || { ip netns pids "$ns" | xargs -r kill -9; ip netns del "$ns"; } 2>/dev/null
done
trap lan_down EXIT

lab_up "$ND_TMP/lab" || { fail lan-up "no namespace or bridge"; exit 1; }
lab_tftp || { fail lan-tftp "cannot fill the TFTP root"; exit 1; }

# The served disks: the INT 13h test program for BIOS, bio-test.efi as the
# ESP's BOOTX64.EFI for UEFI; each MAC is pinned to its firmware's disk.
MAC_BIOS_P=52:54:00:1a:c0:01 MAC_EFI_P=52:54:00:1a:c0:02 MAC_OVMF_P=52:54:00:1a:c0:03
MAC_BIOS_F=52:54:00:1a:c0:04 MAC_EFI_F=52:54:00:1a:c0:05
int13_image "$ND_TMP/int13.img" &&
	efi_pattern_disk "$ND_TMP/efi.img" "$ND_BUILD/tests/bio-test.efi" ||
	{ fail lan-images "cannot build the served disks"; exit 1; }
cat >"$ND_TMP/netdiskd.conf" <<CONF
listen = $LAB_ADDR:$LAB_PORT
[image int13]
path = $ND_TMP/int13.img
mode = volatile
[image efi]
path = $ND_TMP/efi.img
mode = volatile
CONF
for m in $MAC_BIOS_P $MAC_BIOS_F; do printf '[client %s]\nimage = int13\n' "$m"; done >>"$ND_TMP/netdiskd.conf"
for m in $MAC_EFI_P $MAC_OVMF_P $MAC_EFI_F; do printf '[client %s]\nimage = efi\n' "$m"; done >>"$ND_TMP/netdiskd.conf"
lab_netdiskd --state-dir "$ND_TMP/state" --config "$ND_TMP/netdiskd.conf" ||
	{ fail lan-netdiskd "$(tail -n 3 "$LAB_DIR/server.log")"; exit 1; }

# ---- the generated text (inside the lab namespace: br0 is the only interface up)
gen() { lab_in "$NDC" dnsmasq-conf "$@"; }
has_lines() { # FILE LINE...: every LINE is a line of FILE
	local f=$1 l
	shift
	for l in "$@"; do grep -qxF -- "$l" "$f" || { echo "no line '$l' in: $(grep -v '^#' "$f" | tr '\n' '|')"; return 1; }; done
}
gen --proxy --tftp-root "$LAB_DIR/tftp" --config "$ND_TMP/netdiskd.conf" >"$ND_TMP/proxy.conf" 2>"$ND_TMP/proxy.err" ||
	{ fail "dnsmasq-conf --proxy runs" "$(cat "$ND_TMP/proxy.err")"; exit 1; }
check "dnsmasq-conf --proxy: proxy range on br0's network, TFTP root, no DNS" has_lines "$ND_TMP/proxy.conf" \
	"interface=br0" "bind-interfaces" "port=0" "enable-tftp" "tftp-root=$LAB_DIR/tftp" \
	"dhcp-range=$LAB_NET.0,proxy,255.255.255.0"
check "dnsmasq-conf --proxy: arch 0 gets netdisk.pxe, 7 and 9 netdisk.efi, next-server $LAB_ADDR" \
	has_lines "$ND_TMP/proxy.conf" "pxe-service=x86PC,\"netdisk (BIOS)\",netdisk.pxe,$LAB_ADDR" \
	"pxe-service=BC_EFI,\"netdisk (UEFI)\",netdisk.efi,$LAB_ADDR" \
	"pxe-service=x86-64_EFI,\"netdisk (UEFI)\",netdisk.efi,$LAB_ADDR"
check "dnsmasq-conf --proxy: no address range, no dhcp-boot" eval "! grep -E '^(dhcp-boot|dhcp-range=[0-9.]+,[0-9])' '$ND_TMP/proxy.conf'"
check "dnsmasq-conf --config: names netdiskd's address and images" has_lines "$ND_TMP/proxy.conf" \
	"# netdiskd: $LAB_ADDR:$LAB_PORT (UDP; NBD on TCP), from $ND_TMP/netdiskd.conf" \
	"# images: int13 (volatile), efi (volatile)"
check "dnsmasq-conf: stubs at their defaults need no patch" eval "! grep -q 'netdisk patch' '$ND_TMP/proxy.conf'"
gen --proxy >"$ND_TMP/auto.conf" 2>&1
check "dnsmasq-conf: with no --interface, the only interface up (br0) and its address" has_lines "$ND_TMP/auto.conf" \
	"interface=br0" "pxe-service=x86PC,\"netdisk (BIOS)\",netdisk.pxe,$LAB_ADDR"
full_range="$LAB_NET.${OWN_RANGE[0]},$LAB_NET.${OWN_RANGE[1]},255.255.255.0,1h"
gen --range "$full_range" --interface br0 --tftp-root "$LAB_DIR/tftp" >"$ND_TMP/full.conf" 2>"$ND_TMP/full.err" ||
	{ fail "dnsmasq-conf --range runs" "$(cat "$ND_TMP/full.err")"; exit 1; }
check "dnsmasq-conf --range: the range, option 93 tags, boot files with next-server $LAB_ADDR" has_lines "$ND_TMP/full.conf" \
	"dhcp-range=$full_range" "dhcp-match=set:netdisk-bios,option:client-arch,0" \
	"dhcp-match=set:netdisk-efi64,option:client-arch,7" "dhcp-match=set:netdisk-efi64,option:client-arch,9" \
	"dhcp-boot=tag:netdisk-bios,netdisk.pxe,,$LAB_ADDR" "dhcp-boot=tag:netdisk-efi64,netdisk.efi,,$LAB_ADDR"
check "dnsmasq-conf --range: no proxy, no pxe-service" eval "! grep -E '^(pxe-service|dhcp-range=.*proxy)' '$ND_TMP/full.conf'"
printf 'listen = 0.0.0.0:20809\n[image a]\npath = /x\n' >"$ND_TMP/port.conf"
gen --proxy --config "$ND_TMP/port.conf" >"$ND_TMP/port.out" 2>&1
check "dnsmasq-conf: netdiskd on another port: the patch commands" has_lines "$ND_TMP/port.out" \
	"#   netdisk patch /srv/tftp/netdisk.pxe --server $LAB_ADDR:20809" \
	"#   netdisk patch /srv/tftp/netdisk.efi --server $LAB_ADDR:20809"
check "dnsmasq --test accepts the --proxy, --range and patch-hint snippets" \
	eval "dnsmasq --test --conf-file='$ND_TMP/proxy.conf' && dnsmasq --test --conf-file='$ND_TMP/full.conf' && dnsmasq --test --conf-file='$ND_TMP/port.out'"
printf 'listen = nowhere:x\n' >"$ND_TMP/bad.conf"
check_fails "dnsmasq-conf: neither --proxy nor --range" 2 "say --proxy .* or --range" gen
check_fails "dnsmasq-conf: both --proxy and --range" 2 "one of them" gen --proxy --range "$full_range"
check_fails "dnsmasq-conf: --range with a non-address" 2 "'$LAB_NET.x' is not an IPv4 address" gen --range "$LAB_NET.1,$LAB_NET.x"
check_fails "dnsmasq-conf: --range outside the interface's network" 2 "10.9.9.9 is not in the interface's network" \
	gen --range "10.9.9.9,$LAB_NET.20"
check_fails "dnsmasq-conf: --range with a bad lease" 2 "neither a netmask nor a lease" gen --range "$LAB_NET.10,$LAB_NET.20,12x"
check_fails "dnsmasq-conf: an interface that does not exist" 1 "interface nd-none does not exist" gen --proxy --interface nd-none
check_fails "dnsmasq-conf: an address no interface has" 1 "no interface of this machine holds the address 10.9.9.9" \
	gen --proxy --address 10.9.9.9
check_fails "dnsmasq-conf: a config that cannot be read" 1 "cannot read $ND_TMP/none.conf" gen --proxy --config "$ND_TMP/none.conf"
check_fails "dnsmasq-conf: a config with a bad listen" 1 "bad.conf: line 1: listen must be ADDR:PORT" gen --proxy --config "$ND_TMP/bad.conf"
check_fails "dnsmasq-conf: a --config path with a line break (it would end up in the snippet)" 2 "line break" \
	gen --proxy --config "$ND_TMP/x"$'\n'"port=53"
check_fails "dnsmasq-conf: a relative --tftp-root" 2 "wants an absolute directory" gen --proxy --tftp-root tftp
check_fails "dnsmasq-conf: an unknown option" 2 "usage: netdisk dnsmasq-conf" gen --proxy --bogus
check_fails "dnsmasq-conf: a stray argument" 2 "unexpected argument 'eth0'" gen --proxy eth0

# ---- proxy phase: the site's router (plain DHCP) and netdisk's proxy
# router_up: the router's namespace, its port on the lab bridge, and a
# dnsmasq that only gives addresses (and itself as router).
router_up() {
	local a=ndlr$$a b=ndlr$$b
	ip netns add "$RTR_NS" && ip -n "$RTR_NS" link set lo up &&
		ip link add "$a" type veth peer name "$b" &&
		ip link set "$a" netns "$RTR_NS" && ip link set "$b" netns "$LAB_NS" &&
		ip -n "$RTR_NS" link set "$a" name eth0 && ip -n "$RTR_NS" addr add "$ROUTER/24" dev eth0 &&
		ip -n "$RTR_NS" link set eth0 up &&
		lab_in ip link set "$b" master br0 && lab_in ip link set "$b" up || return 1
	: >"$ND_TMP/router.log"
	ip netns exec "$RTR_NS" dnsmasq --no-daemon --conf-file=/dev/null --port=0 --user=root --group=root \
		--interface=eth0 --bind-interfaces \
		--dhcp-range="$LAB_NET.${ROUTER_RANGE[0]},$LAB_NET.${ROUTER_RANGE[1]},255.255.255.0,1h" \
		--dhcp-option=option:router,"$ROUTER" --dhcp-leasefile="$ND_TMP/router.leases" --pid-file= \
		--log-dhcp --log-facility="$ND_TMP/router.log" >"$ND_TMP/router.out" 2>&1 &
	RTR_PID=$!
	lab_wait 10 grep -q 'DHCP, IP range' "$ND_TMP/router.log" || { echo "router dnsmasq: $(tail -n 3 "$ND_TMP/router.log")"; return 1; }
}

# netdisk_dnsmasq CONF: netdisk's dnsmasq with CONF (the generated snippet)
# as its whole configuration, plus logging.
netdisk_dnsmasq() {
	: >"$LAB_DIR/dnsmasq.log"
	rm -f "$LAB_DIR/dnsmasq.leases"
	# Not through lab_in: ip netns exec execs dnsmasq, so $! is dnsmasq
	# itself and the full phase can stop it.
	ip netns exec "$LAB_NS" dnsmasq --no-daemon --conf-file="$1" --user=root --group=root --pid-file= \
		--dhcp-leasefile="$LAB_DIR/dnsmasq.leases" --log-dhcp --log-facility="$LAB_DIR/dnsmasq.log" \
		>"$LAB_DIR/dnsmasq.out" 2>&1 &
	LAB_DNSMASQ_PID=$!
	lab_wait 10 grep -q 'TFTP root is' "$LAB_DIR/dnsmasq.log" ||
		{ echo "netdisk's dnsmasq: $(tail -n 3 "$LAB_DIR/dnsmasq.log")"; return 1; }
}

router_up || { fail "lan: the router's plain DHCP server starts" "$(ip netns list | head -3)"; exit 1; }
netdisk_dnsmasq "$ND_TMP/proxy.conf" || { fail "lan: dnsmasq runs the --proxy snippet" "see $LAB_DIR/dnsmasq.log"; exit 1; }
pass "lan: dnsmasq runs the --proxy snippet beside the router's DHCP server"

declare -A VM_FW=() VM_MAC=() VM_LEASES=()
# vm NAME FIRMWARE MAC [NIC-OPTS]: a lab VM.
vm() {
	VM_FW[$1]=$2 VM_MAC[$1]=$3
	LAB_NIC_OPTS=${4:-} lab_vm "$1" "$2" "$3"
}
# booted NAME: the served disk's program ran to its end (BIOS: the INT 13h
# test's last line; UEFI: bio-test.efi powered the VM off); then the VM stops.
booted() {
	local ok=0
	if [ "${VM_FW[$1]}" = bios ]; then
		lab_wait "$BOOT_LIMIT" grep -aq 'INT13TEST END' "$LAB_DIR/$1.log" && ok=1
		lab_vm_kill "$1"
	else
		lab_vm_wait "$1" "$BOOT_LIMIT" && grep -aq 'BIOTEST start' "$LAB_DIR/$1.log" && ok=1
	fi
	[ $ok = 1 ]
}
console_has() { console_text "$LAB_DIR/$1.log" | grep -aqE "$2"; }
# vm_ip NAME: the VM's address in the lease file of the DHCP server that
# should have given it (VM_LEASES).
vm_ip() { awk -v m="${VM_MAC[$1]}" '$2 == m { print $3; exit }' "${VM_LEASES[$1]}" 2>/dev/null; }
in_range() { # IP LOW HIGH
	local last=${1##*.}
	[ "${1%.*}" = "$LAB_NET" ] && [ "$last" -ge "$2" ] && [ "$last" -le "$3" ]
}

# address_from NAME LOW HIGH: the DHCP server that should have given the
# VM its address did, from LOW..HIGH.
address_from() {
	local ip
	ip=$(vm_ip "$1")
	[ -n "$ip" ] || { echo "${VM_MAC[$1]} not in ${VM_LEASES[$1]}: $(cat "${VM_LEASES[$1]}" 2>/dev/null)"; return 1; }
	in_range "$ip" "$2" "$3" || { echo "address $ip not in .$2-.$3"; return 1; }
}
# stub_from_netdisk NAME: netdisk's dnsmasq sent this VM its firmware's stub
# (option 93), and the stub ran.
stub_from_netdisk() {
	local file=netdisk.pxe banner='^netdisk\.pxe: disk over the network' ip
	[ "${VM_FW[$1]}" = uefi ] && file=netdisk.efi banner='^netdisk: UEFI network disk'
	ip=$(vm_ip "$1")
	grep -q "sent $LAB_DIR/tftp/$file to ${ip:-?}\$" "$LAB_DIR/dnsmasq.log" ||
		{ echo "netdisk's dnsmasq did not send $file to ${ip:-?}: $(grep -a 'sent\|failed' "$LAB_DIR/dnsmasq.log" | tail -n 3)"; return 1; }
	console_has "$1" "$banner" || { echo "no '$banner' on the console"; return 1; }
}
# server_found NAME IMAGE: the stub went to the next-server's netdiskd and
# attached to IMAGE.
server_found() {
	console_has "$1" "^netdisk: attaching to ${LAB_ADDR//./\\.}:$LAB_PORT " ||
		{ echo "the stub did not go to $LAB_ADDR:$LAB_PORT: $(tr -d '\r' <"$LAB_DIR/$1.log" | grep -a 'attaching' | head -n 2)"; return 1; }
	grep -q "attach mac=${VM_MAC[$1]} ip=$(vm_ip "$1"):[0-9]* image=$2 " "$LAB_DIR/server.log" ||
		{ echo "no attach of ${VM_MAC[$1]} from $(vm_ip "$1") to $2 in the server log: $(grep -a attach "$LAB_DIR/server.log" | tail -n 2)"; return 1; }
}
# vm_checks PHASE NAME IMAGE LEASES LOW HIGH
vm_checks() {
	local phase=$1 name=$2 image=$3
	VM_LEASES[$name]=$4
	check "$phase: $name (${VM_FW[$name]}) boots the served disk through the stub" booted "$name"
	check "$phase: $name's QEMU is gone once stopped" lab_wait 10 eval "! pgrep -f '$LAB_DIR/$name\.vm/' >/dev/null"
	check "$phase: $name address from ${4##*/} (.$5-.$6)" address_from "$name" "$5" "$6"
	check "$phase: $name got its firmware's stub from netdisk's dnsmasq" stub_from_netdisk "$name"
	check "$phase: $name found netdiskd at the next-server, image $image" server_found "$name" "$image"
}

start=$SECONDS
vm p-bios bios $MAC_BIOS_P
vm p-uefi-ipxe uefi $MAC_EFI_P
vm p-uefi-ovmf uefi $MAC_OVMF_P romfile=
vm_checks "proxy" p-bios int13 "$ND_TMP/router.leases" "${ROUTER_RANGE[@]}"
vm_checks "proxy" p-uefi-ipxe efi "$ND_TMP/router.leases" "${ROUTER_RANGE[@]}"
vm_checks "proxy (OVMF's own PXE)" p-uefi-ovmf efi "$ND_TMP/router.leases" "${ROUTER_RANGE[@]}"
# arch_seen DHCP-LOG ARCH...: PXE clients with each option 93 value asked.
arch_seen() {
	local log=$1 a
	shift
	for a in "$@"; do grep -q "vendor class: PXEClient:Arch:0000$a" "$log" || { echo "no client with arch $a in $log"; return 1; }; done
}
check "proxy: the VMs sent option 93 = 0 (BIOS) and 7 (iPXE's EFI ROM and OVMF)" arch_seen "$LAB_DIR/dnsmasq.log" 0 7
check "proxy: the router's DHCPACKs name the router as next-server (the stubs had to use the proxy's)" \
	grep -q "next server: $ROUTER\$" "$ND_TMP/router.log"
check "proxy: netdisk's dnsmasq gave no address" eval "! test -s '$LAB_DIR/dnsmasq.leases'"
echo "# proxy phase: $((SECONDS - start)) s"

# ---- full phase: no router; netdisk's dnsmasq is the only DHCP server
lab_stop_pid "$RTR_PID"
RTR_PID=
lab_stop_pid "$LAB_DNSMASQ_PID"
netdisk_dnsmasq "$ND_TMP/full.conf" || { fail "lan: dnsmasq runs the --range snippet" "see $LAB_DIR/dnsmasq.log"; exit 1; }
start=$SECONDS
vm f-bios bios $MAC_BIOS_F
vm f-uefi uefi $MAC_EFI_F romfile=
vm_checks "full" f-bios int13 "$LAB_DIR/dnsmasq.leases" "${OWN_RANGE[@]}"
vm_checks "full" f-uefi efi "$LAB_DIR/dnsmasq.leases" "${OWN_RANGE[@]}"
check "full: the VMs sent option 93 = 0 (BIOS) and 7 (OVMF)" arch_seen "$LAB_DIR/dnsmasq.log" 0 7
check "full: the proxy's dnsmasq had stopped (no proxy answers)" eval "! grep -q ' proxy\$' '$LAB_DIR/dnsmasq.log'"
echo "# full phase: $((SECONDS - start)) s"
