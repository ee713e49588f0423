# SPDX-License-Identifier: GPL-2.0-or-later
# Shared pieces of the QEMU launchers: firmware selection, console wiring and the qemu command line base.
# Source it; it sets nothing until a function is called.

OVMF_CODE=${OVMF_CODE:-/usr/share/OVMF/OVMF_CODE_4M.fd}
OVMF_VARS=${OVMF_VARS:-/usr/share/OVMF/OVMF_VARS_4M.fd}
# Secure Boot firmware (qemu_base_args with FIRMWARE uefi-secure); the variable
# store decides the keys (OVMF_VARS_4M.fd: none, setup mode).
OVMF_SECURE_CODE=${OVMF_SECURE_CODE:-/usr/share/OVMF/OVMF_CODE_4M.secboot.fd}

qemu_die() {
	echo "${0##*/}: $*" >&2
	exit 1
}

# Appends to the array QEMU_ARGS the machine every launcher uses: TCG
# (KVM hangs PXE boots in this sandbox), no reboot so a guest reboot or
# triple fault ends the run, and the firmware.  FIRMWARE is bios, uefi or
# uefi-secure (OVMF's Secure Boot build: it needs q35 with SMM and a secure
# flash, and hangs silently on pc); UEFI gets a private copy of the OVMF
# variable store in VARS_DIR so runs never share or dirty the system one.
qemu_base_args() {
	local firmware=$1 vars_dir=$2 memory=$3 code=$OVMF_CODE machine=pc
	if [ "$firmware" = uefi-secure ]; then
		code=$OVMF_SECURE_CODE machine=q35,smm=on
		QEMU_ARGS+=(-global driver=cfi.pflash01,property=secure,value=on)
	fi
	QEMU_ARGS+=(-machine "$machine" -accel tcg -m "$memory" -no-reboot)
	if [ "$firmware" != bios ]; then
		[ -r "$code" ] && [ -r "$OVMF_VARS" ] || qemu_die "OVMF not found ($code): install the ovmf package"
		cp "$OVMF_VARS" "$vars_dir/OVMF_VARS.fd"
		QEMU_ARGS+=(-drive "if=pflash,format=raw,readonly=on,file=$code"
			-drive "if=pflash,format=raw,file=$vars_dir/OVMF_VARS.fd")
	fi
}

# Appends the console wiring: with a LOG file the serial console goes there
# (for tests); with SERIAL (a QEMU chardev such as pipe:PATH) it goes there
# (for tests that type into the guest); with neither the serial console and
# the QEMU monitor share this terminal (Ctrl-A X quits, Ctrl-A C toggles).
qemu_console_args() {
	local log=$1 serial=$2
	if [ -n "$log" ] && [ -n "$serial" ]; then
		qemu_die "--log and --serial exclude each other"
	elif [ -n "$log" ]; then
		QEMU_ARGS+=(-display none -monitor none -serial "file:$log")
	elif [ -n "$serial" ]; then
		QEMU_ARGS+=(-display none -monitor none -serial "$serial")
	else
		QEMU_ARGS+=(-nographic)
	fi
}
