#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# NBD: nbdcopy of the whole image to null and fio 4 KiB random reads (ioengine=nbd),
# netdiskd against nbdkit's file plugin and qemu-nbd serving the same file, alternating;
# and netdiskd over TLS (PSK, nbd-tls = on) against nbdkit --tls with the same key:
# what TLS costs, and whether ours costs more (nbdcopy only: fio's nbd engine
# does not let libnbd read a PSK file named in the URI).
. "$(dirname "$0")/lib.sh"

img=$BENCH_TMP/nbd.img
make_image "$img" "${BENCH_NBD_MIB:-1024}"
p_nd=$(free_port); p_kit=$(free_port); p_qemu=$(free_port); p_tls=$(free_port); p_ktls=$(free_port)
printf 'bench:%s\n' "$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')" >"$BENCH_TMP/keys.psk"
printf 'nbd-exports = images\nnbd-tls = on\nnbd-tls-psk-file = %s\n[image img]\npath = %s\nmode = readonly\n' \
	"$BENCH_TMP/keys.psk" "$img" >"$BENCH_TMP/tls.conf"
"$BENCH_BUILD/netdiskd" --listen "127.0.0.1:$p_tls" --config "$BENCH_TMP/tls.conf" 2>"$BENCH_TMP/tls.log" &
BENCH_PIDS+=($!)
nbdkit -f -r -i 127.0.0.1 -p "$p_ktls" --tls=require --tls-psk="$BENCH_TMP/keys.psk" file "$img" \
	2>"$BENCH_TMP/kit-tls.log" &
BENCH_PIDS+=($!)
"$BENCH_BUILD/netdiskd" --listen "127.0.0.1:$p_nd" --nbd-exports images --mode readonly "img=$img" 2>"$BENCH_TMP/nd.log" &
BENCH_PIDS+=($!)
nbdkit -f -r -i 127.0.0.1 -p "$p_kit" file "$img" 2>"$BENCH_TMP/kit.log" &
BENCH_PIDS+=($!)
qemu-nbd -f raw -r -t -b 127.0.0.1 -p "$p_qemu" -x img "$img" 2>"$BENCH_TMP/qemu.log" &
BENCH_PIDS+=($!)
for p in "$p_nd" "$p_kit" "$p_qemu" "$p_tls" "$p_ktls"; do wait_port "$p" || { echo "server on $p did not start" >&2; exit 1; }; done

declare -A uri=( [netdiskd]="nbd://127.0.0.1:$p_nd/img" [nbdkit]="nbd://127.0.0.1:$p_kit"
		 [qemu-nbd]="nbd://127.0.0.1:$p_qemu/img"
		 [netdiskd-tls]="nbds://bench@127.0.0.1:$p_tls/img?tls-psk-file=$BENCH_TMP/keys.psk"
		 [nbdkit-tls]="nbds://bench@127.0.0.1:$p_ktls/?tls-psk-file=$BENCH_TMP/keys.psk" )
subjects=(netdiskd nbdkit qemu-nbd netdiskd-tls nbdkit-tls)

# The host drops page caches now and then: without this, whichever server first
# read a dropped image paid for the disk and looked slow.  Every copy starts warm.
copy_seconds() {
	local start end
	cat "$img" >/dev/null
	start=$(date +%s.%N)
	nbdcopy "$1" null: || return 1
	end=$(date +%s.%N)
	echo "$end - $start" | bc -l
}

fio_iops() {
	fio --name=randread --ioengine=nbd --uri="$1" --rw=randread --bs=4k --iodepth=16 \
		--runtime="${BENCH_FIO_SECONDS:-5}" --time_based --output-format=json 2>/dev/null |
		python3 -c 'import json,sys; t=sys.stdin.read(); print(round(json.loads(t[t.index("{"):])["jobs"][0]["read"]["iops"]))'
}

size_mib=$(( $(stat -c %s "$img") >> 20 ))
for round in $(seq "$BENCH_ROUNDS"); do
	# Rotate the order each round so no server always goes first.
	for i in 0 1 2 3 4; do
		s=${subjects[(i + round) % 5]}
		secs=$(copy_seconds "${uri[$s]}") || { echo "nbdcopy from $s failed" >&2; exit 1; }
		result nbd nbdcopy-MBps "$s" "$(echo "$size_mib * 1.048576 / $secs" | bc -l | xargs printf %.1f)" MB/s higher
		[[ $s == *-tls ]] || result nbd fio-rand-4k-IOPS "$s" "$(fio_iops "${uri[$s]}")" IOPS higher
	done
done
