#!/usr/bin/env bash
# Checks the demo image's structure: MBR and partition table, FAT32 ESP with both boot loaders, ext4 root, initramfs contents.
. "$(dirname "$0")/lib.sh"
requires cmd:syslinux cmd:mcopy
. "$(dirname "$0")/image-lib.sh"

build_demo_images
image=$ND_BUILD/demo.img
esp=$ND_TMP/esp.img
root=$ND_TMP/root.img

check_partition_table() {
	local dump esp_start esp_size root_start root_size
	dump=$(sfdisk -d "$image") || return 1
	grep -q '^label: dos' <<<"$dump" || { echo "not an MBR (dos) label"; return 1; }
	[ "$(grep -c 'start=' <<<"$dump")" -eq 2 ] || { echo "expected 2 partitions: $dump"; return 1; }
	esp_start=$(partition_field "$image" 1 start)
	esp_size=$(partition_field "$image" 1 size)
	root_start=$(partition_field "$image" 2 start)
	root_size=$(partition_field "$image" 2 size)
	[ "$esp_start" -eq 2048 ] || { echo "ESP starts at $esp_start, not 1 MiB"; return 1; }
	[ "$(partition_field "$image" 1 type)" = ef ] || { echo "partition 1 is not type EF (ESP)"; return 1; }
	grep 'img1 :' <<<"$dump" | grep -q bootable || { echo "partition 1 is not active (syslinux mbr.bin boots the active one)"; return 1; }
	[ "$(partition_field "$image" 2 type)" = 83 ] || { echo "partition 2 is not type 83 (Linux)"; return 1; }
	[ "$root_start" -eq $((esp_start + esp_size)) ] || { echo "root does not follow the ESP"; return 1; }
	[ $(((root_start + root_size) * 512)) -eq "$(stat -c %s "$image")" ] || { echo "image size does not end at partition 2"; return 1; }
	[ $((esp_size / 2048)) -ge 64 ] && [ $((esp_size / 2048)) -le 100 ] || { echo "ESP is $((esp_size / 2048)) MiB"; return 1; }
}

check_mbr_code() {
	local mbr_bin
	for mbr_bin in /usr/lib/syslinux/mbr/mbr.bin /usr/lib/SYSLINUX/mbr.bin; do
		[ -f "$mbr_bin" ] && break
	done
	cmp -n 440 "$mbr_bin" "$image" || { echo "first 440 bytes are not syslinux mbr.bin"; return 1; }
	[ "$(od -An -tx1 -j510 -N2 "$image" | tr -d ' ')" = 55aa ] || { echo "no 55 AA boot signature"; return 1; }
}

check_esp() {
	local cfg
	extract_partition "$image" 1 "$esp" || { echo "cannot extract partition 1"; return 1; }
	fsck.fat -n "$esp" || return 1
	[ "$(dd if="$esp" bs=1 skip=82 count=8 status=none)" = "FAT32   " ] || { echo "ESP is not FAT32"; return 1; }
	mcopy -i "$esp" ::/EFI/BOOT/BOOTX64.EFI "$ND_TMP/bootx64.efi" || return 1
	cmp /usr/lib/SYSLINUX.EFI/efi64/syslinux.efi "$ND_TMP/bootx64.efi" || { echo "BOOTX64.EFI is not syslinux.efi"; return 1; }
	mdir -a -i "$esp" ::/EFI/BOOT/ldlinux.e64 || return 1
	mdir -a -i "$esp" ::/syslinux/ldlinux.sys || return 1
	mdir -a -i "$esp" ::/syslinux/ldlinux.c32 || return 1
	for cfg in ::/syslinux/syslinux.cfg ::/EFI/BOOT/syslinux.cfg; do
		mtype -i "$esp" "$cfg" | grep -q 'APPEND .*console=ttyS0.* root=LABEL=ndroot' || { echo "$cfg lacks console=ttyS0 root=LABEL=ndroot"; return 1; }
	done
	mcopy -i "$esp" ::/linux "$ND_TMP/linux" || return 1
	[ "$(dd if="$ND_TMP/linux" bs=1 skip=514 count=4 status=none)" = HdrS ] || { echo "/linux is not a bzImage"; return 1; }
	[ "$(dd if="$ND_TMP/linux" bs=1 count=2 status=none)" = MZ ] || { echo "/linux has no EFI stub (MZ)"; return 1; }
}

check_root() {
	extract_partition "$image" 2 "$root" || { echo "cannot extract partition 2"; return 1; }
	e2fsck -fn "$root" || return 1
	dumpe2fs -h "$root" 2>/dev/null | grep -q '^Filesystem volume name: *ndroot$' || { echo "root label is not ndroot"; return 1; }
	dumpe2fs -h "$root" 2>/dev/null | grep -q '^Filesystem features:.*extent' || { echo "root is not ext4 (no extents)"; return 1; }
	debugfs -R 'stat /sbin/init' "$root" 2>/dev/null | grep -q 'Fast link dest: "/bin/busybox"' || { echo "/sbin/init is not the busybox link"; return 1; }
	debugfs -R 'cat /etc/inittab' "$root" 2>/dev/null | grep -q '^ttyS0::respawn:' || { echo "no ttyS0 shell in /etc/inittab"; return 1; }
	debugfs -R 'stat /bin/busybox' "$root" 2>/dev/null | grep -q 'User: *0 *Group: *0' || { echo "/bin/busybox is not owned by root"; return 1; }
}

check_initramfs() {
	local listing
	mcopy -i "$esp" ::/initrd.gz "$ND_TMP/initrd.gz" || return 1
	listing=$(zcat "$ND_TMP/initrd.gz" | cpio -it --quiet) || { echo "initrd.gz is not a gzip'd cpio"; return 1; }
	for wanted in init bin/busybox bin/sh sbin/switch_root sbin/udhcpc etc/netdisk/udhcpc.script etc/netdisk/modules \
		'lib/modules/[^/]*/kernel/drivers/block/nbd.ko' 'lib/modules/[^/]*/kernel/drivers/net/virtio_net.ko' \
		'lib/modules/[^/]*/kernel/net/core/failover.ko' 'lib/modules/[^/]*/kernel/drivers/virtio/virtio_pci.ko' \
		'lib/modules/[^/]*/modules.dep'; do
		grep -qx "$wanted" <<<"$listing" || { echo "initramfs lacks $wanted"; return 1; }
	done
	mkdir -p "$ND_TMP/initramfs"
	(cd "$ND_TMP/initramfs" && zcat "$ND_TMP/initrd.gz" | cpio -id --quiet init 'lib/modules/*/modules.dep')
	cmp "$ND_TOP/linux/initramfs/init" "$ND_TMP/initramfs/init" || { echo "/init differs from linux/initramfs/init"; return 1; }
	grep -q '^kernel/drivers/net/virtio_net.ko:.*failover.ko' "$ND_TMP"/initramfs/lib/modules/*/modules.dep ||
		{ echo "modules.dep does not list virtio_net's dependencies"; return 1; }
}

check image-partition-table check_partition_table
check image-mbr-code check_mbr_code
check image-esp check_esp
check image-root-ext4 check_root
check image-initramfs check_initramfs
