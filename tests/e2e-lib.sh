# SPDX-License-Identifier: GPL-2.0-or-later
# Helpers for the end-to-end suites (t-e2e-bios.sh, t-e2e-uefi.sh): the test image, the server, VM rounds, and the guest's E2E-* report.
# Source after tests/lib.sh and tests/image-lib.sh.
#
# One suite boots a firmware stub (netdisk.pxe or netdisk.efi) from QEMU's
# TFTP, the stub serves the e2e image, its loader starts the kernel, the
# initramfs agent hands the stub's session to the kernel's NBD driver and
# the root is mounted from /dev/nbd0p2.  There tests/e2e/guest.sh (run by
# the demo root's netdisk.test.hook) prints what the host checks.  Five
# boots in three rounds of VMs running side by side cover the write modes:
#   round 1  P (persistent, image demo)      A (direct, image golden)
#   round 2  P again: sees its own mark      B (volatile, golden): sees A's
#   round 3  B again: sees A's mark, not its own from round 2
# Every boot also reports the firmware-phase marker sector and what a stock
# nbd-client joining the session reads.

E2E_MAC_P=52:54:00:e2:e0:01
E2E_MAC_A=52:54:00:e2:e0:02
E2E_MAC_B=52:54:00:e2:e0:03
E2E_VM_PIDS=()
E2E_NBD_CLIENT=$(command -v nbd-client || echo /usr/sbin/nbd-client)

# e2e_build: every artifact the suites boot, or FAIL and exit.
e2e_build() {
	make -s -C "$ND_TOP" BUILD="$ND_BUILD" "$ND_BUILD/netdiskd" "$ND_BUILD/netdisk" "$ND_BUILD/netdisk.pxe" \
		"$ND_BUILD/netdisk.efi" "$ND_BUILD/tests/fwmark-mbr.bin" "$ND_BUILD/tests/fwmark.efi" \
		demo-test-image >"$ND_TMP/make.log" 2>&1 || {
		fail e2e-build "$(tail -n 5 "$ND_TMP/make.log" | tr '\n' ' ')"
		exit 1
	}
}

# e2e_root_add ROOTPART DIR: copies DIR's files (one level of
# subdirectories) into the ext4 file system ROOTPART under /e2e, modes kept.
e2e_root_add() {
	local part=$1 dir=$2 cmds=$ND_TMP/debugfs.cmds f sub
	{
		echo "mkdir /e2e"
		for sub in "$dir"/*/; do echo "mkdir /e2e/$(basename "$sub")"; done
		(cd "$dir" && find . -type f) | while read -r f; do echo "write $dir/${f#./} /e2e/${f#./}"; done
	} >"$cmds"
	debugfs -w -f "$cmds" "$part" >"$ND_TMP/debugfs.log" 2>&1 &&
		! grep -qi 'error\|could not\|not found' "$ND_TMP/debugfs.log"
}

# image_with_hook OUT DIR APPEND: a copy of the demo test image whose root holds
# DIR's files under /e2e and whose kernel command line ends with APPEND.
image_with_hook() {
	local out=$1 dir=$2 root=$ND_TMP/hook-root.img
	cp --sparse=always "$ND_BUILD/demo-test.img" "$out" &&
		set_kernel_append "$out" "$3" &&
		extract_partition "$out" 2 "$root" && e2e_root_add "$root" "$dir" &&
		dd if="$root" of="$out" bs=512 seek="$(partition_field "$out" 2 start)" \
			conv=notrunc,sparse status=none
}

# e2e_copy_program BIN DIR [LIBDIR]: BIN in DIR/bin, and the libraries it
# links (looked for in LIBDIR too) with the dynamic loader in DIR/lib: the
# guest runs it as DIR/lib/ld-linux-x86-64.so.2 --library-path DIR/lib
# DIR/bin/NAME, whatever its own root holds.
e2e_copy_program() {
	local bin=$1 dir=$2 libdir=${3:-} lib
	mkdir -p "$dir/bin" "$dir/lib"
	cp "$bin" "$dir/bin/" || return 1
	for lib in $(LD_LIBRARY_PATH=$libdir ldd "$bin" | awk '/=> \// { print $3 } /^\t\/.*ld-linux/ { print $1 }'); do
		cp -L "$lib" "$dir/lib/$(basename "$lib")" || return 1
	done
}

# e2e_guest_files DIR: the guest script, and nbd-client with its libraries
# (Debian's is dynamically linked).
e2e_guest_files() {
	mkdir -p "$1" && cp "$ND_TOP/tests/e2e/guest.sh" "$1/guest.sh" &&
		e2e_copy_program "$E2E_NBD_CLIENT" "$1"
}

# e2e_image OUT: the demo test image with the hook on its command line,
# guest.sh and nbd-client on its root, the firmware-phase writers (the
# fwmark MBR in sector 0 with the real MBR kept in sector 3, fwmark.efi on
# the ESP) and this run's marker in sector 1.  Sets E2E_FW_MARK.
e2e_image() {
	local out=$1 root=$ND_TMP/root-part.img start
	cp --sparse=always "$ND_BUILD/demo-test.img" "$out" || return 1
	set_kernel_append "$out" "netdisk.test=poweroff panic=-1 netdisk.test.hook=/e2e/guest.sh" || return 1
	e2e_guest_files "$ND_TMP/guest" || return 1
	extract_partition "$out" 2 "$root" || return 1
	e2e_root_add "$root" "$ND_TMP/guest" || { echo "debugfs: $(tail -n 3 "$ND_TMP/debugfs.log")"; return 1; }
	start=$(partition_field "$out" 2 start)
	dd if="$root" of="$out" bs=512 seek="$start" conv=notrunc,sparse status=none || return 1
	E2E_FW_MARK=E2E-FW-MARK-$(od -An -tx1 -N8 /dev/urandom | tr -d ' \n')
	dd if="$out" of="$out" bs=512 count=1 seek=3 conv=notrunc status=none &&
		dd if="$ND_BUILD/tests/fwmark-mbr.bin" of="$out" bs=440 count=1 conv=notrunc status=none &&
		printf '%s' "$E2E_FW_MARK" | dd of="$out" bs=512 seek=1 conv=notrunc,sync status=none || return 1
	mmd -i "$(esp_at "$out")" ::/EFI/E2E &&
		mcopy -i "$(esp_at "$out")" "$ND_BUILD/tests/fwmark.efi" ::/EFI/E2E/FWMARK.EFI
}

# e2e_setup FIRMWARE: image, server and TFTP directory for bios or uefi.
e2e_setup() {
	E2E_FW=$1
	e2e_image "$ND_TMP/demo.img" || { fail e2e-image "cannot build the test image"; exit 1; }
	cp --sparse=always "$ND_TMP/demo.img" "$ND_TMP/golden.img"
	cp --sparse=always "$ND_TMP/demo.img" "$ND_TMP/demo.orig"
	cat >"$ND_TMP/e2e.conf" <<CONF
state-dir = $ND_TMP/state
[image demo]
path = demo.img
mode = volatile
[image golden]
path = golden.img
mode = volatile
[client $E2E_MAC_P]
image = demo
mode = persistent
[client $E2E_MAC_A]
image = golden
mode = direct
[client $E2E_MAC_B]
image = golden
mode = volatile
CONF
	start_server server --config "$ND_TMP/e2e.conf" || { fail e2e-server "$(cat "$ND_TMP/server.log")"; exit 1; }
	e2e_tftp "$E2E_FW"
}

# e2e_tftp FIRMWARE: the stub for bios or uefi in the TFTP directory, patched
# for the server on ND_PORT (and, for uefi, to start the firmware-phase
# writer); sets E2E_FW and E2E_NBP for e2e_boot.
e2e_tftp() {
	E2E_FW=$1
	mkdir -p "$ND_TMP/tftp"
	if [ "$E2E_FW" = uefi ]; then
		E2E_NBP=netdisk.efi
		cp "$ND_BUILD/netdisk.efi" "$ND_TMP/tftp/$E2E_NBP"
		"$ND_BUILD/netdisk" patch "$ND_TMP/tftp/$E2E_NBP" --server "10.0.2.2:$ND_PORT" \
			--boot-path '\EFI\E2E\FWMARK.EFI' >/dev/null
	else
		E2E_NBP=netdisk.pxe
		cp "$ND_BUILD/netdisk.pxe" "$ND_TMP/tftp/$E2E_NBP"
		"$ND_BUILD/netdisk" patch "$ND_TMP/tftp/$E2E_NBP" --server "10.0.2.2:$ND_PORT" >/dev/null
	fi
	# The direct (maintenance) client A boots the admins' stub: the default
	# admin-key = auto grants direct mode only to an ATTACH signed with the
	# key netdiskd made in its state directory (docs/security.md).
	cp "$ND_TMP/tftp/$E2E_NBP" "$ND_TMP/tftp/admin-$E2E_NBP"
	"$ND_BUILD/netdisk" patch "$ND_TMP/tftp/admin-$E2E_NBP" --key "$ND_TMP/state/admin.key" >/dev/null ||
		{ fail e2e-admin-stub "cannot patch the admin key into the stub"; exit 1; }
}

# e2e_boot NAME MAC: PXE-boots a VM with MAC in the background; its console
# goes to $ND_TMP/NAME.log.  e2e_wait collects every VM started.
e2e_boot() {
	local flag=
	[ "$E2E_FW" = uefi ] && flag=--uefi
	local nbp=$E2E_NBP
	[ "$2" = "$E2E_MAC_A" ] && nbp=admin-$E2E_NBP
	timeout "${ND_BOOT_TIMEOUT:-240}" "$ND_TOP/qemu-scripts/boot-pxe" $flag --tftp "$ND_TMP/tftp" \
		--bootfile "$nbp" --mac "$2" --log "$ND_TMP/$1.log" >"$ND_TMP/$1.qemu" 2>&1 &
	E2E_VM_PIDS+=($!)
	ND_PIDS+=($!)
}

e2e_wait() {
	local pid
	for pid in "${E2E_VM_PIDS[@]}"; do wait "$pid"; done
	E2E_VM_PIDS=()
}

# e2e_value NAME KEY: the rest of the guest's first "KEY ..." line (the
# root's shell prompt may share the line: the shell starts alongside).
e2e_value() {
	console_text "$ND_TMP/$1.log" | sed -n "s/.*$2 //p" | head -n 1
}

# e2e_booted NAME MAC [HOOK]: the boot went all the way, on the stub's session:
# agent attached from the boot table, root on an NBD partition, the hook
# (default /e2e/guest.sh) ran, off.
e2e_booted() {
	local name=$1 mac=$2 hook=${3:-/e2e/guest.sh} mount
	console_has "$name" '^NETDISK-NET-OK eth0 [0-9.]+ boot-table$' || { echo "no address from the boot table: $(console_text "$ND_TMP/$name.log" | grep -a -m 2 -E 'NETDISK-NET|configure-network|boot table')"; return 1; }
	console_has "$name" '^NETDISK-ATTACH-OK$' || { echo "agent did not attach"; return 1; }
	console_has "$name" '^netdisk-attach: attached /dev/nbd0: .* export session [0-9a-f]{8},' ||
		{ echo "agent did not take over the stub's session"; return 1; }
	! console_has "$name" '(netdisk|session).*[0-9a-f]{32}' || { echo "a session token on the console"; return 1; }
	mount=$(e2e_value "$name" E2E-ROOT-MOUNT)
	[[ $mount =~ ^/dev/nbd0p[0-9]+\ /\ ext4\ rw ]] || { echo "/ is not an NBD partition: '$mount'"; return 1; }
	grep -q "nbd connect mac=$mac " "$ND_TMP/server.log" || { echo "no NBD connection on the session of $mac"; return 1; }
	console_has "$name" "^NETDISK-HOOK-DONE $hook status 0\$" || { echo "guest script did not finish"; return 1; }
	console_has "$name" '^NETDISK-POWEROFF' || { echo "did not power off"; return 1; }
}

# e2e_fw_sector NAME: Linux read this run's marker where the firmware phase wrote it.
e2e_fw_sector() {
	local got
	got=$(e2e_value "$1" E2E-FW-SECTOR)
	[ "$got" = "$E2E_FW_MARK" ] || { echo "sector 2 holds '$got', not '$E2E_FW_MARK'"; return 1; }
}

# e2e_nbd_client NAME: a stock nbd-client joined the session and read the same disk.
e2e_nbd_client() {
	local got size
	got=$(e2e_value "$1" E2E-NBD-CLIENT)
	size=$(stat -c %s "$ND_TMP/demo.img")
	[ "$got" = "size $size first-4MiB same sector2 $E2E_FW_MARK" ] || { echo "nbd-client: '$got'"; return 1; }
}

# e2e_seen, e2e_wrote NAME: the mark a boot found (empty: none) and the one it wrote.
e2e_seen() { e2e_value "$1" E2E-MARK-SEEN; }
e2e_wrote() { e2e_value "$1" E2E-MARK-WROTE; }

# e2e_image_mark IMAGE: the mark file on IMAGE's root partition, read on the host.
e2e_image_mark() {
	extract_partition "$1" 2 "$ND_TMP/mark-root.img" &&
		debugfs -R 'cat /var/lib/e2e-mark' "$ND_TMP/mark-root.img" 2>/dev/null
}

# e2e_run FIRMWARE: the three rounds and every check, as PASS/FAIL lines.
e2e_run() {
	local fw=$1 p1=$1-p1 p2=$1-p2 a1=$1-a1 b1=$1-b1 b2=$1-b2
	e2e_setup "$fw"

	e2e_boot "$p1" "$E2E_MAC_P"
	e2e_boot "$a1" "$E2E_MAC_A"
	e2e_wait
	check "$fw: boot to root on /dev/nbd0pN, persistent client" e2e_booted "$p1" "$E2E_MAC_P"
	check "$fw: boot to root on /dev/nbd0pN, direct client" e2e_booted "$a1" "$E2E_MAC_A"
	check "$fw: direct mode granted to the admins' stub (admin-key = auto)" \
		grep -Eq "attach mac=$E2E_MAC_A .*mode=direct .*key=admin" "$ND_TMP/server.log"
	check "$fw: firmware-phase write read by Linux (persistent)" e2e_fw_sector "$p1"
	check "$fw: firmware-phase write read by Linux (direct)" e2e_fw_sector "$a1"
	check "$fw: stock nbd-client joins the session in the guest" e2e_nbd_client "$p1"
	check "$fw: direct writes land in the image file" \
		test "$(e2e_image_mark "$ND_TMP/golden.img")" = "$(e2e_wrote "$a1")" -a -n "$(e2e_wrote "$a1")"
	check "$fw: persistent writes stay out of the image file" cmp -s "$ND_TMP/demo.img" "$ND_TMP/demo.orig"

	# The direct writer is off: the server frees the image once the NBD
	# connection Linux took the session over with has closed (docs/server.md).
	check "$fw: direct: the writer's NBD connection closes at power-off" \
		wait_for 30 grep -q "nbd disconnect mac=$E2E_MAC_A " "$ND_TMP/server.log"
	e2e_boot "$p2" "$E2E_MAC_P"
	e2e_boot "$b1" "$E2E_MAC_B"
	e2e_wait
	check "$fw: persistent reboot boots" e2e_booted "$p2" "$E2E_MAC_P"
	check "$fw: persistent: the file written before the reboot is there" \
		test -n "$(e2e_wrote "$p1")" -a "$(e2e_seen "$p2")" = "$(e2e_wrote "$p1")"
	check "$fw: direct: another client boots after the writer" e2e_booted "$b1" "$E2E_MAC_B"
	check "$fw: direct: another client sees the writer's file" \
		test -n "$(e2e_wrote "$a1")" -a "$(e2e_seen "$b1")" = "$(e2e_wrote "$a1")"

	e2e_boot "$b2" "$E2E_MAC_B"
	e2e_wait
	check "$fw: volatile reboot boots" e2e_booted "$b2" "$E2E_MAC_B"
	check "$fw: volatile: the file written before the reboot is gone" \
		test -n "$(e2e_wrote "$b1")" -a "$(e2e_seen "$b2")" = "$(e2e_wrote "$a1")"
	check "$fw: volatile: firmware-phase write read by Linux" e2e_fw_sector "$b2"
}
