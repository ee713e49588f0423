# Helpers for the tests/t-image-*.sh suites: building the demo images, reading partitions and files out of a raw image.
# Source it after tests/lib.sh.

export MTOOLS_SKIP_CHECK=1

# Builds (or refreshes) build/demo.img and build/demo-test.img through make,
# so a suite run on its own still tests current images.
build_demo_images() {
	make -s -C "$ND_TOP" BUILD="$ND_BUILD" demo-image demo-test-image >"$ND_TMP/make.log" 2>&1 || {
		fail build-demo-images "$(tail -n 5 "$ND_TMP/make.log" | tr '\n' ' ')"
		exit 1
	}
}

# partition_field IMAGE N FIELD: start or size (sectors) of partition N, or
# its type, from sfdisk's dump.
partition_field() {
	sfdisk -d "$1" | awk -v n="$2" -v field="$3" -F'[:,]' '
		$1 ~ "[^0-9]" n " *$" {
			for (i = 2; i <= NF; i++) {
				split($i, kv, "=")
				gsub(/ /, "", kv[1]); gsub(/ /, "", kv[2])
				if (kv[1] == field) print kv[2]
			}
		}'
}

# extract_partition IMAGE N OUT: copies partition N of IMAGE to the file OUT.
extract_partition() {
	local start size
	start=$(partition_field "$1" "$2" start)
	size=$(partition_field "$1" "$2" size)
	[ -n "$start" ] && [ -n "$size" ] || return 1
	dd if="$1" of="$3" bs=512 skip="$start" count="$size" conv=sparse status=none
}

# esp_at IMAGE: the mtools image spec of IMAGE's first partition.
esp_at() {
	echo "$1@@$(($(partition_field "$1" 1 start) * 512))"
}

# set_kernel_append IMAGE ARGS: rewrites both syslinux configurations on the
# ESP of IMAGE so the kernel command line ends in ARGS instead of what
# mkimage put after the root= option.
set_kernel_append() {
	local image=$1 args=$2 cfg=$ND_TMP/syslinux.cfg
	mtype -i "$(esp_at "$image")" ::/syslinux/syslinux.cfg >"$cfg" || return 1
	sed -i "s|^\(  APPEND .* rw\).*|\1 $args|" "$cfg"
	mcopy -o -i "$(esp_at "$image")" "$cfg" ::/syslinux/syslinux.cfg &&
		mcopy -o -i "$(esp_at "$image")" "$cfg" ::/EFI/BOOT/syslinux.cfg
}

# boot_disk_until_off NAME FIRMWARE IMAGE: boots IMAGE as a local disk with
# the console in $ND_TMP/NAME.log; fails if the VM does not stop by itself.
boot_disk_until_off() {
	local name=$1 firmware=$2 image=$3 flag=
	[ "$firmware" = uefi ] && flag=--uefi
	timeout "${ND_BOOT_TIMEOUT:-180}" "$ND_TOP/qemu-scripts/boot-disk" $flag --log "$ND_TMP/$name.log" "$image"
}

# console_has NAME PATTERN: the console log NAME holds a line matching PATTERN.
console_has() {
	tr -d '\r' <"$ND_TMP/$1.log" | grep -aqE "$2"
}

# console_line NAME PATTERN: line number of the first console line matching PATTERN.
console_line() {
	tr -d '\r' <"$ND_TMP/$1.log" | grep -anE "$2" | head -n 1 | cut -d: -f1
}
