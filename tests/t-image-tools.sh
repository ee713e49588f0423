#!/usr/bin/env bash
# Checks tools/mkimage's other inputs: a user's own root directory (built and booted) and an existing raw disk (accepted or refused).
. "$(dirname "$0")/lib.sh"
requires cmd:qemu-img cmd:syslinux cmd:mcopy
. "$(dirname "$0")/image-lib.sh"

build_demo_images
mkimage=$ND_TOP/tools/mkimage

check image-tool-help bash -c "'$mkimage' --help | grep -q -- '--from-raw'"

# A minimal user root: busybox plus an init of the user's own that proves it
# ran by computing a marker, then powers off.
make_user_rootfs() {
	local dir=$1
	mkdir -p "$dir/bin" "$dir/sbin" "$dir/etc"
	cp /bin/busybox "$dir/bin/busybox"
	cat >"$dir/sbin/init" <<'INIT'
#!/bin/busybox sh
/bin/busybox echo "USER-ROOT-$((6 * 7)) $(/bin/busybox cat /etc/user-file)"
/bin/busybox sync
/bin/busybox poweroff -f
INIT
	chmod 755 "$dir/sbin/init"
	echo "from-the-user" >"$dir/etc/user-file"
}

user_rootfs_image_boots() {
	local image=$ND_TMP/user.img root=$ND_TMP/user-root.img
	make_user_rootfs "$ND_TMP/user-rootfs"
	"$mkimage" --cache "${NETDISK_CACHE:-$ND_BUILD/cache}" --rootfs "$ND_TMP/user-rootfs" --root-size 48 --append "panic=-1" "$image" || return 1
	extract_partition "$image" 2 "$root" || return 1
	[ "$(debugfs -R 'cat /etc/user-file' "$root" 2>/dev/null)" = from-the-user ] || { echo "user file not in the root partition"; return 1; }
	[ "$(partition_field "$image" 2 size)" -eq $((48 * 2048)) ] || { echo "--root-size 48 not honoured"; return 1; }
	boot_disk_until_off user-root bios "$image" || { echo "VM did not stop by itself"; tail -n 5 "$ND_TMP/user-root.log"; return 1; }
	console_has user-root '^NETDISK-ROOT-FOUND /dev/vda2$' || { echo "initramfs did not mount the user root"; return 1; }
	console_has user-root '^USER-ROOT-42 from-the-user' || { echo "the user's /sbin/init did not run"; return 1; }
}

# A tar archive as the root: contents and numeric owners carried over.
user_rootfs_tar_is_unpacked() {
	local image=$ND_TMP/user-tar.img root=$ND_TMP/user-tar-root.img
	tar -C "$ND_TMP/user-rootfs" --owner=1234 --group=4321 -czf "$ND_TMP/user-rootfs.tar.gz" . || return 1
	"$mkimage" --cache "${NETDISK_CACHE:-$ND_BUILD/cache}" --rootfs "$ND_TMP/user-rootfs.tar.gz" "$image" || return 1
	extract_partition "$image" 2 "$root" || return 1
	[ "$(debugfs -R 'cat /etc/user-file' "$root" 2>/dev/null)" = from-the-user ] || { echo "user file not in the root partition"; return 1; }
	debugfs -R 'stat /sbin/init' "$root" 2>/dev/null | grep -q 'User: *1234 *Group: *4321' || { echo "owners from the archive not kept"; return 1; }
	e2fsck -fn "$root" >/dev/null
}

# --initramfs-extra: a tree of the admin's lands in the initramfs as is.
initramfs_extra_is_included() {
	local image=$ND_TMP/extra.img listing
	mkdir -p "$ND_TMP/extra/etc/netdisk"
	echo site-setting >"$ND_TMP/extra/etc/netdisk/site.conf"
	"$mkimage" --cache "${NETDISK_CACHE:-$ND_BUILD/cache}" --initramfs-extra "$ND_TMP/extra" "$image" || return 1
	mcopy -i "$(esp_at "$image")" ::/initrd.gz "$ND_TMP/extra-initrd.gz" || return 1
	listing=$(zcat "$ND_TMP/extra-initrd.gz" | cpio -it --quiet)
	grep -qx etc/netdisk/site.conf <<<"$listing" || { echo "extra file missing from the initramfs"; return 1; }
	grep -qx init <<<"$listing" || { echo "the initramfs lost its /init"; return 1; }
}

# --set-append rewrites every boot menu of a built image and nothing else.
set_append_rewrites_menus() {
	local image=$ND_TMP/set-append.img esp menu
	cp --sparse=always "$ND_BUILD/demo-test.img" "$image"
	"$mkimage" --set-append "netdisk.break=initramfs quiet" "$image" || return 1
	esp=$(esp_at "$image")
	for menu in ::/syslinux/syslinux.cfg ::/EFI/BOOT/syslinux.cfg; do
		mtype -i "$esp" "$menu" | grep -qx '  APPEND console=tty0 console=ttyS0,115200 root=LABEL=ndroot rw netdisk.break=initramfs quiet' ||
			{ echo "$menu not rewritten (or the old --append kept)"; return 1; }
	done
	extract_partition "$image" 2 "$ND_TMP/set-append-root.img" && extract_partition "$ND_BUILD/demo-test.img" 2 "$ND_TMP/test-root.img" &&
		cmp "$ND_TMP/set-append-root.img" "$ND_TMP/test-root.img" || { echo "the root partition changed"; return 1; }
	! "$mkimage" --set-append x "$ND_TMP/gpt.img" 2>/dev/null || { echo "accepted a disk it did not build"; return 1; }
}

raw_image_is_copied() {
	local out=$ND_TMP/raw-copy.img
	"$mkimage" --from-raw "$ND_BUILD/demo.img" "$out" || return 1
	cmp "$ND_BUILD/demo.img" "$out" || { echo "copy differs from the source"; return 1; }
}

# Non-raw formats are converted: a qcow2 of the demo image comes back as it.
qcow2_image_is_converted() {
	qemu-img convert -O qcow2 "$ND_BUILD/demo.img" "$ND_TMP/demo.qcow2" || return 1
	"$mkimage" --from-raw "$ND_TMP/demo.qcow2" "$ND_TMP/from-qcow2.img" || return 1
	cmp "$ND_BUILD/demo.img" "$ND_TMP/from-qcow2.img" || { echo "converted disk differs from the original"; return 1; }
}

gpt_image_is_accepted() {
	local disk=$ND_TMP/gpt.img
	truncate -s 8M "$disk"
	printf 'label: gpt\nsize=4M, type=linux\n' | sfdisk --quiet "$disk" || return 1
	"$mkimage" --from-raw "$disk" "$ND_TMP/gpt-copy.img" || return 1
	cmp "$disk" "$ND_TMP/gpt-copy.img"
}

# refused DESCRIPTION FILE: mkimage --from-raw must fail and leave no output.
refused() {
	local out=$ND_TMP/refused.img
	rm -f "$out"
	if "$mkimage" --from-raw "$2" "$out" 2>"$ND_TMP/refused.err"; then
		echo "accepted $1"
		return 1
	fi
	[ ! -e "$out" ] || { echo "left $out behind for $1"; return 1; }
	grep -q . "$ND_TMP/refused.err" || { echo "no reason given for refusing $1"; return 1; }
}

truncate -s 1M "$ND_TMP/zeros.img"
head -c 1000 "$ND_BUILD/demo.img" >"$ND_TMP/short.img"
truncate -s 1M "$ND_TMP/no-partitions.img"
head -c 50M "$ND_BUILD/demo.img" >"$ND_TMP/truncated.img"
printf '\x55\xaa' | dd of="$ND_TMP/no-partitions.img" bs=1 seek=510 conv=notrunc status=none

check image-tool-user-rootfs user_rootfs_image_boots
check image-tool-user-rootfs-tar user_rootfs_tar_is_unpacked
check image-tool-initramfs-extra initramfs_extra_is_included
check image-tool-from-raw-mbr raw_image_is_copied
check image-tool-from-raw-gpt gpt_image_is_accepted
check image-tool-from-qcow2 qcow2_image_is_converted
check image-tool-set-append set_append_rewrites_menus
check image-tool-refuses-blank-disk refused "a blank disk" "$ND_TMP/zeros.img"
check image-tool-refuses-partial-sector refused "a file of 1000 bytes" "$ND_TMP/short.img"
check image-tool-refuses-empty-mbr refused "an MBR without partitions" "$ND_TMP/no-partitions.img"
check image-tool-refuses-truncated-disk refused "a disk cut short inside its root partition" "$ND_TMP/truncated.img"
check image-tool-refuses-directory refused "a directory" "$ND_TMP"
