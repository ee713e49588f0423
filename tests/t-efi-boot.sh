#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# UEFI stub boot chain: syslinux.efi, the Debian kernel and our initramfs start from the served demo disk, root follows over NBD.
. "$(dirname "$0")/lib.sh"
requires qemu ovmf ipxe cmd:syslinux cmd:mcopy
. "$(dirname "$0")/efi-lib.sh"

# tools/mkimage's test image: it powers off once the initramfs has run.
if ! make -s -C "$ND_TOP" BUILD="$ND_BUILD" demo-test-image >"$ND_TMP/make.log" 2>&1; then
	fail efi-boot-image "$(tail -n 5 "$ND_TMP/make.log" | tr '\n' ' ')"
	exit 1
fi

# The iPXE run has a site key (docs/security.md): the stub signs its ATTACH
# with the key `netdisk patch --key` put in, and the agent continues the
# session by its token alone (the key stays out of the boot table).
od -An -tx1 -N32 /dev/urandom | tr -d ' \n' >"$ND_TMP/site.key"
echo "site-key = $ND_TMP/site.key" >"$ND_TMP/keyed.conf"
for fw in ovmf ipxe; do
	name=boot-$fw
	mkdir -p "$ND_TMP/$name/tftp"
	keyed=()
	[ $fw = ipxe ] && keyed=(--config "$ND_TMP/keyed.conf")
	# A private copy: the volatile overlay must keep the served file as it was.
	cp --sparse=always "$ND_BUILD/demo-test.img" "$ND_TMP/$name/demo.img"
	if ! start_server "$name-server" "${keyed[@]}" --mode volatile "$ND_TMP/$name/demo.img"; then
		fail "efi-$fw-boot" "netdiskd did not start"
		continue
	fi
	efi_patch_stub "$ND_BUILD/netdisk.efi" "$ND_TMP/$name/tftp/netdisk.efi" "$ND_PORT"
	[ $fw = ipxe ] && "$ND_BUILD/netdisk" patch "$ND_TMP/$name/tftp/netdisk.efi" --key "$ND_TMP/site.key" >/dev/null
	efi_qemu "$name" "$fw" "$ND_TMP/$name/tftp" 300
	stop_server
	efi_check_console "efi-$fw-boot-attached" "$name" 'mode volatile'
	efi_check_console "efi-$fw-boot-own-driver" "$name" 'netdisk: transport virtio-net (own driver'
	efi_check_console "efi-$fw-boot-loader" "$name" 'netdisk: starting \EFI\BOOT\BOOTX64.EFI'
	efi_check_console "efi-$fw-boot-kernel-loaded" "$name" 'Loading /initrd.gz...ok'
	efi_check_console "efi-$fw-boot-cmdline" "$name" 'root=LABEL=ndroot rw netdisk.test=poweroff'
	efi_check_console "efi-$fw-boot-initramfs" "$name" 'NETDISK-INITRAMFS-OK kernel '
	# Linux continues the stub's session from the NDSK boot table, root over NBD.
	efi_check_console "efi-$fw-boot-table-network" "$name" 'NETDISK-NET-OK eth0 10.0.2.15 boot-table'
	efi_check_console "efi-$fw-boot-root-on-netdisk" "$name" 'NETDISK-ROOT-OK root /dev/nbd0p2'
	efi_check_console "efi-$fw-boot-powers-off" "$name" 'NETDISK-POWEROFF'
	check "efi-$fw-boot-image-untouched" cmp -s "$ND_BUILD/demo-test.img" "$ND_TMP/$name/demo.img"
	[ $fw = ipxe ] && check "efi-ipxe-boot-attach-signed-with-site-key" \
		grep -q "attach mac=.* mode=volatile .*key=site" "$ND_TMP/$name-server.log"
done
