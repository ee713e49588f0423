#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Boots a disk-less VM whose root is the demo image served by netdiskd over NBD, attached by the real netdisk-attach from the initramfs.
#
# No firmware stub here: iPXE loads the image's kernel and initramfs over
# TFTP.  First without a boot table, so the agent takes its fallback path
# (DHCP, then netdisk.server= and netdisk.image= from the kernel command
# line), with a copy of the same image as a local disk whose identical root
# label must lose to the network disk's; then with the boot table a UEFI
# stub would install, made by `netdisk boot-table` and handed to the VM as an
# ACPI table by QEMU, so the initramfs's boot-table addressing and the
# session takeover are exercised without any stub.
. "$(dirname "$0")/lib.sh"
requires qemu ovmf ipxe cmd:mcopy
. "$(dirname "$0")/image-lib.sh"

make -s -C "$ND_TOP" BUILD="$ND_BUILD" "$ND_BUILD/netdiskd" >"$ND_TMP/make-server.log" 2>&1 ||
	{ fail image-agent-build "$(tail -n 3 "$ND_TMP/make-server.log" | tr '\n' ' ')"; exit 1; }
build_demo_images
image=$ND_BUILD/demo-test.img
zcat <(mtype -i "$(esp_at "$image")" ::/initrd.gz) 2>/dev/null | cpio -it --quiet 2>/dev/null | grep -qx sbin/netdisk-attach ||
	{ fail image-agent-in-initramfs "demo-test.img has no sbin/netdisk-attach (IMAGE_AGENT)"; exit 1; }
pass image-agent-in-initramfs

served=$ND_TMP/served.img
cp --sparse=always "$image" "$served"
cp --sparse=always "$image" "$ND_TMP/local.img"
# Direct mode writes into the file, so the tests read the guests' writes
# back from it.
start_server agent-server --nbd-exports images --mode direct "demo=$served" || { fail image-agent-server "$(cat "$ND_TMP/agent-server.log")"; exit 1; }

tftp=$ND_TMP/tftp
mkdir -p "$tftp"
mcopy -i "$(esp_at "$image")" ::/linux ::/initrd.gz "$tftp/"
cat >"$tftp/boot.ipxe" <<IPXE
#!ipxe
kernel linux initrd=initrd.gz console=ttyS0 root=LABEL=ndroot rw netdisk.test=poweroff panic=-1 netdisk.server=10.0.2.2:$ND_PORT netdisk.image=demo
initrd initrd.gz
boot
IPXE

root_from_netdiskd() {
	local name=agent-root records
	timeout "${ND_BOOT_TIMEOUT:-180}" "$ND_TOP/qemu-scripts/boot-pxe" --tftp "$tftp" --bootfile boot.ipxe \
		--disk "$ND_TMP/local.img" --log "$ND_TMP/$name.log" ||
		{ echo "VM did not power off by itself"; tail -n 5 "$ND_TMP/$name.log"; return 1; }
	console_has "$name" '^NETDISK-NET-OK eth0 10\.0\.2\.15 dhcp$' || { echo "no DHCP address (no boot table here)"; return 1; }
	console_has "$name" '^NETDISK-ATTACH-OK$' || { echo "netdisk-attach did not attach"; grep -a 'netdisk-attach' "$ND_TMP/$name.log" | tail -n 3; return 1; }
	console_has "$name" '^NETDISK-ROOT-FOUND /dev/nbd0p2$' || { echo "root not found on /dev/nbd0p2"; return 1; }
	console_has "$name" '^NETDISK-ROOT-OK root /dev/nbd0p2 ' || { echo "root system not up on /dev/nbd0p2"; return 1; }
	console_has "$name" 'NETDISK-POWEROFF' || { echo "root system did not power off"; return 1; }
	extract_partition "$served" 2 "$ND_TMP/served-root.img" || return 1
	records=$(debugfs -R 'cat /var/log/netdisk-boots' "$ND_TMP/served-root.img" 2>/dev/null)
	grep -q '^boot 1 root /dev/nbd0p2 ' <<<"$records" || { echo "boot record not in the served image: '$records'"; return 1; }
	e2fsck -fn "$ND_TMP/served-root.img" >/dev/null || { echo "served root not clean after power-off"; return 1; }
	extract_partition "$ND_TMP/local.img" 2 "$ND_TMP/local-root.img" || return 1
	! debugfs -R 'stat /var/log/netdisk-boots' "$ND_TMP/local-root.img" 2>&1 | grep -q 'Inode:' ||
		{ echo "the local disk was written: root came from the wrong disk"; return 1; }
}

check image-agent-root-over-netdiskd root_from_netdiskd

# make_boot_table OUT MAC IMAGE: a session on IMAGE for MAC and its boot table,
# with the addresses rewritten to what the guest sees under QEMU user
# networking (the CLI attached from 127.0.0.1) and the checksum redone.
make_boot_table() {
	"$ND_BUILD/netdisk" boot-table "127.0.0.1:$ND_PORT" --image "$3" --mac "$2" -o "$1.host" >"$ND_TMP/boot-table.log" 2>&1 || return 1
	python3 - "$1.host" "$1" <<'PY'
import socket, sys
table = bytearray(open(sys.argv[1], "rb").read())
for offset, address in ((48, "10.0.2.15"), (52, "255.255.255.0"), (56, "10.0.2.2"), (60, "10.0.2.2")):
    table[offset:offset + 4] = socket.inet_aton(address)
table[9] = 0
table[9] = -sum(table) & 0xFF
open(sys.argv[2], "wb").write(table)
PY
}

# root_from_boot_table FIRMWARE MAC IMAGE FILE BOOT: boot number BOOT of
# IMAGE (served from FILE) by a machine with NIC MAC whose firmware
# installed the boot table.
root_from_boot_table() {
	local firmware=$1 mac=$2 image_name=$3 file=$4 boot=$5 name=agent-table-root-$1 records flag=
	[ "$firmware" = uefi ] && flag=--uefi
	make_boot_table "$ND_TMP/ndsk-$firmware.bin" "$mac" "$image_name" || { echo "netdisk boot-table failed: $(cat "$ND_TMP/boot-table.log")"; return 1; }
	timeout "${ND_BOOT_TIMEOUT:-180}" "$ND_TOP/qemu-scripts/boot-pxe" $flag --tftp "$tftp" --bootfile table.ipxe --mac "$mac" \
		--log "$ND_TMP/$name.log" -- -acpitable "file=$ND_TMP/ndsk-$firmware.bin" ||
		{ echo "VM did not power off by itself"; tail -n 5 "$ND_TMP/$name.log"; return 1; }
	console_has "$name" '^NETDISK-NET-OK eth0 10\.0\.2\.15 boot-table$' || { echo "address not taken from the boot table"; grep -a 'netdisk-attach' "$ND_TMP/$name.log" | tail -n 3; return 1; }
	console_has "$name" 'netdisk-attach: boot table in ACPI table NDSK' || { echo "agent did not read the ACPI boot table"; return 1; }
	console_has "$name" '^NETDISK-ATTACH-OK$' || { echo "netdisk-attach did not attach"; grep -a 'netdisk-attach' "$ND_TMP/$name.log" | tail -n 3; return 1; }
	console_has "$name" '^NETDISK-ROOT-OK root /dev/nbd0p2 ' || { echo "root system not up on /dev/nbd0p2"; return 1; }
	grep -q "nbd connect mac=$mac .*image=$image_name\$" "$ND_TMP/agent-server.log" || { echo "server saw no NBD connection for $mac's session"; return 1; }
	extract_partition "$file" 2 "$ND_TMP/served-root.img" || return 1
	records=$(debugfs -R 'cat /var/log/netdisk-boots' "$ND_TMP/served-root.img" 2>/dev/null)
	grep -q "^boot $boot root /dev/nbd0p2 " <<<"$records" || { echo "boot record $boot not in $file: '$records'"; return 1; }
}

sed -e 's/ netdisk.server=[^ ]*//' -e 's/ netdisk.image=[^ ]*//' "$tftp/boot.ipxe" >"$tftp/table.ipxe"
# SeaBIOS only: t-image-netboot has netdisk.efi install the table under OVMF.
check image-agent-root-from-boot-table-bios root_from_boot_table bios 52:54:00:4e:44:01 demo "$served" 2
