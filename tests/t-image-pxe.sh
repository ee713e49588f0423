#!/usr/bin/env bash
# Network-boots the demo image's kernel and initramfs on a disk-less VM (iPXE script over QEMU TFTP): the initramfs's NIC and DHCP path.
. "$(dirname "$0")/lib.sh"
requires cmd:mcopy
. "$(dirname "$0")/image-lib.sh"

build_demo_images
tftp=$ND_TMP/tftp
mkdir -p "$tftp"
mcopy -i "$(esp_at "$ND_BUILD/demo.img")" ::/linux ::/initrd.gz "$tftp/" || { fail image-pxe-files "cannot copy the kernel from the ESP"; exit 1; }
# initrd= names the initrd for iPXE's EFI loader; BIOS iPXE ignores it.
cat >"$tftp/boot.ipxe" <<'IPXE'
#!ipxe
kernel linux initrd=initrd.gz console=ttyS0 netdisk.test=poweroff rootwait=1 panic=-1
initrd initrd.gz
boot
IPXE

# pxe_boot_stops_without_root FIRMWARE: the initramfs comes up from the
# network, gets a DHCP lease on the virtio NIC, hears from the agent that
# there is no network disk (no boot table, no netdisk.server=), finds no
# local root either (no disk) and powers off as test mode asks.
pxe_boot_stops_without_root() {
	local firmware=$1 name=pxe-$1 flag=
	[ "$firmware" = uefi ] && flag=--uefi
	timeout "${ND_BOOT_TIMEOUT:-180}" "$ND_TOP/qemu-scripts/boot-pxe" $flag --tftp "$tftp" --bootfile boot.ipxe --log "$ND_TMP/$name.log" ||
		{ echo "VM did not power off by itself"; tail -n 5 "$ND_TMP/$name.log"; return 1; }
	console_has "$name" '^NETDISK-INITRAMFS-OK kernel ' || { echo "no initramfs marker"; return 1; }
	console_has "$name" '^NETDISK-NET-OK eth0 10\.0\.2\.15 dhcp$' || { echo "no DHCP lease on eth0"; return 1; }
	console_has "$name" '^netdisk: no network disk attached' || { echo "agent did not decline (or is missing)"; return 1; }
	console_has "$name" '^NETDISK-INITRAMFS-STOP root LABEL=ndroot not found' || { echo "did not stop for the missing root"; return 1; }
	console_has "$name" 'NETDISK-POWEROFF' || { echo "no power-off marker"; return 1; }
}

# BIOS only: t-image-agent boots the same way under OVMF.
check image-pxe-initramfs-bios pxe_boot_stops_without_root bios
