# Helpers for the UEFI suites: the test disk image, patching the stub, running OVMF under QEMU.
# Source after lib.sh.

EFI_OVMF_CODE=/usr/share/OVMF/OVMF_CODE_4M.fd
EFI_OVMF_VARS=/usr/share/OVMF/OVMF_VARS_4M.fd
EFI_PATTERN_LBA=36864   # efi/bio-test.c has the same layout
EFI_WRITE_LBA=60000
EFI_WRITE_SECTORS=600

# efi_pattern_disk OUT LOADER: a 32 MiB MBR disk, FAT ESP (sectors 2048..34815)
# holding LOADER as \EFI\BOOT\BOOTX64.EFI, and the known pattern from sector
# EFI_PATTERN_LBA to the end.  Built without mounting anything.
efi_pattern_disk() {
	local out=$1 loader=$2 esp=$1.esp
	rm -f "$esp"
	mkfs.fat -C "$esp" 16384 >/dev/null || return 1
	mmd -i "$esp" ::/EFI ::/EFI/BOOT || return 1
	mcopy -i "$esp" "$loader" ::/EFI/BOOT/BOOTX64.EFI || return 1
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
	python3 - "$@" <<'PY'
import struct, sys
src, dst, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
timeout = int(sys.argv[4]) if len(sys.argv) > 4 else 0
data = bytearray(open(src, 'rb').read())
at = data.find(b'NDBOOTCF')
assert at >= 0 and data.find(b'NDBOOTCF', at + 1) < 0, 'one boot config block'
struct.pack_into('>H', data, at + 10, port)
struct.pack_into('>H', data, at + 16, timeout)
open(dst, 'wb').write(data)
PY
}

# efi_qemu NAME FIRMWARE TFTPDIR [SECONDS]: PXE-boot TFTPDIR/netdisk.efi under
# OVMF, FIRMWARE "ovmf" (OVMF's own PXE stack) or "ipxe" (iPXE's EFI ROM).
# The serial console goes to $ND_TMP/NAME.serial; waits for QEMU to stop.
efi_qemu() {
	local name=$1 fw=$2 tftp=$3 secs=${4:-240} rom=
	cp "$EFI_OVMF_VARS" "$ND_TMP/$name.vars"
	[ "$fw" = ipxe ] || rom=,romfile=
	timeout "$secs" qemu-system-x86_64 -accel tcg -m 512 -nodefaults -display none \
		-no-reboot -serial "file:$ND_TMP/$name.serial" \
		-drive "if=pflash,format=raw,readonly=on,file=$EFI_OVMF_CODE" \
		-drive "if=pflash,format=raw,file=$ND_TMP/$name.vars" \
		-netdev "user,id=n0,tftp=$tftp,bootfile=netdisk.efi" \
		-device "virtio-net-pci,netdev=n0,bootindex=1$rom" \
		>"$ND_TMP/$name.qemu" 2>&1
}

# efi_serial_has NAME TEXT: the guest printed TEXT on its serial console.
efi_serial_has() {
	tr -d '\r' <"$ND_TMP/$1.serial" | grep -qF -- "$2"
}
