#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# NBD access control (docs/security.md): NBD over TLS with pre-shared keys
# and with X.509 client certificates, as libnbd's nbdinfo and nbdcopy speak
# it (right key and certificate in, wrong ones and plain text out when TLS is
# required); which export names are served (nbd-exports); and a session's
# token taken only from the host it attached from (nbd-session-binding),
# switched live by a reload.
. "$(dirname "$0")/lib.sh"
requires cmd:nbdinfo cmd:nbdcopy cmd:openssl cmd:python3

NETDISK=$ND_BUILD/netdisk
cd "$ND_TMP" || exit 1
head -c 4M /dev/urandom >a.img
psk() { printf '%s:%s\n' "$1" "$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')"; }
psk alice >keys.psk
psk alice >wrong.psk
chmod 600 keys.psk wrong.psk

# A throw-away CA, a server certificate and an admin's client certificate
# (libnbd's directory layout: ca-cert.pem, client-cert.pem, client-key.pem).
mkdir -p srv cli intruder
ossl() { openssl "$@" >/dev/null 2>&1; }
ossl req -x509 -newkey rsa:2048 -nodes -keyout ca-key.pem -out srv/ca-cert.pem -days 2 -subj "/CN=netdisk test CA"
cp srv/ca-cert.pem cli/ && cp srv/ca-cert.pem intruder/
ossl req -newkey rsa:2048 -nodes -keyout srv/server-key.pem -out s.csr -subj "/CN=127.0.0.1"
printf 'subjectAltName=IP:127.0.0.1\n' >s.ext
ossl x509 -req -in s.csr -CA srv/ca-cert.pem -CAkey ca-key.pem -CAcreateserial -out srv/server-cert.pem -days 2 -extfile s.ext
ossl req -newkey rsa:2048 -nodes -keyout cli/client-key.pem -out c.csr -subj "/CN=admin"
ossl x509 -req -in c.csr -CA srv/ca-cert.pem -CAkey ca-key.pem -CAcreateserial -out cli/client-cert.pem -days 2
ossl req -x509 -newkey rsa:2048 -nodes -keyout intruder/client-key.pem -out intruder/client-cert.pem -days 2 -subj "/CN=intruder"

conf() { # conf NAME KEY=VALUE...: a config serving a.img
	{
		echo "nbd-exports = images" # the tests open a.img by name (KEY=VALUE may override)
		for kv in "${@:2}"; do echo "$kv"; done
		echo "state-dir = $ND_TMP/state-$1"
		echo "[image a]"
		echo "path = $ND_TMP/a.img"
	} >"$1.conf"
	mkdir -p "state-$1"
}

# --- PSK, TLS required --------------------------------------------------------------
conf psk "nbd-tls = require" "nbd-tls-psk-file = $ND_TMP/keys.psk"
start_server psk --config psk.conf
U="nbds://alice@127.0.0.1:$ND_PORT/a"
out=$(nbdinfo "$U?tls-psk-file=$ND_TMP/keys.psk" 2>&1)
echo "$out" | grep -q 'protocol: newstyle-fixed with TLS' && echo "$out" | grep -q 'export-size: 4194304' &&
	pass "PSK: nbdinfo with the right key connects with TLS" || fail "PSK right key" "$out"
nbdcopy "$U?tls-psk-file=$ND_TMP/keys.psk" copy.img 2>&1 && cmp -s copy.img a.img &&
	pass "PSK: nbdcopy over TLS copies the disk byte for byte" || fail "PSK nbdcopy" "copy differs or failed"
check_fails "PSK: a wrong key is refused" 1 "gnutls|TLS|handshake" nbdinfo "$U?tls-psk-file=$ND_TMP/wrong.psk"
check_fails "PSK: plain NBD is refused when TLS is required" 1 "not supported|TLS|tls" \
	nbdinfo "nbd://127.0.0.1:$ND_PORT/a"
grep -q 'nbd connect .* tls=psk:alice' "$ND_TMP/psk.log" && grep -q 'TLS handshake failed' "$ND_TMP/psk.log" &&
	grep -q 'TLS is required (nbd-tls = require)' "$ND_TMP/psk.log" &&
	pass "PSK: the log names the identity, the failed handshake and the plain-text refusal" ||
	fail "PSK log" "$(grep nbd "$ND_TMP/psk.log" | tail -3)"
stop_server

# --- X.509 with client certificates ------------------------------------------------------
conf x509 "nbd-tls = on" "nbd-tls-certificates = $ND_TMP/srv"
start_server x509 --config x509.conf
out=$(nbdinfo "nbds://127.0.0.1:$ND_PORT/a?tls-certificates=$ND_TMP/cli" 2>&1)
echo "$out" | grep -q 'with TLS' && grep -q 'tls=x509:CN=admin' "$ND_TMP/x509.log" &&
	pass "X.509: a client certificate from the CA connects (log: x509:CN=admin)" || fail "X.509 right" "$out"
check_fails "X.509: a certificate the CA did not sign is refused" 1 "gnutls|TLS|handshake|terminated" \
	nbdinfo "nbds://127.0.0.1:$ND_PORT/a?tls-certificates=$ND_TMP/intruder"
out=$(nbdinfo "nbd://127.0.0.1:$ND_PORT/a" 2>&1)
echo "$out" | grep -q 'without TLS' && pass "nbd-tls = on: plain NBD still works" || fail "tls on, plain" "$out"
stop_server

# --- which exports, and from where -------------------------------------------------------
conf ex "nbd-exports = sessions"
start_server ex --config ex.conf
check_fails "nbd-exports = sessions: an image name is refused" 1 "server replied with error to opt_go" \
	nbdinfo "nbd://127.0.0.1:$ND_PORT/a"
grep -q 'nbd export refused .*only session:TOKEN exports are served (nbd-exports = sessions)' "$ND_TMP/ex.log" &&
	pass "nbd-exports = sessions: the refusal says why (log, and the option reply's text)" ||
	fail "exports why" "$(grep 'refused' "$ND_TMP/ex.log" | tail -1)"
"$NETDISK" boot-table "127.0.0.1:$ND_PORT" -o bt.bin --mac 02:00:00:00:71:01 >/dev/null
TOKEN=$(python3 -c "import sys; print(open(sys.argv[1],'rb').read()[68:84].hex())" bt.bin)
python3 "$ND_TOP/tests/nbd-abuse.py" "$ND_PORT" hold "session:$TOKEN" 0 held1 127.0.0.1 >/dev/null 2>&1
[ -e held1 ] && pass "nbd-exports = sessions: session:TOKEN from its own host is served" ||
	fail "session export" "$(tail -2 "$ND_TMP/ex.log")"
python3 "$ND_TOP/tests/nbd-abuse.py" "$ND_PORT" hold "session:$TOKEN" 0 held2 127.0.0.2 >/dev/null 2>&1
[ ! -e held2 ] && grep -q 'its token is taken only from there (nbd-session-binding)' "$ND_TMP/ex.log" &&
	pass "nbd-session-binding: the token from another host (127.0.0.2) is refused and logged" ||
	fail "binding" "$(tail -2 "$ND_TMP/ex.log")"
sed -i '1i nbd-session-binding = any' ex.conf
kill -HUP "$ND_SERVER_PID"
wait_for 5 grep -q 'changed=nbd-session-binding' "$ND_TMP/ex.log"
python3 "$ND_TOP/tests/nbd-abuse.py" "$ND_PORT" hold "session:$TOKEN" 0 held3 127.0.0.2 >/dev/null 2>&1
[ -e held3 ] && pass "nbd-session-binding = any (reloaded live): the other host is served" ||
	fail "binding any" "$(tail -2 "$ND_TMP/ex.log")"
stop_server
conf off "nbd-exports = off"
start_server off --config off.conf
check_fails "nbd-exports = off: no export at all" 1 "server replied with error to opt_go" \
	nbdinfo "nbd://127.0.0.1:$ND_PORT/a"
stop_server

# --- admin-key: over NBD, TLS is the admin credential for direct mode ----------------------
od -An -tx1 -N32 /dev/urandom | tr -d ' \n' >admin.key
printf 'nbd-exports = images\nnbd-tls = on\nnbd-tls-psk-file = %s\nadmin-key = %s\nstate-dir = %s\n[image d]\npath = %s\nmode = direct\n' \
	"$ND_TMP/keys.psk" "$ND_TMP/admin.key" "$ND_TMP/state-adm" "$ND_TMP/d.img" >adm.conf
cp a.img d.img
head -c 1M /dev/urandom >patch.bin
start_server adm --config adm.conf
nbdcopy patch.bin "nbd://127.0.0.1:$ND_PORT/d" >/dev/null 2>&1
cmp -s d.img a.img && pass "admin-key: a plain NBD client gets no direct mode" ||
	fail "admin-key plain" "the direct image changed"
nbdcopy patch.bin "nbds://alice@127.0.0.1:$ND_PORT/d?tls-psk-file=$ND_TMP/keys.psk" 2>&1 &&
	cmp -s <(head -c 1M d.img) patch.bin && pass "admin-key: over TLS (PSK) the direct image is written" ||
	fail "admin-key tls" "$(grep refused "$ND_TMP/adm.log" | tail -1)"
stop_server

# --- bad settings are caught at start ------------------------------------------------------
printf 'alice:xyz\n' >bad.psk
conf badpsk "nbd-tls = on" "nbd-tls-psk-file = $ND_TMP/bad.psk"
check_fails "a malformed PSK file stops the start, naming file and line" 1 "bad.psk: line 1: the key" \
	timeout 10 "$ND_BUILD/netdiskd" --listen "127.0.0.1:$(free_port)" --config badpsk.conf
conf nocred "nbd-tls = require"
check_fails "nbd-tls without keys or certificates stops the start" 1 "neither nbd-tls-psk-file nor" \
	timeout 10 "$ND_BUILD/netdiskd" --listen "127.0.0.1:$(free_port)" --config nocred.conf
conf badval "nbd-tls = maybe"
check_fails "nbd-tls = maybe is a config error" 2 "nbd-tls must be off, on or require" \
	timeout 10 "$ND_BUILD/netdiskd" --listen "127.0.0.1:$(free_port)" --config badval.conf
