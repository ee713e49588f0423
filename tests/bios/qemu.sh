# SPDX-License-Identifier: GPL-2.0-or-later
# Helpers for the BIOS suites: a patched netdisk.pxe in a TFTP dir, QEMU runs, serial waits.
# Source after tests/lib.sh.

ND_BIOS_BUILD=$ND_BUILD/tests
INT13_SECTORS=65536

# bios_tftp DIR PORT [netdisk patch options]: DIR/netdisk.pxe aimed at 10.0.2.2:PORT.
bios_tftp() {
	local dir=$1 port=$2
	shift 2
	mkdir -p "$dir"
	cp "$ND_BUILD/netdisk.pxe" "$dir/netdisk.pxe"
	"$ND_BUILD/netdisk" patch "$dir/netdisk.pxe" --server "10.0.2.2:$port" "$@" >/dev/null
}

# serve_demo_test PREFIX: build/demo-test.img (make demo-test-image) served
# by netdiskd with a state directory (sets ND_PORT); if either fails, a FAIL
# named PREFIX-image or PREFIX-server ends the suite.
serve_demo_test() {
	if ! make -s -C "$ND_TOP" demo-test-image >"$ND_TMP/mkimage.log" 2>&1; then
		fail "$1-image" "make demo-test-image failed: $(tail -n 3 "$ND_TMP/mkimage.log" | tr '\n' ' ')"
		exit 1
	fi
	start_server server --state-dir "$ND_TMP/state" "$ND_BUILD/demo-test.img" ||
		{ fail "$1-server" "netdiskd did not start"; exit 1; }
}

# bios_qemu NAME NIC TFTPDIR [QEMU ARGS]: PXE-boot a BIOS VM in the background
# (qemu-scripts/boot-pxe, the one launcher), serial console in
# $ND_TMP/NAME.serial; sets QEMU_PID (QEMU's own: boot-pxe execs it).
bios_qemu() {
	local name=$1 nic=$2 dir=$3
	shift 3
	"$ND_TOP/qemu-scripts/boot-pxe" --tftp "$dir" --bootfile netdisk.pxe --nic "$nic" \
		--log "$ND_TMP/$name.serial" -- "$@" >"$ND_TMP/$name.qemu.log" 2>&1 &
	QEMU_PID=$!
	ND_PIDS+=("$QEMU_PID")
}

# wait_serial NAME SECONDS PATTERN: wait until the VM's serial shows PATTERN.
wait_serial() {
	wait_for "$2" grep -q -- "$3" "$ND_TMP/$1.serial"
}

stop_qemu() {
	kill "$QEMU_PID" 2>/dev/null
	wait "$QEMU_PID" 2>/dev/null
	return 0
}

# int13_image FILE [1]: the INT 13h test program and its pattern; 1 turns on its fault phase.
int13_image() {
	python3 "$ND_TOP/tests/bios/mkimage-int13.py" "$ND_BIOS_BUILD/int13test.bin" "$1" "$INT13_SECTORS"
	if [ "${2:-0}" = 1 ]; then
		printf '\001' | dd of="$1" bs=1 seek=514 conv=notrunc status=none
	fi
}

# local_disk FILE: the machine's own disk, which the stub must move to 81h.
local_disk() {
	cp "$ND_BIOS_BUILD/localdisk.bin" "$1"
	truncate -s 1M "$1"
}

# int13_results NAME PREFIX: one PASS/FAIL line per check the test program ran.
int13_results() {
	local line
	while IFS= read -r line; do
		line=${line%$'\r'}
		case $line in
		"ok "*) pass "$2: ${line#ok }" ;;
		"not ok "*) fail "$2: ${line#not ok }" "reported by the test program" ;;
		esac
	done <"$ND_TMP/$1.serial"
}

# int13_value NAME KEY: a "val KEY=N" the test program printed.
int13_value() {
	tr -d '\r' <"$ND_TMP/$1.serial" | sed -n "s/^val $2=//p" | head -n 1
}

# expect_value NAME KEY WANT PREFIX
expect_value() {
	local got
	got=$(int13_value "$1" "$2")
	if [ "$got" = "$3" ]; then pass "$4: $2 = $3"; else fail "$4: $2" "got '$got', want '$3'"; fi
}

# int13_all_ok NAME PREFIX [NOTE]: the int13test program that wrote
# $ND_TMP/NAME.serial finished, every check passed, and at least one ran (a
# log without a single "ok" line tested nothing, so it fails too).
int13_all_ok() {
	local log=$ND_TMP/$1.serial n
	n=$(grep -c '^ok' "$log" 2>/dev/null)
	if ! grep -q "INT13TEST END" "$log" 2>/dev/null; then
		fail "$2: test program finished" "$(tail -n 3 "$log" 2>/dev/null | tr '\r\n' '  ')"
	elif grep -q "^not ok" "$log"; then
		fail "$2: all checks pass" "$(grep '^not ok' "$log" | head -n 3 | tr '\r\n' '  ')"
	elif [ "${n:-0}" -eq 0 ]; then
		fail "$2: all checks pass" "no check ran"
	else
		pass "$2: all $n checks pass${3:+ ($3)}"
	fi
}

# stub_memory_ranges LOG: every START END (decimal) on the stub's
# "netdisk: memory:" line: all it writes after the boot sector starts.
stub_memory_ranges() {
	tr -d '\r' <"$1" | grep -a -m 1 '^netdisk: memory:' | grep -oE '[0-9a-f]+-[0-9a-f]+' |
		while IFS=- read -r start end; do echo $((16#$start)) $((16#$end)); done
}

# stub_memory_outside_low LOG: the stub reported its memory, and none of it
# lies in 0x500-0x7FFFF, where boot loaders put their buffers.
stub_memory_outside_low() {
	local start end n=0
	while read -r start end; do
		n=$((n + 1))
		if [ "$end" -ge $((0x500)) ] && [ "$start" -le $((0x7ffff)) ]; then
			printf 'range %x-%x is in 500-7ffff\n' "$start" "$end"
			return 1
		fi
	done < <(stub_memory_ranges "$1")
	[ "$n" -gt 0 ] || { echo "no 'netdisk: memory:' line"; return 1; }
}

# ext_memory_hidden LOG: every range the stub reported after its resident
# part and stack (its image in extended memory, the NIC's block, the hidden
# range) overlaps no usable E820 range the test program printed.
ext_memory_hidden() {
	local start end n=0 r
	paste -d' ' <(tr -d '\r' <"$1" | sed -n 's/^val e820_ram_start=//p') \
		<(tr -d '\r' <"$1" | sed -n 's/^val e820_ram_end=//p') >"$1.ram"
	[ -s "$1.ram" ] || { echo "the test program printed no E820 ranges"; return 1; }
	while read -r -a r; do
		n=$((n + 1))
		[ "$n" -gt 2 ] || continue
		while read -r start end; do
			if [ "${r[1]}" -ge "$start" ] && [ "${r[0]}" -lt "$end" ]; then
				printf 'stub range %x-%x is in usable E820 range %x-%x\n' "${r[0]}" "${r[1]}" "$start" "$end"
				return 1
			fi
		done <"$1.ram"
	done < <(stub_memory_ranges "$1")
	[ "$n" -ge 4 ] || { echo "no image or hidden range in the memory report"; return 1; }
}

# stub_resident_kb LOG MAX: the resident part the stub keeps in base memory
# (the first range of its memory report) is at most MAX KiB.
stub_resident_kb() {
	local r
	r=($(stub_memory_ranges "$1" | head -n 1))
	[ ${#r[@]} -eq 2 ] || { echo "no resident range in the memory report"; return 1; }
	if [ $(((r[1] - r[0] + 1 + 1023) / 1024)) -gt "$2" ]; then
		printf 'resident part %x-%x is %u KiB, more than %u\n' "${r[0]}" "${r[1]}" \
			$(((r[1] - r[0] + 1 + 1023) / 1024)) "$2"
		return 1
	fi
}

# e820_hides_stub NAME LOG: PASS NAME if Linux's view of memory in a serial
# LOG of a boot through the stub has the usable RAM below 1 MiB end below the
# stub's resident part, else FAIL NAME.
e820_hides_stub() {
	local stub low_end
	stub=$(tr -d '\r' <"$2" | sed -n 's/^netdisk: memory: resident \([0-9a-f]*\)[0-9a-f]-.*/\1/p' | head -n 1)
	low_end=$(tr -d '\r' <"$2" | sed -n 's/.*BIOS-e820: \[mem 0x0*\(0\)-0x\([0-9a-f]*\)\] usable.*/\2/p' | head -n 1)
	if [ -n "$stub" ] && [ -n "$low_end" ] && [ $((16#$low_end)) -lt $((16#$stub * 16)) ]; then
		pass "$1 (usable to 0x$low_end, stub at 0x${stub}0)"
	else
		fail "$1" "stub segment '$stub', low usable end '$low_end'"
	fi
}
