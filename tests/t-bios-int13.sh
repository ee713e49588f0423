#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# BIOS stub: every INT 13h function, checked by a test program booted from a served disk.
. "$(dirname "$0")/lib.sh"
requires qemu ipxe
. "$(dirname "$0")/bios/qemu.sh"

IMG=$ND_TMP/int13.img
int13_image "$IMG"
local_disk "$ND_TMP/local.img"
# With a site key (docs/security.md): the stub signs its ATTACH with the key
# `netdisk patch --key` put into it, and the server serves nothing unsigned.
od -An -tx1 -N32 /dev/urandom | tr -d ' \n' >"$ND_TMP/site.key"
# admin-key = none: the site-keyed stub also gets direct mode (the admin key
# that direct mode needs by default is checked in t-access.sh and the e2e suites).
printf 'site-key = %s\nadmin-key = none\n' "$ND_TMP/site.key" >"$ND_TMP/keyed.conf"
start_server server --config "$ND_TMP/keyed.conf" --mode direct --state-dir "$ND_TMP/state" "$IMG" ||
	{ fail int13-server "netdiskd did not start"; exit 1; }
bios_tftp "$ND_TMP/tftp" "$ND_PORT" --key "$ND_TMP/site.key"
bios_qemu int13 virtio-net-pci "$ND_TMP/tftp" -drive "file=$ND_TMP/local.img,format=raw,if=ide"
if ! wait_serial int13 120 "INT13TEST END"; then
	fail int13-run "test program did not finish: $(tail -n 3 "$ND_TMP/int13.serial" | tr '\r\n' '  ')"
	exit 1
fi
stop_qemu

# The banner names the server, the image, its size and the mode.
check "int13: banner" grep -q "server 10.0.2.2:$ND_PORT image \"int13\" 32 MiB (65536 sectors) mode direct" \
	"$ND_TMP/int13.serial"
check "int13: the stub's ATTACH is signed with the site key" \
	grep -q "attach mac=.* image=int13 mode=direct .*key=site" "$ND_TMP/server.log"
# A virtio-net NIC runs on the stub's own driver, not through PXE.
check "int13: virtio-net on the stub's own driver" \
	grep -q "netdisk: NIC .* virtio-net at I/O [0-9a-f]*, own driver" "$ND_TMP/int13.serial"

expected=(
	"41 edd installation check" "08 get parameters" "48 get extended parameters"
	"48 rejects a short buffer" "15 disk type is hard disk" "42 read 64 sectors matches the image"
	"42 read last sector" "42 out of range fails with status" "01 status after reset is 0"
	"02 CHS read matches the image" "02 sector 0 is rejected" "03 CHS write reads back"
	"43 write 127 sectors reads back" "42 read after a write where the stub read ahead sees the write"
	"42 read into a buffer above 1 MiB"
	"43 write from a buffer above 1 MiB reads back" "00 reset" "0d alternate reset"
	"10 test unit ready" "11 recalibrate" "0c seek" "04 verify" "44 extended verify"
	"47 extended seek" "47 seek out of range fails" "unknown function is invalid"
	"81 is the local disk, chained" "e820 hides the resident memory" "boot table present"
	"42 read 127 sectors into 7000:0000" "42 reads fill all free memory in 500-7ffff"
	"stub writes nothing in 500-7ffff while it reads" "42 read after the fill matches the image"
)
int13_results int13 int13
# Nothing the stub keeps (resident part, stack, its image, NIC rings and
# buffers) is where boot loaders put theirs; what lies in extended memory is
# hidden from the OS too.  Base memory: only the real-mode resident part
# (entry points, GDT, stack: 4 KiB, from a 4 KiB boundary: up to 3 KiB more;
# iPXE and memdisk keep a few KiB too).
check "int13: stub memory outside 500-7ffff" stub_memory_outside_low "$ND_TMP/int13.serial"
check "int13: image, NIC rings and buffers hidden from E820" ext_memory_hidden "$ND_TMP/int13.serial"
check "int13: at most 7 KiB of base memory" stub_resident_kb "$ND_TMP/int13.serial" 7
for name in "${expected[@]}"; do
	grep -q "ok $name" "$ND_TMP/int13.serial" || fail "int13: $name" "check did not run"
done

# Geometry from the partition table (4 heads, 16 sectors), EDD values, drive counts.
expect_value int13 heads 4 int13
expect_value int13 spt 16 int13
expect_value int13 cylinders $((INT13_SECTORS / (4 * 16))) int13
expect_value int13 drives 2 int13
expect_value int13 bda_drives 2 int13
expect_value int13 edd_size 66 int13
expect_value int13 edd_sectors_lo $INT13_SECTORS int13
expect_value int13 edd_sectors_hi 0 int13
expect_value int13 edd_bytes_per_sector 512 int13
expect_value int13 edd_heads 4 int13
expect_value int13 edd_spt 16 int13
expect_value int13 type15_sectors $INT13_SECTORS int13

# The boot table left for the OS describes this session (BIOS firmware, direct mode).
expect_value int13 bt_firmware 1 int13
expect_value int13 bt_mode 1 int13
expect_value int13 bt_udp_port "$ND_PORT" int13
expect_value int13 bt_sectors $INT13_SECTORS int13
expect_value int13 bt_server_ip $((2 << 24 | 2 << 16 | 10)) int13

# Write-through: in direct mode what the program wrote is in the image file itself.
python3 - "$ND_TMP/want.bin" <<'PY'
import array, sys
lba = 5000
open(sys.argv[1], "wb").write(array.array("I", [(lba * 128 + k) ^ 0x12345678 for k in range(128)]).tobytes())
PY
dd if="$IMG" of="$ND_TMP/got.bin" bs=512 skip=5000 count=1 status=none
check "int13: writes reached the server" cmp "$ND_TMP/want.bin" "$ND_TMP/got.bin"

# The same program through the PXE stack's UDP API: on the other NICs QEMU
# ships iPXE ROMs for (their probe settles on fewer frames in flight than
# virtio-net: one datagram at a time), and on virtio-net with the stub
# patched to keep to the firmware's network.
bios_tftp "$ND_TMP/tftp-pxe" "$ND_PORT" --firmware-net --key "$ND_TMP/site.key"
for nic in e1000 rtl8139 virtio-net-pci; do
	tftp=$ND_TMP/tftp
	[ "$nic" = virtio-net-pci ] && tftp=$ND_TMP/tftp-pxe
	bios_qemu "int13-$nic" "$nic" "$tftp" -drive "file=$ND_TMP/local.img,format=raw,if=ide"
	wait_serial "int13-$nic" 120 "INT13TEST END"
	stop_qemu
	log=$ND_TMP/int13-$nic.serial
	int13_all_ok "int13-$nic" "int13 $nic" "$(tr -d '\r' <"$log" |
		sed -n 's/^netdisk: \([0-9]*-byte datagrams\), window.*/\1/p')"
	check "int13 $nic: through PXE's UDP API" \
		grep -q "netdisk: network through the PXE stack's UDP API" "$log"
	check "int13 $nic: stub memory outside 500-7ffff" stub_memory_outside_low "$log"
	# The PXE API path adds a bounce buffer for the largest datagram (16 KiB).
	check "int13 $nic: at most 23 KiB of base memory" stub_resident_kb "$log" 23
	check "int13 $nic: image hidden from E820" ext_memory_hidden "$log"
done
