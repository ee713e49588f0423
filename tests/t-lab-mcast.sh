#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Multicast in the UEFI stub on the LAN lab: three UEFI VMs run the BlockIo check (tests/efi/bio-test.c) from the served disk at once with multicast = always; every VM joins the group (IGMP report), reads right data (its own writes included) and leaves it at ExitBootServices (IGMP leave); the server's egress shows the group.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/efi-lib.sh"
. "$ND_TOP/qemu-scripts/lab-lib.sh"
requires root netns qemu ovmf ipxe cmd:dnsmasq cmd:python3 cmd:mkfs.fat cmd:mcopy

LIMIT=${ND_BOOT_TIMEOUT:-300}
LAB_VM_TIMEOUT=$((LIMIT + 60))
VMS="vm-1 vm-2 vm-3"
BIOTEST_CHECKS="media pattern-64k-reads pattern-large-read last-blocks unaligned-buffer"

make -s -C "$ND_TOP" BUILD="$ND_BUILD" "$ND_BUILD/netdiskd" "$ND_BUILD/netdisk" "$ND_BUILD/netdisk.efi" \
	"$ND_BUILD/netdisk.pxe" "$ND_BUILD/tests/bio-test.efi" >"$ND_TMP/make.log" 2>&1 ||
	{ fail lab-mcast-build "$(tail -n 5 "$ND_TMP/make.log" | tr '\n' ' ')"; exit 1; }
efi_pattern_disk "$ND_TMP/disk.img" "$ND_BUILD/tests/bio-test.efi" ||
	{ fail lab-mcast-image "cannot build the test disk"; exit 1; }

lab_up "$ND_TMP" || { fail lab-up "no namespace or bridge"; exit 1; }
lab_tftp || { fail lab-tftp "cannot fill the TFTP root"; exit 1; }
lab_dnsmasq || { fail lab-dnsmasq "$(tail -n 3 "$LAB_DIR/dnsmasq.log")"; exit 1; }

console() { tr -d '\r' <"$LAB_DIR/$1.log" | sed 's/\x1b\[[0-9;]*[A-Za-z]//g'; }
# serve MODE: netdiskd on the lab with multicast = MODE.
serve() {
	printf 'multicast = %s\nmulticast-group = 239.255.79.1\n' "$1" >"$ND_TMP/mc.conf"
	lab_netdiskd --config "$ND_TMP/mc.conf" --mode volatile "disk=$ND_TMP/disk.img" ||
		{ fail lab-netdiskd "$(cat "$LAB_DIR/server.log")"; exit 1; }
}
# unserve: stop netdiskd (found by name in the namespace); its exit line in
# LINE, egress in U and M.
unserve() {
	local pid
	for pid in $(ip netns pids "$LAB_NS"); do
		[ "$(cat "/proc/$pid/comm" 2>/dev/null)" = netdiskd ] && kill "$pid"
	done
	lab_wait 10 grep -q 'stopping:' "$LAB_DIR/server.log"
	LINE=$(grep 'stopping:' "$LAB_DIR/server.log")
	U=$(grep -o 'unicast_bytes=[0-9]*' <<<"$LINE" | cut -d= -f2)
	M=$(grep -o 'multicast_bytes=[0-9]*' <<<"$LINE" | cut -d= -f2)
}

# The unicast anchor: one VM alone, multicast off.
serve off
lab_vm anchor uefi 52:54:00:1a:c0:09 || { fail lab-vm-anchor "did not start"; exit 1; }
lab_wait "$LIMIT" eval 'console anchor | grep -q "BIOTEST DONE"'
lab_vm_kill anchor
unserve
ONE=$((${U:-0} + ${M:-0}))
check "lab-mcast: one UEFI VM alone, multicast off: the BlockIo check passes ($ONE bytes of egress)" \
	eval 'console anchor | grep -q "BIOTEST DONE" && ! console anchor | grep -q "BIOTEST FAIL"'
cp "$LAB_DIR/server.log" "$LAB_DIR/server-anchor.log"
serve always

# Every IGMP message on the bridge, by source MAC.
lab_in python3 "$ND_TOP/tests/igmp-sniff.py" br0 "$ND_TMP/igmp.log" 2>"$ND_TMP/igmp.err" &
sleep 0.5
k=0
for name in $VMS; do
	k=$((k + 1))
	lab_vm "$name" uefi "52:54:00:1a:c0:0$k" || { fail "lab-vm-$name" "did not start"; exit 1; }
done
all_done() {
	local name
	for name in $VMS; do console "$name" | grep -q 'BIOTEST DONE' || return 1; done
}
start=$SECONDS
if lab_wait "$LIMIT" all_done; then
	pass "lab-mcast: three UEFI VMs ran the BlockIo check at once ($((SECONDS - start)) s)"
else
	fail "lab-mcast: three UEFI VMs ran the BlockIo check at once" "not all done within $LIMIT s"
fi
sleep 2 # the stubs detach and leave the group once the check returns
for name in $VMS; do lab_vm_kill "$name"; done
unserve
echo "# server: $(grep -o 'unicast_bytes=.*' <<<"$LINE")"

vm_ok() {
	local c mac=52:54:00:1a:c0:0${1#vm-}
	console "$1" | grep -q '^netdisk: multicast group 239\.255\.79\.1:10810 joined' ||
		{ echo "no join on the console: $(console "$1" | grep -a 'netdisk:' | tail -n 3)"; return 1; }
	! console "$1" | grep -a 'get lost here' || return 1 # the probe, answered on the group
	for c in $BIOTEST_CHECKS; do
		console "$1" | grep -q "BIOTEST PASS $c" || { echo "no 'BIOTEST PASS $c'"; return 1; }
	done
	! console "$1" | grep -q 'BIOTEST FAIL' || { echo "$(console "$1" | grep 'BIOTEST FAIL')"; return 1; }
	grep -q "^$mac 0x16 239.255.79.1$" "$ND_TMP/igmp.log" || { echo "no IGMP report from $mac"; return 1; }
	grep -q "^$mac 0x17 239.255.79.1$" "$ND_TMP/igmp.log" ||
		{ echo "no IGMP leave from $mac: $(grep "$mac" "$ND_TMP/igmp.log" | sort | uniq -c)"; return 1; }
}
for name in $VMS; do
	check "lab-mcast: $name joined the group (IGMP), read right data (its own writes too), left at ExitBootServices" vm_ok "$name"
done

server_ok() {
	[ -n "$M" ] && [ "$M" -gt 0 ] || { echo "no multicast bytes: $LINE"; return 1; }
	# One join per VM: the datagram-size probe reads by unicast before the
	# join (ND_FLAG_UNICAST); sent to the group it was lost, and every VM
	# attached again with small datagrams.
	[ "$(grep -o 'multicast join: mac=52:54:00:1a:c0:0.' "$LAB_DIR/server.log" | sort | uniq -c |
		awk '$1 == 1' | wc -l)" = 3 ] ||
		{ echo "joins: $(grep 'multicast join' "$LAB_DIR/server.log")"; return 1; }
	grep -q "group_disk=239.255.79.1:10810,clients=3,peak=3" <<<"$LINE" || { echo "exit line: $LINE"; return 1; }
}
check "lab-mcast: the server multicast ($M bytes, unicast $U) to the 3 members, joins logged" server_ok

# The issue's bound: the three cost the server less than three boots alone
# (unicast would be about 3 x).  How much less depends on how closely the
# VMs keep step: the one that starts first may be done before the last one
# joins (measured 2.27-2.48 x with netdisk.efi's 30-second cache; 3.15 x
# when it kept blocks 2 s, see docs/lab.md).
below_three() {
	[ $((U + M)) -lt $((3 * ONE)) ] || { echo "$((U + M)) bytes >= 3 x $ONE"; return 1; }
}
check "lab-mcast: the 3 VMs' egress ($((U + M)) bytes, $(echo "scale=2; ($U + $M) / $ONE" | bc) x) is below three boots alone" below_three
