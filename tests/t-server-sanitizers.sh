#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# netdiskd built with ASan+UBSan under three ndtest scenarios (rw, raw datagrams, loss/dup/reorder)
# and a stop under NBD load, and with TSan under concurrent NBD and UDP load (the fuzzers are t-fuzz.sh).
. "$(dirname "$0")/lib.sh"

ASAN_SERVER=$ND_BUILD/asan/netdiskd
BASE=$ND_TMP/base.img
head -c 16M /dev/urandom >"$BASE"
export ASAN_OPTIONS=abort_on_error=1:detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1

nd() { "$ND_BUILD/tests/ndtest" "127.0.0.1:$ND_PORT" "$BASE" "$@" | sed 's/^\(PASS\|FAIL\) /\1 asan-/'; }

ND_PORT=$(free_port)
"$ASAN_SERVER" --listen "127.0.0.1:$ND_PORT" --nbd-exports images --mode persistent --state-dir "$ND_TMP/state" \
	"$BASE" >"$ND_TMP/asan.log" 2>&1 &
pid=$!
ND_PIDS+=("$pid")
if wait_for 20 grep -q 'listening on' "$ND_TMP/asan.log"; then
	nd rw 02:00:00:00:05:01
	nd raw
	nd faults 02:00:00:00:05:02 10 5 5
	# Stop it while NBD connections are busy reading: it must end them and
	# wait for their threads before it frees the sessions they use.
	timeout 60 python3 - "$ND_PORT" >"$ND_TMP/nbd-load.log" 2>&1 <<'PY' &
import socket, struct, sys, threading
port = int(sys.argv[1])
done = []

def recv_exact(s, n):
    buf = b""
    while len(buf) < n:
        chunk = s.recv(n - len(buf))
        if not chunk:
            raise EOFError
        buf += chunk
    return buf

def load():
    s = socket.create_connection(("127.0.0.1", port), timeout=30)
    recv_exact(s, 18)
    s.sendall(struct.pack(">IQII", 3, 0x49484156454F5054, 1, 4) + b"base")
    recv_exact(s, 10)
    n = 0
    try:
        while True:
            s.sendall(b"".join(struct.pack(">IHHQQI", 0x25609513, 0, 0, h, h * 65536, 65536)
                               for h in range(8)))
            for _ in range(8):
                recv_exact(s, 16 + 65536)
                n += 1
    except (EOFError, ConnectionError):
        done.append(n)

threads = [threading.Thread(target=load) for _ in range(3)]
for t in threads:
    t.start()
for t in threads:
    t.join()
print("reads", sum(done), "connections ended by the server", len(done))
PY
	loader=$!
	sleep 2
	kill "$pid"
	# Bounded: a sanitizer report from several threads at once can hang the process.
	wait_for 30 sh -c "! kill -0 $pid 2>/dev/null" || kill -KILL "$pid"
	wait "$pid"
	rc=$?
	wait "$loader"
	grep -q '^reads [1-9][0-9]* connections ended by the server 3$' "$ND_TMP/nbd-load.log" &&
		! grep -q 'still busy' "$ND_TMP/asan.log" && pass asan-stop-ends-nbd-connections ||
		fail asan-stop-ends-nbd-connections "$(tail -n 2 "$ND_TMP/nbd-load.log" "$ND_TMP/asan.log" | tr '\n' ' ')"
	if [ $rc -eq 0 ] && ! grep -q -e 'ERROR: AddressSanitizer' -e 'runtime error' -e 'LeakSanitizer' \
		"$ND_TMP/asan.log"; then
		pass asan-server-clean
	else
		fail asan-server-clean "exit $rc: $(grep -m3 -e ERROR -e 'runtime error' "$ND_TMP/asan.log")"
	fi
else
	fail asan-server-start "$(cat "$ND_TMP/asan.log")"
fi

# ThreadSanitizer: an NBD client looping 32 MiB WRITE + FLUSH, another NBD
# connection reading the same session, and a UDP client on its own session, all
# at once; then a UDP client ends a session that NBD requests are using.
TSAN_SERVER=$ND_BUILD/tsan/netdiskd
ND_PORT=$(free_port)
TSAN_OPTIONS="halt_on_error=0 log_path=$ND_TMP/tsan-report" "$TSAN_SERVER" --listen "127.0.0.1:$ND_PORT" --nbd-exports images \
	--mode persistent --state-dir "$ND_TMP/tstate" "$BASE" >"$ND_TMP/tsan.log" 2>&1 &
tpid=$!
ND_PIDS+=("$tpid")
if wait_for 20 grep -q 'listening on' "$ND_TMP/tsan.log"; then
	timeout 60 python3 "$ND_TOP/bench/nbd-write-loop.py" "$ND_PORT" base 6 >"$ND_TMP/tsan-load" 2>&1 &
	loader=$!
	"$ND_BUILD/tests/ndtest" "127.0.0.1:$ND_PORT" "$BASE" faults 02:00:00:00:05:13 5 3 3 \
		>"$ND_TMP/tsan-udp-load" 2>&1 &
	udpload=$!
	sleep 1
	for i in $(seq 20); do
		kill -0 "$loader" 2>/dev/null || break
		timeout 60 nbdcopy "nbd://127.0.0.1:$ND_PORT/base" null: || echo "nbdcopy $i failed"
	done >"$ND_TMP/tsan-readers" 2>&1
	wait "$loader" "$udpload"
	{ "$ND_BUILD/tests/ndtest" "127.0.0.1:$ND_PORT" "$BASE" write 02:00:00:00:05:11 1 4 300 64 1 &&
		"$ND_BUILD/tests/ndtest" "127.0.0.1:$ND_PORT" "$BASE" check 02:00:00:00:05:11 1 4 300 64 ||
		echo "udp client failed"; } >"$ND_TMP/tsan-udp" 2>&1
	token=$("$ND_BUILD/tests/ndtest" "127.0.0.1:$ND_PORT" "$BASE" token 02:00:00:00:05:12 1 3 100 8)
	timeout 60 python3 "$ND_TOP/bench/nbd-write-loop.py" "$ND_PORT" "session:$token" 4 \
		>"$ND_TMP/tsan-load2" 2>&1 &
	loader=$!
	sleep 2
	"$ND_BUILD/tests/ndtest" "127.0.0.1:$ND_PORT" "$BASE" detach 02:00:00:00:05:12 1 >/dev/null 2>&1
	wait "$loader"
	kill "$tpid"
	wait_for 30 sh -c "! kill -0 $tpid 2>/dev/null" || kill -KILL "$tpid"
	wait "$tpid"
	grep -q '^rounds [1-9]' "$ND_TMP/tsan-load" && ! grep -q -e FAIL -e failed "$ND_TMP/tsan-udp" \
		"$ND_TMP/tsan-udp-load" "$ND_TMP/tsan-readers" && pass tsan-concurrent-load-served ||
		fail tsan-concurrent-load-served "$(cat "$ND_TMP/tsan-load" "$ND_TMP/tsan-readers" "$ND_TMP/tsan-udp" \
			"$ND_TMP/tsan-udp-load" | grep -v ^PASS | tail -n 4 | tr '\n' ' ')"
	if ls "$ND_TMP"/tsan-report.* >/dev/null 2>&1; then
		fail tsan-no-data-race "$(grep -h -m2 -A8 'WARNING: ThreadSanitizer' "$ND_TMP"/tsan-report.* | tr '\n' ' ' | head -c 900)"
	else
		pass tsan-no-data-race
	fi
else
	fail tsan-server-start "$(cat "$ND_TMP/tsan.log")"
fi
