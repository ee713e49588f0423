#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# BIOS stub under faults: server started late, server restarted mid-run (state kept, session records lost, volatile session lost), server never there.
. "$(dirname "$0")/lib.sh"
requires qemu ipxe
. "$(dirname "$0")/bios/qemu.sh"

IMG=$ND_TMP/int13.img
local_disk "$ND_TMP/local.img"
LOCAL_DISK=(-drive "file=$ND_TMP/local.img,format=raw,if=ide")

# no_line TEXT FILE: FILE exists and has no line with TEXT.
no_line() { [ -f "$2" ] && ! grep -q "$1" "$2"; }

# 1. The server comes up while the stub is already trying to attach.
int13_image "$IMG"
export ND_PORT_FIXED=$(free_port)
bios_tftp "$ND_TMP/tftp" "$ND_PORT_FIXED"
bios_qemu late virtio-net-pci "$ND_TMP/tftp" "${LOCAL_DISK[@]}"
if wait_serial late 60 "not answering, retrying"; then
	pass "late: stub reports the missing server"
else
	fail "late: stub reports the missing server" "no retry message"
fi
start_server late-server --state-dir "$ND_TMP/state-late" "$IMG" || fail late-server "netdiskd did not start"
wait_serial late 120 "INT13TEST END"
stop_qemu
stop_server
check "late: attached once the server came" grep -q "image \"int13\"" "$ND_TMP/late.serial"
int13_all_ok late late

# 2. The server is killed during the test program's fault phase and comes back
#    4 s later with the same state directory: the session continues.
int13_image "$IMG" 1
start_server restart-server --state-dir "$ND_TMP/state" "$IMG" || fail restart-server "netdiskd did not start"
bios_qemu restart virtio-net-pci "$ND_TMP/tftp" "${LOCAL_DISK[@]}"
if wait_serial restart 120 "FAULT-PHASE-START"; then
	kill -9 "$ND_SERVER_PID"
	wait "$ND_SERVER_PID" 2>/dev/null
	sleep 4
	start_server restart-server2 --state-dir "$ND_TMP/state" "$IMG" ||
		fail restart-server "netdiskd did not restart"
	wait_serial restart 120 "INT13TEST END"
fi
stop_qemu
stop_server
check "restart: stub reports the outage" grep -q "not answering, retrying" "$ND_TMP/restart.serial"
check "restart: stub reports the recovery" grep -q "answering again" "$ND_TMP/restart.serial"
# The read the outage stalls lasts seconds (the server is away 4 s): the
# BIOS timer keeps ticking meanwhile (the stub, in protected mode with
# interrupts off, lets them in every 10 ms), so the program's clock sees it.
longest=$(tr -d '\r' <"$ND_TMP/restart.serial" | sed -n 's/^val fault_longest_read_ticks=//p')
if [ "${longest:-0}" -ge 36 ]; then
	pass "restart: the timer ticks through a stalled read ($longest ticks)"
else
	fail "restart: the timer ticks through a stalled read" "longest read ${longest:-?} ticks, want >= 36 (2 s)"
fi
int13_all_ok restart restart

# 2b. The server comes back without its session records (persistent overlays
#     kept): the stub policy attaches again, as the UEFI stub does
#     (t-efi-faults.sh), and the write made before survives in the overlay.
start_server lost-server --mode persistent --state-dir "$ND_TMP/state-lost" "$IMG" ||
	fail lost-server "netdiskd did not start"
bios_qemu lost virtio-net-pci "$ND_TMP/tftp" "${LOCAL_DISK[@]}"
if wait_serial lost 120 "FAULT-PHASE-START"; then
	kill -9 "$ND_SERVER_PID"
	wait "$ND_SERVER_PID" 2>/dev/null
	rm -rf "$ND_TMP/state-lost/sessions"
	start_server lost-server2 --mode persistent --state-dir "$ND_TMP/state-lost" "$IMG" ||
		fail lost-server "netdiskd did not restart"
	wait_serial lost 120 "INT13TEST END"
fi
stop_qemu
stop_server
check "session lost: stub attaches again" grep -q "server lost the session, attaching again" \
	"$ND_TMP/lost.serial"
check "session lost: the restarted server saw the new ATTACH" grep -q "attach mac=" \
	"$ND_TMP/lost-server2.log"
int13_all_ok lost "session lost"

# 2c. The same in volatile mode after a write: the overlay with that write is
#     gone, so the stub policy refuses to attach again (both stubs: nd_recover)
#     and the disk fails instead of serving the image without the write.
start_server vlost-server "$IMG" || fail vlost-server "netdiskd did not start"
bios_qemu vlost virtio-net-pci "$ND_TMP/tftp" "${LOCAL_DISK[@]}"
if wait_serial vlost 120 "FAULT-PHASE-START"; then
	kill -9 "$ND_SERVER_PID"
	wait "$ND_SERVER_PID" 2>/dev/null
	start_server vlost-server2 "$IMG" || fail vlost-server "netdiskd did not restart"
	wait_serial vlost 120 "INT13TEST END"
fi
stop_qemu
stop_server
check "volatile session lost: stub refuses to attach again" \
	grep -q "volatile session lost: disk failed" "$ND_TMP/vlost.serial"
check "volatile session lost: no new ATTACH" no_line "attach mac=" "$ND_TMP/vlost-server2.log"
check "volatile session lost: the reads fail, not pass" \
	grep -q "^not ok fault reads during the outage all correct" "$ND_TMP/vlost.serial"
unset ND_PORT_FIXED

# 3. No server at all: a clear message, retries for attach_timeout, then INT 18h
#    (the BIOS goes on to the local disk).
bios_tftp "$ND_TMP/tftp-none" "$(free_port)" --attach-timeout 5
bios_qemu none virtio-net-pci "$ND_TMP/tftp-none" "${LOCAL_DISK[@]}"
wait_serial none 90 "LOCALDISK BOOTED"
stop_qemu
check "unreachable: retry message" grep -q "not answering, retrying" "$ND_TMP/none.serial"
check "unreachable: gives up after the attach timeout" grep -q "no answer from the netdisk server" \
	"$ND_TMP/none.serial"
check "unreachable: INT 18h boots the next device" grep -q "LOCALDISK BOOTED" "$ND_TMP/none.serial"

# 3b. The server's address (on the link, 10.0.2.9) gets no ARP answer from
#    QEMU: on the stub's own virtio-net driver that is said, retried for the
#    attach timeout, then INT 18h.
bios_tftp "$ND_TMP/tftp-noarp" 1 --server 10.0.2.9:10809 --attach-timeout 4
bios_qemu noarp virtio-net-pci "$ND_TMP/tftp-noarp" "${LOCAL_DISK[@]}"
wait_serial noarp 90 "LOCALDISK BOOTED"
stop_qemu
check "no ARP answer: said and retried" grep -q "no ARP answer from 10.0.2.9, retrying" \
	"$ND_TMP/noarp.serial"
check "no ARP answer: INT 18h boots the next device" grep -q "LOCALDISK BOOTED" "$ND_TMP/noarp.serial"

# 4. A served disk without a boot signature: the stub unhooks itself, gives its
#    memory back and calls INT 18h; the local disk boots as drive 80h again.
truncate -s 1M "$ND_TMP/blank.img"
start_server blank-server --state-dir "$ND_TMP/state-blank" "$ND_TMP/blank.img" ||
	fail blank-server "netdiskd did not start"
bios_tftp "$ND_TMP/tftp-blank" "$ND_PORT"
bios_qemu blank virtio-net-pci "$ND_TMP/tftp-blank" "${LOCAL_DISK[@]}"
wait_serial blank 90 "LOCALDISK BOOTED"
stop_qemu
stop_server
check "no boot signature: clear message" grep -q "no boot signature" "$ND_TMP/blank.serial"
check "no boot signature: INT 18h boots the next device" grep -q "LOCALDISK BOOTED" "$ND_TMP/blank.serial"
