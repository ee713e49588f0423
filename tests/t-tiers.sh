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
# A second boot of the same VM (the server's config now gives a volatile
# disk tier at boot) checks that RAM and volatile disk tiers come back empty,
# and, through further agents serving /dev/nbd1..3 from a persistent disk
# tier on a third disk, that it keeps a block across the reboot, is reset
# when the image changes (the host rewrites a block of the image file: a new
# version id) and when its header is garbled.
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
sum() { # sum BLOCK: the block's MD5
	dd if=\$D bs=4096 skip=\$1 count=1 iflag=direct 2>/dev/null | md5sum | cut -c1-32
}
# Second boot: the server's config gave a volatile disk tier (/dev/vda) at boot.
if \$A status | grep -q '(/dev/vda'; then
	echo "TIERS2-STATUS-BOOT \$(\$A status)"
	# Blocks boot 1 wrote to its RAM tier (250) and its volatile disk tier (130).
	echo "TIERS2-AFTER-250 \$(sum 250)"
	echo "TIERS2-AFTER-130 \$(sum 130)"
	# attach N: another agent serves /dev/nbdN (the same session) from a
	# persistent disk tier on /dev/vdb; stop N: kill -9 it (a crash).
	# (Its output to a file: the agent that stays keeps it open.)
	attach() {
		\$A --index \$1 --write-cache disk:/dev/vdb,persistent >/run/attach\$1.log 2>&1
		tail -n 1 /run/attach\$1.log
	}
	stop() {
		for p in /proc/[0-9]*; do
			case "\$(tr '\\0' ' ' <\$p/cmdline 2>/dev/null)" in
			"@netdisk-attach --index \$1 "*) kill -9 \${p#/proc/} ;;
			esac
		done
	}
	echo "TIERS2-IMG-141 \$(sum 141)"
	echo "TIERS2-P-ATTACH1 \$(attach 1)"
	D=/dev/nbd1 && echo "TIERS2-P-KEPT \$(get 140)"
	stop 1
	# The host rewrites block 140 of the image file (a new version id).
	echo "TIERS2-CHANGE-IMAGE"
	D=/dev/nbd0
	i=0
	while [ \$i -lt 60 ] && [ "\$(get 140)" != NEW-IMAGE-140 ]; do sleep 1; i=\$((i + 1)); done
	echo "TIERS2-P-ATTACH2 \$(attach 2)"
	D=/dev/nbd2 && echo "TIERS2-P-NEWIMG \$(get 140)"
	put 141 P-MARK-141 && dd if=/run/blk of=\$D bs=4096 seek=141 count=1 oflag=direct conv=notrunc,fsync 2>/dev/null
	echo "TIERS2-P-141 \$(get 141)"
	stop 2
	# Garble the tier's header where only its checksum notices (512 KiB + 200), then a fourth agent.
	printf 'garbage' | dd of=/dev/vdb bs=1 seek=524488 conv=notrunc,fsync 2>/dev/null
	echo "TIERS2-P-ATTACH3 \$(attach 3)"
	D=/dev/nbd3 && echo "TIERS2-P-CORRUPT \$(sum 141)"
	echo "TIERS2-P-STATUS \$(\$A --index 3 status 2>&1)"
	stop 3
	echo "TIERS2-END"
	exit 0
fi
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
echo "TIERS-BEFORE-250 \$(sum 250)"
echo "TIERS-BEFORE-130 \$(sum 130)"
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
# Block 130 stays in the volatile disk tier to the end (the second boot reads it).
put 130 VOLATILE-DISK-130 && dd if=/run/blk of=\$D bs=4096 seek=130 count=1 oflag=direct conv=notrunc,fsync 2>/dev/null
echo "TIERS-VOL-130 \$(get 130)"
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
# For the second boot: block 140 in a persistent disk tier, served by another agent.
# (nbd5: nbd1 served the direct-NBD figure.)
\$A --index 5 --write-cache disk:/dev/vdb,persistent >/run/attach5.log 2>&1
echo "TIERS-P-ATTACH \$(tail -n 1 /run/attach5.log)"
D=/dev/nbd5
put 140 P-MARK-140 && dd if=/run/blk of=\$D bs=4096 seek=140 count=1 oflag=direct conv=notrunc,fsync 2>/dev/null
echo "TIERS-P-PUT \$(get 140)"
HOOK
chmod +x "$ND_TMP/hook/tiers.sh"
img=$ND_TMP/tiers.img
image_with_hook "$img" "$ND_TMP/hook" \
	"netdisk.test=poweroff panic=-1 netdisk.test.hook=/e2e/tiers.sh" ||
	{ fail tiers-image "cannot put the hook on the image"; exit 1; }
truncate -s +64M "$img"
truncate -s 128M "$ND_TMP/scratch.img"
truncate -s 64M "$ND_TMP/pscratch.img"
disks=(-drive "file=$ND_TMP/scratch.img,format=raw,if=virtio" -drive "file=$ND_TMP/pscratch.img,format=raw,if=virtio")

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
bios_qemu vm virtio-net-pci "$ND_TMP/tftp" "${disks[@]}"
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
line=$(serial TIERS-P-PUT)
check_that tiers-persistent-written "$line $(serial 'persistent disk tier')" grep -q 'TIERS-P-PUT P-MARK-140' <<<"$line"
wait_serial vm 60 NETDISK-POWEROFF
stop_qemu

# --- the second boot ---------------------------------------------------------
# A fresh (volatile) server overlay, so the root file system starts from the
# image (boot 1's RAM tier writes are gone), and a volatile disk tier at boot.
cat >"$ND_TMP/nd2.conf" <<CONF
default-image = demo
[image demo]
path = $img
mode = volatile
write-cache = ram:16M overflow=disk:/dev/vda
CONF
stop_server
ND_PORT_FIXED=$ND_PORT start_server third --config "$ND_TMP/nd2.conf" --state-dir "$ND_TMP/state" ||
	{ fail tiers-server-reboot "$(cat "$ND_TMP/third.log")"; exit 1; }
bios_qemu vm2 virtio-net-pci "$ND_TMP/tftp" "${disks[@]}"
if wait_serial vm2 300 TIERS2-CHANGE-IMAGE; then
	# A new image version: the file rewritten in place (its id is its mtime).
	yes NEW-IMAGE-140 | head -c 4096 | dd of="$img" bs=4096 seek=140 count=1 conv=notrunc status=none
	wait_serial vm2 120 TIERS2-END
fi
serial2() { grep -a "$1" "$ND_TMP/vm2.serial" | tr -d '\r' | head -n 1; }
grep -a 'TIERS2-\|write cache' "$ND_TMP/vm2.serial" | tr -d '\r' | sed 's/^/# /'
before=$(serial TIERS-BEFORE-250) after=$(serial2 TIERS2-AFTER-250)
check_that tiers-reboot-ram-empty "boot 1 '$before', boot 2 '$after'" \
	test -n "${before#TIERS-BEFORE-250 }" -a "${before#TIERS-BEFORE-250 }" = "${after#TIERS2-AFTER-250 }"
before=$(serial TIERS-BEFORE-130) after=$(serial2 TIERS2-AFTER-130)
check_that tiers-reboot-volatile-disk-empty "boot 1 '$before' '$(serial TIERS-VOL-130)', boot 2 '$after'" \
	test "$(serial TIERS-VOL-130)" = "TIERS-VOL-130 VOLATILE-DISK-130" -a -n "${before#TIERS-BEFORE-130 }" -a \
	"${before#TIERS-BEFORE-130 }" = "${after#TIERS2-AFTER-130 }"
check_that tiers-reboot-persistent-kept "$(serial2 TIERS2-P-KEPT) $(serial2 'persistent disk tier on')" \
	grep -aq 'TIERS2-P-KEPT P-MARK-140' "$ND_TMP/vm2.serial"
check_that tiers-persistent-reset-on-new-version "$(serial2 TIERS2-P-NEWIMG) $(grep -a 'persistent disk tier' "$ND_TMP/vm2.serial" | sed -n 2p)" \
	bash -c "grep -aq 'TIERS2-P-NEWIMG NEW-IMAGE-140' '$ND_TMP/vm2.serial' &&
		grep -aq 'reset (it was written over image demo version' '$ND_TMP/vm2.serial'"
img141=$(serial2 TIERS2-IMG-141) got141=$(serial2 TIERS2-P-CORRUPT)
check_that tiers-persistent-reset-on-bad-header "$(serial2 TIERS2-P-141) '$img141' '$got141' $(serial2 'torn or garbled') $(serial2 TIERS2-P-STATUS)" \
	bash -c "grep -aq 'TIERS2-P-141 P-MARK-141' '$ND_TMP/vm2.serial' &&
		grep -aq 'reset (its header is torn or garbled' '$ND_TMP/vm2.serial' &&
		grep -aq 'TIERS2-P-STATUS ok target disk' '$ND_TMP/vm2.serial' &&
		test -n '${img141#TIERS2-IMG-141 }' -a '${img141#TIERS2-IMG-141 }' = '${got141#TIERS2-P-CORRUPT }'"
wait_serial vm2 60 NETDISK-POWEROFF
stop_qemu
