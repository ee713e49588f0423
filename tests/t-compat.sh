#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Compatibility (issue 21, item 4): the cells of docs/compat.md's matrix that no other suite boots, through to Linux's root.
#
# Two cells share one image (systemd-boot on UEFI, syslinux on BIOS; Debian's
# generic kernel) and run side by side: netdisk.pxe over the PXE API of
# iPXE's vmxnet3 ROM, and netdisk.efi over the SNP of iPXE's e1000e EFI ROM
# into systemd-boot.  virtio-net, e1000 and rtl8139 on BIOS (t-bios-boot,
# t-bios-grub), syslinux.efi and GRUB on UEFI (t-e2e-uefi, t-efi-boot) and
# shim + GRUB under Secure Boot (t-secboot) are booted by their own suites;
# `make compat` runs the whole matrix and writes docs/compat.md.
. "$(dirname "$0")/lib.sh"
requires qemu ipxe ovmf cmd:syslinux cmd:mcopy file:/usr/lib/systemd/boot/efi/systemd-bootx64.efi
. "$(dirname "$0")/compat-lib.sh"

CELLS=(bios:vmxnet3:syslinux:systemd-boot uefi-ipxe:e1000e:systemd-boot)
compat_serve systemd-boot || { fail compat-serve "$(cat "$ND_TMP"/compat*.build "$ND_TMP/compat.log" 2>/dev/null | tail -n 3)"; exit 1; }
compat_run "${CELLS[@]}"
for cell in "${CELLS[@]}"; do
	stage=$(compat_stage "$cell")
	if [ "$stage" = root ]; then
		pass "compat $cell: root over NBD from the stub's session ($(compat_seconds "$cell" kernel) s to the kernel, $(compat_seconds "$cell" root) s to root)"
	else
		fail "compat $cell" "got to '$stage': $(tr -d '\r' <"$COMPAT_DIR/$(compat_name "$cell").serial" | tail -n 3 | tr '\n' ' ')"
	fi
done
# The UEFI cell went through systemd-boot (its loader entry's kernel line),
# the BIOS cell through syslinux from the same disk.
check "compat: systemd-boot started the entry's kernel" \
	grep -aq "Command line: .*netdisk.test=poweroff" "$COMPAT_DIR/uefi-ipxe-e1000e-systemd-boot.serial"
check "compat: the NICs the kernel drove are the cells' own" \
	bash -c "grep -aq vmxnet3 '$COMPAT_DIR/bios-vmxnet3-syslinux-systemd-boot.serial' && grep -aq e1000e '$COMPAT_DIR/uefi-ipxe-e1000e-systemd-boot.serial'"
