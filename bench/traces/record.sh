#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Records a boot trace of the demo image: netdiskd --trace-dir on loopback, one BIOS VM PXE-boots build/demo.img (netdisk.pxe, TCG) until its root shell is up (NETDISK-ROOT-OK + a settle time), then the trace is gzipped to OUT.
# Usage: bench/traces/record.sh [OUT.trace.gz]   (BUILD, ND_BOOT_TIMEOUT honoured)
set -euo pipefail
TOP=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${BUILD:-$TOP/build}
OUT=${1:-$TOP/bench/traces/demo-bios.trace.gz}
TMP=$(mktemp -d /tmp/nd-record.XXXXXX)
PIDS=()
cleanup() {
	local p
	for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

PORT=$(python3 -c 'import socket
s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
MAC=52:54:00:57:00:01
"$BUILD/netdiskd" --listen "127.0.0.1:$PORT" --trace-dir "$TMP/traces" "demo=$BUILD/demo.img" \
	>"$TMP/server.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 50); do grep -q 'listening on' "$TMP/server.log" && break; sleep 0.1; done
mkdir -p "$TMP/tftp"
cp "$BUILD/netdisk.pxe" "$TMP/tftp/"
"$BUILD/netdisk" patch "$TMP/tftp/netdisk.pxe" --server "10.0.2.2:$PORT" >/dev/null
timeout "${ND_BOOT_TIMEOUT:-300}" "$TOP/qemu-scripts/boot-pxe" --tftp "$TMP/tftp" --bootfile netdisk.pxe \
	--mac "$MAC" --log "$TMP/console.log" >"$TMP/qemu.log" 2>&1 &
VM=$!
PIDS+=($VM)
deadline=$((SECONDS + ${ND_BOOT_TIMEOUT:-300}))
until tr -d '\r' <"$TMP/console.log" 2>/dev/null | grep -aq 'NETDISK-ROOT-OK'; do
	if [ $SECONDS -ge $deadline ] || ! kill -0 "$VM" 2>/dev/null; then
		echo "record: the VM did not reach its root (console tail:)" >&2
		tail -n 5 "$TMP/console.log" >&2 || true
		exit 1
	fi
	sleep 1
done
sleep "${ND_RECORD_SETTLE:-10}" # the shell and its services start: part of the boot
kill "$VM" 2>/dev/null || true
kill "${PIDS[0]}" 2>/dev/null || true
wait 2>/dev/null || true
f=$(ls "$TMP"/traces/demo-525400570001-*.trace | head -n 1)
{ cat "$f"; [ "$(tail -n 1 "$f" | cut -c1)" = '#' ] || echo "# recorded by bench/traces/record.sh (VM stopped at its root shell)"; } |
	gzip -9n >"$OUT"
echo "record: $(grep -vc '^#' "$f") reads, $(grep -v '^#' "$f" | awk '{ n += $3 } END { print n }') sectors, last at $(grep -v '^#' "$f" | tail -n 1 | cut -d' ' -f1) ms -> $OUT"
ls "$TMP/traces" >&2
