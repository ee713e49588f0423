#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# netdiskd under resource pressure: file descriptors (a low ulimit -n, EMFILE) and
# hostile NBD clients (idle floods, half-sent big WRITEs, idle connections).
. "$(dirname "$0")/lib.sh"

NDTEST=$ND_BUILD/tests/ndtest
ABUSE=$ND_TOP/tests/nbd-abuse.py
BASE=$ND_TMP/base.img
head -c 32M /dev/urandom >"$BASE"
nd() { "$NDTEST" "127.0.0.1:$ND_PORT" "$BASE" "$@"; }

# CPU time (user + system, in clock ticks) a process has used.
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
rss_kib() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"; }

# --- file descriptors: refused cleanly before they run out, no spinning on EMFILE ---
ND_PORT=$(free_port)
(ulimit -n 64 && exec "$ND_BUILD/netdiskd" --listen "127.0.0.1:$ND_PORT" --nbd-exports images --state-dir "$ND_TMP/fdstate" \
	"$BASE") >"$ND_TMP/fd.log" 2>&1 &
pid=$!
ND_PIDS+=("$pid")
if wait_for 10 grep -q 'listening on' "$ND_TMP/fd.log"; then
	# Volatile sessions take two fds each (the overlay's data and map).
	n=0
	for i in $(seq 40); do
		nd token "02:00:00:00:0c:$(printf %02x "$i")" 1 1 1 1 >/dev/null 2>&1 || break
		n=$i
	done
	nd attach-status 02:00:00:00:0d:01 1
	rc=$?
	[ "$rc" -eq 6 ] && [ "$n" -ge 5 ] && pass fd-attach-refused-busy ||
		fail fd-attach-refused-busy "after $n sessions an attach got status $rc, not 6 (BUSY)"
	grep -q 'attach refused, out of file descriptors ([0-9]* of 64 in use.*mac=02:00:00:00:0d:01' \
		"$ND_TMP/fd.log" && pass fd-refusal-logged || fail fd-refusal-logged "$(tail -n 2 "$ND_TMP/fd.log")"
	LIBNBD_DEBUG=1 timeout 10 nbdinfo "nbd://127.0.0.1:$ND_PORT/base" >"$ND_TMP/fd-nbd" 2>&1
	grep -q 'server error message: out of file descriptors' "$ND_TMP/fd-nbd" &&
		pass fd-nbd-client-told-why || fail fd-nbd-client-told-why "$(grep -m2 -i error "$ND_TMP/fd-nbd")"

	# Now fds really run out (the soft limit lowered under the server's feet) with
	# NBD connections pending: accept4 fails with EMFILE; the server must pause and
	# log, not spin, and accept again once fds are back.
	prlimit --pid "$pid" --nofile=16:64
	timeout 10 python3 -c '
import socket, sys, time
socks = [socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=2) for _ in range(3)]
time.sleep(5)' "$ND_PORT" &
	holder=$!
	sleep 1
	t0=$(cpu_ticks "$pid")
	sleep 3
	t1=$(cpu_ticks "$pid")
	wait "$holder"
	[ $((t1 - t0)) -lt 30 ] && pass "fd-emfile-no-spin ($((t1 - t0)) ticks in 3 s)" ||
		fail fd-emfile-no-spin "$((t1 - t0)) ticks of CPU in 3 s with accept4 failing"
	grep -q 'cannot accept NBD connections: accept4: Too many open files' "$ND_TMP/fd.log" &&
		pass fd-emfile-logged || fail fd-emfile-logged "nothing in the log"
	prlimit --pid "$pid" --nofile=64:64
	timeout 10 python3 -c '
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=5)
assert len(s.recv(18)) == 18' "$ND_PORT" && pass fd-accepts-resume ||
		fail fd-accepts-resume "no NBD answer after the limit was raised again"
else
	fail fd-server-start "$(cat "$ND_TMP/fd.log")"
fi
stop_server "$pid"

# --- hostile NBD clients ------------------------------------------------------------
cat >"$ND_TMP/nbd.conf" <<CONF
nbd-exports = images
state-dir = $ND_TMP/state
max-sessions = 100
[image base]
path = $BASE
CONF
start_server nbd --config "$ND_TMP/nbd.conf" || { fail nbd-start "$(cat "$ND_TMP/nbd.log")"; exit 1; }
URI=nbd://127.0.0.1:$ND_PORT/base

# 150 connections from one address that never start the handshake: more than
# max-sessions.  A legitimate client from elsewhere still gets in (the flood is
# held to nbd-connect-rate and nbd-per-address), and the server closes the idle
# ones at the handshake timeout (default 10 s).
rm -f "$ND_TMP/flooded"
timeout 60 python3 "$ABUSE" "$ND_PORT" idle-flood 127.0.0.2 150 "$ND_TMP/flooded" >"$ND_TMP/flood.out" 2>&1 &
flood=$!
wait_for 20 test -e "$ND_TMP/flooded"
timeout 10 nbdcopy "$URI" "$ND_TMP/copy1.img" && cmp -s "$ND_TMP/copy1.img" "$BASE" &&
	pass nbd-idle-flood-legit-client-served || fail nbd-idle-flood-legit-client-served "no copy within 10 s"
wait "$flood"
grep -q '^closed' "$ND_TMP/flood.out" && pass nbd-idle-flood-closed-by-server ||
	fail nbd-idle-flood-closed-by-server "$(cat "$ND_TMP/flood.out")"
grep -q 'nbd connection refused ip=127.0.0.2:[0-9]*: 64 connections open from this address (nbd-per-address)' \
	"$ND_TMP/nbd.log" && pass nbd-per-address-logged || fail nbd-per-address-logged "no log line"
grep -q 'nbd connection ip=127.0.0.2:[0-9]* closed: no the handshake to end within 10 s (nbd-handshake-timeout)' \
	"$ND_TMP/nbd.log" && pass nbd-handshake-timeout-logged || fail nbd-handshake-timeout-logged "no log line"

# 20 connections each holding 30 MiB of a 31 MiB WRITE: the server buffers at
# most nbd-memory (256 MiB by default) of it, and a legitimate client still reads.
rm -f "$ND_TMP/written"
base_rss=$(rss_kib "$ND_SERVER_PID")
timeout 90 python3 "$ABUSE" "$ND_PORT" partial-writes 127.0.0.3 20 8 "$ND_TMP/written" >"$ND_TMP/pw.out" 2>&1 &
pw=$!
wait_for 60 test -e "$ND_TMP/written"
max_rss=0
for i in $(seq 10); do
	r=$(rss_kib "$ND_SERVER_PID")
	[ "$r" -gt "$max_rss" ] && max_rss=$r
	sleep 0.2
done
timeout 15 nbdcopy "$URI" "$ND_TMP/copy2.img" && cmp -s "$ND_TMP/copy2.img" "$BASE" &&
	pass nbd-partial-writes-legit-client-served || fail nbd-partial-writes-legit-client-served "no copy within 15 s"
wait "$pw"
[ $((max_rss - base_rss)) -lt $((320 * 1024)) ] && pass "nbd-partial-writes-memory-bounded ($(( (max_rss - base_rss) / 1024 )) MiB)" ||
	fail nbd-partial-writes-memory-bounded "RSS grew by $(( (max_rss - base_rss) / 1024 )) MiB: $(cat "$ND_TMP/pw.out")"
nbdinfo --size "$URI" >/dev/null 2>&1 && pass nbd-server-alive || fail nbd-server-alive "no answer"
stop_server

# Idle connections close after nbd-idle-timeout; a request that finds no room in
# nbd-memory within nbd-io-timeout gets ENOMEM, and the log says why.
cat >"$ND_TMP/short.conf" <<CONF
nbd-exports = images
nbd-idle-timeout = 2
nbd-io-timeout = 2
nbd-connect-rate = 2
nbd-memory = 64
[image base]
path = $BASE
CONF
start_server short --config "$ND_TMP/short.conf" || { fail nbd-short-start "$(cat "$ND_TMP/short.log")"; exit 1; }
# 20 connections at once from one address at nbd-connect-rate = 2 (bursts of 8).
greeted=$(timeout 30 python3 -c '
import socket, sys
n = 0
for _ in range(20):
    s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=5)
    n += len(s.recv(18)) == 18
    s.close()
print(n)' "$ND_PORT")
[ -n "$greeted" ] && [ "$greeted" -ge 8 ] && [ "$greeted" -le 12 ] && pass "nbd-connect-rate ($greeted of 20 served)" ||
	fail nbd-connect-rate "$greeted of 20 rapid connections were served"
grep -q 'nbd connection refused ip=127.0.0.1:[0-9]*: more than 2 connections a second .*(nbd-connect-rate); 1 refused' \
	"$ND_TMP/short.log" && pass nbd-connect-rate-logged || fail nbd-connect-rate-logged "no log line"
sleep 4 # the bucket fills again
out=$(timeout 30 python3 "$ABUSE" "$ND_PORT" idle-after-handshake 2>&1)
case $out in
"closed "[2-5].*) pass nbd-idle-timeout ;;
*) fail nbd-idle-timeout "$out" ;;
esac
grep -q 'nbd connection ip=127.0.0.1:[0-9]* closed: no a request within 2 s (nbd-idle-timeout)' \
	"$ND_TMP/short.log" && pass nbd-idle-timeout-logged || fail nbd-idle-timeout-logged "no log line"
out=$(timeout 60 python3 "$ABUSE" "$ND_PORT" budget-refusal 2>&1)
[ "$out" = "error 12" ] && pass nbd-memory-refusal-enomem || fail nbd-memory-refusal-enomem "$out"
grep -q 'nbd request refused ip=127.0.0.1:[0-9]*: WRITE of 32505856 bytes found no room for 2 s .*(nbd-memory = 64 MiB)' \
	"$ND_TMP/short.log" && pass nbd-memory-refusal-logged || fail nbd-memory-refusal-logged "no log line"
