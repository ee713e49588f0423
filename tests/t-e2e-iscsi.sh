#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# takeover = iscsi end to end (docs/handoff.md): netdisk.pxe (SeaBIOS+iPXE) and netdisk.efi
# (OVMF+iPXE) publish the iBFT netdiskd builds, Linux's iscsi_ibft shows it, iscsistart logs the
# kernel's initiator in to the session's target (with CHAP) and the root is mounted from the
# iSCSI disk, where the firmware phase's write is; a BIOS VM whose Linux finds no iBFT falls
# back to NBD and says so.  Round 1: the two BIOS VMs side by side; round 2: the UEFI one.
. "$(dirname "$0")/lib.sh"
requires qemu ipxe ovmf cmd:python3
. "$(dirname "$0")/image-lib.sh"
. "$(dirname "$0")/e2e-lib.sh"

MAC_I=52:54:00:e2:19:01 # takeover = iscsi: root on iSCSI
MAC_F=52:54:00:e2:19:02 # takeover = iscsi, but its initramfs never loads iscsi_ibft: NBD
MAC_U=52:54:00:e2:19:03 # takeover = iscsi under UEFI: root on iSCSI
PFX=iqn.2026-01.org.netdisk
STATUS=$ND_BUILD/netdisk

e2e_build
e2e_image "$ND_TMP/demo.img" || { fail e2e-iscsi-image "cannot build the test image"; exit 1; }
# The fallback image: the same, with a second initramfs archive appended whose
# module list (it replaces the first's) leaves iscsi_ibft out.
cp --sparse=always "$ND_TMP/demo.img" "$ND_TMP/noibft.img"
esp=$(esp_at "$ND_TMP/noibft.img")
mkdir -p "$ND_TMP/over/etc/netdisk"
export MTOOLS_SKIP_CHECK=1
if mcopy -i "$esp" ::/initrd.gz "$ND_TMP/initrd.gz" &&
	zcat "$ND_TMP/initrd.gz" | cpio -i --quiet --to-stdout etc/netdisk/modules |
		grep -vx iscsi_ibft >"$ND_TMP/over/etc/netdisk/modules" &&
	(cd "$ND_TMP/over" && echo etc/netdisk/modules | cpio -o -H newc -R 0:0 --quiet | gzip) >>"$ND_TMP/initrd.gz" &&
	mcopy -o -i "$esp" "$ND_TMP/initrd.gz" ::/initrd.gz; then
	:
else
	fail e2e-iscsi-image "cannot make the image without iscsi_ibft"
	exit 1
fi

IPORT=$(free_port)
cat >"$ND_TMP/e2e.conf" <<CONF
state-dir = $ND_TMP/state
iscsi-listen = 127.0.0.1:$IPORT
takeover = iscsi
[image demo]
path = demo.img
mode = volatile
[image noibft]
path = noibft.img
mode = volatile
[client $MAC_I]
image = demo
mode = persistent
iscsi-chap-user = e2e-iscsi
iscsi-chap-secret = e2e-secret-0123
[client $MAC_F]
image = noibft
[client $MAC_U]
image = demo
CONF
start_server server --config "$ND_TMP/e2e.conf" || { fail e2e-iscsi-server "$(cat "$ND_TMP/server.log")"; exit 1; }
e2e_tftp bios

# netdisk status while the VMs run: an iSCSI session is the stub's, in phase
# os via iscsi (polled: a VM powers off once its checks are done).
(
	for _ in $(seq 1 1200); do
		"$STATUS" status --control "$ND_TMP/state/control" 2>/dev/null >>"$ND_TMP/status.log"
		sleep 0.5
	done
) &
poller=$!
ND_PIDS+=($poller)
e2e_boot iscsi "$MAC_I"
e2e_boot noibft "$MAC_F"
e2e_wait
# Round 2: netdisk.efi, with the UEFI firmware-phase writer (tests/e2e/fwmark-efi.c).
e2e_tftp uefi
e2e_boot uefi "$MAC_U"
e2e_wait
kill "$poller" 2>/dev/null
wait "$poller" 2>/dev/null

# ibft_is NAME KEY VALUE: the guest's /sys/firmware/ibft/KEY.
ibft_is() {
	local got
	got=$(console_text "$ND_TMP/$1.log" | grep -a "E2E-IBFT $2 " | head -n 1)
	got=${got#*E2E-IBFT $2 }
	[ "$got" = "$3" ] || { echo "/sys/firmware/ibft/$2 is '$got', not '$3'"; return 1; }
}

# iscsi_booted NAME: the whole chain on the iSCSI side.
iscsi_booted() {
	local n=$1 mount
	console_has "$n" '^netdisk: iBFT for the OS.s iSCSI takeover \([0-9]+ bytes\)' || { echo "the stub published no iBFT"; return 1; }
	console_has "$n" '^NETDISK-NET-OK eth0 [0-9.]+ boot-table$' || { echo "no address from the boot table"; return 1; }
	console_has "$n" '^NETDISK-ISCSI-OK /dev/sd[a-z]+$' || { echo "no iSCSI takeover: $(grep -a ISCSI "$ND_TMP/$n.log" | head -n 2)"; return 1; }
	! console_has "$n" 'NETDISK-ATTACH-OK' || { echo "the NBD agent attached too"; return 1; }
	mount=$(e2e_value "$n" E2E-ROOT-MOUNT)
	[[ $mount =~ ^/dev/sd[a-z]+[0-9]+\ /\ ext4\ rw ]] || { echo "/ is not on an iSCSI disk: '$mount'"; return 1; }
	[ "$(e2e_value "$n" E2E-DISK-TRANSPORT)" = iscsi ] || { echo "the root disk is not under an iSCSI session"; return 1; }
	[ -n "$(e2e_wrote "$n")" ] || { echo "the root was not writable"; return 1; }
	console_has "$n" '^NETDISK-HOOK-DONE /e2e/guest.sh status 0$' || { echo "guest script did not finish"; return 1; }
	console_has "$n" '^NETDISK-POWEROFF' || { echo "did not power off"; return 1; }
}

# ibft_seen NAME MAC CHAPTYPE: Linux's /sys/firmware/ibft holds what the stub published.
ibft_seen() {
	local n=$1 mac=$2 ini
	ini=$PFX:client:$(echo "$mac" | tr -d :)
	ibft_is "$n" ethernet0/ip-addr 10.0.2.15 && ibft_is "$n" ethernet0/prefix-len 24 &&
		ibft_is "$n" ethernet0/gateway 10.0.2.2 && ibft_is "$n" ethernet0/mac "$mac" &&
		ibft_is "$n" ethernet0/dhcp 10.0.2.2 && ibft_is "$n" ethernet0/primary-dns 10.0.2.3 &&
		ibft_is "$n" ethernet0/device 0000:00:03.0 && ibft_is "$n" initiator/initiator-name "$ini" &&
		ibft_is "$n" target0/ip-addr 10.0.2.2 && ibft_is "$n" target0/port "$IPORT" &&
		ibft_is "$n" target0/lun 00000000 && ibft_is "$n" target0/chap-type "$3" &&
		ibft_is "$n" target0/nic-assoc 0 && ibft_is "$n" target0/target-name "$PFX:session:TOKEN"
}

# iscsi_server_side MAC: the login continued the stub's session (with CHAP
# when chap=yes is given), netdisk status showed it in phase os via iscsi,
# and no NBD connection was made for it.
iscsi_server_side() {
	grep -qE "iscsi login initiator=$PFX:client:$(echo "$1" | tr -d :) .*target=$PFX:session:[0-9a-f]{8}${2:+ $2} mac=$1" "$ND_TMP/server.log" ||
		{ echo "no login on the session: $(grep 'iscsi login' "$ND_TMP/server.log" | tail -n 2)"; return 1; }
	grep -qE "^$1 .* os +iscsi " "$ND_TMP/status.log" || { echo "status never showed it in os via iscsi"; return 1; }
	! grep -q "nbd connect mac=$1 " "$ND_TMP/server.log" || { echo "an NBD connection was made too"; return 1; }
}

check "bios: boot to root on the iSCSI disk the iBFT names" iscsi_booted iscsi
# Linux found the table in the stub's resident part, not a stale copy in
# base memory the stub gave back.
ibft_where() {
	local res at lo hi
	res=$(tr -d '\r' <"$ND_TMP/iscsi.log" | sed -n 's/.*netdisk: memory: resident \([0-9a-f]*\)-\([0-9a-f]*\) .*/\1 \2/p' | head -n 1)
	at=$(tr -d '\r' <"$ND_TMP/iscsi.log" | sed -n 's/.*iBFT found at 0x\([0-9a-f]*\)\./\1/p' | head -n 1)
	[ -n "$res" ] && [ -n "$at" ] || { echo "resident '$res', iBFT at '$at'"; return 1; }
	set -- $res
	lo=$((16#$1)) hi=$((16#$2)) at=$((16#$at))
	[ "$at" -ge "$lo" ] && [ "$at" -le "$hi" ] && [ $((at % 16)) -eq 0 ] ||
		{ printf 'iBFT at %x, resident %s-%s\n' "$at" "$1" "$2"; return 1; }
}
check "bios: the kernel found the iBFT in the stub's resident part, 16-byte aligned" ibft_where
check "bios: firmware-phase write read by Linux over iSCSI" e2e_fw_sector iscsi
check "bios: Linux sees the iBFT's NIC, initiator and target (CHAP)" ibft_seen iscsi "$MAC_I" 1
check "bios: the login continued the stub's session with CHAP; status os/iscsi" iscsi_server_side "$MAC_I" chap=yes
# The session's token (from the stub's session in the server's state): in no
# console line, and in no log line.
no_token_shown() {
	local tok
	tok=$(basename "$(grep -l "^mac=$MAC_I\$" "$ND_TMP"/state/sessions/* 2>/dev/null | head -n 1)")
	[[ $tok =~ ^[0-9a-f]{32}$ ]] || { echo "no session file of $MAC_I in the state directory"; return 1; }
	! grep -aq "$tok" "$ND_TMP/iscsi.log" || { echo "the token is on the console"; return 1; }
	! grep -q "$tok" "$ND_TMP/server.log" || { echo "the token is in the server's log"; return 1; }
}
check "bios: the session token is neither on the console nor in the log" no_token_shown

check "bios, no iBFT in Linux: falls back to NBD, saying so" \
	console_has noibft '^NETDISK-ISCSI-FALLBACK no iBFT from the firmware .*: taking the disk over by NBD$'
check "bios, no iBFT in Linux: boot to root on NBD" e2e_booted noibft "$MAC_F"
check "bios, no iBFT in Linux: firmware-phase write read by Linux" e2e_fw_sector noibft

check "uefi: boot to root on the iSCSI disk the iBFT (ACPI table) names" iscsi_booted uefi
check "uefi: firmware-phase write read by Linux over iSCSI" e2e_fw_sector uefi
check "uefi: Linux sees the iBFT's NIC, initiator and target" ibft_seen uefi "$MAC_U" 0
check "uefi: the login continued the stub's session; status os/iscsi" iscsi_server_side "$MAC_U"
