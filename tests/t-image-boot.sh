# Boots the demo image as a LOCAL disk under SeaBIOS and OVMF: initramfs, then the ext4 root on the disk, then a clean power-off.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/image-lib.sh"

build_demo_images

# boot_to_root FIRMWARE: boots a private copy of demo-test.img and checks
# the console and what the guest left on its disk.
boot_to_root() {
	local firmware=$1 name=boot-$1 image=$ND_TMP/$1.img initramfs_at root_at records
	cp --sparse=always "$ND_BUILD/demo-test.img" "$image"
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
