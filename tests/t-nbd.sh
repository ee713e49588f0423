#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# NBD in netdiskd: stock clients (nbdinfo, nbdcopy, qemu-img, qemu-io), session takeover, bad input.
. "$(dirname "$0")/lib.sh"
requires cmd:nbdinfo cmd:nbdcopy cmd:qemu-img cmd:qemu-io

NDTEST=$ND_BUILD/tests/ndtest
BASE=$ND_TMP/base.img
head -c 32M /dev/urandom >"$BASE"
cp "$BASE" "$ND_TMP/pristine.img"
nd() { "$NDTEST" "127.0.0.1:$ND_PORT" "$BASE" "$@"; }

cat >"$ND_TMP/nbd.conf" <<CONF
nbd-exports = images
state-dir = $ND_TMP/state
[image base]
path = base.img
[image ro]
path = pristine.img
mode = readonly
CONF
start_server nbd --config "$ND_TMP/nbd.conf" ||
	{ fail nbd-start "$(cat "$ND_TMP/nbd.log")"; exit 1; }
URI=nbd://127.0.0.1:$ND_PORT

nbdinfo --list "$URI" >"$ND_TMP/list" 2>&1 && grep -q 'export="base"' "$ND_TMP/list" &&
	grep -q 'export="ro"' "$ND_TMP/list" && pass nbdinfo-list || fail nbdinfo-list "$(cat "$ND_TMP/list")"
nbdinfo --json "$URI/base" >"$ND_TMP/info" 2>&1 && grep -q '"export-size": 33554432' "$ND_TMP/info" &&
	pass nbdinfo-size || fail nbdinfo-size "$(head -c 300 "$ND_TMP/info")"
nbdcopy "$URI/base" "$ND_TMP/copy.img" && cmp -s "$ND_TMP/copy.img" "$BASE" &&
	pass nbdcopy-read || fail nbdcopy-read "copy differs from the image"
qemu-img convert -f raw -O raw "$URI/base" "$ND_TMP/copy2.img" && cmp -s "$ND_TMP/copy2.img" "$BASE" &&
	pass qemu-img-convert || fail qemu-img-convert "converted image differs"
qemu-io -f raw -c 'write -P 0x5a 4096 65536' -c 'read -P 0x5a 4096 65536' -c 'write -z 1M 8192' \
	-c 'read -P 0 1M 8192' -c flush "$URI/base" >"$ND_TMP/qio" 2>&1 &&
	! grep -q -i -e 'fail' -e 'error' -e 'pattern verification' "$ND_TMP/qio" &&
	pass qemu-io-write-zero-read || fail qemu-io-write-zero-read "$(cat "$ND_TMP/qio")"
qemu-io -f raw -c 'write -P 1 0 512' "$URI/ro" >"$ND_TMP/qro" 2>&1
grep -q -i -e 'read-only' -e 'Permission denied' "$ND_TMP/qro" &&
	pass nbd-readonly-refuses-writes || fail nbd-readonly-refuses-writes "$(cat "$ND_TMP/qro")"
check_fails nbd-unknown-export 1 'server replied with error to opt_go request.*export: nosuch' \
	nbdinfo "$URI/nosuch"
check_fails nbd-bad-token 1 'server replied with error to opt_go request.*export: session:' \
	nbdinfo "$URI/session:00112233445566778899aabbccddeeff"

# Takeover: what the "firmware" wrote over UDP is there over NBD, and the reverse.
# The "firmware" speaks from one port throughout: a retried ATTACH is the same client only from there.
FW=127.0.0.1:$(free_port)
token=$(NDTEST_BIND=$FW nd token 02:00:00:00:06:01 1 31 5000 64)
if [ ${#token} -eq 32 ]; then
	nbdcopy "$URI/session:$token" "$ND_TMP/session.img" &&
		"$NDTEST" x "$BASE" file-pattern "$ND_TMP/session.img" 31 5000 64 &&
		pass takeover-firmware-writes-visible || fail takeover-firmware-writes-visible "pattern missing"
	cp "$ND_TMP/session.img" "$ND_TMP/back.img"
	"$NDTEST" x "$BASE" put-pattern "$ND_TMP/back.img" 32 6000 16
	nbdcopy "$ND_TMP/back.img" "$URI/session:$token" &&
		NDTEST_BIND=$FW nd check 02:00:00:00:06:01 1 32 6000 16 && pass takeover-nbd-writes-visible-to-session ||
		fail takeover-nbd-writes-visible-to-session "pattern missing over UDP"
	NDTEST_BIND=$FW nd check 02:00:00:00:06:01 1 31 5000 64 && pass takeover-session-survives-nbd-disconnect ||
		fail takeover-session-survives-nbd-disconnect "session gone after NBD closed"
else
	fail takeover-token "no token: $token"
fi

# Volatile NBD sessions start clean at every connection; the image stays untouched.
qemu-io -f raw -c 'read -P 0 1M 8192' "$URI/base" >"$ND_TMP/q2" 2>&1
grep -q 'Pattern verification failed' "$ND_TMP/q2" && pass nbd-volatile-fresh-per-client ||
	fail nbd-volatile-fresh-per-client "zeros written earlier are still there"
cmp -s "$BASE" "$ND_TMP/pristine.img" && pass nbd-image-untouched || fail nbd-image-untouched "changed"

# Garbage in the handshake and in transmission: the server lives on.
python3 - "$ND_PORT" <<'PY' && pass nbd-garbage-survived || fail nbd-garbage-survived "python probe failed"
import socket, struct, sys
port = int(sys.argv[1])
def conn():
    s = socket.create_connection(("127.0.0.1", port), timeout=2)
    s.recv(18)
    return s
s = conn(); s.sendall(b"\0\0\0\0"); s.close()                         # no fixed newstyle
s = conn(); s.sendall(struct.pack(">I", 1) + b"X" * 64); s.close()     # bad option magic
s = conn(); s.sendall(struct.pack(">IQII", 1, 0x49484156454F5054, 7, 1 << 30)); s.close()  # huge option
s = conn(); s.sendall(struct.pack(">IQII", 1, 0x49484156454F5054, 7, 3) + b"abc"); s.recv(100); s.close()
s = conn()
s.sendall(struct.pack(">IQII", 3, 0x49484156454F5054, 1, 4) + b"base")
s.recv(10)
s.sendall(struct.pack(">IHHQQI", 0x25609513, 0, 0, 1, 1 << 60, 4096))   # read far past the end
hdr = s.recv(16)
assert struct.unpack(">IIQ", hdr)[1] == 22, hdr
s.sendall(struct.pack(">IHHQQI", 0x25609513, 0, 99, 2, 0, 0))         # unknown command
assert struct.unpack(">IIQ", s.recv(16))[1] == 22
s.sendall(b"\xde\xad" * 14)                                           # bad request magic
s.close()
s = conn()
s.sendall(struct.pack(">IQII", 3, 0x49484156454F5054, 1, 2) + b"ro")
flags = struct.unpack(">QH", s.recv(10))[1]
assert flags & 2, flags                                               # advertised read-only
s.sendall(struct.pack(">IHHQQI", 0x25609513, 0, 1, 3, 0, 512) + b"\1" * 512)
assert struct.unpack(">IIQ", s.recv(16))[1] == 1                      # and a write gets EPERM
s.close()
PY
nbdinfo "$URI/base" >/dev/null 2>&1 && pass nbd-server-alive || fail nbd-server-alive "no answer"

# Many requests in flight on one connection: served in parallel, replies matched by handle.
inflight_py=$(cat <<'PY'
import os, random, socket, struct, subprocess, sys, threading, time
port, pid = int(sys.argv[1]), sys.argv[3]
img = open(sys.argv[2], "rb").read()
REQUEST, REPLY = 0x25609513, 0x67446698
READ, WRITE, DISC, FLUSH = 0, 1, 2, 3

def recv_exact(s, n):
    buf = bytearray()
    while len(buf) < n:
        chunk = s.recv(n - len(buf))
        assert chunk, "connection closed early"
        buf += chunk
    return bytes(buf)

def connect(export=b"base"):
    s = socket.create_connection(("127.0.0.1", port), timeout=20)
    recv_exact(s, 18)
    s.sendall(struct.pack(">IQII", 3, 0x49484156454F5054, 1, len(export)) + export)
    recv_exact(s, 10)
    return s

def request(typ, handle, off, length, data=b"", flags=0):
    return struct.pack(">IHHQQI", REQUEST, flags, typ, handle, off, length) + data

def send(s, *args, **kwargs):
    s.sendall(request(*args, **kwargs))

def replies(s, want):
    """Read len(want) replies (want: handle -> data length); return handle -> (error, data), in arrival order."""
    got = {}  # dicts keep insertion order: the order replies came in
    while len(got) < len(want):
        magic, error, handle = struct.unpack(">IIQ", recv_exact(s, 16))
        assert magic == REPLY and handle in want and handle not in got, (magic, handle)
        got[handle] = (error, recv_exact(s, want[handle]) if error == 0 else b"")
    return got

def threads():
    return int(next(l.split()[1] for l in open(f"/proc/{pid}/status") if l.startswith("Threads:")))

test = sys.argv[4]
rnd = random.Random(5)
if test == "reads-out-of-order":
    # A big read first, small ones behind it: they overtake it, each under its own handle.
    # The first attempt starts with the image out of the page cache: small reads are
    # then served by workers in parallel, later ones from the cache by the reader.
    overtaken = False
    for attempt in range(3):
        if attempt == 0:
            fd = os.open(sys.argv[2], os.O_RDONLY)
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
            os.close(fd)
        s = connect()
        want = {1000: (0, 16 << 20)}
        for h in range(63):
            want[h] = (rnd.randrange(0, len(img) - 65536), rnd.randrange(1, 65536))
        s.sendall(b"".join(request(READ, h, off, n) for h, (off, n) in want.items()))
        got = replies(s, {h: n for h, (off, n) in want.items()})
        for h, (error, data) in got.items():
            off, n = want[h]
            assert error == 0 and data == img[off:off + n], f"handle {h}: wrong data"
        overtaken |= list(got)[0] != 1000
        s.close()
        if overtaken:
            break
    assert overtaken, "replies always came in request order"
elif test == "writes-flush-readback":
    # Writes (some FUA) and reads of other places all in flight, then FLUSH, then read back.
    # Replies are read while the requests go out: a client must, or both ends block.
    s = connect()
    todo, want, written = [], {}, {}
    for h in range(64):
        off = h * 256 * 1024 + rnd.randrange(0, 4096)
        n = rnd.randrange(1, 128 * 1024)
        if h % 2:
            todo.append(request(READ, h, off, n))
            want[h] = n
        else:
            data = bytes([h]) * n
            todo.append(request(WRITE, h, off, n, data, flags=1 if h % 4 == 0 else 0))
            want[h] = 0
            written[off] = data
    got = {}
    reader = threading.Thread(target=lambda: got.update(replies(s, want)))
    reader.start()
    for req in todo:
        s.sendall(req)
    reader.join()
    assert len(got) == 64 and all(error == 0 for error, data in got.values()), got
    send(s, FLUSH, 500, 0, 0)
    assert replies(s, {500: 0})[500][0] == 0
    s.sendall(b"".join(request(READ, h, off, len(data)) for h, (off, data) in enumerate(written.items())))
    got = replies(s, {h: len(data) for h, data in enumerate(written.values())})
    for h, (off, data) in enumerate(written.items()):
        assert got[h] == (0, data), f"write at {off} not read back"
    s.close()
elif test == "disc-after-inflight":
    # NBD_CMD_DISC behind 32 reads: all 32 are answered, then the server closes.
    s = connect()
    want = {h: 65536 for h in range(32)}
    for h in want:
        send(s, READ, h, h * 65536, 65536)
    send(s, DISC, 99, 0, 0)
    got = replies(s, want)
    assert all(got[h] == (0, img[h * 65536:(h + 1) * 65536]) for h in want)
    assert s.recv(1) == b"", "connection still open after DISC"
elif test == "abandoned-inflight":
    # Clients that vanish with megabytes of replies pending: no thread outlives them.
    before = threads()
    for i in range(20):
        s = connect()
        for h in range(64):
            send(s, READ, h, rnd.randrange(0, len(img) - (1 << 20)), 1 << 20)
        recv_exact(s, 16)
        if i % 2:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # reset
        s.close()
    deadline = time.time() + 10
    while threads() > before and time.time() < deadline:
        time.sleep(0.1)
    assert threads() <= before, f"{threads()} threads, {before} before"
elif test == "session-ended-inflight":
    # The session ends (its client detached over UDP) with requests in flight: what is
    # answered is EIO, then the server closes the connection.
    s = connect(b"session:" + sys.argv[5].encode())
    send(s, READ, 1, 0, 512)
    assert replies(s, {1: 512})[1][0] == 0
    subprocess.run(sys.argv[6:], check=True)
    s.sendall(b"".join(request(READ, h, h * 4096, 4096) for h in range(16)))
    answered = 0
    while True:
        hdr = s.recv(16, socket.MSG_WAITALL)
        if not hdr:
            break
        magic, error, handle = struct.unpack(">IIQ", hdr)
        assert magic == REPLY and error == 5, (magic, error)
        answered += 1
    assert answered, "no EIO before the connection closed"
PY
)
for t in reads-out-of-order writes-flush-readback disc-after-inflight abandoned-inflight; do
	timeout 120 python3 -c "$inflight_py" "$ND_PORT" "$BASE" "$ND_SERVER_PID" "$t" >"$ND_TMP/inflight" 2>&1 &&
		pass "nbd-$t" || fail "nbd-$t" "$(tail -n 3 "$ND_TMP/inflight" | tr '\n' ' ')"
done
token=$(nd token 02:00:00:00:06:02 1 33 100 8)
timeout 60 python3 -c "$inflight_py" "$ND_PORT" "$BASE" "$ND_SERVER_PID" session-ended-inflight "$token" \
	"$NDTEST" "127.0.0.1:$ND_PORT" "$BASE" detach 02:00:00:00:06:02 1 >"$ND_TMP/inflight" 2>&1 &&
	pass nbd-session-ended-inflight ||
	fail nbd-session-ended-inflight "$(tail -n 3 "$ND_TMP/inflight" | tr '\n' ' ')"

# The initramfs agent's host-side steps: boot table parsing and the NBD handshake.
AGENT=$ND_BUILD/netdisk-attach
"$ND_BUILD/netdisk" boot-table "127.0.0.1:$ND_PORT" --mac 52:54:00:aa:bb:cc -o "$ND_TMP/bt.bin" &&
	"$AGENT" --print-table --table "$ND_TMP/bt.bin" >"$ND_TMP/bt.txt" &&
	grep -q 'mac: *52:54:00:aa:bb:cc' "$ND_TMP/bt.txt" && grep -q 'image: *base' "$ND_TMP/bt.txt" &&
	pass agent-reads-boot-table || fail agent-reads-boot-table "$(cat "$ND_TMP/bt.txt")"
"$AGENT" --probe --table "$ND_TMP/bt.bin" >"$ND_TMP/probe.txt" &&
	grep -q '^export session [0-9a-f]\{8\} size 33554432 ' "$ND_TMP/probe.txt" &&
	pass agent-probe-session-export || fail agent-probe-session-export "handshake failed: $(cat "$ND_TMP/probe.txt")"
cat "$ND_TMP/bt.txt" "$ND_TMP/probe.txt" | grep -q '[0-9a-f]\{32\}' &&
	fail agent-never-shows-token "a session token in its output" || pass agent-never-shows-token
printf '\001' | dd of="$ND_TMP/bt.bin" bs=1 seek=100 conv=notrunc status=none
check_fails agent-rejects-bad-checksum 1 'no boot table found' \
	"$AGENT" --print-table --table "$ND_TMP/bt.bin"
"$AGENT" --bogus >/dev/null 2>&1; [ $? -eq 2 ] && pass agent-bad-usage || fail agent-bad-usage "wrong exit"

# A direct-mode writer that was taken over by NBD frees the image when its connection closes.
stop_server
cp "$BASE" "$ND_TMP/direct.img"
start_server direct --nbd-exports images --mode direct --state-dir "$ND_TMP/dstate" "$ND_TMP/direct.img" ||
	{ fail nbd-direct-start "$(cat "$ND_TMP/direct.log")"; exit 1; }
token=$(nd token 02:00:00:00:07:01 1 41 100 8)
nd attach-status 02:00:00:00:07:02 1; [ $? -eq 6 ] && pass nbd-direct-writer-holds-image ||
	fail nbd-direct-writer-holds-image "a second writer was let in"
nbdinfo "nbd://127.0.0.1:$ND_PORT/session:$token" >/dev/null 2>&1
nd attach-status 02:00:00:00:07:02 1 && pass nbd-direct-closed-connection-frees-image ||
	fail nbd-direct-closed-connection-frees-image "image still busy after the NBD connection closed"

# Connections are bounded (max-sessions): one too many is closed before the greeting.
stop_server
printf 'nbd-exports = images\nmax-sessions = 2\n[image base]\npath = %s\n' "$BASE" >"$ND_TMP/cap.conf"
start_server cap --config "$ND_TMP/cap.conf" || { fail nbd-cap-start "$(cat "$ND_TMP/cap.log")"; exit 1; }
python3 - "$ND_PORT" <<'PY' && pass nbd-connections-bounded || fail nbd-connections-bounded "a third connection was served"
import socket, sys
port = int(sys.argv[1])
held = [socket.create_connection(("127.0.0.1", port), timeout=3) for _ in range(2)]
for s in held:
    assert len(s.recv(18)) == 18
extra = socket.create_connection(("127.0.0.1", port), timeout=3)
assert extra.recv(18) == b""
PY
grep -q 'nbd connection refused ip=127.0.0.1:[0-9]*: 2 open (max-sessions)' "$ND_TMP/cap.log" && pass nbd-refusal-logged ||
	fail nbd-refusal-logged "no log line"
