#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Personalization (issue #18) in VMs: two BIOS VMs PXE-boot the demo image
# at the same time through netdisk.pxe (volatile), and a third, under OVMF,
# through netdisk.efi (its syslinux.efi reads the ESP's /EFI/BOOT menu); Linux
# takes each session over NBD and reports from inside its own `hostname`,
# /etc/machine-id and kernel command line: each must be the one netdiskd
# wrote for its MAC, and all differ.  (Without OVMF the UEFI VM is skipped.)
. "$(dirname "$0")/lib.sh"
requires qemu ipxe cmd:debugfs
. "$(dirname "$0")/image-lib.sh"
. "$(dirname "$0")/e2e-lib.sh"

M1=52:54:00:1d:00:01 M2=52:54:00:1d:00:02 M3=52:54:00:1d:00:03
uefi=yes
[ -r /usr/share/OVMF/OVMF_CODE_4M.fd ] || { uefi=; skip uefi-vm "OVMF (package ovmf) is not installed"; }
e2e_build
mkdir -p "$ND_TMP/hook"
cat >"$ND_TMP/hook/persona.sh" <<'HOOK'
#!/bin/sh
echo
echo "E2E-ROOT-MOUNT $(awk '$2 == "/" && $1 != "rootfs"' /proc/mounts | tail -n 1)"
echo "PERSONA-HOSTNAME $(hostname)"
echo "PERSONA-MACHINE-ID $(cat /etc/machine-id)"
echo "PERSONA-CMDLINE $(cat /proc/cmdline)"
HOOK
chmod +x "$ND_TMP/hook/persona.sh"
image_with_hook "$ND_TMP/demo.img" "$ND_TMP/hook" \
	"netdisk.test=poweroff panic=-1 netdisk.test.hook=/e2e/persona.sh" ||
	{ fail persona-vm-image "cannot build the test image"; exit 1; }
sha_before=$(sha256sum <"$ND_TMP/demo.img")
# The BIOS boot menu on the ESP (FAT32) as a template: each client's kernel
# command line names it.
export MTOOLS_SKIP_CHECK=1
mtype -i "$(esp_at "$ND_TMP/demo.img")" ::/syslinux/syslinux.cfg |
	sed -e 's/{/{{/g; s/}/}}/g' -e 's/^\( *APPEND .*\)$/\1 netdisk.persona={hostname}/' >"$ND_TMP/syslinux.tmpl"
# ... and the UEFI one (syslinux.efi as \EFI\BOOT\BOOTX64.EFI reads this one).
mtype -i "$(esp_at "$ND_TMP/demo.img")" ::/EFI/BOOT/syslinux.cfg |
	sed -e 's/{/{{/g; s/}/}}/g' -e 's/^\( *APPEND .*\)$/\1 netdisk.persona={hostname}-efi/' >"$ND_TMP/efi-syslinux.tmpl"
cat >"$ND_TMP/vm.conf" <<CONF
state-dir = $ND_TMP/state
[image demo]
path = demo.img
mode = volatile
hostname = lab-{index}
file esp:/syslinux/syslinux.cfg from syslinux.tmpl
file esp:/EFI/BOOT/syslinux.cfg from efi-syslinux.tmpl
[client $M1]
[client $M2]
[client $M3]
CONF
start_server server --config "$ND_TMP/vm.conf" || { fail persona-vm-server "$(cat "$ND_TMP/server.log")"; exit 1; }
mkdir -p "$ND_TMP/tftp"
E2E_FW=bios E2E_NBP=netdisk.pxe
cp "$ND_BUILD/netdisk.pxe" "$ND_TMP/tftp/$E2E_NBP"
"$ND_BUILD/netdisk" patch "$ND_TMP/tftp/$E2E_NBP" --server "10.0.2.2:$ND_PORT" >/dev/null

if [ -n "$uefi" ]; then
	cp "$ND_BUILD/netdisk.efi" "$ND_TMP/tftp/netdisk.efi"
	"$ND_BUILD/netdisk" patch "$ND_TMP/tftp/netdisk.efi" --server "10.0.2.2:$ND_PORT" >/dev/null
fi

e2e_boot vm1 "$M1"
e2e_boot vm2 "$M2"
if [ -n "$uefi" ]; then
	E2E_FW=uefi E2E_NBP=netdisk.efi
	e2e_boot vm3 "$M3"
fi
e2e_wait

h1=$(e2e_value vm1 PERSONA-HOSTNAME) h2=$(e2e_value vm2 PERSONA-HOSTNAME)
m1=$(e2e_value vm1 PERSONA-MACHINE-ID) m2=$(e2e_value vm2 PERSONA-MACHINE-ID)
check vm1-booted e2e_booted vm1 "$M1" /e2e/persona.sh
check vm2-booted e2e_booted vm2 "$M2" /e2e/persona.sh
if [ "$h1" = lab-1 ] && [ "$h2" = lab-2 ]; then pass vm-hostnames; else fail vm-hostnames "'$h1' '$h2'"; fi
if [[ $m1 =~ ^[0-9a-f]{32}$ ]] && [[ $m2 =~ ^[0-9a-f]{32}$ ]] && [ "$m1" != "$m2" ]; then
	pass vm-machine-ids; else fail vm-machine-ids "'$m1' '$m2'"; fi
c1=$(e2e_value vm1 PERSONA-CMDLINE) c2=$(e2e_value vm2 PERSONA-CMDLINE)
if [[ $c1 == *" netdisk.persona=lab-1"* ]] && [[ $c2 == *" netdisk.persona=lab-2"* ]]; then
	pass vm-kernel-cmdline; else fail vm-kernel-cmdline "'$c1' '$c2'"; fi
# The client's ESP (FAT32, its menu grown or rewritten) is clean.
esp_start=$(partition_field "$ND_TMP/demo.img" 1 start) esp_size=$(partition_field "$ND_TMP/demo.img" 1 size)
"$ND_BUILD/netdisk" read "127.0.0.1:$ND_PORT" "$esp_start" "$esp_size" -o "$ND_TMP/esp1.img" --mac "$M1" &&
	check vm-esp-fsck fsck.fat -n "$ND_TMP/esp1.img"
# What Linux read is what the server wrote for that MAC.
extract_partition "$ND_TMP/demo.img" 2 "$ND_TMP/root.img"
if grep -q "persona built mac=$M1 .*hostname=lab-1" "$ND_TMP/server.log" &&
	grep -q "attach mac=$M1 .*persona=" "$ND_TMP/server.log"; then pass vm-persona-logged; else
	fail vm-persona-logged "$(grep persona "$ND_TMP/server.log" | head -n 3)"; fi
# The stub passed the handoff word on: the agent says the session is personalized.
if console_has vm1 '^netdisk-attach: attached /dev/nbd0: .*, personalized$' &&
	console_has vm2 '^netdisk-attach: attached /dev/nbd0: .*, personalized$'; then
	pass vm-agent-personalized; else fail vm-agent-personalized "$(grep -a 'attached /dev/nbd' "$ND_TMP/vm1.log")"; fi
if [ -n "$uefi" ]; then
	# The UEFI VM: the same identity from Linux, and the kernel command line
	# from the ESP's UEFI menu.
	h3=$(e2e_value vm3 PERSONA-HOSTNAME) m3=$(e2e_value vm3 PERSONA-MACHINE-ID)
	c3=$(e2e_value vm3 PERSONA-CMDLINE)
	check uefi-vm-booted e2e_booted vm3 "$M3" /e2e/persona.sh
	[ "$h3" = lab-3 ] && pass uefi-vm-hostname || fail uefi-vm-hostname "'$h3'"
	if [[ $m3 =~ ^[0-9a-f]{32}$ ]] && [ "$m3" != "$m1" ] && [ "$m3" != "$m2" ]; then
		pass uefi-vm-machine-id; else fail uefi-vm-machine-id "'$m3' (BIOS VMs '$m1' '$m2')"; fi
	[[ $c3 == *" netdisk.persona=lab-3-efi"* ]] && pass uefi-vm-kernel-cmdline ||
		fail uefi-vm-kernel-cmdline "'$c3'"
	console_has vm3 '^netdisk-attach: attached /dev/nbd0: .*, personalized$' &&
		pass uefi-vm-agent-personalized || fail uefi-vm-agent-personalized "$(grep -a 'attached /dev/nbd' "$ND_TMP/vm3.log")"
fi
check vm-base-unchanged test "$(sha256sum <"$ND_TMP/demo.img")" = "$sha_before"
