# SPDX-License-Identifier: GPL-2.0-or-later
# Shared helpers for benchmark sections: temp dir, free ports, results lines.
# A section prints lines:  RESULT SECTION METRIC SUBJECT VALUE UNIT BETTER
# (BETTER is "lower" or "higher"); bench/run takes medians and ratios.

BENCH_TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BENCH_BUILD=${BUILD:-$BENCH_TOP/build}
BENCH_TMP=$(mktemp -d /tmp/netdisk-bench.XXXXXX)
BENCH_PIDS=()
BENCH_KILL=() # processes that ignore SIGTERM (tgtd with targets): SIGKILL
BENCH_ROUNDS=${BENCH_ROUNDS:-3}

bench_cleanup() {
	local pid
	for pid in "${BENCH_PIDS[@]}"; do kill "$pid" 2>/dev/null; done
	for pid in "${BENCH_KILL[@]}"; do kill -KILL "$pid" 2>/dev/null; done
	wait 2>/dev/null
	rm -rf "$BENCH_TMP"
}
trap bench_cleanup EXIT

free_port() {
	python3 -c 'import socket
s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM); s.bind(("127.0.0.1",0)); p=s.getsockname()[1]
t=socket.socket(); t.bind(("127.0.0.1",p)); print(p)'
}

result() { echo "RESULT $*"; }

# wait_port PORT: until something accepts TCP connections there (10 s at most).
wait_port() {
	local i
	for i in $(seq 100); do
		python3 -c "import socket,sys; socket.create_connection(('127.0.0.1',$1),timeout=1)" \
			2>/dev/null && return 0
		sleep 0.1
	done
	return 1
}

# A random image of MIB mebibytes.
make_image() {
	head -c "$2M" /dev/urandom >"$1"
}

# serve_pxe DIR MODE IMAGE: netdiskd serving IMAGE (NAME=PATH or PATH) in MODE
# on a free port, and DIR a TFTP root with netdisk.pxe patched to find it
# where QEMU's user network puts the host (10.0.2.2).  Sets PXE_PORT.
serve_pxe() {
	PXE_PORT=$(free_port)
	"$BENCH_BUILD/netdiskd" --listen "127.0.0.1:$PXE_PORT" --mode "$2" "$3" \
		>"$BENCH_TMP/netdiskd-$PXE_PORT.log" 2>&1 &
	BENCH_PIDS+=($!)
	mkdir -p "$1"
	cp "$BENCH_BUILD/netdisk.pxe" "$1/"
	"$BENCH_BUILD/netdisk" patch "$1/netdisk.pxe" --server "10.0.2.2:$PXE_PORT" >/dev/null
}

# tgt_start: Debian's tgtd, the peer iSCSI target, with its own control port
# (apart from other tgtds on the machine) and its portal on a free port of
# 127.0.0.1 (TGT_PORT; QEMU guests reach it as 10.0.2.2:TGT_PORT).
# bench_cleanup kills it (it ignores SIGTERM while it has targets).
tgt_start() {
	TGT_PORT=$(free_port)
	TGT_CONTROL=$((3000 + TGT_PORT % 1000))
	tgtd -f -C "$TGT_CONTROL" --iscsi "portal=127.0.0.1:$TGT_PORT" >"$BENCH_TMP/tgtd-$TGT_PORT.log" 2>&1 &
	BENCH_KILL+=($!)
	local i
	for i in $(seq 100); do
		tgtadm -C "$TGT_CONTROL" --lld iscsi --mode target --op show >/dev/null 2>&1 && return 0
		sleep 0.1
	done
	echo "tgtd did not start: $(cat "$BENCH_TMP/tgtd-$TGT_PORT.log")" >&2
	return 1
}

# tgt_target TID IQN IMAGE: IMAGE as LUN 1 of target IQN (number TID) on the
# tgtd of tgt_start, open to every initiator.
tgt_target() {
	tgtadm -C "$TGT_CONTROL" --lld iscsi --mode target --op new --tid "$1" --targetname "$2" &&
		tgtadm -C "$TGT_CONTROL" --lld iscsi --mode logicalunit --op new --tid "$1" --lun 1 \
			--backing-store "$3" &&
		tgtadm -C "$TGT_CONTROL" --lld iscsi --mode target --op bind --tid "$1" --initiator-address ALL ||
		{ echo "tgtadm: target $2 on $3 refused" >&2; return 1; }
}
