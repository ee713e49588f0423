#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# netdiskd against a hostile host on the LAN: session hijack, amplification, lockout, disk full, tokens.
. "$(dirname "$0")/lib.sh"

NDTEST=$ND_BUILD/tests/ndtest
BASE=$ND_TMP/base.img
head -c 32M /dev/urandom >"$BASE"
nd() { "$NDTEST" "127.0.0.1:$ND_PORT" "$BASE" "$@"; }
start() { start_server "$1" "${@:2}" || { fail "$1-start" "netdiskd did not start"; cat "$ND_TMP/$1.log"; exit 1; }; }

# probe.py: a hostile or stock client in Python (raw UDP datagrams, NBD), one subcommand per check.
cat >"$ND_TMP/probe.py" <<'PY'
import os, socket, struct, sys, time
MAGIC, HDR = 0x4E44534B, 48
ATTACH, DETACH, INFO, READ = 1, 2, 3, 4

def hdr(op, token=b"\0" * 16, req_id=1, lba=0, count=0, data=b""):
    return struct.pack(">IBBBBIHH16sQII", MAGIC, 1, op, 0, 0, req_id, 0, len(data), token,
                       lba, count, 0) + data

def attach_req(mac, nonce, image=b"", dgram=1472, pad=True):
    req = mac + bytes([4, 0]) + struct.pack(">HHII", dgram, 16, 0, nonce) + b"\0" * 4
    req += image.ljust(64, b"\0")
    return req + b"\0" * 40 if pad else req          # padded to the 128-byte reply

def sock(bind="127.0.0.1"):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, 33, 8 << 20)     # SO_RCVBUFFORCE: a whole 1 MiB burst
    s.bind((bind, 0))
    return s

def drain(s, seconds):
    """Every datagram that arrives within `seconds`: (count, bytes, first)."""
    s.settimeout(0.05)
    n, total, first, end = 0, 0, None, time.time() + seconds
    while time.time() < end:
        try:
            d = s.recv(70000)
        except socket.timeout:
            continue
        n, total = n + 1, total + len(d)
        first = first or d
    return n, total, first

def status(d):
    return struct.unpack(">H", d[12:14])[0] if d and len(d) >= HDR else None

def attach(s, server, mac, nonce, image=b"", dgram=1472, pad=True):
    s.sendto(hdr(ATTACH, data=attach_req(mac, nonce, image, dgram, pad)), server)
    n, total, d = drain(s, 0.5)
    return status(d), (d[16:32] if d else None), total

def nbd_connect(port, export):
    t = socket.create_connection(("127.0.0.1", port), timeout=10)
    t.recv(18)
    t.sendall(struct.pack(">IQII", 3, 0x49484156454F5054, 1, len(export)) + export)
    got = b""
    while len(got) < 10:
        c = t.recv(10 - len(got))
        assert c, "export refused"
        got += c
    return t

def nbd_io(t, cmd, off, length, data=b""):
    t.sendall(struct.pack(">IHHQQI", 0x25609513, 0, cmd, 7, off, length) + data)
    rep = b""
    want = 16 + (length if cmd == 0 else 0)
    while len(rep) < want:
        c = t.recv(want - len(rep))
        assert c, "connection closed"
        rep += c
    err = struct.unpack(">IIQ", rep[:16])[1]
    assert err == 0, "NBD error %d" % err
    return rep[16:]

def main():
    cmd, port = sys.argv[1], int(sys.argv[2])
    server = ("127.0.0.1", port)
    if cmd == "amplify":
        # A token we got honestly, used from another port: how much comes back there?
        a, b = sock(), sock()
        st, token, _ = attach(a, server, b"\x02\x00\x00\x00\x0a\x01", 1, dgram=65024)
        assert st == 0, "attach failed: %r" % st
        a.sendto(hdr(READ, token, 2, 0, 2048), server)
        own = drain(a, 1.0)[1]
        req = hdr(READ, token, 3, 0, 2048)
        b.sendto(req, server)
        n, got, _ = drain(b, 1.0)
        print("read-own %d read-foreign-sent %d got %d in %d datagrams" % (own, len(req), got, n))
        un = hdr(ATTACH, data=attach_req(b"\x02\x00\x00\x00\x0a\x02", 5, pad=False))
        b.sendto(un, server)
        print("attach-unpadded-sent %d got %d" % (len(un), drain(b, 0.5)[1]))
        info = hdr(INFO)
        b.sendto(info, server)
        print("info-sent %d got %d" % (len(info), drain(b, 0.5)[1]))
    elif cmd == "udp-hijack-nbd":
        # Another host's UDP ATTACH with the NBD client's derived identity.
        a = sock()
        st, token, _ = attach(a, server, b"\x02\x4e\x7f\x00\x00\x01", 0x4e424400, b"base")
        if st != 0:
            print("attach-status %d" % st)
            return
        a.sendto(hdr(READ, token, 2, int(sys.argv[3]), 8), server)
        n, got, d = drain(a, 0.5)
        print("attach-status 0 read %s" % (d[HDR:HDR + 16].hex() if d and status(d) == 0 else "refused"))
    elif cmd == "udp-retry-other-port":
        # The same MAC, nonce and image as a live session, from another port.
        st, token, _ = attach(sock(), server, bytes.fromhex(sys.argv[3].replace(":", "")),
                              int(sys.argv[4]))
        print("%s %s" % (st, token.hex() if token else "-"))
    elif cmd == "nbd-write-hold":
        # Write a pattern over NBD and keep the connection; print READY, wait for stdin.
        t = nbd_connect(port, sys.argv[3].encode())
        off, pat = int(sys.argv[4]), bytes.fromhex(sys.argv[5]) * 32
        nbd_io(t, 1, off, len(pat), pat)
        nbd_io(t, 3, 0, 0)
        print("READY", flush=True)
        sys.stdin.readline()
        t.close()
    elif cmd == "nbd-read":
        t = nbd_connect(port, sys.argv[3].encode())
        print(nbd_io(t, 0, int(sys.argv[4]), 16).hex())
        t.close()
    elif cmd == "flood":
        # COUNT ATTACHes with made-up MACs from SOURCES loopback addresses, padded.
        count, sources, rounds = int(sys.argv[3]), int(sys.argv[4]), 0
        socks = [sock("127.0.%d.%d" % (1 + i // 200, 2 + i % 200)) for i in range(sources)]
        start, sent, ok = time.time(), 0, 0
        for i in range(count):
            mac = b"\x02\xfe" + struct.pack(">I", i)
            socks[i % sources].sendto(hdr(ATTACH, req_id=i, data=attach_req(mac, i)), server)
            sent += 1
        for s in socks:
            s.settimeout(0.01)
            while True:
                try:
                    d = s.recv(2000)
                except socket.timeout:
                    break
                ok += status(d) == 0
        print("flood sent %d attached %d in %.1f s" % (sent, ok, time.time() - start))
main()
PY
probe() { python3 "$ND_TMP/probe.py" "$1" "$ND_PORT" "${@:2}"; }

# --- defect 1: nobody else's ATTACH returns a live session ----------------------
STATE=$ND_TMP/state
start hijack --nbd-exports images --state-dir "$STATE" "$BASE"
coproc HOLD { probe nbd-write-hold base 8192 c0ffee11c0ffee11; }
read -r -t 20 line <&"${HOLD[0]}"
if [ "$line" = READY ]; then
	got=$(probe udp-hijack-nbd 16)
	case $got in
	"attach-status 0 read c0ffee11"*) fail hijack-nbd-session-over-udp "a UDP ATTACH read the NBD client's data: $got" ;;
	"attach-status 0 read"* | "attach-status "[1-9]*) pass hijack-nbd-session-over-udp ;;
	*) fail hijack-nbd-session-over-udp "probe failed: $got" ;;
	esac
	# The NBD client reconnecting (a second connection, as nbd-client -persist makes) finds its writes.
	[ "$(probe nbd-read base 8192)" = c0ffee11c0ffee11c0ffee11c0ffee11 ] &&
		pass nbd-reconnect-finds-own-writes || fail nbd-reconnect-finds-own-writes "pattern missing"
	nonce=$(grep -h '^nonce=' "$STATE"/sessions/* 2>/dev/null | head -n 1)
	[ -n "$nonce" ] && [ "$nonce" != nonce=1312965632 ] && pass nbd-nonce-not-fixed ||
		fail nbd-nonce-not-fixed "NBD session nonce is '$nonce' (0x4e424400 is guessable)"
	# ... and so does one after the server was killed and restarted on the same state.
	kill -9 "$ND_SERVER_PID"; wait "$ND_SERVER_PID" 2>/dev/null
	echo done >&"${HOLD[1]}"
	ND_PORT_FIXED=$ND_PORT start hijack2 --nbd-exports images --state-dir "$STATE" "$BASE"
	[ "$(probe nbd-read base 8192)" = c0ffee11c0ffee11c0ffee11c0ffee11 ] &&
		pass nbd-reconnect-after-restart-finds-own-writes ||
		fail nbd-reconnect-after-restart-finds-own-writes "pattern missing after the restart"
else
	fail nbd-write-hold "NBD client not ready: $line"
fi
wait "$HOLD_PID" 2>/dev/null

# A retried ATTACH (same MAC, nonce, image) is the same client only from the same address and port.
token=$(NDTEST_BIND=127.0.0.1 nd token 02:00:00:00:0b:01 4242 51 100 8)
other=$(probe udp-retry-other-port 02:00:00:00:0b:01 4242)
if [ ${#token} -ne 32 ]; then
	fail hijack-retried-attach "no token: $token"
elif [ "$other" = "0 $token" ]; then
	fail hijack-retried-attach "another port got the live session's token"
else
	pass hijack-retried-attach
fi
P=127.0.0.1:$(free_port)
NDTEST_BIND=$P nd write 02:00:00:00:0b:02 7 52 200 8 0 &&
	NDTEST_BIND=$P nd check 02:00:00:00:0b:02 7 52 200 8 && pass retried-attach-same-port-same-session ||
	fail retried-attach-same-port-same-session "the same client's retried ATTACH lost its writes"
stop_server

# --- defect 2: no amplification, sessions answer only where they attached from ----
start amplify "$BASE"
out=$(probe amplify)
echo "# $out"
read -r _ own _ sent _ got _ _ _ <<<"$(echo "$out" | sed -n 1p)"
if [ "${own:-0}" -lt 100000 ]; then
	fail amplify-setup "the session's own READ got $own bytes"
elif [ "$got" -le "$sent" ]; then
	pass amplify-foreign-read-factor-le-1
else
	fail amplify-foreign-read-factor-le-1 "$sent bytes from another port got $got back (x$((got / sent)))"
fi
grep -q 'request refused, the session is served only to 127.0.0.1:[0-9]*, .* ip=127.0.0.1:[0-9]* session=[0-9a-f]\{8\} ' \
	"$ND_TMP/amplify.log" && pass amplify-foreign-read-logged || fail amplify-foreign-read-logged "no log line"
read -r _ sent _ got <<<"$(echo "$out" | sed -n 2p)"
[ "$got" -le "$sent" ] && pass amplify-attach-factor-le-1 ||
	fail amplify-attach-factor-le-1 "an unpadded $sent-byte ATTACH got $got bytes"
read -r _ sent _ got <<<"$(echo "$out" | sed -n 3p)"
[ "$got" -le "$sent" ] && pass amplify-info-factor-le-1 ||
	fail amplify-info-factor-le-1 "a $sent-byte server INFO got $got bytes"
stop_server

# --- defect 3: idle sessions expire; floods neither lock out nor survive restarts ----
# (a copy for the persistent image: one file under two names is refused, defect 6)
cp "$BASE" "$ND_TMP/keep.img"
cat >"$ND_TMP/idle.conf" <<CONF
state-dir = $ND_TMP/idlestate
session-timeout = 10
[image base]
path = $BASE
mode = volatile
[image keep]
path = $ND_TMP/keep.img
mode = persistent
CONF
start idle --config "$ND_TMP/idle.conf"
# Two clients go silent (volatile, persistent) while a flood of ATTACHes sits unused.
nd idle 02:00:00:00:0c:01 1 13 >"$ND_TMP/idle1.out" &
idle1=$!
NDTEST_IMAGE=keep nd idle 02:00:00:00:0c:02 1 13 >/dev/null &
idle2=$!
probe flood 50 50 >/dev/null
wait "$idle1" "$idle2"
cat "$ND_TMP/idle1.out"
ls "$ND_TMP/idlestate/volatile/base/02:00:00:00:0c:01.data" >/dev/null 2>&1 &&
	fail idle-volatile-discarded "the expired session's overlay is still there" || pass idle-volatile-discarded
NDTEST_IMAGE=keep nd check 02:00:00:00:0c:02 2 41 300 8 && pass idle-persistent-kept ||
	fail idle-persistent-kept "the persistent overlay lost its data at expiry"
grep -q 'detach mac=02:00:00:00:0c:01 .*idle for' "$ND_TMP/idle.log" && pass idle-logged ||
	fail idle-logged "no expiry line in the log"
# The flood, recorded in the state directory, is not restored: it was idle for session-timeout.
stop_server
start idle2 --config "$ND_TMP/idle.conf"
n=$(sed -n 's/.*restored \([0-9]*\) session.*/\1/p' "$ND_TMP/idle2.log")
[ "${n:-0}" -lt 50 ] && pass idle-flood-not-restored ||
	fail idle-flood-not-restored "$n sessions restored, idle longer than session-timeout"
# ... but the remaining time of a session killed while live carries over (downtime does not count).
probe flood 20 20 >/dev/null
kill -9 "$ND_SERVER_PID"; wait "$ND_SERVER_PID" 2>/dev/null
sleep 3
start idle3 --config "$ND_TMP/idle.conf"
n=$(sed -n 's/.*restored \([0-9]*\) session.*/\1/p' "$ND_TMP/idle3.log")
[ "${n:-0}" -ge 20 ] && pass idle-live-restored-after-downtime ||
	fail idle-live-restored-after-downtime "$(grep -e restored -e ended "$ND_TMP/idle3.log")"
stop_server

start flood "$BASE"
probe flood 1100 1 >"$ND_TMP/flood1.out"      # one address
probe flood 1100 110 >"$ND_TMP/flood2.out"    # 110 addresses, 10 each: fills max-sessions
echo "# $(cat "$ND_TMP/flood1.out"); $(cat "$ND_TMP/flood2.out")"
deadline=$((SECONDS + 15)) st=
while [ $SECONDS -lt $deadline ]; do
	nd attach-status 02:00:00:00:0d:01 $SECONDS; st=$?
	[ $st -eq 0 ] && break
	sleep 0.5
done
[ "$st" = 0 ] && pass flood-legit-client-attaches ||
	fail flood-legit-client-attaches "still refused (status $st) 15 s after a flood of 2,200 ATTACHes"
grep -q 'attach refused, more than [0-9]* ATTACHes a second' "$ND_TMP/flood.log" && pass flood-rate-limit-logged ||
	fail flood-rate-limit-logged "no rate-limit line in the log"
grep -q 'evicted: unused since its ATTACH' "$ND_TMP/flood.log" && pass flood-eviction-logged ||
	fail flood-eviction-logged "no eviction line in the log"
grep -q 'attach refused.*direct-mode writer' "$ND_TMP/flood.log" &&
	fail flood-refusal-reason "a full table is logged as a direct-mode writer" || pass flood-refusal-reason
stop_server

# --- defect 7: a full disk is logged once per session and reported as NOSPACE --------
SMALL=$ND_TMP/small
mkdir -p "$SMALL"
if mount -t tmpfs -o size=2m tmpfs "$SMALL"; then
	start nospace --state-dir "$SMALL" "$BASE"
	nd write-status 02:00:00:00:0e:01 1 61 0 16384 64
	st=$?
	[ $st -eq 11 ] && pass nospace-status || fail nospace-status "a write to a full disk got status $st, not NOSPACE (11)"
	n=$(grep -c 'storage error, No space left on device: op=write .*mac=02:00:00:00:0e:01 ' "$ND_TMP/nospace.log")
	[ "$n" = 1 ] && pass nospace-logged-once || fail nospace-logged-once "$n log lines for one session's ENOSPC"
	stop_server
	umount "$SMALL"
else
	fail nospace-mount "cannot mount a small tmpfs"
fi

# --- tokens are never logged; a temporary state dir says so ---------------------------
start tokens "$BASE"
token=$(NDTEST_BIND=127.0.0.1 nd token 02:00:00:00:0f:01 9 0 0 0)
fp=$(grep -o 'attach mac=02:00:00:00:0f:01 .* session=[0-9a-f]*' "$ND_TMP/tokens.log" | sed 's/.*session=//')
stop_server
want=$(python3 -c 'import sys
h = 2166136261
for b in bytes.fromhex(sys.argv[1]): h = ((h ^ b) * 16777619) & 0xffffffff
print("%08x" % h)' "${token:-00}")
[ ${#token} -eq 32 ] && ! grep -q "$token" "$ND_TMP/tokens.log" && [ "$fp" = "$want" ] &&
	pass token-not-logged-fingerprint-logged ||
	fail token-not-logged-fingerprint-logged "token in the log, or no fingerprint of it ('$fp', want '$want')"
grep -q 'state in .*temporary.*--state-dir' "$ND_TMP/tokens.log" && pass temp-state-said ||
	fail temp-state-said "startup line does not say the state is temporary"

