#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# netdiskd's boot traces (trace-dir): each session's UDP and NBD reads in a file of its own, in order, bounded by trace-max; bad directories refused.
. "$(dirname "$0")/lib.sh"
requires cmd:nbdcopy

make -s -C "$ND_TOP" BUILD="$ND_BUILD" "$ND_BUILD/netdiskd" "$ND_BUILD/netdisk" >"$ND_TMP/make.log" 2>&1 ||
	{ fail trace-build "$(tail -n 5 "$ND_TMP/make.log" | tr '\n' ' ')"; exit 1; }
head -c 8M /dev/urandom >"$ND_TMP/disk.img"
SECTORS=$((8 * 2048))
TRACES=$ND_TMP/traces

# traces_of DIR: the trace files of the test's client (MAC 52:54:00:7a:00:01).
traces_of() { ls "$1"/disk-5254007a0001-*.trace 2>/dev/null; }

# records FILE: the trace's data lines (no comments).
records() { grep -v '^#' "$1"; }

# tiles FILE FIRST END: the records cover [FIRST, END) exactly once.
tiles() {
	records "$1" | sort -n -k2 | awk -v first="$2" -v end="$3" 'BEGIN { at = first }
		$2 != at { exit 1 } { at = $2 + $3 } END { exit at != end }'
}

start_server server --nbd-exports images --trace-dir "$TRACES" "disk=$ND_TMP/disk.img" || { fail trace-server "$(cat "$ND_TMP/server.log")"; exit 1; }
nd() { "$ND_BUILD/netdisk" "$@" --mac 52:54:00:7a:00:01 --timeout 10; }

# Two CLI runs, two sessions, two files: 100+8, then 1000+5000 (the
# client core splits that into several READs).
udp_reads_traced() {
	local f small= big=
	nd read "127.0.0.1:$ND_PORT" 100 8 -o /dev/null && nd read "127.0.0.1:$ND_PORT" 1000 5000 -o /dev/null ||
		{ echo "netdisk read failed"; return 1; }
	[ "$(traces_of "$TRACES" | wc -l)" = 2 ] || { echo "not two traces: $(ls "$TRACES")"; return 1; }
	for f in $(traces_of "$TRACES"); do
		head -n 1 "$f" | grep -q "^# netdisk read trace 1: image disk sectors $SECTORS mac 52:54:00:7a:00:01 started " ||
			{ echo "header: $(head -n 1 "$f")"; return 1; }
		records "$f" | awk '$4 != "udp" || (NR > 1 && $1 < t) { exit 1 } { t = $1 }' ||
			{ echo "not udp, or times go backwards: $(records "$f" | tr '\n' ,)"; return 1; }
		if [ "$(records "$f" | wc -l)" = 1 ]; then small=$f; else big=$f; fi
	done
	[ "$(records "$small" | awk '{ print $2, $3 }')" = "100 8" ] || { echo "small: $(records "$small")"; return 1; }
	tiles "$big" 1000 6000 || { echo "big does not tile 1000..6000: $(records "$big" | tr '\n' ,)"; return 1; }
	tail -n 1 "$big" | grep -q "^# end: $(records "$big" | wc -l) reads$" || { echo "no end line: $(tail -n 1 "$big")"; return 1; }
}
check "trace: each session's UDP reads in a file of its own, in order, with MAC, image and size" udp_reads_traced

# nbdcopy reads the whole image over NBD: its session's trace covers every
# sector exactly once (nbdcopy reads each part once).
nbd_reads_traced() {
	local f sum
	nbdcopy "nbd://127.0.0.1:$ND_PORT/disk" - | cmp -s - "$ND_TMP/disk.img" || { echo "nbdcopy did not read the image"; return 1; }
	f=$(ls "$TRACES"/disk-*.trace | grep -v 5254007a0001)
	[ "$(echo "$f" | wc -l)" = 1 ] || { echo "not one NBD trace: $f"; return 1; }
	records "$f" | awk '$4 != "nbd" { exit 1 }' || { echo "a record not via nbd"; return 1; }
	sum=$(records "$f" | awk '{ n += $3 } END { print n }')
	[ "$sum" = "$SECTORS" ] || { echo "records cover $sum sectors, the image has $SECTORS"; return 1; }
	tiles "$f" 0 "$SECTORS" || { echo "records do not tile the image"; return 1; }
}
check "trace: an NBD session's reads tile the whole image" nbd_reads_traced
stop_server

cat >"$ND_TMP/max.conf" <<CONF
nbd-exports = images
trace-dir = $ND_TMP/traces-max
trace-max = 3
[image disk]
path = $ND_TMP/disk.img
CONF
start_server server-max --config "$ND_TMP/max.conf" || { fail trace-max-server "$(cat "$ND_TMP/server-max.log")"; exit 1; }
trace_max_bounds() {
	local f
	nd read "127.0.0.1:$ND_PORT" 0 "$SECTORS" -o /dev/null || return 1
	f=$(traces_of "$ND_TMP/traces-max")
	[ -f "$f" ] || { echo "no trace: $(ls "$ND_TMP/traces-max")"; return 1; }
	[ "$(records "$f" | wc -l)" = 3 ] || { echo "$(records "$f" | wc -l) records, not 3"; return 1; }
	tail -n 1 "$f" | grep -q '^# stopped: trace-max 3 reads$' || { echo "last line: $(tail -n 1 "$f")"; return 1; }
}
check "trace: trace-max (config file) bounds a session's records" trace_max_bounds
stop_server

# untraced: without trace-dir nothing is written (the directory stays empty).
untraced() {
	mkdir -p "$ND_TMP/empty"
	start_server server-plain --nbd-exports images "disk=$ND_TMP/disk.img" || return 1
	(cd "$ND_TMP/empty" && nd read "127.0.0.1:$ND_PORT" 0 8 -o /dev/null) || return 1
	stop_server
	[ -z "$(ls -A "$ND_TMP/empty")" ] && ! grep -q 'trace' "$ND_TMP/server-plain.log"
}
check "trace: off without trace-dir" untraced

bad_dir_refused() {
	local out
	: >"$ND_TMP/a-file"
	out=$(timeout 5 "$ND_BUILD/netdiskd" --listen "127.0.0.1:$(free_port)" --trace-dir "$ND_TMP/a-file/traces" "disk=$ND_TMP/disk.img" 2>&1) &&
		{ echo "netdiskd started with a trace dir under a file"; return 1; }
	echo "$out" | grep -q "cannot create trace directory $ND_TMP/a-file/traces: mkdir: Not a directory" || { echo "message: $out"; return 1; }
	out=$(timeout 5 "$ND_BUILD/netdiskd" --listen "127.0.0.1:$(free_port)" --config /dev/stdin "disk=$ND_TMP/disk.img" 2>&1 <<<'trace-max = 0') &&
		{ echo "netdiskd took trace-max = 0"; return 1; }
	echo "$out" | grep -q 'trace-max must be 1..100000000' || { echo "message: $out"; return 1; }
}
check "trace: a trace-dir that cannot be made, or trace-max 0, is refused with a message" bad_dir_refused
