#!/usr/bin/env bash
# Types into the serial console of the demo image booted from a local disk: the root system's shell and the initramfs shell both answer.
. "$(dirname "$0")/lib.sh"
requires cmd:syslinux
. "$(dirname "$0")/image-lib.sh"

build_demo_images

# The demo image as built (no test option) must end in a root shell on ttyS0.
root_shell_answers() {
	local name=root-shell image=$ND_TMP/root-shell.img
	cp --sparse=always "$ND_BUILD/demo.img" "$image"
	start_interactive_boot "$name" bios "$image"
	wait_for 120 console_has "$name" '^NETDISK-ROOT-OK root /dev/vda2' || { abandon_vm "root marker never came" "$name"; return 1; }
	ask_until "$name" 'echo ROOT-SHELL-$((6*7)) $(hostname) $(cat /proc/1/comm)' '^ROOT-SHELL-42 netdisk-demo init' 60 ||
		{ abandon_vm "no shell answer on ttyS0" "$name"; return 1; }
	type_into "$name" poweroff
	vm_stops_within 60 || { abandon_vm "poweroff typed into the shell did not stop the VM" "$name"; return 1; }
}

# netdisk.break=initramfs stops in the initramfs with its modules loaded
# and the DHCP lease recorded (here under UEFI).
initramfs_shell_answers() {
	local name=initramfs-shell image=$ND_TMP/initramfs-shell.img
	cp --sparse=always "$ND_BUILD/demo.img" "$image"
	set_kernel_append "$image" "netdisk.break=initramfs" || { echo "cannot edit syslinux.cfg"; return 1; }
	start_interactive_boot "$name" uefi "$image"
	wait_for 120 console_has "$name" '^NETDISK-INITRAMFS-STOP netdisk.break=initramfs' || { abandon_vm "initramfs did not stop" "$name"; return 1; }
	ask_until "$name" 'echo INITRAMFS-SHELL-$((6*7)) nbd=$(grep -c "^nbd " /proc/modules) $(. /run/netdisk/net.env; echo $interface $ip)' \
		'^INITRAMFS-SHELL-42 nbd=1 eth0 10\.0\.2\.15' 60 ||
		{ abandon_vm "initramfs shell gave no (right) answer" "$name"; return 1; }
	type_into "$name" 'poweroff -f'
	vm_stops_within 60 || { abandon_vm "poweroff -f did not stop the VM" "$name"; return 1; }
}

check image-root-shell-bios root_shell_answers
check image-initramfs-shell-uefi initramfs_shell_answers
