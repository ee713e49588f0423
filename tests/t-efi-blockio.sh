#!/usr/bin/env bash
# UEFI stub: BlockIo of the served disk, checked from inside the guest, under OVMF's PXE and iPXE.
. "$(dirname "$0")/lib.sh"
requires qemu ovmf ipxe cmd:mcopy
. "$(dirname "$0")/efi-lib.sh"

# Every check tests/efi/bio-test.c reports; a missing line is a failure too.
BIOTEST_CHECKS="media pattern-64k-reads pattern-large-read last-blocks unaligned-buffer
	error-lba-past-end error-span-past-end error-huge-lba error-partial-block
	error-write-partial-block error-media-id error-null-buffer zero-size-read
	write-read-back write-neighbours io-after-exit-boot-services"

# on_server IMAGE written|untouched: the image file on the server holds what
# the guest wrote (direct mode) or still the original pattern (read-only).
on_server() {
	python3 - "$1" "$2" "$EFI_WRITE_LBA" "$EFI_WRITE_SECTORS" <<'PY'
import struct, sys
img, what, first, n = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
mul, mask = 0x9E3779B97F4A7C15, (1 << 64) - 1
f = open(img, 'rb')
for lba in range(first - 1, first + n + 1):
    f.seek(lba * 512)
    words = struct.unpack('<64Q', f.read(512))
    flip = mask if what == 'written' and first <= lba < first + n else 0
    if list(words) != [((lba * mul + k) & mask) ^ flip for k in range(64)]:
        sys.exit('sector %d is not %s' % (lba, what))
PY
}

# Both firmware set-ups run the stub on its own virtio-net driver; one more
# run, patched with --firmware-net, keeps the SNP transport covered.
declare -A transport=(
	[ovmf]='virtio-net (own driver, own IPv4/UDP)'
	[ipxe]='virtio-net (own driver, own IPv4/UDP)'
	[ovmf-snp]='SNP (own IPv4/UDP)'
)
for run in ovmf ipxe ovmf-snp; do
	fw=${run%-snp}
	dir=$ND_TMP/$run
	mkdir -p "$dir/tftp"
	if ! efi_pattern_disk "$dir/disk.img" "$ND_BUILD/tests/bio-test.efi" ||
		! start_server "$run-server" --mode direct "$dir/disk.img"; then
		fail "efi-blockio-$run" "cannot set up the disk image or the server"
		continue
	fi
	efi_patch_stub "$ND_BUILD/netdisk.efi" "$dir/tftp/netdisk.efi" "$ND_PORT"
	# One firmware run also shows the boot config's verbose flag at work.
	[ "$run" = ipxe ] && "$ND_BUILD/netdisk" patch "$dir/tftp/netdisk.efi" --verbose >/dev/null
	[ "$run" = ovmf-snp ] && "$ND_BUILD/netdisk" patch "$dir/tftp/netdisk.efi" --firmware-net >/dev/null
	efi_qemu "$run" "$fw" "$dir/tftp" 240
	stop_server
	efi_check_console "efi-$run-messages" "$run" \
		'netdisk: image "disk", 65536 sectors (32 MiB), mode direct'
	efi_check_console "efi-$run-last-block" "$run" "BIOTEST LastBlock=65535 BlockSize=512"
	efi_check_console "efi-$run-transport" "$run" \
		"netdisk: transport ${transport[$run]}, 8240-byte datagrams, window 8"
	[ "$run" = ipxe ] && efi_check_console "efi-$run-verbose" "$run" "netdisk: read 0+1"
	for c in $BIOTEST_CHECKS; do
		efi_check_console "efi-$run-bio-$c" "$run" "BIOTEST PASS $c"
	done
	check "efi-$run-bio-done" efi_console_line "$run" "BIOTEST DONE"
	check "efi-$run-writes-on-server" on_server "$dir/disk.img" written
done

# A read-only session: the disk says so and refuses writes.  The stub asks
# for an image by name (not the server's default) and starts a loader on a
# path of its boot config (the default path holds nothing).
dir=$ND_TMP/readonly
mkdir -p "$dir/tftp"
if efi_pattern_disk "$dir/disk.img" "$ND_BUILD/tests/bio-test.efi" NETDISK TEST.EFI &&
	truncate -s 1M "$dir/other.img" &&
	start_server readonly-server --mode readonly other="$dir/other.img" wanted="$dir/disk.img"; then
	efi_patch_stub "$ND_BUILD/netdisk.efi" "$dir/tftp/netdisk.efi" "$ND_PORT"
	"$ND_BUILD/netdisk" patch "$dir/tftp/netdisk.efi" --image wanted \
		--boot-path '\EFI\NETDISK\TEST.EFI' >/dev/null
	efi_qemu readonly ovmf "$dir/tftp" 240
	stop_server
	efi_check_console efi-image-by-name readonly 'netdisk: image "wanted", 65536 sectors'
	efi_check_console efi-boot-path readonly 'netdisk: starting \EFI\NETDISK\TEST.EFI'
	efi_check_console efi-readonly-media readonly "IoAlign=1 ReadOnly=1"
	efi_check_console efi-readonly-refuses-writes readonly "BIOTEST PASS error-write-protected"
	check efi-readonly-done efi_console_line readonly "BIOTEST DONE"
	check efi-readonly-image-untouched on_server "$dir/disk.img" untouched
else
	fail efi-readonly "cannot set up the disk image or the server"
fi
