#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# BIOS stub, real boot chain: syslinux on a served disk loads the Debian kernel and initramfs via INT 13h.
#
# On virtio-net (the only one of the three NICs the cloud kernel drives) the
# boot goes on: the initramfs' netdisk-attach reads the stub's boot table and
# mounts root from the same session over NBD.
. "$(dirname "$0")/lib.sh"
requires qemu ipxe cmd:syslinux cmd:mcopy
. "$(dirname "$0")/bios/qemu.sh"

serve_demo_test boot
bios_tftp "$ND_TMP/tftp" "$ND_PORT"

# One VM per NIC model whose iPXE ROM QEMU ships; each gets its own MAC, so its own session.
n=0
for nic in virtio-net-pci e1000 rtl8139; do
	n=$((n + 1))
	bios_qemu "boot-$nic" "$nic,mac=52:54:00:00:b1:0$n" "$ND_TMP/tftp"
	log=$ND_TMP/boot-$nic.serial
	if [ "$nic" = virtio-net-pci ]; then
		wait_serial "boot-$nic" 240 "NETDISK-POWEROFF"
		check "boot $nic: Linux found the boot table" grep -q "NETDISK-NET-OK .* boot-table" "$log"
		check "boot $nic: root on the same session over NBD" grep -q "NETDISK-ROOT-OK" "$log"
	else
		wait_serial "boot-$nic" 240 "NETDISK-INITRAMFS-OK"
	fi
	stop_qemu
	check "boot $nic: netdisk banner" grep -q "image \"demo-test\" 100 MiB" "$log"
	check "boot $nic: syslinux started from drive 80h" grep -q "SYSLINUX" "$log"
	check "boot $nic: kernel and initramfs loaded via INT 13h" grep -q "NETDISK-INITRAMFS-OK" "$log"
	e820_hides_stub "boot $nic: E820 hides the stub from Linux" "$log"
done
