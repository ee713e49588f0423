#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# The virtio-net option ROM (make rom): its structure on the host, then ONE VM boot with no PXE ROM and no TFTP.
#
# Host: build/netdisk-virtio.rom read byte by byte here (not through the
# project's checker): 55 AA, size, init jump, PCIR ids/class/code type/last
# image, $PnP header and its checksum, BEV, product name, the image's
# checksum; tools/ndrom check agrees and refuses corrupt and truncated
# images; netdisk patch keeps the checksum right and refuses a corrupt ROM.
# VM: SeaBIOS runs the ROM from the NIC's ROM BAR; the boot menu (ESC through
# the QEMU monitor) lists it by its product name and it is chosen there; the
# stub's own DHCP gets the address and the server (DHCP, not patched: only
# the port is), attaches, and syslinux, the kernel and the initramfs come
# over INT 13h; Linux takes the session over through NBD.
. "$(dirname "$0")/lib.sh"
requires qemu cmd:syslinux cmd:mcopy cmd:python3
. "$(dirname "$0")/bios/qemu.sh"
ROM=$ND_BUILD/netdisk-virtio.rom
if ! make -s -C "$ND_TOP" BUILD="$ND_BUILD" rom "$ND_BUILD/ndrom" "$ND_BUILD/netdisk" \
	"$ND_BUILD/netdiskd" >"$ND_TMP/make.log" 2>&1; then
	fail rom-build "make rom failed: $(tail -n 3 "$ND_TMP/make.log" | tr '\n' ' ')"
	exit 1
fi

# rom_facts FILE: the ROM's structure as KEY=VALUE lines, read here.
rom_facts() {
	python3 - "$1" <<'PY'
import struct, sys
d = open(sys.argv[1], 'rb').read()
print('sig=%02x%02x' % (d[0], d[1]))
print('size_ok=%d' % (d[2] * 512 == len(d)))
print('bytes=%d' % len(d))
print('init_jump=%d' % (d[3] in (0xe9, 0xeb)))
pcir, pnp = struct.unpack_from('<HH', d, 0x18)
sig, ven, dev, _, plen, _, c0, c1, c2, ilen, _, ctype, ind = struct.unpack_from('<4sHHHHBBBBHHBB', d, pcir)
print('pcir=%s' % sig.decode('latin1'))
print('ids=%04x:%04x' % (ven, dev))
print('class=%02x%02x%02x' % (c2, c1, c0))
print('code_type=%d' % ctype)
print('last_image=%d' % (ind >> 7))
print('ilen_ok=%d' % (ilen * 512 == len(d)))
print('pnp=%s' % d[pnp:pnp + 4].decode('latin1'))
print('pnp_sum=%d' % (sum(d[pnp:pnp + d[pnp + 5] * 16]) & 255))
name, = struct.unpack_from('<H', d, pnp + 0x10)
bev, = struct.unpack_from('<H', d, pnp + 0x1a)
print('bev_inside=%d' % (0 < bev < len(d)))
print('product=%s' % d[name:d.index(b'\0', name)].decode('latin1'))
print('sum=%d' % (sum(d) & 255))
PY
}

rom_facts "$ROM" >"$ND_TMP/facts" 2>&1
fact() { sed -n "s/^$1=//p" "$ND_TMP/facts"; }
expect_fact() {
	if [ "$(fact "$1")" = "$2" ]; then pass "rom structure: $1 = $2"; else
		fail "rom structure: $1" "got '$(fact "$1")', want '$2' ($(tail -n 1 "$ND_TMP/facts"))"
	fi
}
expect_fact sig 55aa
expect_fact size_ok 1
expect_fact init_jump 1
expect_fact pcir PCIR
expect_fact ids 1af4:1000
expect_fact class 020000
expect_fact code_type 0
expect_fact last_image 1
expect_fact ilen_ok 1
expect_fact pnp '$PnP'
expect_fact pnp_sum 0
expect_fact bev_inside 1
expect_fact product "netdisk virtio-net"
expect_fact sum 0
bytes=$(fact bytes)
if [ -n "$bytes" ] && [ "$bytes" -le 65536 ]; then
	pass "rom structure: $bytes bytes, within the 64 KiB an option ROM may take"
else
	fail "rom structure: size" "'$bytes' bytes, more than 64 KiB"
fi
check "ndrom check accepts the built ROM" "$ND_BUILD/ndrom" check "$ROM"

# Corrupt and truncated images are refused by the build's own checker.
cp "$ROM" "$ND_TMP/bad.rom"
printf '\x5a' | dd of="$ND_TMP/bad.rom" bs=1 seek=1000 conv=notrunc status=none
check_fails "ndrom check refuses a flipped byte" 1 "checksum" "$ND_BUILD/ndrom" check "$ND_TMP/bad.rom"
head -c 4096 "$ROM" >"$ND_TMP/short.rom"
check_fails "ndrom check refuses a truncated image" 1 "size field" "$ND_BUILD/ndrom" check "$ND_TMP/short.rom"
check_fails "netdisk patch refuses a corrupt ROM" 1 "not a valid option ROM" \
	"$ND_BUILD/netdisk" patch "$ND_TMP/bad.rom" --image x

# The server: from DHCP (10.0.2.2 under QEMU's user network); only the port is patched.
serve_demo_test rom
cp "$ROM" "$ND_TMP/netdisk-virtio.rom"
check "netdisk patch sets the port in the ROM" \
	"$ND_BUILD/netdisk" patch "$ND_TMP/netdisk-virtio.rom" --server "0.0.0.0:$ND_PORT"
check "the patched ROM's checksum is right again" "$ND_BUILD/ndrom" check "$ND_TMP/netdisk-virtio.rom"

# monitor CMD: one command to the VM's QEMU monitor.
monitor() {
	python3 - "$ND_TMP/mon.sock" "$1" <<'PY'
import socket, sys, time
s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1])
time.sleep(0.2)
s.sendall(sys.argv[2].encode() + b'\n')
time.sleep(0.3)
s.close()
PY
}

# One VM (qemu-scripts/boot-pxe without --tftp: no tftp= and no boot file on
# the user network), the NIC's ROM ours.  SeaBIOS's own messages go to its
# debug console, the QEMU monitor to a socket for the boot menu's keys.
serial=$ND_TMP/rom.serial debug=$ND_TMP/rom.debug
start=$SECONDS
"$ND_TOP/qemu-scripts/boot-pxe" --nic-rom "$ND_TMP/netdisk-virtio.rom" --mac 52:54:00:00:b2:01 \
	--log "$serial" -- -monitor "unix:$ND_TMP/mon.sock,server,nowait" \
	-chardev "file,id=dbg,path=$debug" -device isa-debugcon,iobase=0x402,chardev=dbg \
	-boot menu=on,splash-time=5000 >"$ND_TMP/qemu.log" 2>&1 &
QEMU_PID=$!
ND_PIDS+=("$QEMU_PID")

# The boot menu: ESC while SeaBIOS offers it, then our entry's number.
entry=
if wait_for 60 grep -q "Press ESC for boot menu" "$debug"; then
	monitor "sendkey esc"
	wait_for 20 grep -q "netdisk virtio-net" "$debug"
	entry=$(tr -d '\r' <"$debug" | sed -n 's/^\([0-9]\)\. netdisk virtio-net$/\1/p' | head -n 1)
fi
if [ -n "$entry" ]; then
	pass "boot menu lists the ROM as entry $entry: $(grep -a -m 1 'netdisk virtio-net' "$debug" | tr -d '\r')"
	monitor "sendkey $entry"
	wait_for 240 grep -q "NETDISK-POWEROFF" "$serial"
else
	fail "boot menu lists the ROM" "$(tail -n 5 "$debug" | tr '\r\n' '  ')"
fi
kill "$QEMU_PID" 2>/dev/null
wait "$QEMU_PID" 2>/dev/null
echo "rom VM boot: $((SECONDS - start)) s"

check "SeaBIOS ran the ROM's init and booted its BEV" grep -q "Booting from ROM" "$debug"
check "the stub started from the ROM" grep -q "netdisk ROM: disk over the network" "$serial"
check "the stub took the NIC on its own driver" grep -q "netdisk: NIC .* virtio-net at I/O .* own driver" "$serial"
for step in "DISCOVER sent" "OFFER received" "REQUEST sent" "ACK received"; do
	check "DHCP $step" grep -q "netdisk: DHCP $step" "$serial"
done
check "DHCP lease: address, and the server from DHCP" \
	grep -q "netdisk: DHCP lease 10.0.2.15 .*; netdisk server 10.0.2.2" "$serial"
check "attached over the network" grep -q "image \"demo-test\" 100 MiB" "$serial"
check "boot sector reached: syslinux started from drive 80h" grep -q "SYSLINUX" "$serial"
check "kernel and initramfs loaded via INT 13h" grep -q "NETDISK-INITRAMFS-OK" "$serial"
check "Linux found the boot table" grep -q "NETDISK-NET-OK .* boot-table" "$serial"
check "root on the same session over NBD" grep -q "NETDISK-ROOT-OK" "$serial"
e820_hides_stub "E820 hides the stub from Linux" "$serial"
