#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-or-later
# Runs inside the e2e test image's root system (netdisk.test.hook): reports the root mount, the persistence mark, the firmware-phase sector and a stock nbd-client's view as E2E-* console lines.
#
# The e2e suites (tests/e2e-lib.sh) copy this script to /e2e/guest.sh on the
# image's root, with nbd-client and its libraries under /e2e/bin and /e2e/lib.
# Every line it prints starts with E2E-; the host decides what is right.
MARK=/var/lib/e2e-mark

echo # off the line the console's shell prompt may be on

root_device=$(awk '$2 == "/" && $1 != "rootfs" { print $1 }' /proc/mounts | tail -n 1)
echo "E2E-ROOT-MOUNT $(awk '$2 == "/" && $1 != "rootfs"' /proc/mounts | tail -n 1)"
# The whole disk the root partition is on (/dev/nbd0 for /dev/nbd0p2).
disk=/dev/$(basename "$(readlink -f "/sys/class/block/${root_device#/dev/}/..")")
echo "E2E-DISK $disk"
echo "E2E-CMDLINE $(cat /proc/cmdline)"

# The mark: what a previous boot of this disk left, then a new one.
if [ -f "$MARK" ]; then echo "E2E-MARK-SEEN $(cat "$MARK")"; else echo "E2E-MARK-NONE"; fi
mkdir -p "${MARK%/*}"
cat /proc/sys/kernel/random/uuid >"$MARK"
sync
echo "E2E-MARK-WROTE $(cat "$MARK")"

# Sector 2: the firmware-phase writer copied the test's marker there.
sector() {
	dd if="$1" bs=512 skip=2 count=1 2>/dev/null | tr -c 'A-Za-z0-9:-' ' ' | tr -s ' ' | sed 's/^ //; s/ $//' | cut -c 1-100
}
echo "E2E-FW-SECTOR $(sector "$disk")"

# A stock NBD client on the same session: server and export as the agent
# saved them when it attached (never in a log: the export holds the token).
attached=$(cat /run/netdisk/export 2>/dev/null)
if [ -x /e2e/bin/nbd-client ] && [ -n "$attached" ]; then
	set -- $attached
	nbd_client="/e2e/lib/ld-linux-x86-64.so.2 --library-path /e2e/lib /e2e/bin/nbd-client"
	if $nbd_client "$1" "$2" /dev/nbd1 -N "$3" -b 512 >/tmp/nbd-client.log 2>&1; then
		same=differs
		dd if=/dev/nbd1 bs=1M count=4 2>/dev/null | md5sum >/tmp/nbd1.sum
		dd if="$disk" bs=1M count=4 2>/dev/null | md5sum >/tmp/nbd0.sum
		cmp -s /tmp/nbd0.sum /tmp/nbd1.sum && same=same
		echo "E2E-NBD-CLIENT size $(blockdev --getsize64 /dev/nbd1) first-4MiB $same sector2 $(sector /dev/nbd1)"
		$nbd_client -d /dev/nbd1 >/dev/null 2>&1
	else
		echo "E2E-NBD-CLIENT failed: $(tr '\n' ' ' </tmp/nbd-client.log)"
	fi
else
	echo "E2E-NBD-CLIENT absent"
fi
# The iBFT as Linux's iscsi_ibft shows it (takeover = iscsi), the target
# name's token left out; and where the root's disk comes from.
if [ -d /sys/firmware/ibft/target0 ]; then
	for f in initiator/initiator-name ethernet0/ip-addr ethernet0/prefix-len ethernet0/gateway \
		ethernet0/primary-dns ethernet0/dhcp ethernet0/mac target0/ip-addr target0/port \
		target0/lun target0/chap-type target0/nic-assoc; do
		echo "E2E-IBFT $f $(cat "/sys/firmware/ibft/$f" 2>/dev/null | head -n 1)"
	done
	echo "E2E-IBFT ethernet0/device $(basename "$(readlink -f /sys/firmware/ibft/ethernet0/device)")"
	echo "E2E-IBFT target0/target-name $(sed 's/[0-9a-f]\{32\}$/TOKEN/' /sys/firmware/ibft/target0/target-name)"
else
	echo "E2E-IBFT none"
fi
case $(readlink -f "/sys/block/${disk#/dev/}") in
*/session*) echo "E2E-DISK-TRANSPORT iscsi" ;;
*/nbd*) echo "E2E-DISK-TRANSPORT nbd" ;;
*) echo "E2E-DISK-TRANSPORT other" ;;
esac
echo "E2E-DONE"
