#!/usr/bin/env bash
# UDP protocol benchmark: `netdisk bench` against netdiskd on loopback with a 1 GiB image.
# Prints the bench lines; bench/run collects them.  BENCH_SECONDS sets each pass's length.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
build=${BUILD:-$top/build}
work=$(mktemp -d /tmp/netdisk-bench.XXXXXX)
trap 'kill $server 2>/dev/null; wait 2>/dev/null; rm -rf "$work"' EXIT

size_mib=${BENCH_IMAGE_MIB:-1024}
head -c "${size_mib}M" /dev/urandom >"$work/bench.img"
port=$(python3 -c 'import socket; s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$build/netdiskd" --listen "127.0.0.1:$port" "$work/bench.img" 2>"$work/server.log" &
server=$!
for _ in $(seq 50); do grep -q 'listening on' "$work/server.log" && break; sleep 0.1; done
"$build/netdisk" bench "127.0.0.1:$port" --seconds "${BENCH_SECONDS:-5}" --size 64k
