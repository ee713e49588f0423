# SPDX-License-Identifier: GPL-2.0-or-later
# Helpers for the tests/t-image-*.sh suites: building the demo images, reading partitions and files out of a raw image.
# Source it after tests/lib.sh.

export MTOOLS_SKIP_CHECK=1

# Builds (or refreshes) build/demo.img and build/demo-test.img through make,
# so a suite run on its own still tests current images.
build_demo_images() {
	make -s -C "$ND_TOP" BUILD="$ND_BUILD" demo-image demo-test-image >"$ND_TMP/make.log" 2>&1 || {
		fail build-demo-images "$(tail -n 5 "$ND_TMP/make.log" | tr '\n' ' ')"
		exit 1
	}
}

# partition_field IMAGE N FIELD: start or size (sectors) of partition N, or
# its type, from sfdisk's dump.
partition_field() {
	sfdisk -d "$1" | awk -v n="$2" -v field="$3" -F'[:,]' '
		$1 ~ "[^0-9]" n " *$" {
			for (i = 2; i <= NF; i++) {
				split($i, kv, "=")
				gsub(/ /, "", kv[1]); gsub(/ /, "", kv[2])
				if (kv[1] == field) print kv[2]
			}
		}'
}

# extract_partition IMAGE N OUT: copies partition N of IMAGE to the file OUT.
extract_partition() {
	local start size
	start=$(partition_field "$1" "$2" start)
	size=$(partition_field "$1" "$2" size)
	[ -n "$start" ] && [ -n "$size" ] || return 1
	dd if="$1" of="$3" bs=512 skip="$start" count="$size" conv=sparse status=none
}

# esp_at IMAGE: the mtools image spec of IMAGE's first partition.
esp_at() {
	echo "$1@@$(($(partition_field "$1" 1 start) * 512))"
}

# set_kernel_append IMAGE ARGS: makes the kernel command line of IMAGE the
# base one plus ARGS (tools/mkimage --set-append).
set_kernel_append() {
	"$ND_TOP/tools/mkimage" --set-append "$2" "$1" 2>/dev/null
}

# boot_disk_until_off NAME FIRMWARE IMAGE: boots IMAGE as a local disk with
# the console in $ND_TMP/NAME.log; fails if the VM does not stop by itself.
boot_disk_until_off() {
	local name=$1 firmware=$2 image=$3 flag=
	[ "$firmware" = uefi ] && flag=--uefi
	timeout "${ND_BOOT_TIMEOUT:-180}" "$ND_TOP/qemu-scripts/boot-disk" $flag --log "$ND_TMP/$name.log" "$image"
}

# console_text FILE: a VM's serial console as text: no carriage returns, and
# every kernel message that the kernel printed in the middle of a line a
# program was writing (printk does not wait for the line to end) moved after
# that line, so "NETDISK-NET-OK eth0 10.0.[    3.19] IPv6: ...\n2.15 ..."
# reads as the two lines that were written.  A line with escape sequences
# (a shell prompt, firmware screen drawing) is left as it is.
console_text() {
	tr -d '\r' <"$1" | perl -0777 -pe '1 while s/^([^\n\e]*[^\n\e])((?:\[ *\d+\.\d+\] [^\n]*\n)+)((?!\[ *\d+\.\d+\] )[^\n]*\n)/$1$3$2/m'
}

# console_has NAME PATTERN: the console log NAME holds a line matching PATTERN.
console_has() {
	console_text "$ND_TMP/$1.log" | grep -aqE "$2"
}

# console_line NAME PATTERN: line number of the first console line matching PATTERN.
console_line() {
	console_text "$ND_TMP/$1.log" | grep -anE "$2" | head -n 1 | cut -d: -f1
}

# start_interactive_boot NAME FIRMWARE IMAGE: boots IMAGE as a local disk in
# the background with its serial console on FIFOs; the console output goes
# to $ND_TMP/NAME.log and type_into NAME writes to its input.
start_interactive_boot() {
	local name=$1 firmware=$2 image=$3 flag= pipe=$ND_TMP/$1.serial
	[ "$firmware" = uefi ] && flag=--uefi
	mkfifo "$pipe.in" "$pipe.out"
	cat "$pipe.out" >"$ND_TMP/$name.log" 2>/dev/null &
	ND_CONSOLE_READER_PID=$!
	ND_PIDS+=("$ND_CONSOLE_READER_PID")
	timeout "${ND_BOOT_TIMEOUT:-180}" "$ND_TOP/qemu-scripts/boot-disk" $flag --serial "pipe:$pipe" "$image" &
	ND_VM_PID=$!
	ND_PIDS+=("$ND_VM_PID")
	# Read-write so the open never blocks, even if QEMU fails to start.
	exec {ND_CONSOLE_FD}<>"$pipe.in"
}

type_into() {
	printf '%s\r' "$2" >&"$ND_CONSOLE_FD"
}

# ask_until NAME COMMAND PATTERN SECONDS: types COMMAND every 2 s until the
# console shows a line matching PATTERN (the shell may not be reading yet).
ask_until() {
	local name=$1 command=$2 pattern=$3 deadline=$((SECONDS + $4))
	until console_has "$name" "$pattern"; do
		[ $SECONDS -lt $deadline ] || return 1
		type_into "$name" "$command"
		sleep 2
	done
}

# vm_stops_within SECONDS: waits for the background VM to end by itself.
vm_stops_within() {
	wait_for "$1" bash -c "! kill -0 $ND_VM_PID"
}


# abandon_vm WHY: reports WHY with the console's last lines and stops the
# background VM at once instead of letting it run on until its timeout.
abandon_vm() {
	echo "$1"
	tail -n 5 "$ND_TMP/$2.log"
	kill "$ND_VM_PID" "$ND_CONSOLE_READER_PID" 2>/dev/null
}
