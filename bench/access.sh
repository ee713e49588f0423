#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# The site key's cost: ATTACH latency (median of 16, `netdisk bench`) against one netdiskd
# without a key and one with `site-key`, alternating, on loopback (read-only images, so
# that no overlay is made: the protocol and the crypto are what is timed).  The signed ATTACH is two
# round trips (the challenge) and two HMAC-SHA256 each side (docs/security.md).  Then the
# boot: the demo image on a BIOS VM (TCG), netdisk.pxe unkeyed against the unkeyed server
# and patched with the key against the keyed one, VM start to the kernel's first line and
# to the root system on the network disk (bench/boot-timer.py, as bench/boot.sh).
. "$(dirname "$0")/lib.sh"

make -s -C "$BENCH_TOP" BUILD="$BENCH_BUILD" all demo-test-image >"$BENCH_TMP/make.log" 2>&1 ||
	{ tail -n 5 "$BENCH_TMP/make.log" >&2; exit 1; }
make_image "$BENCH_TMP/access.img" 64
cp --sparse=always "$BENCH_BUILD/demo-test.img" "$BENCH_TMP/demo.img"
printf '[image demo]\npath = %s\nmode = volatile\n' "$BENCH_TMP/demo.img" >"$BENCH_TMP/demo.conf"

openssl rand -hex 32 >"$BENCH_TMP/site.key"
printf 'site-key = %s\n[image demo]\npath = %s\nmode = volatile\n' "$BENCH_TMP/site.key" \
	"$BENCH_TMP/demo.img" >"$BENCH_TMP/keyed.conf"
p_plain=$(free_port)
p_keyed=$(free_port)
"$BENCH_BUILD/netdiskd" --listen "127.0.0.1:$p_plain" --config "$BENCH_TMP/demo.conf" \
	--mode readonly "img=$BENCH_TMP/access.img" \
	2>"$BENCH_TMP/plain.log" &
BENCH_PIDS+=($!)
"$BENCH_BUILD/netdiskd" --listen "127.0.0.1:$p_keyed" --config "$BENCH_TMP/keyed.conf" --mode readonly \
	"img=$BENCH_TMP/access.img" 2>"$BENCH_TMP/keyed.log" &
BENCH_PIDS+=($!)
for _ in $(seq 50); do
	grep -q 'listening on' "$BENCH_TMP/plain.log" && grep -q 'listening on' "$BENCH_TMP/keyed.log" && break
	sleep 0.1
done
attach_us() { # PORT [--key FILE]: the median and the least ATTACH latency, microseconds
	"$BENCH_BUILD/netdisk" bench "127.0.0.1:$1" --image img --seconds 1 --size 4096 "${@:2}" |
		awk '/^attach/ { print $4, $7 }'
}
for round in $(seq "$BENCH_ROUNDS"); do
	read -r plain plain_min < <(attach_us "$p_plain")
	read -r keyed keyed_min < <(attach_us "$p_keyed" --key "$BENCH_TMP/site.key")
	[ -n "$plain" ] && [ -n "$keyed" ] || { echo "access: netdisk bench failed" >&2; exit 1; }
	result access attach-median-us unkeyed "$plain" us lower
	result access attach-median-us site-key "$keyed" us lower
	result access attach-min-us unkeyed "$plain_min" us lower
	result access attach-min-us site-key "$keyed_min" us lower
done

# The boot, keyed and not.
for subject in unkeyed site-key; do
	mkdir -p "$BENCH_TMP/$subject"
	cp "$BENCH_BUILD/netdisk.pxe" "$BENCH_TMP/$subject/netdisk.pxe"
done
"$BENCH_BUILD/netdisk" patch "$BENCH_TMP/unkeyed/netdisk.pxe" --server "10.0.2.2:$p_plain" \
	--image demo >/dev/null
"$BENCH_BUILD/netdisk" patch "$BENCH_TMP/site-key/netdisk.pxe" --server "10.0.2.2:$p_keyed" \
	--image demo --key "$BENCH_TMP/site.key" >/dev/null
boot() { # SUBJECT: one boot's RESULT lines
	local out
	out=$(SERIAL_LOG=$BENCH_TMP/boot-$1.log python3 "$BENCH_TOP/bench/boot-timer.py" 300 \
		"kernel=Linux version" "root=NETDISK-ROOT-OK" "off=NETDISK-POWEROFF" -- \
		"$BENCH_TOP/qemu-scripts/boot-pxe" --tftp "$BENCH_TMP/$1" --bootfile netdisk.pxe --serial stdio)
	echo "access boot $1: $(tr '\n' ' ' <<<"$out")" >&2
	awk -v s="$1" '
		$1 == "kernel" { print "RESULT access bios-to-kernel-s " s " " $2 " s lower" }
		$1 == "root"   { print "RESULT access bios-to-root-s " s " " $2 " s lower" }' <<<"$out"
	grep -q '^root ' <<<"$out"
}
status=0
for round in $(seq "$BENCH_ROUNDS"); do
	boot unkeyed || status=1
	boot site-key || status=1
done
grep -q 'image=demo .*key=site' "$BENCH_TMP/keyed.log" || { echo "access: no keyed boot attached" >&2; status=1; }
exit $status
