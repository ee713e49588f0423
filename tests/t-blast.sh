#!/usr/bin/env bash
# The structure-aware UDP blaster: 1,000,000 hostile datagrams (valid magic, random fields) at
# netdiskd, bounded to a minute, while a legitimate client reads and checks data.  Host only.
. "$(dirname "$0")/lib.sh"

NDTEST=$ND_BUILD/tests/ndtest
BASE=$ND_TMP/base.img
head -c 32M /dev/urandom >"$BASE"
nd() { "$NDTEST" "127.0.0.1:$ND_PORT" "$BASE" "$@"; }
for tool in "$NDTEST" "$ND_BUILD/tests/ndblast" "$ND_BUILD/netdiskd"; do
	[ -x "$tool" ] || { fail blast-tools "$tool not built (make)"; exit 1; }
done
start_server blast "$BASE" || { fail blast-start "netdiskd did not start"; exit 1; }

# The reader runs from before the blast to after it (at most 75 s).
NDTEST_STOP=$ND_TMP/stop nd readloop 02:00:00:00:10:01 75 >"$ND_TMP/readloop.out" 2>&1 &
reader=$!
sleep 1
"$ND_BUILD/tests/ndblast" "127.0.0.1:$ND_PORT" 1000000 60 7 >"$ND_TMP/blast.out" 2>&1 &&
	pass blast-million-datagrams || fail blast-million-datagrams "$(cat "$ND_TMP/blast.out")"
cat "$ND_TMP/blast.out"
sleep 1
touch "$ND_TMP/stop"
wait "$reader"
cat "$ND_TMP/readloop.out"
kill -0 "$ND_SERVER_PID" 2>/dev/null && nd check 02:00:00:00:10:02 1 0 0 8 && pass blast-server-alive ||
	fail blast-server-alive "server gone or not answering after the blast"
stop_server
grep 'stopping:' "$ND_TMP/blast.log" | sed 's/^/# /'
