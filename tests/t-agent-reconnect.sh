#!/usr/bin/env bash
# Root on NBD outlives a server restart: netdisk-attach reconnects the same session and I/O resumes.
. "$(dirname "$0")/lib.sh"
requires qemu ipxe
. "$(dirname "$0")/image-lib.sh"
. "$(dirname "$0")/e2e-lib.sh"
. "$(dirname "$0")/bios/qemu.sh"

make -s -C "$ND_TOP" BUILD="$ND_BUILD" all demo-test-image >"$ND_TMP/make.log" 2>&1 ||
	{ fail reconnect-build "$(tail -n 3 "$ND_TMP/make.log" | tr '\n' ' ')"; exit 1; }

# The guest's part: say it is up, give the host time to restart the server,
# then write and read through the disk (bypassing the page cache).
mkdir -p "$ND_TMP/hook"
cat >"$ND_TMP/hook/reconnect.sh" <<'HOOK'
#!/bin/sh
echo "RECONNECT-READY"
sleep 12
mkdir -p /var/lib && date >/var/lib/after-restart && sync && echo "RECONNECT-WRITE-OK"
dd if=/dev/nbd0 of=/dev/null bs=4096 count=64 skip=4000 iflag=direct 2>/dev/null && echo "RECONNECT-READ-OK"
HOOK
chmod +x "$ND_TMP/hook/reconnect.sh"
img=$ND_TMP/reconnect.img
image_with_hook "$img" "$ND_TMP/hook" "netdisk.test=poweroff panic=-1 netdisk.test.hook=/e2e/reconnect.sh" ||
	{ fail reconnect-image "cannot put the hook on the image"; exit 1; }

start_server first --mode persistent --state-dir "$ND_TMP/state" "demo=$img" ||
	{ fail reconnect-server "$(cat "$ND_TMP/first.log")"; exit 1; }
bios_tftp "$ND_TMP/tftp" "$ND_PORT"
bios_qemu vm virtio-net-pci "$ND_TMP/tftp"
if ! wait_serial vm 240 RECONNECT-READY; then
	fail reconnect-root-up "the guest never ran its hook: $(tail -n 3 "$ND_TMP/vm.serial" | tr '\n' ' ')"
	exit 1
fi
pass reconnect-root-up
stop_server
ND_PORT_FIXED=$ND_PORT start_server second --mode persistent --state-dir "$ND_TMP/state" "demo=$img" ||
	{ fail reconnect-server-again "$(cat "$ND_TMP/second.log")"; exit 1; }
wait_serial vm 120 RECONNECT-READ-OK
check reconnect-agent-reconnected grep -q 'netdisk-attach: reconnected /dev/nbd0' "$ND_TMP/vm.serial"
check reconnect-write-after-restart grep -q RECONNECT-WRITE-OK "$ND_TMP/vm.serial"
check reconnect-read-after-restart grep -q RECONNECT-READ-OK "$ND_TMP/vm.serial"
check reconnect-same-session grep -q 'restored 1 session' "$ND_TMP/second.log"
wait_serial vm 60 NETDISK-POWEROFF
stop_qemu
