#!/usr/bin/env bash
# netdiskd built with ASan+UBSan under three ndtest scenarios (rw, raw datagrams, loss/dup/reorder) and a stop under NBD load (the fuzzers are t-fuzz.sh).
. "$(dirname "$0")/lib.sh"

ASAN_SERVER=$ND_BUILD/asan/netdiskd
BASE=$ND_TMP/base.img
head -c 16M /dev/urandom >"$BASE"
export ASAN_OPTIONS=abort_on_error=1:detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1

nd() { "$ND_BUILD/tests/ndtest" "127.0.0.1:$ND_PORT" "$BASE" "$@" | sed 's/^\(PASS\|FAIL\) /\1 asan-/'; }

ND_PORT=$(free_port)
"$ASAN_SERVER" --listen "127.0.0.1:$ND_PORT" --mode persistent --state-dir "$ND_TMP/state" \
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
