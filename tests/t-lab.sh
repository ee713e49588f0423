#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# The LAN lab (qemu-scripts/lab-lib.sh): BIOS and UEFI VMs boot the e2e image at once through a bridge, dnsmasq and netdiskd with multicast on; again with loss, duplication and reordering on every port; nothing is left behind.
#
# Storm 1: three VMs (BIOS, UEFI, BIOS) start together on plain tap ports; a
# fourth (UEFI) starts once the first has its root.  Storm 2: three more
# (BIOS, UEFI, UEFI) on impaired ports (lab-port: 5 % loss, 5 % duplication,
# 10 % reordering, 1 ms +- 1 ms delay, both directions).  Every boot reports,
# from its root shell, the root mount, the firmware-phase marker, a stock
# nbd-client's view and the MD5 of a 4 MiB random file on the root; the host
# compares.  The stubs are not patched with a server: they find netdiskd at
# the DHCP next-server, on port 10809.  Then: lab_down leaves nothing, and a
# lab whose shell is interrupted (TERM) or killed (KILL, then swept) neither.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/image-lib.sh"
. "$(dirname "$0")/e2e-lib.sh"
. "$ND_TOP/qemu-scripts/lab-lib.sh"
requires root netns qemu ovmf ipxe cmd:dnsmasq cmd:python3

LAB_IMPAIRMENT="loss=5 dup=5 reorder=10 delay=1 jitter=1"
BOOT_LIMIT=${ND_BOOT_TIMEOUT:-420}
LAB_VM_TIMEOUT=$((BOOT_LIMIT + 60))

e2e_build

# lab_image: the e2e image (tests/e2e-lib.sh) plus /e2e/lab-data (4 MiB of
# random bytes) and the hook /e2e/lab.sh, which runs the e2e guest script
# and then prints the file's MD5.  Sets LAB_DATA_SUM.
lab_image() {
	mkdir -p "$ND_TMP/guest"
	head -c 4M /dev/urandom >"$ND_TMP/guest/lab-data"
	LAB_DATA_SUM=$(md5sum <"$ND_TMP/guest/lab-data" | cut -d' ' -f1)
	cat >"$ND_TMP/guest/lab.sh" <<'HOOK'
#!/bin/sh
# t-lab.sh's hook: the e2e report, then the checksum of a file the host knows.
/e2e/guest.sh
echo "E2E-LAB-SUM $(md5sum </e2e/lab-data | cut -d' ' -f1)"
HOOK
	chmod +x "$ND_TMP/guest/lab.sh"
	e2e_image "$ND_TMP/demo.img" &&
		set_kernel_append "$ND_TMP/demo.img" "netdisk.test=poweroff panic=-1 netdisk.test.hook=/e2e/lab.sh"
}

lab_image || { fail lab-image "cannot build the test image"; exit 1; }
lab_up "$ND_TMP" || { fail lab-up "no namespace or bridge"; exit 1; }
lab_tftp &&
	"$ND_BUILD/netdisk" patch "$LAB_DIR/tftp/netdisk.efi" --boot-path '\EFI\E2E\FWMARK.EFI' >/dev/null ||
	{ fail lab-tftp "cannot fill the TFTP root"; exit 1; }
lab_dnsmasq || { fail lab-dnsmasq "$(tail -n 3 "$LAB_DIR/dnsmasq.log")"; exit 1; }
# Multicast on, as a lab would run it for a storm: the stubs take the
# firmware phase's blocks from the group (netdisk.efi, and netdisk.pxe on
# its own virtio-net driver), and must boot as well as without it.
printf 'multicast = always\nmulticast-group = 239.255.81.1\n' >"$ND_TMP/lab.conf"
lab_netdiskd --config "$ND_TMP/lab.conf" --state-dir "$ND_TMP/state" --trace-dir "$ND_TMP/traces" \
	--mode volatile "demo=$ND_TMP/demo.img" ||
	{ fail lab-netdiskd "$(cat "$LAB_DIR/server.log")"; exit 1; }

declare -A VM_FW=() VM_MAC=() VM_START=()
# vm NAME FIRMWARE: a lab VM with its own MAC.
vm() {
	VM_FW[$1]=$2
	VM_START[$1]=$(date +%s)
	VM_MAC[$1]=$(printf '52:54:00:1a:b0:%02x' "${#VM_MAC[@]}")
	lab_vm "$1" "$2" "${VM_MAC[$1]}"
}

# stub_fits NAME: the VM ran the stub for its firmware (dnsmasq's option 93
# mapping) and that stub went to the next-server, where netdiskd listens.
stub_fits() {
	local banner='^netdisk\.pxe: disk over the network'
	[ "${VM_FW[$1]}" = uefi ] && banner='^netdisk: UEFI network disk'
	console_has "$1" "$banner" || { echo "no '$banner' on the console: wrong boot file?"; grep -a 'Filename\|tftp' "$LAB_DIR/$1.log" | head -n 3; return 1; }
	console_has "$1" "^netdisk: attaching to ${LAB_ADDR//./\\.}:$LAB_PORT " ||
		{ echo "the stub did not go to the next-server $LAB_ADDR:$LAB_PORT"; return 1; }
}

# data_sum NAME: the guest read the 4 MiB file with the right MD5.
data_sum() {
	local got
	got=$(e2e_value "$1" E2E-LAB-SUM)
	[ "$got" = "$LAB_DATA_SUM" ] || { echo "guest MD5 '$got', file's $LAB_DATA_SUM"; return 1; }
}

# boot_checks STORM NAME...: every VM stopped by itself within the limit and
# reports a right boot.
boot_checks() {
	local storm=$1 name
	shift
	for name in "$@"; do
		check "$storm: $name (${VM_FW[$name]}) powers off by itself" lab_vm_wait "$name" "$BOOT_LIMIT"
		echo "# $name: last console output $(($(stat -c %Y "$LAB_DIR/$name.log") - VM_START[$name])) s after its start"
	done
	for name in "$@"; do
		check "$storm: $name (${VM_FW[$name]}) got its firmware's stub, server from next-server" stub_fits "$name"
		check "$storm: $name (${VM_FW[$name]}) root on /dev/nbd0pN, agent on the stub's session" \
			e2e_booted "$name" "${VM_MAC[$name]}" /e2e/lab.sh
		check "$storm: $name (${VM_FW[$name]}) firmware-phase write read by Linux" e2e_fw_sector "$name"
		check "$storm: $name (${VM_FW[$name]}) stock nbd-client reads the same disk" e2e_nbd_client "$name"
		check "$storm: $name (${VM_FW[$name]}) 4 MiB file's MD5 right" data_sum "$name"
	done
}

# Storm 1: plain ports; the late VM starts when the first root is up.
vm s1-bios-a bios
vm s1-uefi-a uefi
vm s1-bios-b bios
if lab_wait "$BOOT_LIMIT" eval 'console_has s1-bios-a "^NETDISK-ROOT-OK" || console_has s1-uefi-a "^NETDISK-ROOT-OK" || console_has s1-bios-b "^NETDISK-ROOT-OK"'; then
	pass "storm 1: a first VM reached its root"
else
	fail "storm 1: a first VM reached its root" "none within $BOOT_LIMIT s"
fi
vm s1-uefi-late uefi
boot_checks "storm 1" s1-bios-a s1-uefi-a s1-bios-b s1-uefi-late

# boot_traced NAME: netdiskd recorded the VM's boot (docs/server.md): one
# trace of its session, with the stub's UDP reads (the disk's sector 0
# among them) and then only the OS's NBD reads.
boot_traced() {
	local mac=${VM_MAC[$1]//:/} files
	files=("$ND_TMP/traces/demo-$mac-"*.trace)
	[ ${#files[@]} = 1 ] && [ -f "${files[0]}" ] || { echo "not one trace for $mac: $(ls "$ND_TMP/traces")"; return 1; }
	grep -v '^#' "${files[0]}" | awk '
		$4 == "udp" { udp++; if (nbd) late++; if ($2 == 0) zero = 1 }
		$4 == "nbd" { nbd++ }
		END { printf "udp %d nbd %d udp-after-nbd %d lba0 %d\n", udp, nbd, late, zero
		      exit !(udp > 0 && nbd > 0 && !late && zero) }'
}
for name in s1-bios-a s1-uefi-a; do
	check "storm 1: $name's boot trace: stub reads over UDP from sector 0, then the OS's over NBD" boot_traced "$name"
done

# Storm 2: every port impaired in both directions.
lab_impair "$LAB_IMPAIRMENT"
vm s2-bios-a bios
vm s2-uefi-a uefi
vm s2-uefi-b uefi
boot_checks "storm 2 ($LAB_IMPAIRMENT)" s2-bios-a s2-uefi-a s2-uefi-b

# port_impaired NAME: the VM's port dropped, duplicated and reordered frames
# both ways (the faults were there, not just configured).
port_impaired() {
	local stats=$LAB_DIR/$1.vm/port.stats direction key
	[ -f "$stats" ] || { echo "no $stats"; return 1; }
	for direction in to_vm from_vm; do
		for key in dropped duplicated reordered; do
			grep -qE "^$direction .*\b$key=[1-9]" "$stats" || { echo "$direction $key is 0: $(cat "$stats")"; return 1; }
		done
	done
}
for name in s2-bios-a s2-uefi-a s2-uefi-b; do
	check "storm 2: $name's port really lost, duplicated and reordered frames" port_impaired "$name"
done

# group_used: every UEFI VM and the BIOS ones on clean ports joined the
# group, those BIOS ones left it when GRUB read the E820 map to start Linux
# (docs/bios.md, Multicast), a BIOS VM whose probe lost datagrams stayed on
# unicast, and the server sent data to the group (the storms above booted
# right with multicast on).
group_used() {
	local name line m
	for name in "${!VM_FW[@]}"; do
		if [ "${VM_FW[$name]}" = bios ] && console_has "$name" '^netdisk: .* get lost here'; then
			console_has "$name" '^netdisk: datagrams get lost here: multicast group not joined' ||
				{ echo "$name: lossy, yet $(console_text "$ND_TMP/$name.log" | grep -a '^netdisk: multicast' | head -n 1)"; return 1; }
			continue
		fi
		console_has "$name" '^netdisk: multicast group 239\.255\.81\.1:[0-9]* joined' ||
			{ echo "$name did not join: $(console_text "$ND_TMP/$name.log" | grep -a '^netdisk:' | head -n 5)"; return 1; }
		[ "${VM_FW[$name]}" = bios ] || continue
		console_has "$name" '^netdisk: multicast group 239\.255\.81\.1 left:' ||
			{ echo "$name did not leave: $(console_text "$ND_TMP/$name.log" | grep -a '^netdisk: multicast' | tail -n 3)"; return 1; }
	done
	line=$("$ND_BUILD/netdisk" status --json --control "$ND_TMP/state/control" |
		grep -o '"unicast_bytes":[0-9]*,"multicast_bytes":[0-9]*')
	m=$(grep -o '"multicast_bytes":[0-9]*' <<<"$line" | cut -d: -f2)
	[ "${m:-0}" -gt 0 ] || { echo "no multicast bytes: $line"; return 1; }
	echo "# server: $line"
}
check "storms with multicast on: the VMs joined (a BIOS one on a lossy port not), the BIOS ones left at the hand-over, the group carried data" group_used

# nothing_left NS: no namespace NS, no process of it, no tap or bridge of it.
nothing_left() {
	local ns=$1
	if ip netns list | awk '{ print $1 }' | grep -qx "$ns"; then
		echo "namespace $ns still there: $(ip netns pids "$ns" | tr '\n' ' ')"
		return 1
	fi
}
ns=$LAB_NS
lab_down
check "lab_down: namespace, bridge, taps and processes gone" nothing_left "$ns"
check "lab_down: no VM, dnsmasq or netdiskd of the lab runs" \
	eval "! pgrep -f '$ND_TMP/(tftp|state|[a-z0-9-]+\\.vm/)' >/dev/null"

# A lab in another shell, with one VM booting: interrupted by TERM it
# removes everything; killed by KILL, the next lab_up sweeps its namespace.
# lab_shell DIR: a shell running a lab (dnsmasq, netdiskd, a VM) until told
# to stop; it prints the namespace name once the VM runs.
lab_shell() {
	bash -c '. "$1"; lab_up "$2" && lab_tftp && lab_dnsmasq && lab_netdiskd --state-dir "$2/state" "demo=$3" &&
		lab_vm v bios 52:54:00:1a:b0:ee && echo "$LAB_NS" >"$2/ns" && lab_wait 300 false' \
		lab-shell "$ND_TOP/qemu-scripts/lab-lib.sh" "$1" "$ND_TMP/demo.img" >"$1.out" 2>&1 &
	LAB_SHELL_PID=$!
	ND_PIDS+=("$LAB_SHELL_PID")
	wait_for 30 test -s "$1/ns" || { echo "the lab in another shell did not start: $(tail -n 3 "$1.out")"; return 1; }
}

# qemu_of DIR: the PID of that lab's QEMU, if it runs.
qemu_of() { pgrep -f "^timeout .*qemu-system-x86_64 .*$1/v\\.vm" || pgrep -f "^qemu-system-x86_64 .*$1/v\\.vm"; }

interrupted_lab_cleans_up() {
	local dir=$ND_TMP/term-lab ns
	lab_shell "$dir" || return 1
	ns=$(cat "$dir/ns")
	wait_for 20 qemu_of "$dir" || { echo "its VM did not start"; return 1; }
	kill -TERM "$LAB_SHELL_PID"
	wait_for 30 eval "! kill -0 $LAB_SHELL_PID" || { echo "the lab shell did not exit on TERM"; return 1; }
	nothing_left "$ns" || return 1
	! qemu_of "$dir" >/dev/null || { echo "its QEMU still runs"; return 1; }
}
check "interrupted lab (TERM) removes its VM, servers and namespace" interrupted_lab_cleans_up

killed_lab_is_swept() {
	local dir=$ND_TMP/kill-lab ns
	lab_shell "$dir" || return 1
	ns=$(cat "$dir/ns")
	kill -KILL "$LAB_SHELL_PID"
	wait "$LAB_SHELL_PID" 2>/dev/null
	ip netns list | grep -q "^$ns" || { echo "namespace already gone: the KILL test proves nothing"; return 1; }
	lab_sweep 2>/dev/null
	nothing_left "$ns" || return 1
	wait_for 10 eval "! qemu_of '$dir'" || { echo "its QEMU still runs"; return 1; }
}
check "killed lab (KILL): the next lab sweeps its namespace and processes" killed_lab_is_swept
