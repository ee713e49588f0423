#!/usr/bin/env bash
# Boots the demo image as a LOCAL disk under SeaBIOS and OVMF: initramfs, then the ext4 root on the disk, then a clean power-off.
. "$(dirname "$0")/lib.sh"
requires cmd:syslinux cmd:mcopy
. "$(dirname "$0")/image-lib.sh"

build_demo_images

# boot_to_root FIRMWARE [SOURCE]: boots a private copy of SOURCE (default
# demo-test.img) and checks the console and what the guest left on its disk.
boot_to_root() {
	local firmware=$1 source=${2:-$ND_BUILD/demo-test.img} name initramfs_at root_at records image
	name=boot-$firmware-$(basename "$source" .img)
	image=$ND_TMP/$name.img
	cp --sparse=always "$source" "$image"
	boot_disk_until_off "$name" "$firmware" "$image" || { echo "VM did not power off by itself (status $?)"; tail -n 5 "$ND_TMP/$name.log"; return 1; }
	console_has "$name" '^NETDISK-INITRAMFS-OK kernel ' || { echo "no initramfs marker"; return 1; }
	console_has "$name" '^NETDISK-ROOT-FOUND /dev/vda2$' || { echo "initramfs did not mount /dev/vda2 as root"; return 1; }
	console_has "$name" '^NETDISK-ROOT-OK root /dev/vda2 ' || { echo "no root marker for /dev/vda2"; return 1; }
	console_has "$name" 'NETDISK-POWEROFF' || { echo "root system did not reach its power-off"; return 1; }
	initramfs_at=$(console_line "$name" '^NETDISK-INITRAMFS-OK')
	root_at=$(console_line "$name" '^NETDISK-ROOT-OK')
	[ "$initramfs_at" -lt "$root_at" ] || { echo "root marker came before the initramfs one"; return 1; }
	extract_partition "$image" 2 "$ND_TMP/$name-root.img" || return 1
	e2fsck -fn "$ND_TMP/$name-root.img" >/dev/null || { echo "root file system not clean after the guest's power-off"; return 1; }
	records=$(debugfs -R 'cat /var/log/netdisk-boots' "$ND_TMP/$name-root.img" 2>/dev/null)
	[ "$(grep -c . <<<"$records")" -eq 1 ] && grep -q '^boot 1 root /dev/vda2 cmdline .*netdisk.test=poweroff' <<<"$records" ||
		{ echo "boot record not written to the disk: '$records'"; return 1; }
}

check image-boot-bios-local-disk boot_to_root bios
check image-boot-uefi-local-disk boot_to_root uefi

# --kernel-flavour generic: Debian's full kernel drives real-hardware NICs;
# an e1000 (absent from the cloud kernel) must get the DHCP lease.
generic_kernel_boots_with_e1000() {
	local image=$ND_TMP/generic.img name=boot-generic-e1000
	"$ND_TOP/tools/mkimage" --cache "${NETDISK_CACHE:-$ND_BUILD/cache}" --kernel-flavour generic \
		--append "netdisk.test=poweroff panic=-1" "$image" >"$ND_TMP/generic-build.log" 2>&1 ||
		{ echo "mkimage --kernel-flavour generic failed: $(tail -n 3 "$ND_TMP/generic-build.log")"; return 1; }
	mcopy -i "$(esp_at "$image")" ::/initrd.gz "$ND_TMP/generic-initrd.gz" || return 1
	zcat "$ND_TMP/generic-initrd.gz" | cpio -it --quiet | grep -q '/e1000\.ko$' || { echo "no e1000.ko in the initramfs"; return 1; }
	timeout "${ND_BOOT_TIMEOUT:-180}" "$ND_TOP/qemu-scripts/boot-disk" --nic e1000 --log "$ND_TMP/$name.log" "$image" ||
		{ echo "VM did not power off by itself"; tail -n 5 "$ND_TMP/$name.log"; return 1; }
	console_has "$name" '^NETDISK-INITRAMFS-OK kernel [^ ]*[0-9]-amd64$' || { echo "not the generic kernel"; return 1; }
	console_has "$name" '^NETDISK-NET-OK eth0 10\.0\.2\.15 dhcp$' || { echo "no DHCP lease through the e1000"; return 1; }
	console_has "$name" '^NETDISK-ROOT-OK root /dev/vda2 ' || { echo "root system not up (ext4 is a module here)"; return 1; }
}

check image-boot-bios-generic-kernel-e1000 generic_kernel_boots_with_e1000

# The GRUB alternative for BOOTX64.EFI must boot the same way under OVMF.
grub_image=$ND_TMP/grub-test.img
if "$ND_TOP/tools/mkimage" --cache "${NETDISK_CACHE:-$ND_BUILD/cache}" --uefi-loader grub \
	--append "netdisk.test=poweroff panic=-1" "$grub_image" >"$ND_TMP/grub-build.log" 2>&1; then
	check image-boot-uefi-grub-local-disk boot_to_root uefi "$grub_image"
else
	fail image-boot-uefi-grub-local-disk "mkimage --uefi-loader grub failed: $(tail -n 3 "$ND_TMP/grub-build.log" | tr '\n' ' ')"
fi
