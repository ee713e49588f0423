#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Secure Boot: OVMF's Secure Boot firmware with a throw-away key enrolled; the signed stub boots and its loader's loads stay verified, unsigned/tampered/wrong-key stubs are refused.
. "$(dirname "$0")/lib.sh"
requires qemu ovmf cmd:sbsign cmd:sbverify cmd:cert-to-efi-sig-list cmd:sign-efi-sig-list \
	cmd:openssl cmd:mcopy cmd:mkfs.fat
. "$(dirname "$0")/efi-lib.sh"
if [ ! -r /usr/share/OVMF/OVMF_CODE_4M.secboot.fd ]; then
	skip t-secboot "needs OVMF's Secure Boot build (package ovmf)"
	exit 77
fi
for f in netdisk.efi netdisk netdiskd tests/sb-enroll.efi; do
	[ -f "$ND_BUILD/$f" ] || { fail secboot-build "$ND_BUILD/$f missing (make all)"; exit 1; }
done

# The enrolled variable store is cached with the key it holds: make test enrols once.
SB=$ND_BUILD/secboot
ENROL=$ND_BUILD/tests/sb-enroll.efi

# sb_key NAME: a throw-away RSA key and self-signed certificate NAME.key/NAME.crt.
sb_key() {
	openssl req -new -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=netdisk test $(basename "$1")/" \
		-keyout "$1.key" -out "$1.crt" >/dev/null 2>&1
}

# sb_enrol NAME [ESL]: PK, KEK and db = the test key (db also the signature
# lists of ESL), written by sb-enroll.efi in setup mode (OVMF_VARS_4M.fd has
# no keys) from .auth files on a FAT disk; the resulting variable store
# becomes $SB/NAME.fd.
sb_enrol() {
	local name=$1 extra=${2:-} d=$ND_TMP/enrol-$1 guid v
	mkdir -p "$d/tftp"
	guid=$(cat /proc/sys/kernel/random/uuid)
	for v in PK KEK db; do
		cert-to-efi-sig-list -g "$guid" "$SB/test.crt" "$d/$v.esl" >/dev/null || return 1
	done
	[ -z "$extra" ] || cat "$extra" >>"$d/db.esl"
	for v in PK KEK db; do
		sign-efi-sig-list -k "$SB/test.key" -c "$SB/test.crt" "$v" "$d/$v.esl" "$d/$v.auth" \
			>/dev/null || return 1
	done
	mkfs.fat -C "$d/keys.img" 2048 >/dev/null && mcopy -i "$d/keys.img" "$d"/*.auth ::/ || return 1
	cp "$ENROL" "$d/tftp/netdisk.efi"
	EFI_SECURE_VARS=/usr/share/OVMF/OVMF_VARS_4M.fd efi_qemu "enrol-$name" secure "$d/tftp" 120 '' \
		--disk "$d/keys.img"
	efi_console_has "enrol-$name" 'SBENROLL done' &&
		efi_console_has "enrol-$name" 'after enrolment SetupMode=0' &&
		cp "$ND_TMP/enrol-$name.vars/OVMF_VARS.fd" "$SB/$name.fd"
}

# The test key, made once; a new key makes every cached store stale.
if ! [ -s "$SB/test.key" ] || ! [ -s "$SB/test.crt" ]; then
	rm -rf "$SB"
	mkdir -p "$SB"
	sb_key "$SB/test"
fi
if [ -s "$SB/vars.fd" ]; then
	pass secboot-enrol "cached in $SB"
elif sb_enrol vars; then
	pass secboot-enrol
else
	fail secboot-enrol "the key was not enrolled: $(efi_console enrol-vars | grep -a SB | tr '\n' ' ')"
	exit 1
fi
export EFI_SECURE_VARS=$SB/vars.fd
KEY=$SB/test.key CERT=$SB/test.crt
T=$ND_TMP/sb
mkdir -p "$T"/{good,unsigned,tampered,wrongkey}

# The served disk: the signed check app as its loader, and beside it the test
# images it asks the firmware to load through the netdisk's device path.
sbsign --key "$KEY" --cert "$CERT" --output "$T/loader.efi" "$ENROL" >/dev/null 2>&1
sb_key "$T/other"
cp "$ENROL" "$T/UNSIGNED.EFI"
cp "$T/loader.efi" "$T/SIGNED.EFI"
sbsign --key "$T/other.key" --cert "$T/other.crt" --output "$T/WRONGKEY.EFI" "$ENROL" >/dev/null 2>&1

# flip FILE: one byte of the code changed after signing.
flip() {
	python3 - "$1" <<'PY'
import sys
data = bytearray(open(sys.argv[1], 'rb').read())
data[0x1000] ^= 0x01  # inside .text, covered by the Authenticode hash
open(sys.argv[1], 'wb').write(data)
PY
}
cp "$T/SIGNED.EFI" "$T/TAMPERED.EFI" && flip "$T/TAMPERED.EFI"
efi_pattern_disk "$T/disk.img" "$T/loader.efi" &&
	mmd -i "$T/disk.img@@1M" ::/EFI/SBTEST &&
	mcopy -i "$T/disk.img@@1M" "$T"/{SIGNED,UNSIGNED,TAMPERED,WRONGKEY}.EFI ::/EFI/SBTEST/ ||
	{ fail secboot-disk "cannot build the test disk"; exit 1; }

if ! start_server sb-server --mode volatile "$T/disk.img"; then
	fail secboot-server "netdiskd did not start"
	exit 1
fi
# The stub as an admin would ship it: patched first, then signed (make sign).
efi_patch_stub "$ND_BUILD/netdisk.efi" "$T/patched.efi" "$ND_PORT"
check secboot-make-sign make -s -C "$ND_TOP" BUILD="$ND_BUILD" sign KEY="$KEY" CERT="$CERT" \
	IN="$T/patched.efi" OUT="$T/good/netdisk.efi"
cp "$T/patched.efi" "$T/unsigned/netdisk.efi"
cp "$T/good/netdisk.efi" "$T/tampered/netdisk.efi" && flip "$T/tampered/netdisk.efi"
sbsign --key "$T/other.key" --cert "$T/other.crt" --output "$T/wrongkey/netdisk.efi" \
	"$T/patched.efi" >/dev/null 2>&1

# One boot of the signed stub: it attaches, starts the disk's signed loader,
# which reports enforcement and what the firmware says to the test images,
# then powers the VM off.
efi_qemu sb-good secure "$T/good" 180 "BdsDxe: failed"
efi_check_console secboot-signed-stub-runs sb-good 'netdisk: UEFI network disk'
efi_check_console secboot-signed-stub-attached sb-good 'mode volatile'
efi_check_console secboot-signed-loader-started sb-good 'netdisk: starting \EFI\BOOT\BOOTX64.EFI'
efi_check_console secboot-enforced sb-good 'SBSTATE SecureBoot=1 SetupMode=0'
efi_check_console secboot-chain-signed-loads sb-good 'SBLOAD SIGNED Success'
for v in UNSIGNED TAMPERED WRONGKEY; do
	if efi_console sb-good | grep -aqE "^SBLOAD $v (Access Denied|Security Violation)\$"; then
		pass "secboot-chain-refuses-$v"
	else
		fail "secboot-chain-refuses-$v" "$(efi_console sb-good | grep -a "SBLOAD $v" || echo 'no SBLOAD line')"
	fi
done
stop_server

# Each bad stub: the firmware's boot manager refuses it before it runs.
for v in unsigned tampered wrongkey; do
	efi_qemu "sb-$v" secure "$T/$v" 120 'Access Denied'
	if efi_console "sb-$v" | grep -aq 'failed to load Boot.*UEFI PXEv4.*: Access Denied' &&
		! efi_console_has "sb-$v" 'netdisk: UEFI network disk'; then
		pass "secboot-refuses-$v-stub"
	else
		fail "secboot-refuses-$v-stub" "$(efi_console "sb-$v" | grep -a 'BdsDxe\|netdisk' | tail -n 3 | tr '\n' ' ')"
	fi
done

# With Microsoft's certificates in db too (copied out of OVMF_VARS_4M.ms.fd,
# whose PK/KEK private keys nobody has): the signed stub starts Debian's
# signed shim from a netdisk image, shim Debian's signed GRUB, GRUB Debian's
# signed kernel.  The Debian packages are downloaded once into build/cache.
CACHE=$ND_BUILD/cache/secboot
M=$ND_TMP/ms
mkdir -p "$CACHE" "$M/tftp"
if [ -s "$SB/vars-ms.fd" ]; then
	pass secboot-ms-enrol "cached in $SB"
else
	python3 - /usr/share/OVMF/OVMF_VARS_4M.ms.fd "$M/ms-db.esl" <<'PY' || { fail secboot-ms-keys "no db in OVMF_VARS_4M.ms.fd"; exit 1; }
# The variable store's "db": authenticated variable headers (StartId 0x55AA,
# State 0x3F = added), then the UTF-16 name and the data (signature lists).
import struct, sys, uuid
store = open(sys.argv[1], 'rb').read()
want = uuid.UUID('d719b2cb-3d3a-4596-a3bc-dad00e67656f').bytes_le
at = 0
while (at := store.find(b'\xaa\x55', at)) >= 0 and at + 60 <= len(store):
    state = store[at + 2]
    name_size, data_size = struct.unpack_from('<II', store, at + 36)
    name = store[at + 60:at + 60 + name_size]
    if state == 0x3F and store[at + 44:at + 60] == want and name == 'db\0'.encode('utf-16le'):
        open(sys.argv[2], 'wb').write(store[at + 60 + name_size:at + 60 + name_size + data_size])
        sys.exit(0)
    at += 2
sys.exit(1)
PY
	if sb_enrol vars-ms "$M/ms-db.esl"; then
		pass secboot-ms-enrol
	else
		fail secboot-ms-enrol "$(efi_console enrol-vars-ms | grep -a SB | tr '\n' ' ')"
		exit 1
	fi
fi
for pkg in shim-signed grub-efi-amd64-signed; do
	ls "$CACHE/${pkg}_"*.deb >/dev/null 2>&1 ||
		(cd "$CACHE" && apt-get download "$pkg" >/dev/null 2>&1) ||
		{ skip secboot-ms-chain "cannot download $pkg"; exit 0; }
	dpkg-deb -x "$(ls "$CACHE/${pkg}_"*.deb | head -n 1)" "$M/x"
done
# Debian's signed kernel, as tools/mkimage caches it for the demo images.
make -s -C "$ND_TOP" BUILD="$ND_BUILD" demo-test-image >"$M/make.log" 2>&1
kernel=$(ls "$ND_BUILD"/cache/kernel-*/boot/vmlinuz-* 2>/dev/null | head -n 1)
[ -n "$kernel" ] || { fail secboot-ms-chain "no cached Debian kernel: $(tail -n 3 "$M/make.log")"; exit 1; }
# A FAT disk without partitions: shim as the removable-media loader, GRUB
# beside it with a grub.cfg (its embedded config falls back to that), the kernel.
printf 'set timeout=0\nlinux /vmlinuz console=ttyS0 panic=-1\nboot\n' >"$M/grub.cfg"
mkfs.fat -C "$M/disk.img" 32768 >/dev/null &&
	mmd -i "$M/disk.img" ::/EFI ::/EFI/BOOT &&
	mcopy -i "$M/disk.img" "$M/x/usr/lib/shim/shimx64.efi.signed" ::/EFI/BOOT/BOOTX64.EFI &&
	mcopy -i "$M/disk.img" "$M/x/usr/lib/grub/x86_64-efi-signed/grubx64.efi.signed" \
		::/EFI/BOOT/grubx64.efi &&
	mcopy -i "$M/disk.img" "$M/grub.cfg" ::/EFI/BOOT/grub.cfg &&
	mcopy -i "$M/disk.img" "$kernel" ::/vmlinuz ||
	{ fail secboot-ms-disk "cannot build the shim disk"; exit 1; }
if ! start_server sb-ms-server --mode volatile "$M/disk.img"; then
	fail secboot-ms-server "netdiskd did not start"
	exit 1
fi
efi_patch_stub "$ND_BUILD/netdisk.efi" "$M/patched.efi" "$ND_PORT"
make -s -C "$ND_TOP" BUILD="$ND_BUILD" sign KEY="$KEY" CERT="$CERT" IN="$M/patched.efi" \
	OUT="$M/tftp/netdisk.efi" >/dev/null 2>&1
# The kernel panics without a root file system and reboots: QEMU stops.
# If anything is refused, the stub returns and the boot manager says so.
EFI_SECURE_VARS=$SB/vars-ms.fd efi_qemu sb-ms secure "$M/tftp" 240 "BdsDxe: failed"
stop_server
efi_check_console secboot-ms-shim-started sb-ms 'netdisk: starting \EFI\BOOT\BOOTX64.EFI'
efi_check_console secboot-ms-kernel-started sb-ms 'Linux version'
efi_check_console secboot-ms-kernel-secure-boot sb-ms 'secureboot: Secure boot enabled'
efi_check_console secboot-ms-kernel-lockdown sb-ms 'Kernel is locked down from EFI Secure Boot'
