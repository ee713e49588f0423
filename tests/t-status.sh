#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Operations at host level (docs/operations.md): `netdisk status` and its JSON
# with three clients in different modes and phases, `netdisk clients --watch`,
# the Prometheus endpoint (every documented metric present, counters moving
# with traffic, errors and the boot histogram), the HTTP listener's handling
# of bad and slow requests, and the dashboard rendered by headless Chromium
# (its DOM lists the clients; its screenshot is a rendered page).
. "$(dirname "$0")/lib.sh"
requires cmd:curl cmd:python3 cmd:chromium

NETDISK=$ND_BUILD/netdisk
STATE=$ND_TMP/state
CTL=$STATE/control
mkdir -p "$STATE"
head -c 16M /dev/urandom >"$ND_TMP/a.img"
MPORT=$(free_port)
cat >"$ND_TMP/s.conf" <<CONF
state-dir = $STATE
metrics-listen = 127.0.0.1:$MPORT
[image a]
path = $ND_TMP/a.img
mode = volatile
[client 02:00:00:00:51:02]
mode = persistent
[client 02:00:00:00:51:05]
mode = readonly
CONF
start_server status --config "$ND_TMP/s.conf"
S=127.0.0.1:$ND_PORT
M=http://127.0.0.1:$MPORT

metric() { # metric NAME{LABELS}: its value in a fresh scrape (empty if absent)
	curl -s "$M/metrics" | awk -v k="$1" '$1 == k { print $2 }'
}

# Three clients: A volatile in the firmware phase (read 1 MiB), B persistent
# in the firmware phase (wrote 4 KiB), C in the OS phase (its session taken
# over by NBD with session:TOKEN, as Linux does).
"$NETDISK" read "$S" 0 2048 -o "$ND_TMP/a.out" --mac 02:00:00:00:51:01 --keep
head -c 4096 /dev/urandom >"$ND_TMP/w.bin"
"$NETDISK" write "$S" 64 -i "$ND_TMP/w.bin" --mac 02:00:00:00:51:02 --keep
"$NETDISK" boot-table "$S" -o "$ND_TMP/bt.bin" --mac 02:00:00:00:51:03 >/dev/null
TOKEN=$(python3 -c "import sys; print(open(sys.argv[1],'rb').read()[68:84].hex())" "$ND_TMP/bt.bin")
sleep 1.1 # so that C's boot time is more than zero
python3 "$ND_TOP/tests/nbd-abuse.py" "$ND_PORT" hold "session:$TOKEN" 40 "$ND_TMP/held" &
HOLD=$!
wait_for 10 test -e "$ND_TMP/held" || fail "nbd hold" "the session:TOKEN connection did not come up"

"$NETDISK" status --control "$CTL" >"$ND_TMP/status.txt" 2>&1
sed 's/^/# /' "$ND_TMP/status.txt"
for mac in 02:00:00:00:51:01 02:00:00:00:51:02 02:00:00:00:51:03; do
	grep -q "^$mac " "$ND_TMP/status.txt" || { fail "status table" "no row for $mac"; break; }
done && pass "netdisk status shows a row for each of the 3 clients"

"$NETDISK" status --json --control "$CTL" >"$ND_TMP/status.json"
python3 - "$ND_TMP/status.json" <<'EOF' >"$ND_TMP/json.out" 2>&1
import json, sys
d = json.load(open(sys.argv[1]))
c = {x["mac"]: x for x in d["clients"]}
a, b, o = c["02:00:00:00:51:01"], c["02:00:00:00:51:02"], c["02:00:00:00:51:03"]
def want(cond, what):
    print(("PASS " if cond else "FAIL ") + what + ("" if cond else ": " + json.dumps(d)))
want(d["server"]["sessions"] == 3, "status --json: server says 3 sessions")
# A READ the client sent again (RETRY, on a loaded machine) is served, and counted, again.
want(a["mode"] == "volatile" and a["phase"] == "firmware" and a["transport"] == "udp"
     and (a["read_bytes"] == 1048576 if a["retransmits"] == 0 else 1048576 < a["read_bytes"] <= 2097152)
     and a["written_bytes"] == 0,
     "status --json: A volatile, firmware phase over UDP, read 1 MiB (%d retransmitted)" % a["retransmits"])
want(b["mode"] == "persistent" and b["phase"] == "firmware" and b["written_bytes"] == 4096
     and b["overlay_bytes"] >= 4096, "status --json: B persistent, wrote 4 KiB, overlay holds it")
want(o["phase"] == "os" and o["transport"] == "nbd" and isinstance(o["boot_s"], (int, float))
     and o["boot_s"] >= 1 and o["read_bytes"] >= 65536,
     "status --json: C in the OS phase over NBD, boot time >= 1 s, its NBD read counted")
want(a["boot_s"].startswith("booting:") and isinstance(a["age_s"], int) and a["idle_s"] >= 0
     and a["ip"].startswith("127.0.0.1:") and a["session"] != o["session"],
     "status --json: a firmware client is 'booting', with age, idle, address, session")
EOF
cat "$ND_TMP/json.out"

out=$("$NETDISK" clients --watch --interval 0.2 --count 2 --control "$CTL")
[ "$(echo "$out" | grep -c '^netdisk clients, ')" = 2 ] && [ "$(echo "$out" | grep -c '^02:00:00:00:51:03 ')" = 2 ] &&
	pass "netdisk clients --watch refreshes (2 rounds, bounded by --count)" ||
	fail "clients --watch" "$out"
check_fails "netdisk status refuses --watch" 2 "usage" "$NETDISK" status --watch --control "$CTL"
check_fails "netdisk status on a dead socket says what to do" 1 "cannot reach netdiskd.*NETDISK_CONTROL" \
	"$NETDISK" status --control "$ND_TMP/nothing"

# --- /metrics ----------------------------------------------------------------------
curl -s "$M/metrics" >"$ND_TMP/m1.txt"
missing=$(sed -n 's/^| `\(netdisk_[a-z_]*\)`.*/\1/p' "$ND_TOP/docs/operations.md" | sort -u |
	while read -r name; do grep -q "^# TYPE $name " "$ND_TMP/m1.txt" || echo "$name"; done)
documented=$(sed -n 's/^| `\(netdisk_[a-z_]*\)`.*/\1/p' "$ND_TOP/docs/operations.md" | sort -u | wc -l)
[ "$documented" -ge 10 ] && [ -z "$missing" ] &&
	pass "/metrics has every one of the $documented metrics docs/operations.md lists" ||
	fail "/metrics names" "documented $documented, missing: $(echo $missing)"
python3 - "$ND_TMP/m1.txt" <<'EOF' && pass "/metrics parses as Prometheus text (HELP, TYPE, samples, histograms)" || fail "/metrics format" "see above"
import re, sys
types, ok = {}, True
for line in open(sys.argv[1]):
    line = line.rstrip("\n")
    if line.startswith("# HELP ") or not line:
        continue
    m = re.match(r"# TYPE (\w+) (counter|gauge|histogram)$", line)
    if m:
        types[m.group(1)] = m.group(2); continue
    m = re.match(r'(\w+)(\{(\w+="[^"]*")(,\w+="[^"]*")*\})? (-?[0-9.e+]+)$', line)
    if not m:
        print("# bad line:", line); ok = False; continue
    base = re.sub(r"_(bucket|sum|count)$", "", m.group(1))
    if m.group(1) not in types and base not in types:
        print("# no TYPE for", m.group(1)); ok = False
    if types.get(m.group(1)) == "counter" and not m.group(1).endswith("_total"):
        print("# counter without _total:", m.group(1)); ok = False
sys.exit(0 if ok else 1)
EOF

before=$(metric 'netdisk_read_bytes_total{transport="udp"}')
"$NETDISK" read "$S" 4096 2048 -o /dev/null --mac 02:00:00:00:51:04
after=$(metric 'netdisk_read_bytes_total{transport="udp"}')
[ -n "$before" ] && [ $((after - before)) -ge 1048576 ] && [ $((after - before)) -le 2097152 ] &&
	pass "netdisk_read_bytes_total{udp} grows by the 1 MiB read (retransmitted READs count again: $before -> $after)" ||
	fail "udp read bytes counter" "$before -> $after"
nbd=$(metric 'netdisk_read_bytes_total{transport="nbd"}')
[ "${nbd:-0}" -ge 65536 ] && pass "netdisk_read_bytes_total{nbd} counts the NBD read ($nbd)" ||
	fail "nbd read bytes counter" "$nbd"
e0=$(metric 'netdisk_errors_total{transport="udp",status="readonly"}')
"$NETDISK" write "$S" 0 -i "$ND_TMP/w.bin" --mac 02:00:00:00:51:05 >/dev/null 2>&1
e1=$(metric 'netdisk_errors_total{transport="udp",status="readonly"}')
[ -n "$e0" ] && [ $((e1 - e0)) -ge 1 ] && pass "a WRITE of a readonly client counts in netdisk_errors_total{status=readonly}" ||
	fail "readonly error counter" "$e0 -> $e1"
[ "$(metric 'netdisk_boot_duration_seconds_count')" = 1 ] &&
	pass "netdisk_boot_duration_seconds counts the one OS takeover" ||
	fail "boot histogram" "count $(metric 'netdisk_boot_duration_seconds_count')"
[ "$(metric 'netdisk_sessions{mode="persistent",phase="firmware"}')" = 1 ] &&
	[ "$(metric 'netdisk_sessions{mode="volatile",phase="os"}')" = 1 ] &&
	pass "netdisk_sessions by mode and phase" || fail "sessions gauge" "$(grep '^netdisk_sessions' "$ND_TMP/m1.txt")"

# --- the HTTP listener with bad and slow clients ---------------------------------------
code() { curl -s -o /dev/null -w '%{http_code}' "$@"; }
[ "$(code "$M/nothing")" = 404 ] && [ "$(code -X POST "$M/metrics")" = 405 ] &&
	[ "$(code "$M/api/status")" = 200 ] && pass "HTTP: 404 for an unknown path, 405 for POST, 200 for /api/status" ||
	fail "HTTP codes" "$(code "$M/nothing") $(code -X POST "$M/metrics")"
python3 - "$MPORT" <<'EOF' && pass "HTTP: garbage gets 400, a 64 KiB header is cut off, a silent client does not block the next" || fail "HTTP bad input" "see above"
import socket, sys, urllib.request
port = int(sys.argv[1])
def ask(data, wait=3):
    s = socket.create_connection(("127.0.0.1", port)); s.settimeout(wait)
    try:
        s.sendall(data); return s.recv(100)
    except (socket.timeout, ConnectionResetError, BrokenPipeError):
        return b""
    finally:
        s.close()
ok = ask(b"\x00\xff garbage\r\n\r\n").startswith(b"HTTP/1.0 400")
ok &= not ask(b"GET /metrics HTTP/1.1\r\nX: " + b"a" * 65536 + b"\r\n\r\n").startswith(b"HTTP/1.0 200")
silent = socket.create_connection(("127.0.0.1", port))
# Answered while the silent connection is still open (urlopen's timeout only
# bounds the test; the listener drops a silent client after 2 s).
body = urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port, timeout=30).read()
ok &= b"netdisk_requests_total" in body
silent.close()
print("# bad-input checks:", "ok" if ok else "failed")
sys.exit(0 if ok else 1)
EOF
kill -0 "$ND_SERVER_PID" 2>/dev/null && pass "netdiskd still serving after the bad HTTP requests" ||
	fail "server alive" "netdiskd died"

# --- the dashboard in a real browser ----------------------------------------------------
CHROME=(chromium --headless --no-sandbox --disable-gpu --disable-dev-shm-usage --hide-scrollbars
	--user-data-dir="$ND_TMP/chrome" --window-size=1400,900 --virtual-time-budget=5000)
timeout 60 "${CHROME[@]}" --dump-dom "$M/" >"$ND_TMP/dom.html" 2>"$ND_TMP/chrome.log"
rows=$(grep -o 'data-mac="02:00:00:00:51:0[1-3]"' "$ND_TMP/dom.html" | sort -u | wc -l)
[ "$rows" = 3 ] && grep -q 'class="os">os<' "$ND_TMP/dom.html" &&
	pass "dashboard (headless Chromium): the client table lists the 3 attached clients, one in the OS phase" ||
	fail "dashboard DOM" "$rows rows; $(tail -3 "$ND_TMP/chrome.log")"
timeout 60 "${CHROME[@]}" --screenshot="$ND_TMP/dash.png" "$M/" >/dev/null 2>>"$ND_TMP/chrome.log"
python3 - "$ND_TMP/dash.png" <<'EOF' >"$ND_TMP/png.out" 2>&1
import struct, sys, zlib
d = open(sys.argv[1], "rb").read()
assert d[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
pos, idat, w = 8, b"", 0
while pos < len(d):
    n, kind = struct.unpack(">I4s", d[pos:pos + 8]); body = d[pos + 8:pos + 8 + n]; pos += 12 + n
    if kind == b"IHDR":
        w, h, depth, ctype = struct.unpack(">IIBB", body[:10])
    elif kind == b"IDAT":
        idat += body
raw, bpp = zlib.decompress(idat), {2: 3, 6: 4}[ctype]
stride, prev, colors, header = w * bpp + 1, bytearray(w * bpp), set(), 0
for y in range(h):
    f, line = raw[y * stride], bytearray(raw[y * stride + 1:(y + 1) * stride])
    for i in range(len(line)):
        a = line[i - bpp] if i >= bpp else 0; b = prev[i]; c = prev[i - bpp] if i >= bpp else 0
        if f == 1: line[i] = (line[i] + a) & 255
        elif f == 2: line[i] = (line[i] + b) & 255
        elif f == 3: line[i] = (line[i] + (a + b) // 2) & 255
        elif f == 4:
            p = a + b - c; pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
            line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
    prev = line
    for x in range(0, w, 2):
        px = bytes(line[x * bpp:x * bpp + 3]); colors.add(px)
        header += px == b"\x1d\x23\x30"
print("# screenshot %dx%d, %d colours, %d header pixels" % (w, h, len(colors), header))
sys.exit(0 if w == 1400 and h == 900 and len(colors) > 50 and header > 10000 else 1)
EOF
rc=$?
cat "$ND_TMP/png.out"
[ $rc = 0 ] && pass "dashboard screenshot: 1400x900, rendered (header bar, text in many colours)" ||
	fail "dashboard screenshot" "$(cat "$ND_TMP/png.out")"
cp "$ND_TMP/dash.png" "$ND_BUILD/dashboard.png" 2>/dev/null || true

kill "$HOLD" 2>/dev/null
wait "$HOLD" 2>/dev/null
stop_server
grep -q "metrics and dashboard on http://127.0.0.1:$MPORT/" "$ND_TMP/status.log" &&
	pass "netdiskd logs where the metrics and dashboard are" || fail "log line" "no metrics line in the log"
