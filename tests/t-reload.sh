#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# SIGHUP (systemctl reload) re-reads the configuration without dropping a
# session: a good change applies to the next attach, a bad file or a change
# only a restart can make is refused whole and the running configuration
# stays, and the server never stops serving.
. "$(dirname "$0")/lib.sh"
requires cmd:python3

NETDISK=$ND_BUILD/netdisk
STATE=$ND_TMP/state
CTL=$STATE/control
CONF=$ND_TMP/r.conf
mkdir -p "$STATE"
head -c 8M /dev/urandom >"$ND_TMP/a.img"
head -c 4096 /dev/urandom >"$ND_TMP/w.bin"
write_conf() { # write_conf MODE_OF_61 [EXTRA LINES...]
	{
		echo "state-dir = $STATE"
		echo "session-timeout = 300"
		for l in "${@:2}"; do echo "$l"; done
		echo "[image a]"
		echo "path = $ND_TMP/a.img"
		echo "[client 02:00:00:00:61:01]"
		echo "mode = $1"
	} >"$CONF"
}
write_conf volatile
start_server reload --config "$CONF"
S=127.0.0.1:$ND_PORT
LOG=$ND_TMP/reload.log

json() { "$NETDISK" status --json --control "$CTL"; }
field() { # field MAC KEY: from netdisk status --json
	json | python3 -c "import json,sys; c={x['mac']:x for x in json.load(sys.stdin)['clients']}; print(c.get(sys.argv[1],{}).get(sys.argv[2],'absent'))" "$1" "$2"
}
hup_and_wait() { # hup_and_wait PATTERN: SIGHUP, then the log line (5 s at most)
	local n
	n=$(grep -c 'config reload' "$LOG")
	kill -HUP "$ND_SERVER_PID"
	wait_for 5 sh -c "[ \$(grep -c 'config reload' '$LOG') -gt $n ] && tail -n 5 '$LOG' | grep -q \"$1\""
}

"$NETDISK" read "$S" 0 8 -o /dev/null --mac 02:00:00:00:61:01 --keep
sess=$(field 02:00:00:00:61:01 session)
[ "$(field 02:00:00:00:61:01 mode)" = volatile ] && pass "before: client 61:01 attached volatile" ||
	fail "before" "mode $(field 02:00:00:00:61:01 mode)"

# A good change: 61:01 becomes persistent, a new readonly client, a new timeout.
write_conf persistent "allow = any" "session-timeout = 600"
printf '[client 02:00:00:00:61:02]\nmode = readonly\n' >>"$CONF"
hup_and_wait 'config reloaded' && grep -q 'changed=session-timeout,clients client_sections=2' "$LOG" &&
	pass "SIGHUP reloads and logs what changed (session-timeout, clients)" ||
	fail "good reload" "$(grep 'config reload' "$LOG" | tail -2)"
[ "$(field 02:00:00:00:61:01 session)" = "$sess" ] && [ "$(field 02:00:00:00:61:01 mode)" = volatile ] &&
	pass "the live session survives the reload with the mode it attached with" ||
	fail "live session" "session $(field 02:00:00:00:61:01 session) (was $sess), mode $(field 02:00:00:00:61:01 mode)"
check_fails "a client added by the reload gets its rule (readonly refuses a WRITE)" 1 "read-only|readonly" \
	"$NETDISK" write "$S" 0 -i "$ND_TMP/w.bin" --mac 02:00:00:00:61:02
"$NETDISK" read "$S" 0 8 -o /dev/null --mac 02:00:00:00:61:01 --keep
[ "$(field 02:00:00:00:61:01 mode)" = persistent ] && [ "$(field 02:00:00:00:61:01 session)" != "$sess" ] &&
	pass "its next attach gets the reloaded mode (persistent)" ||
	fail "next attach" "mode $(field 02:00:00:00:61:01 mode)"
sess=$(field 02:00:00:00:61:01 session)

# A bad file: refused, the running configuration stays.
cp "$CONF" "$ND_TMP/good.conf"
echo 'colour = red' >>"$CONF"
hup_and_wait 'config reload refused' && tail -n 3 "$LOG" | grep -q "unknown client key 'colour'" &&
	pass "a config with an error is refused, the log names file, line and key" ||
	fail "bad reload" "$(tail -n 3 "$LOG")"
check_fails "after the refused reload the running rules stay (61:02 still readonly)" 1 "read-only|readonly" \
	"$NETDISK" write "$S" 0 -i "$ND_TMP/w.bin" --mac 02:00:00:00:61:02
"$NETDISK" read "$S" 0 2048 -o "$ND_TMP/r.bin" --mac 02:00:00:00:61:03 &&
	cmp -s <(head -c 1M "$ND_TMP/a.img") "$ND_TMP/r.bin" &&
	[ "$(field 02:00:00:00:61:01 session)" = "$sess" ] &&
	pass "the server keeps serving, sessions intact" || fail "serving after refusal" "read or session lost"

# What only a restart can change is refused whole, and says so.
cp "$ND_TMP/good.conf" "$CONF"
sed -i "1i trace-dir = $ND_TMP/traces\nmulticast = always" "$CONF"
hup_and_wait 'config reload refused' && tail -n 3 "$LOG" | grep -q "trace-dir, multicast change only at a restart" &&
	pass "a new trace-dir and multicast mode are refused: only a restart can change them" ||
	fail "restart-only keys" "$(tail -n 3 "$LOG")"
cp "$ND_TMP/good.conf" "$CONF"
head -c 1M /dev/zero >"$ND_TMP/b.img"
printf '[image b]\npath = %s\n' "$ND_TMP/b.img" >>"$CONF"
hup_and_wait 'config reload refused' && tail -n 3 "$LOG" | grep -q "the image list changed (2 images instead of 1)" &&
	pass "a new image is refused with what to do (restart)" || fail "image list" "$(tail -n 3 "$LOG")"
cp "$ND_TMP/good.conf" "$CONF"
hup_and_wait 'config reloaded' && tail -n 3 "$LOG" | grep -q 'changed=nothing' &&
	pass "reloading an unchanged file changes nothing" || fail "unchanged" "$(tail -n 3 "$LOG")"
# An image's write-cache (issue #17) is taken over too.
sed -i "s|^path = $ND_TMP/a.img|&\nwrite-cache = ram:64M|" "$CONF"
hup_and_wait 'config reloaded' && tail -n 3 "$LOG" | grep -q 'changed=image-a-write-cache' &&
	pass "an image's write-cache changes with a reload" || fail "write-cache reload" "$(tail -n 3 "$LOG")"
kill -0 "$ND_SERVER_PID" && pass "one netdiskd process throughout (pid $ND_SERVER_PID)" || fail "process" "gone"
stop_server
