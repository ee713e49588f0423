#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# The access model (docs/security.md) at host level: issue #20's three attacks fail with the
# default config; with a site key an ATTACH without it or with a wrong one is refused and counted.
. "$(dirname "$0")/lib.sh"
requires cmd:python3 cmd:openssl cmd:curl

NETDISK=$ND_BUILD/netdisk
PROBE=$ND_TOP/tests/access-probe.py
VICTIM_VOL=02:00:00:00:0c:01 VICTIM_KEEP=02:00:00:00:0a:01 ATTACKER=127.0.0.2
head -c 8M /dev/urandom >"$ND_TMP/vol.img"
head -c 8M /dev/urandom >"$ND_TMP/keep.img"
head -c 8M /dev/urandom >"$ND_TMP/gold.img"
cp "$ND_TMP/gold.img" "$ND_TMP/gold.orig"
head -c 512 /dev/urandom >"$ND_TMP/marker"
openssl rand -hex 32 >"$ND_TMP/site.key"
openssl rand -hex 32 >"$ND_TMP/admin.key"
openssl rand -hex 32 >"$ND_TMP/other.key"
images() {
	printf '[image vol]\npath = %s\nmode = volatile\n[image keep]\npath = %s\nmode = persistent\n' \
		"$ND_TMP/vol.img" "$ND_TMP/keep.img"
	printf '[image gold]\npath = %s\nmode = direct\n' "$ND_TMP/gold.img"
}
start() { start_server "$@" || { fail "$1-start" "$(cat "$ND_TMP/$1.log")"; exit 1; }; }
nd() { "$NETDISK" "$1" "127.0.0.1:$ND_PORT" "${@:2}" --timeout 5; }

# --- the default config: no key, nbd-exports = sessions, mac-binding = address ----------
images >"$ND_TMP/default.conf"
start default --config "$ND_TMP/default.conf" --state-dir "$ND_TMP/state"

# (c) ATTACH with a victim's MAC and a new nonce, from another machine, ends its volatile session.
nd read 0 1 --image vol --mac $VICTIM_VOL --keep -o /dev/null 2>"$ND_TMP/c.err" ||
	fail attack-c-victim "$(cat "$ND_TMP/c.err")"
out=$(python3 "$PROBE" "$ND_PORT" $ATTACKER $VICTIM_VOL 99 vol 2>&1)
if [ "$out" = "attach-status 6" ] && ! grep -q "detach mac=$VICTIM_VOL .*attached again" "$ND_TMP/default.log"; then
	pass attack-c-foreign-attach-keeps-victim-session
else
	fail attack-c-foreign-attach-keeps-victim-session "$out; $(grep "$VICTIM_VOL" "$ND_TMP/default.log" | tail -n 2)"
fi
grep -q "attach refused, the MAC has a live session from 127.0.0.1:.*mac-binding.*mac=$VICTIM_VOL ip=$ATTACKER" \
	"$ND_TMP/default.log" && pass attack-c-refusal-logged || fail attack-c-refusal-logged "no log line"
# ... while the victim rebooting (same address, new nonce) still starts afresh.
check reboot-from-same-address-reattaches nd read 0 1 --image vol --mac $VICTIM_VOL -o /dev/null

# (a) `netdisk read --mac <victim>` from another machine reads the victim's persistent overlay.
nd write 0 --image keep --mac $VICTIM_KEEP -i "$ND_TMP/marker" 2>"$ND_TMP/a.err" ||
	fail attack-a-victim "$(cat "$ND_TMP/a.err")"
want=$(head -c 16 "$ND_TMP/marker" | od -An -tx1 | tr -d ' \n')
out=$(python3 "$PROBE" "$ND_PORT" $ATTACKER $VICTIM_KEEP 7 keep 2>&1)
case $out in
"attach-status 5") pass attack-a-foreign-cannot-reach-persistent-overlay ;;
*"sector0 $want"*) fail attack-a-foreign-cannot-reach-persistent-overlay "read the victim's overlay: $out" ;;
*) fail attack-a-foreign-cannot-reach-persistent-overlay "$out" ;;
esac
check persistent-owner-reads-own-overlay bash -c "'$NETDISK' read 127.0.0.1:$ND_PORT 0 1 --image keep \
	--mac $VICTIM_KEEP --timeout 5 | cmp -s - '$ND_TMP/marker'"

# (b) An anonymous NBD client writes straight into a direct-mode image by export name.
if command -v nbdcopy >/dev/null; then
	head -c 8M /dev/zero >"$ND_TMP/junk.img"
	nbdcopy "$ND_TMP/junk.img" "nbd://127.0.0.1:$ND_PORT/gold" >"$ND_TMP/b.out" 2>&1
	if cmp -s "$ND_TMP/gold.img" "$ND_TMP/gold.orig"; then
		pass attack-b-anonymous-nbd-cannot-write-direct-image
	else
		fail attack-b-anonymous-nbd-cannot-write-direct-image "gold.img changed: $(head -c 300 "$ND_TMP/b.out")"
	fi
	grep -q "nbd-exports = sessions" "$ND_TMP/default.log" && pass attack-b-refusal-says-why ||
		fail attack-b-refusal-says-why "no log line naming nbd-exports"
else
	skip attack-b-anonymous-nbd-cannot-write-direct-image "needs nbdcopy (libnbd-bin)"
fi
grep -q "access: site key none, admin key $ND_TMP/state/admin.key (required for direct/maintenance mode), mac-binding address, nbd-exports sessions" \
	"$ND_TMP/default.log" && pass default-access-logged || fail default-access-logged "no access line"

# (d) A MAC alone is no admin credential: with the default admin-key = auto,
# direct mode needs an ATTACH signed with the key netdiskd made in its state dir.
ADMIN=02:00:00:00:0d:01
if ! nd write 5 --image gold --mac $ADMIN -i "$ND_TMP/marker" 2>"$ND_TMP/d.err" &&
	cmp -s "$ND_TMP/gold.img" "$ND_TMP/gold.orig" && grep -q "client not allowed" "$ND_TMP/d.err"; then
	pass direct-by-mac-refused-by-default
else
	fail direct-by-mac-refused-by-default "$(cat "$ND_TMP/d.err"); gold.img changed?"
fi
grep -q "attach refused, direct and maintenance mode need an ATTACH signed with the admin key" \
	"$ND_TMP/default.log" && pass direct-refusal-says-why || fail direct-refusal-says-why "no log line"
key_ok() { [ "$(stat -c %a "$1")" = 600 ] && grep -Eqx '[0-9a-f]{64}' "$1"; }
check admin-key-made-0600 key_ok "$ND_TMP/state/admin.key"
check direct-with-admin-key nd write 5 --image gold --mac $ADMIN -i "$ND_TMP/marker" --key "$ND_TMP/state/admin.key"
check direct-write-landed bash -c "dd if='$ND_TMP/gold.img' bs=512 skip=5 count=1 2>/dev/null | cmp -s - '$ND_TMP/marker'"
cp "$ND_TMP/gold.orig" "$ND_TMP/gold.img"
sum=$(sha256sum <"$ND_TMP/state/admin.key")
stop_server
start default2 --config "$ND_TMP/default.conf" --state-dir "$ND_TMP/state"
[ "$(sha256sum <"$ND_TMP/state/admin.key")" = "$sum" ] && ! grep -q "admin key made" "$ND_TMP/default2.log" &&
	pass admin-key-kept-across-restarts || fail admin-key-kept-across-restarts "the key changed"
stop_server
# admin-key = none: the old grant by MAC, said at start.
{ echo "admin-key = none"; images; } >"$ND_TMP/none.conf"
start none --config "$ND_TMP/none.conf" --state-dir "$ND_TMP/nonestate"
check direct-by-mac-with-admin-key-none nd write 5 --image gold --mac $ADMIN -i "$ND_TMP/marker"
grep -q "admin-key = none: direct mode (1 image or client) is granted by MAC" "$ND_TMP/none.log" &&
	[ ! -e "$ND_TMP/nonestate/admin.key" ] && pass admin-key-none-warns ||
	fail admin-key-none-warns "$(grep admin "$ND_TMP/none.log")"
cp "$ND_TMP/gold.orig" "$ND_TMP/gold.img"
stop_server

# --- a site key and an admin key --------------------------------------------------------
mport=$(free_port)
{ echo "site-key = $ND_TMP/site.key"; echo "admin-key = $ND_TMP/admin.key"
  echo "metrics-listen = 127.0.0.1:$mport"; images; } >"$ND_TMP/keyed.conf"
start keyed --config "$ND_TMP/keyed.conf" --state-dir "$ND_TMP/kstate"

expect_refused() { # NAME ARGS...: netdisk read fails, saying the server wants the key
	local name=$1
	shift
	if nd read 0 8 --image vol -o /dev/null "$@" 2>"$ND_TMP/$name.err"; then
		fail "$name" "the read worked"
	else
		grep -q 'wants the site key' "$ND_TMP/$name.err" && pass "$name" || fail "$name" "$(cat "$ND_TMP/$name.err")"
	fi
}
expect_refused sitekey-unkeyed-attach-refused
expect_refused sitekey-wrong-key-refused --key "$ND_TMP/other.key"
check sitekey-right-key-reads bash -c "'$NETDISK' read 127.0.0.1:$ND_PORT 0 8 --image vol --key '$ND_TMP/site.key' \
	--timeout 5 | cmp -s - <(head -c 4096 '$ND_TMP/vol.img')"
grep -q "attach mac=.* image=vol .*key=site" "$ND_TMP/keyed.log" && pass sitekey-attach-logged-with-key ||
	fail sitekey-attach-logged-with-key "no attach line with key=site"
# Counted: the unkeyed ATTACH once, the wrong key's three rounds (it cannot tell).
curl -s "http://127.0.0.1:$mport/metrics" >"$ND_TMP/metrics.txt"
grep -qx 'netdisk_attach_refused_total{reason="site_key"} 4' "$ND_TMP/metrics.txt" &&
	pass sitekey-refusals-counted-in-metrics ||
	fail sitekey-refusals-counted-in-metrics "$(grep attach_refused "$ND_TMP/metrics.txt")"
"$NETDISK" status --json --control "$ND_TMP/kstate/control" >"$ND_TMP/status.json" 2>&1
grep -q '"refused_site_key":"\?4' "$ND_TMP/status.json" && pass sitekey-refusals-in-status ||
	fail sitekey-refusals-in-status "$(head -c 300 "$ND_TMP/status.json")"
"$NETDISK" status --control "$ND_TMP/kstate/control" 2>&1 |
	grep -q '^# ATTACHes refused: 4 without the site key, 0 by mac-binding' &&
	pass sitekey-refusals-in-status-table || fail sitekey-refusals-in-status-table "no refusal line"
# A reload cannot change a key (a restart can): the old one stays in force.
sed -i "s|^site-key = .*|site-key = $ND_TMP/other.key|" "$ND_TMP/keyed.conf"
kill -HUP "$ND_SERVER_PID"
wait_for 10 grep -q 'site-key change only at a restart' "$ND_TMP/keyed.log" &&
	pass sitekey-reload-refuses-key-change || fail sitekey-reload-refuses-key-change "no refusal logged"
n=$(grep -c 'attach refused, .*site key.*ip=127.0.0.1' "$ND_TMP/keyed.log")
[ "$n" = 1 ] && pass sitekey-refusal-logged-once-per-source ||
	fail sitekey-refusal-logged-once-per-source "$n lines for one address"
# A foreign machine without the key cannot end a keyed client's session.
nd read 0 1 --image vol --mac $VICTIM_VOL --keep --key "$ND_TMP/site.key" -o /dev/null
out=$(python3 "$PROBE" "$ND_PORT" $ATTACKER $VICTIM_VOL 99 vol 2>&1)
[ "$out" = "attach-status 12" ] && ! grep -q "detach mac=$VICTIM_VOL .*attached again" "$ND_TMP/keyed.log" &&
	pass sitekey-foreign-cannot-end-session || fail sitekey-foreign-cannot-end-session "$out"
# The wire format as documented, from an independent implementation (Python's hmac), and a
# signed ATTACH replayed from another address gets nothing (its challenge is the address's).
out=$(python3 "$PROBE" "$ND_PORT" 127.0.0.1 02:00:00:00:0d:01 5 vol "$ND_TMP/site.key" $ATTACKER 2>&1)
case $out in
"attach-status 0"*"replay-status 12") pass sitekey-python-client-attaches-replay-refused ;;
*) fail sitekey-python-client-attaches-replay-refused "$out" ;;
esac
# Maintenance writes need the admin key, not the site key (or a MAC).
if nd write 0 --image gold --key "$ND_TMP/site.key" -i "$ND_TMP/marker" 2>"$ND_TMP/adm.err"; then
	fail admin-key-needed-for-direct "a site-keyed client wrote the direct image"
else
	grep -q 'admin key' "$ND_TMP/keyed.log" && pass admin-key-needed-for-direct ||
		fail admin-key-needed-for-direct "$(cat "$ND_TMP/adm.err")"
fi
nd write 0 --image gold --key "$ND_TMP/admin.key" -i "$ND_TMP/marker" 2>"$ND_TMP/adm2.err" &&
	cmp -s <(head -c 512 "$ND_TMP/gold.img") "$ND_TMP/marker" && pass admin-key-writes-direct ||
	fail admin-key-writes-direct "$(cat "$ND_TMP/adm2.err")"
stop_server

# With admin-key, even nbd-exports = images (the admin's opt-in) gives a plain NBD
# client no direct mode: that takes TLS (t-nbd-tls.sh's keys), not an export name.
if command -v nbdcopy >/dev/null; then
	{ echo "admin-key = $ND_TMP/admin.key"; echo "nbd-exports = images"; images; } >"$ND_TMP/nbdadm.conf"
	start nbdadm --config "$ND_TMP/nbdadm.conf" --state-dir "$ND_TMP/nstate"
	cp "$ND_TMP/gold.img" "$ND_TMP/gold.before"
	nbdcopy "$ND_TMP/junk.img" "nbd://127.0.0.1:$ND_PORT/gold" >"$ND_TMP/nbdadm.out" 2>&1
	cmp -s "$ND_TMP/gold.img" "$ND_TMP/gold.before" &&
		grep -q 'direct and maintenance mode over NBD need TLS' "$ND_TMP/nbdadm.log" &&
		pass admin-key-plain-nbd-gets-no-direct-mode ||
		fail admin-key-plain-nbd-gets-no-direct-mode "$(head -c 300 "$ND_TMP/nbdadm.out")"
	stop_server
fi

# A bad key file stops the start, naming the file.
echo "site-key = $ND_TMP/marker" >"$ND_TMP/bad.conf"
images >>"$ND_TMP/bad.conf"
check_fails sitekey-bad-file-refused 1 "key file $ND_TMP/marker" \
	timeout 10 "$ND_BUILD/netdiskd" --config "$ND_TMP/bad.conf" --state-dir "$ND_TMP/bstate" \
	--listen "127.0.0.1:$(free_port)"
# netdisk patch --key puts the key into both stubs and says so.
for stub in netdisk.pxe netdisk.efi; do
	[ -f "$ND_BUILD/$stub" ] || continue
	cp "$ND_BUILD/$stub" "$ND_TMP/$stub"
	id=$(python3 -c "import hashlib,sys;print(hashlib.sha256(bytes.fromhex(open(sys.argv[1]).read().strip())).hexdigest()[:8])" "$ND_TMP/site.key")
	"$NETDISK" patch "$ND_TMP/$stub" --key "$ND_TMP/site.key" >"$ND_TMP/patch.out" 2>&1 &&
		grep -q "site key:       yes (id $id)" "$ND_TMP/patch.out" &&
		grep -qF "$(xxd -r -p "$ND_TMP/site.key" | od -An -tx1 | tr -d ' \n' | head -c 32)" \
			<(od -An -tx1 -v "$ND_TMP/$stub" | tr -d ' \n') &&
		"$NETDISK" patch "$ND_TMP/$stub" --no-key | grep -q 'site key:       no' &&
		pass "patch-key-$stub" || fail "patch-key-$stub" "$(cat "$ND_TMP/patch.out")"
done
