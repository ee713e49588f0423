#!/usr/bin/env bash
# UEFI stub under faults: no server at start, no ARP answer, a server that comes late, a server restarted mid-boot.
. "$(dirname "$0")/lib.sh"
requires qemu ovmf ipxe cmd:mcopy
. "$(dirname "$0")/efi-lib.sh"

# What each firmware prints once the boot file returned to it.
declare -A back_in_firmware=([ovmf]="BdsDxe: failed to start Boot0001" [ipxe]="Could not boot image")

# efi_setup NAME: disk image with bio-test.efi and a TFTP dir in $ND_TMP/NAME.
efi_setup() {
	mkdir -p "$ND_TMP/$1/tftp" && efi_pattern_disk "$ND_TMP/$1/disk.img" "$ND_BUILD/tests/bio-test.efi"
}

# Nobody answers: messages, retries for the attach timeout, back to the boot manager.
server_down() {
	local fw=$1 name=$1-down port
	efi_setup "$name" || return
	port=$(free_port)
	efi_patch_stub "$ND_BUILD/netdisk.efi" "$ND_TMP/$name/tftp/netdisk.efi" "$port" 4
	efi_qemu "$name" "$fw" "$ND_TMP/$name/tftp" 120 "${back_in_firmware[$fw]}"
	efi_check_console "efi-$fw-down-retries" "$name" "10.0.2.2:$port not answering, retrying"
	efi_check_console "efi-$fw-down-gives-up" "$name" \
		"no answer from the server in 4 s; back to the boot manager"
	efi_check_console "efi-$fw-down-firmware-goes-on" "$name" "${back_in_firmware[$fw]}"
}

# The server's address (on the link, 10.0.2.9) gets no ARP answer from QEMU:
# the stub says so on its own driver, gives the NIC back and falls back to
# the firmware's UDP4, which cannot reach it either, so the stub gives up
# after the attach timeout.
no_arp_answer() {
	local fw=$1 name=$1-noarp
	efi_setup "$name" || return
	cp "$ND_BUILD/netdisk.efi" "$ND_TMP/$name/tftp/netdisk.efi" &&
		"$ND_BUILD/netdisk" patch "$ND_TMP/$name/tftp/netdisk.efi" --server 10.0.2.9:10809 \
			--attach-timeout 4 >/dev/null
	efi_qemu "$name" "$fw" "$ND_TMP/$name/tftp" 120 "${back_in_firmware[$fw]}"
	efi_check_console "efi-$fw-noarp-reported" "$name" "netdisk: no ARP answer from 10.0.2.9"
	efi_check_console "efi-$fw-noarp-falls-back" "$name" \
		"netdisk: SNP would get no ARP answer either, falling back to the firmware's UDP4"
	efi_check_console "efi-$fw-noarp-gives-up" "$name" \
		"no answer from the server in 4 s; back to the boot manager"
}

# The server starts only once the stub is already retrying its ATTACH.
server_late() {
	local fw=$1 name=$1-late qemu
	efi_setup "$name" || return
	ND_PORT_FIXED=$(free_port)
	efi_patch_stub "$ND_BUILD/netdisk.efi" "$ND_TMP/$name/tftp/netdisk.efi" "$ND_PORT_FIXED"
	efi_qemu "$name" "$fw" "$ND_TMP/$name/tftp" 180 &
	qemu=$!
	wait_for 120 efi_console_has "$name" "not answering, retrying" &&
		start_server "$name-server" "$ND_TMP/$name/disk.img"
	wait "$qemu"
	unset ND_PORT_FIXED
	efi_check_console "efi-$fw-late-retried" "$name" "not answering, retrying"
	efi_check_console "efi-$fw-late-recovered" "$name" "netdisk: server answers again"
	check "efi-$fw-late-boots" efi_console_line "$name" "BIOTEST DONE"
	stop_server
}

# Mid-boot the network goes dark and the server restarts, losing the session:
# the stub retries, attaches again and every check still reads the right data.
server_restart() {
	local fw=$1 name=$1-restart relay_port qemu
	efi_setup "$name" || return
	start_server "$name-server" "$ND_TMP/$name/disk.img" || return
	relay_port=$(free_port)
	"$ND_TOP/tests/udp-outage.py" "$relay_port" "$ND_PORT" 150 "$ND_TMP/$name" \
		>"$ND_TMP/$name-relay.log" 2>&1 &
	ND_PIDS+=($!)
	wait_for 10 grep -q 'listening on' "$ND_TMP/$name-relay.log"
	efi_patch_stub "$ND_BUILD/netdisk.efi" "$ND_TMP/$name/tftp/netdisk.efi" "$relay_port"
	efi_qemu "$name" "$fw" "$ND_TMP/$name/tftp" 180 &
	qemu=$!
	if wait_for 120 test -e "$ND_TMP/$name/paused"; then
		stop_server
		wait_for 30 efi_console_has "$name" "not answering, retrying"
		ND_PORT_FIXED=$ND_PORT start_server "$name-server2" "$ND_TMP/$name/disk.img"
		touch "$ND_TMP/$name/resume"
	fi
	wait "$qemu"
	efi_check_console "efi-$fw-restart-retried" "$name" "not answering, retrying"
	efi_check_console "efi-$fw-restart-reattached" "$name" "netdisk: server lost the session, attaching again"
	efi_check_console "efi-$fw-restart-recovered" "$name" "netdisk: server answers again"
	for c in pattern-64k-reads pattern-large-read write-read-back; do
		efi_check_console "efi-$fw-restart-bio-$c" "$name" "BIOTEST PASS $c"
	done
	check "efi-$fw-restart-boots" efi_console_line "$name" "BIOTEST DONE"
	stop_server
}

for fw in ovmf ipxe; do
	server_down "$fw"
	no_arp_answer "$fw"
	server_late "$fw"
	server_restart "$fw"
done
