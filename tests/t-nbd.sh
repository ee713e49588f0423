#!/usr/bin/env bash
# NBD in netdiskd: stock clients (nbdinfo, nbdcopy, qemu-img, qemu-io), session takeover, bad input.
. "$(dirname "$0")/lib.sh"

NDTEST=$ND_BUILD/tests/ndtest
BASE=$ND_TMP/base.img
head -c 32M /dev/urandom >"$BASE"
cp "$BASE" "$ND_TMP/pristine.img"
nd() { "$NDTEST" "127.0.0.1:$ND_PORT" "$BASE" "$@"; }

cat >"$ND_TMP/nbd.conf" <<CONF
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
nbdinfo "$URI/nosuch" >"$ND_TMP/unknown" 2>&1 && fail nbd-unknown-export "accepted" ||
	pass nbd-unknown-export
nbdinfo "$URI/session:00112233445566778899aabbccddeeff" >/dev/null 2>&1 &&
	fail nbd-bad-token "accepted" || pass nbd-bad-token

# Takeover: what the "firmware" wrote over UDP is there over NBD, and the reverse.
token=$(nd token 02:00:00:00:06:01 1 31 5000 64)
if [ ${#token} -eq 32 ]; then
	nbdcopy "$URI/session:$token" "$ND_TMP/session.img" &&
		"$NDTEST" x "$BASE" file-pattern "$ND_TMP/session.img" 31 5000 64 &&
		pass takeover-firmware-writes-visible || fail takeover-firmware-writes-visible "pattern missing"
	cp "$ND_TMP/session.img" "$ND_TMP/back.img"
	"$NDTEST" x "$BASE" put-pattern "$ND_TMP/back.img" 32 6000 16
	nbdcopy "$ND_TMP/back.img" "$URI/session:$token" &&
		nd check 02:00:00:00:06:01 1 32 6000 16 && pass takeover-nbd-writes-visible-to-session ||
		fail takeover-nbd-writes-visible-to-session "pattern missing over UDP"
	nd check 02:00:00:00:06:01 1 31 5000 64 && pass takeover-session-survives-nbd-disconnect ||
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

# The initramfs agent's host-side steps: boot table parsing and the NBD handshake.
AGENT=$ND_BUILD/netdisk-attach
"$ND_BUILD/netdisk" boot-table "127.0.0.1:$ND_PORT" --mac 52:54:00:aa:bb:cc -o "$ND_TMP/bt.bin" &&
	"$AGENT" --print-table --table "$ND_TMP/bt.bin" >"$ND_TMP/bt.txt" &&
	grep -q 'mac: *52:54:00:aa:bb:cc' "$ND_TMP/bt.txt" && grep -q 'image: *base' "$ND_TMP/bt.txt" &&
	pass agent-reads-boot-table || fail agent-reads-boot-table "$(cat "$ND_TMP/bt.txt")"
"$AGENT" --probe --table "$ND_TMP/bt.bin" | grep -q '^export session:[0-9a-f]\{32\} size 33554432 ' &&
	pass agent-probe-session-export || fail agent-probe-session-export "handshake failed"
printf '\001' | dd of="$ND_TMP/bt.bin" bs=1 seek=100 conv=notrunc status=none
"$AGENT" --print-table --table "$ND_TMP/bt.bin" >/dev/null 2>&1 && fail agent-rejects-bad-checksum "accepted" ||
	pass agent-rejects-bad-checksum
"$AGENT" --bogus >/dev/null 2>&1; [ $? -eq 2 ] && pass agent-bad-usage || fail agent-bad-usage "wrong exit"

# A direct-mode writer that was taken over by NBD frees the image when its connection closes.
stop_server
cp "$BASE" "$ND_TMP/direct.img"
start_server direct --mode direct --state-dir "$ND_TMP/dstate" "$ND_TMP/direct.img" ||
	{ fail nbd-direct-start "$(cat "$ND_TMP/direct.log")"; exit 1; }
token=$(nd token 02:00:00:00:07:01 1 41 100 8)
nd attach-status 02:00:00:00:07:02 1; [ $? -eq 6 ] && pass nbd-direct-writer-holds-image ||
	fail nbd-direct-writer-holds-image "a second writer was let in"
nbdinfo "nbd://127.0.0.1:$ND_PORT/session:$token" >/dev/null 2>&1
nd attach-status 02:00:00:00:07:02 1 && pass nbd-direct-closed-connection-frees-image ||
	fail nbd-direct-closed-connection-frees-image "image still busy after the NBD connection closed"

# Connections are bounded (max-sessions): one too many is closed before the greeting.
stop_server
printf 'max-sessions = 2\n[image base]\npath = %s\n' "$BASE" >"$ND_TMP/cap.conf"
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
grep -q 'nbd connection refused: 2 open' "$ND_TMP/cap.log" && pass nbd-refusal-logged ||
	fail nbd-refusal-logged "no log line"
