#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Write redirection in a booted VM (issue #17): netdisk-attach serves /dev/nbd0
# through its RAM / local disk / server chain.  One boot with a second (scratch)
# virtio disk, its write cache set in netdiskd.conf, checks: RAM writes read back and never reach the server; the
# issue's D1/E1/E2 sequence by sector content; a full RAM tier fails writes at
# once (no hang) and the system stays up; a RAM tier overflows to the disk tier
# added live; kill -9 of the server while writing to `server` loses no
# acknowledged write; writes under memory pressure finish.  It also prints
# dd figures (TIERS-FIGURE): agent path vs a direct NBD connection.
. "$(dirname "$0")/lib.sh"
requires qemu ipxe
. "$(dirname "$0")/image-lib.sh"
. "$(dirname "$0")/e2e-lib.sh"
. "$(dirname "$0")/bios/qemu.sh"

make -s -C "$ND_TOP" BUILD="$ND_BUILD" all demo-test-image >"$ND_TMP/make.log" 2>&1 ||
	{ fail tiers-build "$(tail -n 3 "$ND_TMP/make.log" | tr '\n' ' ')"; exit 1; }

# check_that NAME WHY COMMAND...: PASS if COMMAND succeeds, else FAIL with WHY.
check_that() {
	local name=$1 why=$2
	shift 2
	if "$@" >/dev/null 2>&1; then pass "$name"; else fail "$name" "$why"; fi
}

RAM_MARK=TIERS-RAM-ONLY-$$-$RANDOM
SERVER_MARK=TIERS-ON-SERVER-$$-$RANDOM
mkdir -p "$ND_TMP/hook"
cp "$ND_BUILD/netdisk-attach" "$ND_TMP/hook/netdisk-attach"
# A stock nbd-client for the direct-NBD figure (optional).
[ -x "$E2E_NBD_CLIENT" ] && e2e_guest_files "$ND_TMP/hook"
# The guest's part.  Raw blocks outside the file systems: D1 = 4 KiB block 125
# and R = block 250 (in the gap before the first partition), the scratch area
# from 100 MiB on (the image is enlarged past its partitions).
cat >"$ND_TMP/hook/tiers.sh" <<HOOK
#!/bin/sh
A=/e2e/netdisk-attach
D=/dev/nbd0
echo
put() { # put BLOCK TEXT: one 4 KiB block filled with TEXT lines
	yes "\$2" | head -c 4096 >/run/blk && dd if=/run/blk of=\$D bs=4096 seek=\$1 count=1 oflag=direct conv=notrunc 2>/dev/null
}
get() { # get BLOCK: the first line of the block
	dd if=\$D bs=4096 skip=\$1 count=1 iflag=direct 2>/dev/null | head -n 1
}
echo "TIERS-STATUS-BOOT \$(\$A status)"
# Figures (dd; fio is not on the image): 4 KiB synchronous writes to ram and
# to server, and 1 MiB reads of blocks no tier holds, through the agent
# (nbd0) and through a stock nbd-client on the same session (nbd1, direct).
# rate BYTES COMMAND...: MB/s of COMMAND (busybox dd prints no rate).
rate() {
	local b=\$1 t0 t1
	shift
	t0=\$(cut -d' ' -f1 /proc/uptime); "\$@" 2>/dev/null; t1=\$(cut -d' ' -f1 /proc/uptime)
	awk -v b=\$b -v t0=\$t0 -v t1=\$t1 'BEGIN { d = t1 - t0; if (d < 0.01) d = 0.01; printf "%.1fMB/s", b / d / 1e6 }'
}
w4k() { rate 4194304 dd if=/dev/zero of=\$D bs=4096 seek=30000 count=1024 oflag=direct conv=notrunc; }
echo "TIERS-FIGURE write-4k-sync ram \$(w4k)"
\$A redirect server >/dev/null
echo "TIERS-FIGURE write-4k-sync server \$(w4k)"
\$A redirect ram >/dev/null
rd() { rate 50331648 dd if=\$1 of=/dev/null bs=1M skip=8 count=48 iflag=direct; }
rd \$D >/dev/null
set -- \$(cat /run/netdisk/export)
if [ -x /e2e/bin/nbd-client ] && /e2e/lib/ld-linux-x86-64.so.2 --library-path /e2e/lib /e2e/bin/nbd-client "\$1" "\$2" /dev/nbd1 -N "\$3" -b 512 >/run/nbdc.log 2>&1; then
	echo "TIERS-FIGURE read-1m agent \$(rd \$D) direct-nbd \$(rd /dev/nbd1) agent \$(rd \$D) direct-nbd \$(rd /dev/nbd1)"
	/e2e/lib/ld-linux-x86-64.so.2 --library-path /e2e/lib /e2e/bin/nbd-client -d /dev/nbd1 >/dev/null 2>&1
else
	echo "TIERS-FIGURE read-1m agent \$(rd \$D) (no nbd-client: \$(head -c 200 /run/nbdc.log))"
fi
put 250 $RAM_MARK && echo "TIERS-R-READ \$(get 250)"
put 125 E1-IN-RAM && echo "TIERS-D1-RAM \$(get 125)"
# A full RAM tier, no disk tier: the writer fails at once (root read-only meanwhile).
sync; mount -o remount,ro /
t0=\$(date +%s)
if dd if=/dev/zero of=\$D bs=1M seek=100 count=40 oflag=direct conv=notrunc 2>/run/dd.err; then
	echo "TIERS-FULL-NOERROR"
else
	echo "TIERS-FULL-FAILED after \$((\$(date +%s) - t0)) s: \$(tail -n 1 /run/dd.err)"
fi
echo "TIERS-STATUS-FULL \$(\$A status)"
# Rewriting the scratch area on the server frees the RAM again.
\$A redirect server >/dev/null && dd if=/dev/zero of=\$D bs=1M seek=100 count=40 oflag=direct conv=notrunc 2>/dev/null &&
	\$A redirect ram >/dev/null && mount -o remount,rw / && echo "TIERS-UP-AFTER-FULL \$(\$A status)"
# D1/E1/E2: E2 is the scratch disk, added live.
echo "TIERS-REDIRECT-DISK \$(\$A redirect disk:/dev/vda 2>&1)"
put 125 E2-ON-DISK && echo "TIERS-D1-DISK \$(get 125)"
# The disk tier's first slot is 1 MiB into the scratch disk.
echo "TIERS-VDA-SLOT0 \$(dd if=/dev/vda bs=4096 skip=256 count=1 iflag=direct 2>/dev/null | head -n 1)"
echo "TIERS-REDIRECT-SERVER \$(\$A redirect server 2>&1)"
echo "TIERS-D1-AFTER-SERVER \$(get 125)"
put 125 $SERVER_MARK && echo "TIERS-D1-SERVER \$(get 125)"
# Overflow: 24 MiB into the RAM tier of 16 MiB, with the disk tier behind it.
\$A redirect ram >/dev/null
head -c 25165824 /dev/urandom >/run/big
if dd if=/run/big of=\$D bs=1M seek=100 oflag=direct conv=notrunc 2>/dev/null &&
	dd if=\$D bs=1M skip=100 count=24 iflag=direct 2>/dev/null | cmp - /run/big; then
	echo "TIERS-OVERFLOW-OK \$(\$A status)"
else
	echo "TIERS-OVERFLOW-BAD \$(\$A status)"
fi
rm -f /run/big
# Memory pressure: two 200 MiB hogs in a 512 MiB VM while 3 x 12 MiB go through
# the file system (35 MiB) into the RAM tier (overflowing to disk); bounded by the host.
\$A redirect ram >/dev/null
dd if=/dev/zero of=/dev/null bs=200M count=8 2>/dev/null & h1=\$!
dd if=/dev/zero of=/dev/null bs=200M count=8 2>/dev/null & h2=\$!
t0=\$(date +%s)
mkdir -p /var/tmp
ok=yes
for pass in 1 2 3; do
	dd if=/dev/urandom of=/var/tmp/pressure bs=1M count=12 2>/run/p.err && sync || { ok=no; break; }
done
[ \$ok = yes ] && sum1=\$(md5sum </var/tmp/pressure)
kill \$h1 \$h2 2>/dev/null; wait
echo 3 >/proc/sys/vm/drop_caches
sum2=\$(md5sum </var/tmp/pressure)
if [ -n "\$sum1" ] && [ "\$sum1" = "\$sum2" ]; then
	echo "TIERS-PRESSURE-OK after \$((\$(date +%s) - t0)) s"
else
	echo "TIERS-PRESSURE-BAD sums '\$sum1' '\$sum2': \$(tr '\\n' ' ' </run/p.err)"
fi
rm -f /var/tmp/pressure
# Writes to the server while the host kills it (-9) and restarts it.
\$A redirect server >/dev/null
echo "TIERS-KILL-READY"
i=0; : >/run/acked
while [ \$i -lt 150 ]; do
	put \$((26000 + i)) "ACKED-\$i" && echo \$i >>/run/acked
	i=\$((i + 1)); sleep 0.1
done
lost=0
for i in \$(cat /run/acked); do [ "\$(get \$((26000 + i)))" = "ACKED-\$i" ] || lost=\$((lost + 1)); done
echo "TIERS-KILL-DONE acked \$(wc -l </run/acked) lost \$lost"
echo "TIERS-STATUS-END \$(\$A status)"
HOOK
chmod +x "$ND_TMP/hook/tiers.sh"
img=$ND_TMP/tiers.img
image_with_hook "$img" "$ND_TMP/hook" \
	"netdisk.test=poweroff panic=-1 netdisk.test.hook=/e2e/tiers.sh" ||
	{ fail tiers-image "cannot put the hook on the image"; exit 1; }
truncate -s +64M "$img"
truncate -s 128M "$ND_TMP/scratch.img"

# The write cache comes from the server's config (the NBD handshake gives it the agent).
cat >"$ND_TMP/nd.conf" <<CONF
default-image = demo
[image demo]
path = $img
mode = persistent
write-cache = ram:16M
CONF
start_server first --config "$ND_TMP/nd.conf" --state-dir "$ND_TMP/state" ||
	{ fail tiers-server "$(cat "$ND_TMP/first.log")"; exit 1; }
bios_tftp "$ND_TMP/tftp" "$ND_PORT"
bios_qemu vm virtio-net-pci "$ND_TMP/tftp" -drive "file=$ND_TMP/scratch.img,format=raw,if=virtio"
if ! wait_serial vm 300 TIERS-KILL-READY; then
	fail tiers-boot "the guest never got to the kill phase: $(grep -a 'TIERS-\|netdisk-attach' "$ND_TMP/vm.serial" | tail -n 5 | tr '\n' ' ')"
	stop_qemu
	exit 1
fi
sleep 3
kill -9 "$ND_SERVER_PID"
wait "$ND_SERVER_PID" 2>/dev/null
sleep 3
ND_PORT_FIXED=$ND_PORT start_server second --config "$ND_TMP/nd.conf" --state-dir "$ND_TMP/state" ||
	{ fail tiers-server-again "$(cat "$ND_TMP/second.log")"; exit 1; }
wait_serial vm 180 TIERS-STATUS-END
serial() { grep -a "$1" "$ND_TMP/vm.serial" | tr -d '\r' | head -n 1; }
# What the guest saw, for the log.
grep -a 'TIERS-STATUS\|TIERS-FULL-\|TIERS-KILL-DONE\|TIERS-FIGURE\|TIERS-PRESSURE\|write cache' "$ND_TMP/vm.serial" | tr -d '\r' | sed 's/^/# /'
check_that tiers-setting-from-server "$(serial 'netdisk-attach: write cache')" \
	grep -aq 'write cache ram:16M (from the server)' "$ND_TMP/vm.serial"
line=$(serial TIERS-STATUS-BOOT)
check_that tiers-agent-serves "$line" grep -q 'target ram' <<<"$line"
check tiers-ram-reads-back grep -aq "TIERS-R-READ $RAM_MARK" "$ND_TMP/vm.serial"
check tiers-d1-in-ram grep -aq "TIERS-D1-RAM E1-IN-RAM" "$ND_TMP/vm.serial"
line=$(serial TIERS-FULL-)
secs=$(sed -n 's/.*after \([0-9]*\) s.*/\1/p' <<<"$line")
check_that tiers-full-fails-fast "$line" test -n "$secs" -a "${secs:-99}" -le 20
check_that tiers-up-after-full "$(serial TIERS-STATUS-FULL)" grep -aq TIERS-UP-AFTER-FULL "$ND_TMP/vm.serial"
check_that tiers-full-warned "80/95 % warnings on the console" \
	grep -aq 'ram tier 95 % full' "$ND_TMP/vm.serial"
check_that tiers-redirect-disk "$(serial TIERS-REDIRECT-DISK)" grep -aq 'TIERS-REDIRECT-DISK ok target disk' "$ND_TMP/vm.serial"
check tiers-d1-in-disk grep -aq "TIERS-D1-DISK E2-ON-DISK" "$ND_TMP/vm.serial"
check_that tiers-disk-tier-is-scratch-disk "$(serial TIERS-VDA-SLOT0)" \
	grep -aq "TIERS-VDA-SLOT0 E2-ON-DISK" "$ND_TMP/vm.serial"
check_that tiers-d1-after-redirect-server-is-disk-copy "$(serial TIERS-D1-AFTER-SERVER)" \
	grep -aq "TIERS-D1-AFTER-SERVER E2-ON-DISK" "$ND_TMP/vm.serial"
check tiers-d1-on-server grep -aq "TIERS-D1-SERVER $SERVER_MARK" "$ND_TMP/vm.serial"
check_that tiers-overflow-to-disk "$(serial TIERS-OVERFLOW-)" grep -aq 'TIERS-OVERFLOW-OK' "$ND_TMP/vm.serial"
check_that tiers-memory-pressure "$(serial TIERS-PRESSURE-BAD) (no TIERS-PRESSURE-OK: writes under a memory hog failed or hung)" \
	grep -aq 'TIERS-PRESSURE-OK' "$ND_TMP/vm.serial"
line=$(serial TIERS-KILL-DONE)
check_that tiers-kill9-no-lost-write "$line" grep -q 'acked [1-9][0-9]* lost 0$' <<<"$line"
check_that tiers-kill9-reconnected "agent reconnect message" grep -aq 'reconnected to the server' "$ND_TMP/vm.serial"
# On the server: the server-tier write is in the session's overlay, the RAM-only one never.
check_that tiers-server-has-server-write "no $SERVER_MARK under state/" grep -rqa "$SERVER_MARK" "$ND_TMP/state"
check_that tiers-server-lacks-ram-write "$RAM_MARK reached the server" bash -c "! grep -rqa '$RAM_MARK' '$ND_TMP/state'"
wait_serial vm 60 NETDISK-POWEROFF
stop_qemu
