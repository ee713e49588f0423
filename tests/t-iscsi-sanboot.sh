#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# iPXE's own `sanboot iscsi:` (QEMU's iPXE ROM under SeaBIOS, no netdisk stub)
# boots the demo image from netdiskd's iSCSI target, and gets netdisk's
# per-client view: its initiator name, set by the iPXE script, is mapped by
# `iscsi-initiator` to a [client] section (a persistent tester), so it reads
# the image's test version and writes into its own overlay.  The client's
# login takes mutual CHAP (iPXE's username/password and
# reverse-username/reverse-password settings).
#
# The test version differs from production by its first sectors, written
# with the admin key by the admin's client (a maintenance client): the e2e firmware
# marker MBR (tests/e2e/fwmark-mbr.asm) in sector 0, this run's marker in
# sector 1, the real MBR in sector 3.  Booting that version, the marker MBR
# copies sector 1 to sector 2 through iPXE's INT 13h (an iSCSI WRITE), then
# chains to syslinux, which loads the kernel.  So the marker found in sector 2
# of the client's view afterwards proves three things at once: the client
# got the test version, the firmware phase wrote over iSCSI, and the write
# went to the client's overlay (production and the image file unchanged).
#
# Then a second VM, under OVMF with iPXE's EFI ROM, boots the same image as
# another (volatile, production) client: syslinux.efi reads the kernel in one
# BlockIo call, which iPXE sends as one 14 MiB READ, longer than the block
# limits page's maximum transfer; netdiskd streams it in pieces.
# Two VM boots (about 25 s each under TCG).
. "$(dirname "$0")/lib.sh"
requires qemu ovmf ipxe cmd:python3 cmd:syslinux cmd:mcopy
. "$(dirname "$0")/image-lib.sh"

INI=$ND_TOP/tests/iscsi-initiator.py
PFX=iqn.2026-01.org.netdisk
MAC=52:54:00:5b:00:01
VM_IQN=iqn.2010-04.org.ipxe:netdisk-sanboot-test
ADMIN_IQN=iqn.2000-01.org.netdisk.test:admin
OTHER_IQN=iqn.2000-01.org.netdisk.test:production
UEFI_MAC=52:54:00:5b:00:02
UEFI_IQN=iqn.2010-04.org.ipxe:netdisk-sanboot-uefi
VM_SECRET=vm-secret-$RANDOM-0123
TARGET_SECRET=target-secret-$RANDOM-4567

make -s -C "$ND_TOP" BUILD="$ND_BUILD" "$ND_BUILD/netdiskd" "$ND_BUILD/netdisk" \
	"$ND_BUILD/tests/fwmark-mbr.bin" demo-test-image >"$ND_TMP/make.log" 2>&1 ||
	{ fail sanboot-build "$(tail -n 5 "$ND_TMP/make.log" | tr '\n' ' ')"; exit 1; }
cd "$ND_TMP" || exit 1
cp --sparse=always "$ND_BUILD/demo-test.img" demo.img
base_sum=$(sha256sum <demo.img)
IPORT=$(free_port)
cat >sanboot.conf <<CONF
state-dir = $ND_TMP/state
iscsi-listen = 127.0.0.1:$IPORT
[image demo]
path = demo.img
mode = volatile
[client $MAC]
iscsi-initiator = $VM_IQN
mode = persistent
tester = yes
iscsi-chap-user = sanboot-vm
iscsi-chap-secret = $VM_SECRET
iscsi-chap-target-user = netdisk-target
iscsi-chap-target-secret = $TARGET_SECRET
[client 02:00:00:00:5b:0a]
iscsi-initiator = $ADMIN_IQN
mode = maintenance
[client 02:00:00:00:5b:0b]
iscsi-initiator = $OTHER_IQN
[client $UEFI_MAC]
iscsi-initiator = $UEFI_IQN
CONF
start_server server --config sanboot.conf && wait_for 10 grep -q 'iSCSI target on' server.log ||
	{ fail sanboot-server "$(cat server.log)"; exit 1; }
P=127.0.0.1:$IPORT
ND=("$ND_BUILD/netdisk")
CONTROL=(--control state/control)

# sectors FILE FIRST COUNT: COUNT sectors of FILE from sector FIRST, on stdout.
sectors() { dd if="$1" bs=512 skip="$2" count="$3" status=none; }

# The test version: the marker MBR (its 440 bytes of code before the image's
# own partition table), the marker, sector 2 as it is, the real MBR.
MARK=SANBOOT-FW-MARK-$(od -An -tx1 -N8 /dev/urandom | tr -d ' \n')
{
	cat "$ND_BUILD/tests/fwmark-mbr.bin" && sectors demo.img 0 1 | tail -c +441
	printf '%s' "$MARK" | dd bs=512 conv=sync status=none
	sectors demo.img 2 1
	sectors demo.img 0 1
} >head.bin
# Maintenance mode needs the admin key (admin-key = auto, docs/security.md):
# iSCSI has no way to present it, so the admin initiator is refused there,
# and the admin writes the version with the key netdiskd made.
"${ND[@]}" image new-version demo --note sanboot "${CONTROL[@]}" >new.out 2>&1 ||
	{ fail sanboot-new-version "$(cat new.out)"; exit 1; }
check_fails sanboot-maintenance-over-iscsi-refused 3 "login status 0x0202" \
	"$INI" "$P" "$PFX:demo" --initiator "$ADMIN_IQN" write 0 head.bin
"${ND[@]}" write "127.0.0.1:$ND_PORT" 0 -i head.bin --mac 02:00:00:00:5b:0a --key state/admin.key \
	--timeout 10 >w.out 2>&1 &&
	"${ND[@]}" image promote demo 2 --to test "${CONTROL[@]}" >promote.out 2>&1 &&
	pass sanboot-test-version-written-with-the-admin-key ||
	{ fail sanboot-test-version-written-with-the-admin-key "$(cat w.out promote.out 2>/dev/null)"; exit 1; }

# The VM: iPXE gets boot.ipxe from QEMU's TFTP, names itself, and sanboots.
mkdir tftp
cat >tftp/boot.ipxe <<IPXE
#!ipxe
set initiator-iqn $VM_IQN
set username sanboot-vm
set password $VM_SECRET
set reverse-username netdisk-target
set reverse-password $TARGET_SECRET
sanboot iscsi:10.0.2.2::$IPORT:0:$PFX:demo
IPXE
# What `netdisk status` says while the VM runs (the session ends with it).
watch_status() {
	while kill -0 "$1" 2>/dev/null; do
		"${ND[@]}" status "${CONTROL[@]}" 2>/dev/null | grep "^$MAC " >>status.out
		sleep 1
	done
}
timeout "${ND_BOOT_TIMEOUT:-240}" "$ND_TOP/qemu-scripts/boot-pxe" --tftp tftp --bootfile boot.ipxe \
	--mac "$MAC" --log vm.log >vm.qemu 2>&1 &
vm=$!
ND_PIDS+=("$vm")
touch status.out
watch_status "$vm" &
watcher=$!
wait "$vm"
vm_rc=$?
wait "$watcher"

# The boot: syslinux read its kernel over iSCSI, the kernel ran its
# initramfs, which (with no iSCSI initiator of its own) powers off.
[ "$vm_rc" -eq 0 ] && pass sanboot-vm-powered-off ||
	fail sanboot-vm-powered-off "status $vm_rc: $(tail -n 3 vm.log | tr '\r\n' '  ')"
console_has vm '^SYSLINUX ' && console_has vm '^Loading /initrd.gz\.\.\. ?ok$' &&
	pass sanboot-loader-read-kernel || fail sanboot-loader-read-kernel "$(head -c 300 vm.log)"
console_has vm '^NETDISK-INITRAMFS-OK kernel ' && console_has vm 'NETDISK-POWEROFF' &&
	pass sanboot-kernel-reached || fail sanboot-kernel-reached "$(tail -n 3 vm.log | tr '\r\n' '  ')"
console_has vm 'iBFT found at ' && pass sanboot-ipxe-ibft-seen-by-linux ||
	fail sanboot-ipxe-ibft-seen-by-linux "no 'iBFT found' in the kernel's log"

# netdiskd: the initiator name made it that client, on the test version.
grep -qE "iscsi login initiator=$VM_IQN ip=\S+ target=$PFX:demo chap=yes mac=$MAC " server.log &&
	grep -qE "attach mac=$MAC .* mode=persistent .* version=2$" server.log &&
	pass sanboot-initiator-mapped-to-client ||
	fail sanboot-initiator-mapped-to-client "$(grep -E 'iscsi|attach' server.log | tail -n 4)"
grep -qE "^$MAC .* os +iscsi " status.out && pass sanboot-status-transport-iscsi ||
	fail sanboot-status-transport-iscsi "$(tail -n 2 status.out)"

# Sector 2: the marker in the client's overlay (read back as that initiator:
# a persistent overlay outlives the session), not in production's view, not
# in the file; sector 0 is the marker MBR in the test version only.
"$INI" "$P" "$PFX:demo" --initiator "$VM_IQN" --chap "sanboot-vm:$VM_SECRET" read 0 2048 client.bin >ini.out 2>&1 &&
	[ "$(sectors client.bin 2 1 | tr -d '\0')" = "$MARK" ] && pass sanboot-firmware-write-in-overlay ||
	fail sanboot-firmware-write-in-overlay "$(cat ini.out) sector 2: $(sectors client.bin 2 1 | tr -d '\0' | head -c 40)"
"$INI" "$P" "$PFX:demo" --initiator "$OTHER_IQN" read 0 2048 other.bin >ini.out 2>&1 &&
	cmp -s other.bin <(sectors demo.img 0 4) && pass sanboot-production-unchanged ||
	fail sanboot-production-unchanged "$(cat ini.out)"

# UEFI: OVMF, iPXE's EFI ROM, the same image as the volatile client UEFI_MAC.
cat >tftp/uefi.ipxe <<IPXE
#!ipxe
set initiator-iqn $UEFI_IQN
sanboot iscsi:10.0.2.2::$IPORT:0:$PFX:demo
IPXE
timeout "${ND_BOOT_TIMEOUT:-240}" "$ND_TOP/qemu-scripts/boot-pxe" --uefi --tftp tftp \
	--bootfile uefi.ipxe --mac "$UEFI_MAC" --log uefi.log >uefi.qemu 2>&1
uefi_rc=$?
[ "$uefi_rc" -eq 0 ] && console_has uefi '^NETDISK-INITRAMFS-OK kernel ' &&
	console_has uefi 'NETDISK-POWEROFF' && pass sanboot-uefi-kernel-reached ||
	fail sanboot-uefi-kernel-reached "status $uefi_rc: $(sed 's/\x1b\[[0-9;=]*[A-Za-z]//g' uefi.log |
		grep -aoE 'Failed to read blocks: [0-9a-fx]+|NETDISK-[A-Z-]+' | head -n 3 | tr '\n' ' ')"
console_has uefi 'ACPI: iBFT ' && pass sanboot-uefi-ipxe-ibft-seen-by-linux ||
	fail sanboot-uefi-ipxe-ibft-seen-by-linux "no iBFT among the kernel's ACPI tables"
grep -qE "attach mac=$UEFI_MAC .* mode=volatile .* version=1$" server.log &&
	pass sanboot-uefi-client-on-production || fail sanboot-uefi-client-on-production \
	"$(grep "mac=$UEFI_MAC" server.log | head -n 2)"

[ "$(sha256sum <demo.img)" = "$base_sum" ] && pass sanboot-image-file-unchanged ||
	fail sanboot-image-file-unchanged "demo.img was written"
stop_server
