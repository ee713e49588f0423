#!/usr/bin/env bash
# GRUB 2 (Debian's grub-pc: boot.img + core.img, which read through a buffer at 0x70000) boots the kernel and initramfs through netdisk.pxe, on the own virtio-net driver and on e1000 through the PXE API.
. "$(dirname "$0")/lib.sh"
requires qemu ipxe cmd:grub-mkimage cmd:syslinux cmd:mcopy
. "$(dirname "$0")/image-lib.sh"
. "$(dirname "$0")/bios/qemu.sh"

make -s -C "$ND_TOP" BUILD="$ND_BUILD" "$ND_BUILD/netdiskd" "$ND_BUILD/netdisk" "$ND_BUILD/netdisk.pxe" \
	grub-test-image >"$ND_TMP/make.log" 2>&1 || {
	fail grub-build "$(tail -n 5 "$ND_TMP/make.log" | tr '\n' ' ')"
	exit 1
}
IMG=$ND_TMP/grub.img
cp --sparse=always "$ND_BUILD/grub-test.img" "$IMG"
check "grub: the image's MBR is GRUB's boot.img" \
	cmp -n 440 "$IMG" /usr/lib/grub/i386-pc/boot.img
start_server server --mode volatile "$IMG" || { fail grub-server "netdiskd did not start"; exit 1; }
bios_tftp "$ND_TMP/tftp" "$ND_PORT"

# Both VMs at once, with MACs of their own (a client's session goes by its
# MAC).  The virtio-net one goes on to its root on NBD and powers itself
# off (netdisk.test=poweroff); the e1000 one is stopped once its initramfs
# runs, as the cloud kernel has no e1000 driver and would wait for its root.
bios_qemu grub-virtio-net-pci virtio-net-pci,mac=52:54:00:9b:00:01 "$ND_TMP/tftp"
vm_virtio=$QEMU_PID
bios_qemu grub-e1000 e1000,mac=52:54:00:9b:00:02 "$ND_TMP/tftp"
wait_serial grub-e1000 "${ND_BOOT_TIMEOUT:-240}" "^NETDISK-INITRAMFS-OK"
stop_qemu
QEMU_PID=$vm_virtio
wait_serial grub-virtio-net-pci "${ND_BOOT_TIMEOUT:-240}" "^NETDISK-POWEROFF"
stop_qemu

for nic in virtio-net-pci e1000; do
	log=$ND_TMP/grub-$nic.serial
	check "grub $nic: the stub booted the disk" grep -aq "netdisk: booting drive 80h" "$log"
	check "grub $nic: every request answered" bash -c "! grep -aE 'netdisk: (read|write) at sector' '$log'"
	check "grub $nic: stub memory outside 500-7ffff" stub_memory_outside_low "$log"
	check "grub $nic: GRUB started the kernel and its initramfs" \
		grep -aq "^NETDISK-INITRAMFS-OK kernel" "$log"
done
check "grub virtio-net-pci: own driver" grep -aq "virtio-net at I/O .*, own driver" "$ND_TMP/grub-virtio-net-pci.serial"
check "grub e1000: through PXE's UDP API" \
	grep -aq "netdisk: network through the PXE stack's UDP API" "$ND_TMP/grub-e1000.serial"
check "grub virtio-net-pci: root on the network disk" \
	grep -aqE "^NETDISK-ROOT-FOUND /dev/nbd0p[0-9]" "$ND_TMP/grub-virtio-net-pci.serial"
