# SPDX-License-Identifier: GPL-2.0-or-later
# The compatibility matrix (issue 21, item 4): boots one cell — firmware, NIC, boot loader — through a netdisk stub to Linux's root.
#
# A cell is FIRMWARE:NIC:LOADER[:IMAGE], FIRMWARE one of
#   bios        SeaBIOS with QEMU's iPXE ROM for the NIC, netdisk.pxe
#   uefi-ipxe   OVMF with QEMU's iPXE EFI ROM for the NIC (SNP), netdisk.efi
#   uefi-ovmf   OVMF's own PXE stack (the NIC has no ROM: virtio-net only), netdisk.efi
# NIC a QEMU device model (virtio-net-pci, e1000, e1000e, rtl8139, vmxnet3),
# LOADER the image's boot loader: syslinux or grub (BIOS: MBR code; UEFI:
# BOOTX64.EFI), or systemd-boot (UEFI); IMAGE the image (default LOADER's:
# the systemd-boot image has syslinux on its BIOS side, so a BIOS syslinux
# cell may use it and share a build; debian12 is a stock Debian 12 root with
# GRUB, made by tools/mkdebian; debian12-wc the same image with
# netdisk.write-cache=ram:64M, the agent serving root from its tiers, for
# the shutdown check: compat_shutdown).  Every image has Debian's generic kernel,
# so that Linux drives every NIC of the list and takes the root over from
# the stub's session (docs/compat.md).
#
# Source after tests/lib.sh.  compat_serve once, then compat_cell per cell
# (two at a time at most: compat_wait), then compat_result per cell.

COMPAT_DIR=$ND_TMP/compat
COMPAT_CACHE=${NETDISK_CACHE:-$ND_BUILD/cache}
COMPAT_PIDS=()
COMPAT_N=0
# What debian12-wc adds to the Debian image's kernel command line.
COMPAT_WC_APPEND="netdisk.write-cache=ram:64M"

# compat_image LOADER: the image for LOADER (build/compat-LOADER.img, rebuilt
# when tools/mkimage or the initramfs is newer): BIOS and UEFI side both
# LOADER, except systemd-boot (UEFI only: syslinux on the BIOS side);
# debian12-wc is a copy of debian12 with COMPAT_WC_APPEND in its GRUB menu.
compat_image() {
	local loader=$1 out=$ND_BUILD/compat-$1.img bios=$1 newer base
	if [ "$loader" = debian12-wc ]; then
		base=$(compat_image debian12) || { echo "$base"; return 1; }
		if [ ! -f "$out" ] || [ "$base" -nt "$out" ] || [ "$ND_TOP/tests/compat-lib.sh" -nt "$out" ]; then
			cp --sparse=always "$base" "$out.new" && "$ND_TOP/tools/mkimage" \
				--set-append "netdisk.test=poweroff panic=-1 $COMPAT_WC_APPEND" "$out.new" \
				>"$ND_TMP/compat-$loader.build" 2>&1 ||
				{ echo "mkimage --set-append: $(tail -n 3 "$ND_TMP/compat-$loader.build")"; return 1; }
			mv "$out.new" "$out"
		fi
		echo "$out"
		return 0
	fi
	if [ "$loader" = debian12 ]; then
		newer=$(find "$ND_TOP/tools/mkdebian" "$ND_TOP/tools/mkimage" "$ND_TOP/packaging/initramfs-tools" \
			"$ND_BUILD/netdisk-attach" -newer "$out" -print -quit 2>/dev/null)
		if [ ! -f "$out" ] || [ -n "$newer" ]; then
			MKDEBIAN_APPEND="netdisk.test=poweroff panic=-1" "$ND_TOP/tools/mkdebian" --build "$ND_BUILD" \
				--cache "$COMPAT_CACHE" "$out.new" >"$ND_TMP/compat-$loader.build" 2>&1 ||
				{ echo "mkdebian: $(tail -n 3 "$ND_TMP/compat-$loader.build")"; return 1; }
			mv "$out.new" "$out"
		fi
		echo "$out"
		return 0
	fi
	[ "$loader" = systemd-boot ] && bios=syslinux
	newer=$(find "$ND_TOP/tools/mkimage" "$ND_TOP/linux/initramfs" "$ND_TOP/linux/rootfs" "$ND_BUILD/netdisk-attach" \
		-newer "$out" -print -quit 2>/dev/null)
	if [ ! -f "$out" ] || [ -n "$newer" ]; then
		"$ND_TOP/tools/mkimage" --cache "$COMPAT_CACHE" --agent "$ND_BUILD/netdisk-attach" \
			--kernel-flavour generic --bios-loader "$bios" --uefi-loader "$loader" \
			--append "netdisk.test=poweroff panic=-1" "$out.new" >"$ND_TMP/compat-$loader.build" 2>&1 ||
			{ echo "mkimage for $loader: $(tail -n 3 "$ND_TMP/compat-$loader.build")"; return 1; }
		mv "$out.new" "$out"
	fi
	echo "$out"
}

# compat_serve LOADER...: one netdiskd (volatile) serving compat-LOADER for
# each LOADER, and stubs aimed at each image in $COMPAT_DIR/tftp.
compat_serve() {
	local loader img args=()
	mkdir -p "$COMPAT_DIR/tftp"
	for loader in "$@"; do
		img=$(compat_image "$loader") || return 1
		args+=("$loader=$img")
	done
	start_server compat --state-dir "$COMPAT_DIR/state" --mode volatile "${args[@]}" || return 1
	for loader in "$@"; do
		cp "$ND_BUILD/netdisk.pxe" "$COMPAT_DIR/tftp/$loader.pxe"
		cp "$ND_BUILD/netdisk.efi" "$COMPAT_DIR/tftp/$loader.efi"
		"$ND_BUILD/netdisk" patch "$COMPAT_DIR/tftp/$loader.pxe" --server "10.0.2.2:$ND_PORT" \
			--image "$loader" >/dev/null || return 1
		"$ND_BUILD/netdisk" patch "$COMPAT_DIR/tftp/$loader.efi" --server "10.0.2.2:$ND_PORT" \
			--image "$loader" >/dev/null || return 1
	done
}

# compat_name CELL: CELL as a file name.
compat_name() { echo "${1//:/-}"; }

# compat_cell CELL: boots CELL in the background (its console in
# $COMPAT_DIR/NAME.serial, when it started in NAME.start); the VM powers
# itself off once root is up, or is stopped after ND_COMPAT_TIMEOUT seconds.
compat_cell() {
	local fw nic loader image name fwargs=() rom=() nbp
	IFS=: read -r fw nic loader image <<<"$1"
	loader=${image:-$loader}
	name=$(compat_name "$1")
	COMPAT_N=$((COMPAT_N + 1))
	case $fw in
	bios) nbp=$loader.pxe ;;
	uefi-ipxe) nbp=$loader.efi fwargs=(--uefi) ;;
	uefi-ovmf) nbp=$loader.efi fwargs=(--uefi) rom=(--nic-rom none) ;;
	*) echo "unknown firmware $fw" >"$COMPAT_DIR/$name.serial"; return 1 ;;
	esac
	date +%s.%N >"$COMPAT_DIR/$name.start"
	timeout "${ND_COMPAT_TIMEOUT:-300}" "$ND_TOP/qemu-scripts/boot-pxe" "${fwargs[@]}" --tftp "$COMPAT_DIR/tftp" \
		--bootfile "$nbp" --nic "$nic" "${rom[@]}" --mac "$(printf '52:54:00:c0:00:%02x' "$COMPAT_N")" \
		--memory 768 --log "$COMPAT_DIR/$name.serial" >"$COMPAT_DIR/$name.qemu" 2>&1 &
	COMPAT_PIDS+=($!)
	ND_PIDS+=($!)
}

# compat_wait: waits for every cell started.
compat_wait() {
	local pid
	for pid in "${COMPAT_PIDS[@]}"; do wait "$pid" 2>/dev/null; done
	COMPAT_PIDS=()
}

# compat_stage CELL: how far CELL got: root (Linux mounted its root from the
# stub's session over NBD and powered off), multi-user (the Debian image:
# Debian's initramfs with netdisk's hook continued the stub's session and
# systemd reached multi-user.target on /dev/nbd0pN), kernel (the kernel
# started with the initramfs loaded through the stub's disk), stub (the
# stub attached), or none.
compat_stage() {
	local log=$COMPAT_DIR/$(compat_name "$1").serial
	if grep -aq "NETDISK-POWEROFF" "$log" && grep -aq "NETDISK-ROOT-OK" "$log" &&
		grep -aq "NETDISK-NET-OK .* boot-table" "$log"; then
		echo root
	elif grep -aEq "NETDISK-DEBIAN-UP multi-user.target active root /dev/nbd0p" "$log" &&
		grep -aEq "netdisk-attach: attached /dev/nbd0( through the agent \(write cache [^)]*\))?: .* export session" "$log"; then
		echo multi-user
	elif grep -aq "NETDISK-INITRAMFS-OK\|Run /init as init process" "$log"; then
		echo kernel
	elif grep -aEq 'netdisk: (image "|server )|image "[a-z-]+" [0-9]+ MiB' "$log"; then
		echo stub
	else
		echo none
	fi
}

# compat_expect LOG PATTERN MESSAGE: LOG has a line matching PATTERN (an
# ERE), else prints MESSAGE and fails.
compat_expect() { grep -aEq "$2" <<<"$1" || { echo "$3"; return 1; }; }

# compat_shutdown CELL: checks the console of a debian12-wc cell, whose
# root the agent serves from its RAM tier, through systemd's power-off;
# prints what went wrong and fails, or prints nothing.  The agent must be
# spared by systemd-shutdown's killing spree (argv[0] starting with '@',
# https://systemd.io/ROOT_STORAGE_DAEMONS/) and keep serving the root until
# the end: the image's system-shutdown hook, run after the root was
# remounted read-only, finds it alive and reads back, with the page cache
# dropped, the file written before the power-off.
compat_shutdown() {
	local log id
	log=$(tr -d '\r' <"$COMPAT_DIR/$(compat_name "$1").serial")
	compat_expect "$log" 'netdisk-attach: attached /dev/nbd0 through the agent \(write cache ram' \
		"the agent did not serve /dev/nbd0 from its tiers" || return 1
	compat_expect "$log" 'NETDISK-DEBIAN-UP multi-user.target active root /dev/nbd0p2 failed-units 0' \
		"no multi-user.target with 0 failed units on /dev/nbd0p2" || return 1
	id=$(sed -n 's/.*NETDISK-DEBIAN-WROTE \([0-9a-f-]*\) agent ok target ram .*/\1/p' <<<"$log" | head -n 1)
	[ -n "$id" ] || { echo "no file written with the agent's status 'ok target ram'"; return 1; }
	if grep -aEq 'I/O error|Receive control failed|Dead connection|Sending SIG[A-Z]+ to PID [0-9]+ \(@?netdisk-att' <<<"$log"; then
		echo "systemd's shutdown hit the agent: $(grep -aEm 2 'I/O error|Receive control failed|Dead connection|Sending SIG[A-Z]+ to PID [0-9]+ \(@?netdisk-att' <<<"$log" | tr '\n' ' ')"
		return 1
	fi
	compat_expect "$log" "NETDISK-SHUTDOWN-HOOK poweroff root ro agents [0-9]+:@netdisk-attach.* read $id" \
		"systemd-shutdown's last phase: $(grep -a 'NETDISK-SHUTDOWN-HOOK' <<<"$log" || echo 'no NETDISK-SHUTDOWN-HOOK line')" || return 1
	compat_expect "$log" 'reboot: Power down' "no 'reboot: Power down'" || return 1
}

# compat_seconds CELL MARKER: seconds from the cell's start to the console's
# first MARKER, to 0.1 s (by the log's modification times, so approximate:
# the figure is for the table, not a measurement).
compat_seconds() {
	local name start
	name=$(compat_name "$1")
	start=$(cat "$COMPAT_DIR/$name.start")
	[ -f "$COMPAT_DIR/$name.$2" ] || return 0
	awk -v a="$start" -v b="$(cat "$COMPAT_DIR/$name.$2")" 'BEGIN { printf "%.1f", b - a }'
}

# compat_watch CELL...: while the cells run, notes when each first shows
# the kernel's initramfs marker and root (files NAME.kernel, NAME.root).
compat_watch() {
	local cell name pid left=1
	while [ $left -gt 0 ]; do
		left=0
		for cell in "$@"; do
			name=$(compat_name "$cell")
			[ -f "$COMPAT_DIR/$name.kernel" ] ||
				! grep -aq 'NETDISK-INITRAMFS-OK\|Run /init as init process' "$COMPAT_DIR/$name.serial" 2>/dev/null ||
				date +%s.%N >"$COMPAT_DIR/$name.kernel"
			[ -f "$COMPAT_DIR/$name.root" ] ||
				! grep -aq 'NETDISK-ROOT-OK\|NETDISK-DEBIAN-UP' "$COMPAT_DIR/$name.serial" 2>/dev/null ||
				date +%s.%N >"$COMPAT_DIR/$name.root"
		done
		for pid in "${COMPAT_PIDS[@]}"; do kill -0 "$pid" 2>/dev/null && left=1; done
		sleep 0.5
	done
}

# compat_run CELL...: every CELL, two VMs at a time (the machine's cores).
compat_run() {
	local i cells=("$@")
	for ((i = 0; i < ${#cells[@]}; i += 2)); do
		compat_cell "${cells[i]}"
		[ $((i + 1)) -ge ${#cells[@]} ] || compat_cell "${cells[i + 1]}"
		compat_watch "${cells[@]:i:2}"
		compat_wait
	done
}
