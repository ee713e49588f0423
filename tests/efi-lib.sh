# SPDX-License-Identifier: GPL-2.0-or-later
# Helpers for the UEFI suites: the test disk image, patching the stub, running OVMF under QEMU.
# Source after lib.sh.

EFI_OVMF_CODE=/usr/share/OVMF/OVMF_CODE_4M.fd
EFI_OVMF_VARS=/usr/share/OVMF/OVMF_VARS_4M.fd
EFI_PATTERN_LBA=36864   # tests/efi/bio-test.c has the same layout
EFI_WRITE_LBA=60000
EFI_WRITE_SECTORS=600

# efi_pattern_disk OUT LOADER [DIR FILE]: a 32 MiB MBR disk, FAT ESP (sectors
# 2048..34815) holding LOADER as \EFI\DIR\FILE (default \EFI\BOOT\BOOTX64.EFI),
# and the known pattern from sector EFI_PATTERN_LBA to the end.  Built without
# mounting anything.
efi_pattern_disk() {
	local out=$1 loader=$2 dir=${3:-BOOT} file=${4:-BOOTX64.EFI} esp=$1.esp
	rm -f "$esp"
	mkfs.fat -C "$esp" 16384 >/dev/null || return 1
	mmd -i "$esp" ::/EFI "::/EFI/$dir" || return 1
	mcopy -i "$esp" "$loader" "::/EFI/$dir/$file" || return 1
	python3 - "$out" "$esp" "$EFI_PATTERN_LBA" <<'PY' || return 1
import struct, sys
out, esp, first = sys.argv[1], sys.argv[2], int(sys.argv[3])
sectors = 65536
mbr = bytearray(512)
# One ESP partition (type 0xEF) at 2048, 32768 sectors; CHS fields unused.
mbr[446:462] = struct.pack('<B3sB3sII', 0, b'\xff\xff\xff', 0xEF, b'\xff\xff\xff', 2048, 32768)
mbr[510:512] = b'\x55\xaa'
mul = 0x9E3779B97F4A7C15
mask = (1 << 64) - 1
with open(out, 'wb') as f:
    f.write(mbr)
    f.truncate(sectors * 512)
    f.seek(2048 * 512)
    f.write(open(esp, 'rb').read())
    f.seek(first * 512)
    for lba in range(first, sectors):
        base = (lba * mul) & mask
        f.write(struct.pack('<64Q', *[(base + k) & mask for k in range(64)]))
PY
	rm -f "$esp"
}

# efi_patch_stub IN OUT PORT [ATTACH_TIMEOUT]: copy the stub with its boot
# config pointing at PORT on the DHCP next-server.
efi_patch_stub() {
	cp "$1" "$2" &&
		"$ND_BUILD/netdisk" patch "$2" --server "0.0.0.0:$3" --attach-timeout "${4:-0}" >/dev/null
}

# efi_qemu NAME FIRMWARE TFTPDIR [SECONDS] [UNTIL] [BOOT-PXE-ARGS...]: PXE-boot
# TFTPDIR/netdisk.efi under OVMF, FIRMWARE "ovmf" (OVMF's own PXE stack,
# romfile= empty), "ipxe" (QEMU's default iPXE EFI ROM) or "secure" (OVMF's
# Secure Boot build and own PXE stack, the variable store $EFI_SECURE_VARS).
# The serial console goes to $ND_TMP/NAME.serial, the variable store to
# $ND_TMP/NAME.vars/OVMF_VARS.fd.  Returns when QEMU stops, when the console
# shows the text UNTIL, or after SECONDS (a guard against hangs, not a
# measurement).
efi_qemu() {
	local name=$1 fw=$2 tftp=$3 secs=${4:-240} until=${5:-} rom=() pid deadline
	local fwargs=(--uefi) vars=$EFI_OVMF_VARS
	shift $(($# < 5 ? $# : 5))
	[ "$fw" = ipxe ] || rom=(--nic-rom none)
	if [ "$fw" = secure ]; then
		fwargs+=(--secure-boot)
		vars=${EFI_SECURE_VARS:?efi_qemu secure needs EFI_SECURE_VARS}
	fi
	: >"$ND_TMP/$name.serial"
	mkdir -p "$ND_TMP/$name.vars"
	OVMF_CODE=$EFI_OVMF_CODE OVMF_VARS=$vars "$ND_TOP/qemu-scripts/boot-pxe" "${fwargs[@]}" \
		--vars-dir "$ND_TMP/$name.vars" --tftp "$tftp" --bootfile netdisk.efi "${rom[@]}" "$@" \
		--log "$ND_TMP/$name.serial" -- -nodefaults >"$ND_TMP/$name.qemu" 2>&1 &
	pid=$!
	deadline=$((SECONDS + secs))
	while kill -0 "$pid" 2>/dev/null; do
		if [ $SECONDS -ge $deadline ] || { [ -n "$until" ] && efi_console_has "$name" "$until"; }; then
			kill "$pid"
			break
		fi
		sleep 0.2
	done
	wait "$pid" 2>/dev/null
	return 0
}

# efi_console NAME: the guest's serial console without CRs and terminal escapes.
efi_console() {
	tr -d '\r' <"$ND_TMP/$1.serial" | sed 's/\x1b\[[0-9;]*[A-Za-z]//g'
}

# efi_console_has NAME TEXT: the guest printed TEXT on its console.
efi_console_has() {
	efi_console "$1" | grep -qF -- "$2"
}

# efi_console_line NAME LINE: the guest printed exactly LINE as a whole line.
efi_console_line() {
	efi_console "$1" | grep -qxF -- "$2"
}

# efi_check_console CHECK NAME TEXT: PASS CHECK if the console shows TEXT.
efi_check_console() {
	if efi_console_has "$2" "$3"; then
		pass "$1"
	else
		fail "$1" "console lacks '$3'; its end: $(efi_console "$2" | tail -n 4 | tr '\n' ' ')"
	fi
}
