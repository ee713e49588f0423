#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Inside the VM: Linux's own iSCSI initiator reading netdiskd's target and Debian's tgt serving the same image file, side by side in one boot.
#
# The host has no iscsi_tcp module (the kernel initiator needs a VM; bench/iscsi.sh
# measures the targets on the host through libiscsi).  Here the demo test image
# boots from netdisk.pxe as usual (root over NBD); its hook logs the kernel's
# initiator in to both targets with open-iscsi's iscsistart (the one mkimage
# --iscsi puts in the initramfs, copied with its libraries) and reads each disk:
# sequentially with dd (1 MiB, O_DIRECT) and at random (4 KiB, O_DIRECT, 16
# readers: bench/vmrand.c, since the guest has no fio), taking turns on which
# target goes first.  Both go through QEMU's user network to 10.0.2.2, so the
# figures are TCG's and slirp's, not a LAN's: the ratio is what compares.
# BENCH_VM_ISCSI_CPUS gives the guest more vCPUs (default 1), _THREADS its
# readers (16), _MIB the disk (128).
. "$(dirname "$0")/lib.sh"
ND_TOP=$BENCH_TOP ND_BUILD=$BENCH_BUILD ND_TMP=$BENCH_TMP
. "$BENCH_TOP/tests/image-lib.sh"
. "$BENCH_TOP/tests/e2e-lib.sh"
command -v tgtd >/dev/null || { echo "bench vm-iscsi: needs tgt (make deps)" >&2; exit 1; }

make -s -C "$BENCH_TOP" BUILD="$BENCH_BUILD" all demo-test-image >"$BENCH_TMP/make.log" 2>&1 ||
	{ tail -n 5 "$BENCH_TMP/make.log" >&2; exit 1; }
iscsi_dir=${NETDISK_CACHE:-$BENCH_BUILD/cache}/open-iscsi
[ -x "$iscsi_dir/sbin/iscsistart" ] || { echo "bench vm-iscsi: no iscsistart in $iscsi_dir (make demo-test-image fetches it)" >&2; exit 1; }

MIB=${BENCH_VM_ISCSI_MIB:-128}
SECONDS_RAND=${BENCH_SECONDS:-10}
[ -z "${BENCH_SMOKE:-}" ] || { MIB=16 SECONDS_RAND=1; }
PREFIX=iqn.2026-01.org.netdisk.bench
disk=$BENCH_TMP/bench.img
make_image "$disk" "$MIB"

# The guest's files: the hook, vmrand, iscsistart with its libraries.
hook=$BENCH_TMP/hook
e2e_copy_program "$iscsi_dir/sbin/iscsistart" "$hook" "$iscsi_dir/usr/lib/x86_64-linux-gnu" ||
	{ echo "bench vm-iscsi: cannot copy iscsistart and its libraries" >&2; exit 1; }
gcc -static -O2 -pthread -o "$hook/bin/vmrand" "$BENCH_TOP/bench/vmrand.c" ||
	{ echo "bench vm-iscsi: cannot build vmrand (gcc -static)" >&2; exit 1; }

p_nd=$(free_port)
p_iscsi=$(free_port)
tgt_start && tgt_target 1 "$PREFIX:bench" "$disk" || exit 1
p_tgt=$TGT_PORT

# One boot for every round: the hook gets the rounds, the seconds, the
# threads and each target (name:port:IQN) on its command line.
cat >"$hook/bench.sh" <<'HOOK'
#!/bin/sh
# Runs in the guest: log in to each target, read its disk, print VMISCSI lines.
set -- $(sed -n 's/.*netdisk.bench=\([^ ]*\).*/\1/p' /proc/cmdline | tr ',' ' ')
seconds=$1 rounds=$2 threads=$3
shift 3
run="/e2e/lib/ld-linux-x86-64.so.2 --library-path /e2e/lib /e2e/bin/iscsistart"
mkdir -p /etc/iscsi /run/lock/iscsi
echo
# login NAME PORT TARGET: the kernel's session to it; its disk in $dev.
login() {
	local before after i
	before=$(ls /sys/block | grep '^sd' | sort)
	$run -i iqn.2026-01.org.netdisk.bench:vm -t "$3" -g 1 -a 10.0.2.2 -p "$2" >/tmp/login-$1.log 2>&1 ||
		{ echo "VMISCSI-FAIL $1 iscsistart: $(tail -n 1 /tmp/login-$1.log)"; return 1; }
	for i in $(seq 100); do
		after=$(ls /sys/block | grep '^sd' | sort)
		dev=$(echo "$before" "$after" | tr ' ' '\n' | grep . | sort | uniq -u | head -n 1)
		[ -n "$dev" ] && [ -b "/dev/$dev" ] && [ "$(cat /sys/block/$dev/size)" -gt 0 ] && return 0
		sleep 0.1
	done
	echo "VMISCSI-FAIL $1 no disk after login"
	return 1
}
for spec in "$@"; do
	name=${spec%%:*} rest=${spec#*:}
	login "$name" "${rest%%:*}" "${rest#*:}" || continue
	eval "dev_$name=/dev/$dev"
	echo "VMISCSI-DISK $name /dev/$dev $(cat /sys/block/$dev/size) rotational=$(cat /sys/block/$dev/queue/rotational) scheduler=$(cat /sys/block/$dev/queue/scheduler | tr ' ' '/') queue_depth=$(cat /sys/block/$dev/device/queue_depth)"
done
# Each round: seq reads in one order, random reads in the other; the next
# round swaps: each target goes first as often as the other.
reverse() { for spec in "$@"; do echo "$spec"; done | sed '1!G;h;$!d'; }
# cpu: the guest's busy and all jiffies so far (/proc/stat: iowait is idle).
cpu() { awk '$1 == "cpu" { print $2 + $3 + $4 + $7 + $8, $2 + $3 + $4 + $5 + $6 + $7 + $8 }' /proc/stat; }
for round in $(seq "$rounds"); do
	for spec in "$@"; do
		name=${spec%%:*}
		eval "d=\$dev_$name"
		[ -n "$d" ] || continue
		size=$(($(cat /sys/block/${d#/dev/}/size) * 512))
		start=$(cut -d' ' -f1 /proc/uptime)
		dd if="$d" of=/dev/null bs=1M iflag=direct 2>/dev/null
		end=$(cut -d' ' -f1 /proc/uptime)
		echo "VMISCSI-SEQ $name $size $start $end"
	done
	for spec in $(reverse "$@"); do
		name=${spec%%:*}
		eval "d=\$dev_$name"
		[ -n "$d" ] || continue
		c0=$(cpu)
		r=$(/e2e/bin/vmrand "$d" "$seconds" "$threads" 2>&1)
		c1=$(cpu)
		echo "VMISCSI-RAND $name $r"
		echo "$c0 $c1" | awk -v n="$name" '$4 > $2 { printf "VMISCSI-CPU %s busy %d%%\n", n, 100 * ($3 - $1) / ($4 - $2) }'
	done
	set -- $(reverse "$@")
done
HOOK
chmod +x "$hook/bench.sh"

image_with_hook "$BENCH_TMP/vm.img" "$hook" \
	"netdisk.test=poweroff panic=-1 netdisk.test.hook=/e2e/bench.sh netdisk.bench=$SECONDS_RAND,$BENCH_ROUNDS,${BENCH_VM_ISCSI_THREADS:-16},netdiskd:$p_iscsi:$PREFIX:bench,tgt:$p_tgt:$PREFIX:bench" ||
	{ echo "bench vm-iscsi: cannot put the hook on the image" >&2; exit 1; }
printf 'iscsi-listen = 127.0.0.1:%s\niscsi-exports = images\niscsi-target-prefix = %s\nadmin-key = none\n[image demo]\npath = %s\nmode = volatile\n[image bench]\npath = %s\nmode = readonly\n' \
	"$p_iscsi" "$PREFIX" "$BENCH_TMP/vm.img" "$disk" >"$BENCH_TMP/nd.conf"
"$BENCH_BUILD/netdiskd" --listen "127.0.0.1:$p_nd" --config "$BENCH_TMP/nd.conf" 2>"$BENCH_TMP/nd.log" &
BENCH_PIDS+=($!)
for p in "$p_iscsi" "$p_tgt"; do wait_port "$p" || { echo "bench vm-iscsi: no target on $p: $(tail -n 3 "$BENCH_TMP/nd.log")" >&2; exit 1; }; done
mkdir -p "$BENCH_TMP/tftp"
cp "$BENCH_BUILD/netdisk.pxe" "$BENCH_TMP/tftp/"
"$BENCH_BUILD/netdisk" patch "$BENCH_TMP/tftp/netdisk.pxe" --server "10.0.2.2:$p_nd" --image demo >/dev/null || exit 1

log=$BENCH_TMP/vm.serial
timeout 900 "$BENCH_TOP/qemu-scripts/boot-pxe" --tftp "$BENCH_TMP/tftp" --bootfile netdisk.pxe \
	--log "$log" -- -smp "${BENCH_VM_ISCSI_CPUS:-1}" >/dev/null 2>&1
console_text "$log" | grep -a -E "VMISCSI-(FAIL|DISK|CPU)" >&2
console_text "$log" | awk '{ sub(/.*VMISCSI-/, "VMISCSI-") }
	$1 == "VMISCSI-SEQ" && $5 > $4 { printf "RESULT vm-iscsi seq-1m-MBps %s %.1f MB/s higher\n", $2, $3 / ($5 - $4) / 1e6 }
	$1 == "VMISCSI-RAND" && $3 == "IOPS" { printf "RESULT vm-iscsi rand-4k-IOPS %s %s IOPS higher\n", $2, $4 }' |
	tee "$BENCH_TMP/results"
[ -s "$BENCH_TMP/results" ] || { echo "bench vm-iscsi: no figures from the VM: $(console_text "$log" | tail -n 5)" >&2; exit 1; }
