# SPDX-License-Identifier: GPL-2.0-or-later
# Shared helpers for benchmark sections: temp dir, free ports, results lines.
# A section prints lines:  RESULT SECTION METRIC SUBJECT VALUE UNIT BETTER
# (BETTER is "lower" or "higher"); bench/run takes medians and ratios.

BENCH_TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BENCH_BUILD=${BUILD:-$BENCH_TOP/build}
BENCH_TMP=$(mktemp -d /tmp/netdisk-bench.XXXXXX)
BENCH_PIDS=()
BENCH_ROUNDS=${BENCH_ROUNDS:-3}

bench_cleanup() {
	local pid
	for pid in "${BENCH_PIDS[@]}"; do kill "$pid" 2>/dev/null; done
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
