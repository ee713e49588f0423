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

# sb_enrol: PK, KEK and db = the test key, written by sb-enroll.efi in setup
# mode (OVMF_VARS_4M.fd has no keys) from .auth files on a FAT disk; the
# resulting variable store becomes $SB/vars.fd.
sb_enrol() {
	local d=$ND_TMP/enrol guid v
	mkdir -p "$d/tftp" "$SB"
	rm -f "$SB/vars.fd"
	sb_key "$SB/test" || return 1
	guid=$(cat /proc/sys/kernel/random/uuid)
	for v in PK KEK db; do
		cert-to-efi-sig-list -g "$guid" "$SB/test.crt" "$d/$v.esl" >/dev/null &&
			sign-efi-sig-list -k "$SB/test.key" -c "$SB/test.crt" "$v" "$d/$v.esl" "$d/$v.auth" \
				>/dev/null || return 1
	done
	mkfs.fat -C "$d/keys.img" 2048 >/dev/null && mcopy -i "$d/keys.img" "$d"/*.auth ::/ || return 1
	cp "$ENROL" "$d/tftp/netdisk.efi"
	EFI_SECURE_VARS=/usr/share/OVMF/OVMF_VARS_4M.fd efi_qemu enrol secure "$d/tftp" 120 '' \
		--disk "$d/keys.img"
	efi_console_has enrol 'SBENROLL done' && efi_console_has enrol 'after enrolment SetupMode=0' &&
		cp "$ND_TMP/enrol.vars/OVMF_VARS.fd" "$SB/vars.fd"
}

if [ -s "$SB/vars.fd" ] && [ -s "$SB/test.key" ] && [ -s "$SB/test.crt" ]; then
	pass secboot-enrol "cached in $SB"
elif sb_enrol; then
	pass secboot-enrol
else
	fail secboot-enrol "the key was not enrolled: $(efi_console enrol | grep -a SB | tr '\n' ' ')"
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
efi_qemu sb-good secure "$T/good" 180
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
