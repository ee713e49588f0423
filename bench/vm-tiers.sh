#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Inside the VM (issue #17): the agent in the data path (write cache ram:64M)
# against a direct kernel NBD connection to the same session, BIOS boot:
# 1 MiB O_DIRECT sequential reads of blocks no tier holds, and 4 KiB
# synchronous (O_DIRECT) writes to the ram tier and to the server.  dd, timed
# with /proc/uptime: fio is not on the demo image.
. "$(dirname "$0")/lib.sh"
ND_TOP=$BENCH_TOP ND_BUILD=$BENCH_BUILD ND_TMP=$BENCH_TMP
. "$BENCH_TOP/tests/image-lib.sh"
. "$BENCH_TOP/tests/e2e-lib.sh"

make -s -C "$BENCH_TOP" BUILD="$BENCH_BUILD" all demo-test-image >"$BENCH_TMP/make.log" 2>&1 ||
	{ tail -n 5 "$BENCH_TMP/make.log" >&2; exit 1; }
[ -x "$E2E_NBD_CLIENT" ] || { echo "vm-tiers: no nbd-client on this machine (package nbd-client)" >&2; exit 1; }

mib=${BENCH_NBD_MIB:-48}
mkdir -p "$BENCH_TMP/hook"
cp "$BENCH_BUILD/netdisk-attach" "$BENCH_TMP/hook/netdisk-attach"
e2e_guest_files "$BENCH_TMP/hook" || { echo "vm-tiers: cannot copy nbd-client" >&2; exit 1; }
cat >"$BENCH_TMP/hook/tiers.sh" <<HOOK
#!/bin/sh
A=/e2e/netdisk-attach
t() { cut -d' ' -f1 /proc/uptime; }
timed() { # timed NAME BYTES COMMAND...
	local name=\$1 bytes=\$2 t0 t1
	shift 2
	t0=\$(t); "\$@" 2>/dev/null; t1=\$(t)
	echo "TIERSBENCH \$name \$bytes \$t0 \$t1"
}
set -- \$(cat /run/netdisk/export)
/e2e/lib/ld-linux-x86-64.so.2 --library-path /e2e/lib /e2e/bin/nbd-client "\$1" "\$2" /dev/nbd1 -N "\$3" -b 512 >/dev/null 2>&1
echo
# Reads: the ESP's blocks (never written), each path twice, the first warms the server.
for dev in nbd0 nbd1 nbd0 nbd1; do
	name=agent; [ \$dev = nbd1 ] && name=direct
	timed read-\$name \$(($mib << 20)) dd if=/dev/\$dev of=/dev/null bs=1M skip=4 count=$mib iflag=direct
done
# 4 KiB synchronous writes past the partitions (the image is enlarged).
\$A redirect ram >/dev/null
timed write4k-ram 8388608 dd if=/dev/zero of=/dev/nbd0 bs=4096 seek=26000 count=2048 oflag=direct conv=notrunc
\$A redirect server >/dev/null
timed write4k-server 8388608 dd if=/dev/zero of=/dev/nbd0 bs=4096 seek=26000 count=2048 oflag=direct conv=notrunc
timed write4k-direct 8388608 dd if=/dev/zero of=/dev/nbd1 bs=4096 seek=28100 count=2048 oflag=direct conv=notrunc
HOOK
chmod +x "$BENCH_TMP/hook/tiers.sh"
img=$BENCH_TMP/vm.img
image_with_hook "$img" "$BENCH_TMP/hook" \
	"netdisk.test=poweroff panic=-1 netdisk.write-cache=ram:64M netdisk.test.hook=/e2e/tiers.sh" ||
	{ echo "cannot put the hook on the image" >&2; exit 1; }
truncate -s +64M "$img"

serve_pxe "$BENCH_TMP/tftp" volatile "demo=$img"
for round in $(seq "$BENCH_ROUNDS"); do
	timeout 300 "$BENCH_TOP/qemu-scripts/boot-pxe" --tftp "$BENCH_TMP/tftp" \
		--bootfile netdisk.pxe --log "$BENCH_TMP/vm-$round.serial" >/dev/null 2>&1
	# The second of each read pair (server cache warm); writes once each.  The
	# direct kernel NBD connection is the peer the agent is compared with.
	tr -d '\r' <"$BENCH_TMP/vm-$round.serial" | awk '{ sub(/.*TIERSBENCH/, "TIERSBENCH") }
		$1 == "TIERSBENCH" && $5 > $4 { seen[$2]++; if ($2 ~ /^read/ && seen[$2] < 2) next
			split($2, w, "-"); metric = w[1] == "read" ? "seq-read-1m" : "write-4k-sync"
			subject = w[2] == "direct" ? "direct-nbd" : w[2] == "agent" ? "netdisk-agent" : "netdisk-agent-" w[2]
			printf "RESULT vm-tiers %s-MBps %s %.1f MB/s higher\n", metric, subject, $3 / ($5 - $4) / 1e6 }'
done
