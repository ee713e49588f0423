#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Image versions (docs/images.md) at host level: the whole lifecycle through
# `netdisk image` on the control socket and clients over UDP and NBD, every
# CLI misuse, and kill -9 fault injection across the store's operations.
. "$(dirname "$0")/lib.sh"
requires cmd:nbdcopy cmd:qemu-img

NDTEST=$ND_BUILD/tests/ndtest
NETDISK=$ND_BUILD/netdisk
BASE=$ND_TMP/gold.img
STATE=$ND_TMP/state
CTL=$STATE/control
head -c 32M /dev/urandom >"$BASE"
cp "$BASE" "$ND_TMP/pristine.img"
head -c 1M /dev/zero >"$ND_TMP/other.img"
# What versions 2 and 3 hold: the base plus the maintenance writer's patterns.
cp "$BASE" "$ND_TMP/v2.img"
"$NDTEST" x "$BASE" put-pattern "$ND_TMP/v2.img" 11 2000 64
cp "$ND_TMP/v2.img" "$ND_TMP/v3.img"
"$NDTEST" x "$BASE" put-pattern "$ND_TMP/v3.img" 12 3000 32

# admin-key = none: maintenance clients here are MACs; the admin key that
# direct and maintenance mode need by default is t-access.sh's subject.
cat >"$ND_TMP/gold.conf" <<CONF
admin-key = none
nbd-exports = images
state-dir = $STATE
session-timeout = 30
[image gold]
path = $BASE
mode = volatile
[image other]
path = $ND_TMP/other.img
[client 02:00:00:00:10:21]
image = other
mode = maintenance
[client 02:00:00:00:10:22]
image = other
group = lab-a
[client 02:00:00:00:10:01]
image = gold
mode = maintenance
[client 02:00:00:00:10:05]
mode = direct
[client 02:00:00:00:10:02]
tester = yes
[client 02:00:00:00:10:03]
mode = persistent
[client 02:00:00:00:10:04]
mode = persistent
on-update = reset
[client 02:00:00:00:10:09]
mode = persistent
CONF

nd() { "$NDTEST" "127.0.0.1:$ND_PORT" "$BASE" "$@"; }
IMG() { "$NETDISK" image --control "$CTL" "$@"; }

# expect_out NAME PATTERN COMMAND...: exit 0 and output matching PATTERN (grep -E).
expect_out() {
	local name=$1 pattern=$2 out
	shift 2
	if out=$("$@" 2>&1) && grep -qE -- "$pattern" <<<"$out"; then pass "$name"; else
		fail "$name" "$(echo "$out" | tail -n 6 | tr '\n' ' ')"
	fi
}
# The state of version V of gold, from `image versions`.
vstate() { IMG versions gold | awk -v v="$1" '$1 == v { print $2 }'; }
start() {
	start_server "$1" "${@:2}" || { fail "$1-start" "netdiskd did not start"; cat "$ND_TMP/$1.log"; exit 1; }
	URI=nbd://127.0.0.1:$ND_PORT
}

start gold --config "$ND_TMP/gold.conf"
# Fixed client addresses (a retried ATTACH is the same boot only from the same
# port), below the ephemeral range so no server started later can get them.
low_port() {
	python3 -c 'import random, socket
for _ in range(100):
    p = random.randrange(20000, 32000); s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        s.bind(("127.0.0.1", p)); print(p); break
    except OSError:
        pass'
}
B=127.0.0.1:$(low_port) W=127.0.0.1:$(low_port) P=127.0.0.1:$(low_port)

# --- a plain image is version 1 ---------------------------------------------
expect_out list-plain-image '^gold +1 +1 +- +- ' IMG list
expect_out list-second-image '^other +1 +1 ' IMG list
chain_before=$(IMG list | awk '$1 == "gold" { print $6 }')
expect_out versions-plain-image '^1 +production .*the image file' IMG versions gold
[ -S "$CTL" ] && [ "$(stat -c %a "$CTL")" = 660 ] && pass control-socket-0660 ||
	fail control-socket-0660 "$(stat -c '%F %a' "$CTL" 2>&1)"
# Persistent clients from before versioning: both get pinned to version 1.
expect persistent-keep-writes-v1 0 nd write 02:00:00:00:10:03 1 5 100 16 1
expect persistent-reset-writes-v1 0 nd write 02:00:00:00:10:04 1 6 300 16 1
# Writing the never-versioned file in place would make those overlays start
# afresh: the direct client is refused (DENIED) and told what to do instead.
expect direct-in-place-refused-with-persistent 5 nd attach-status 02:00:00:00:10:05 1
grep -q 'attach refused, writing image gold in place would discard the 2 persistent overlays made over it; create a maintenance version for this client first: netdisk image new-version gold: mac=02:00:00:00:10:05' \
	"$ND_TMP/gold.log" && pass direct-in-place-refusal-logged ||
	fail direct-in-place-refusal-logged "$(grep 'attach refused' "$ND_TMP/gold.log" | tail -n 2)"
check direct-in-place-file-untouched cmp "$BASE" "$ND_TMP/pristine.img"

# --- new-version, the maintenance writer -------------------------------------
expect_out new-version 'version 2 of gold created over version 1, in maintenance' \
	IMG new-version gold --note "install htop"
check_fails new-version-twice 1 'already has a maintenance version \(2\)' IMG new-version gold
NDTEST_BIND=$W expect maintenance-write 0 nd write 02:00:00:00:10:01 1 11 2000 64 1
check image-file-untouched cmp "$BASE" "$ND_TMP/pristine.img"
NDTEST_BIND=$W expect maintenance-reads-own 0 nd check 02:00:00:00:10:01 1 11 2000 64
expect second-writer-busy 6 nd attach-status 02:00:00:00:10:05 1
grep -q 'attach refused, the maintenance version is being written by another client: mac=02:00:00:00:10:05' \
	"$ND_TMP/gold.log" && pass second-writer-logged || fail second-writer-logged "no refusal line"
# Others keep booting production while the maintenance version is written.
NDTEST_BIND=$B expect old-client-reads-v1 0 nd check 02:00:00:00:10:06 1 0 2000 64
expect_out versions-show-maintenance '^2 +maintenance .*v1 .*install htop' IMG versions gold

# --- promote: test first, then production ------------------------------------
check_fails promote-while-writer-live 1 'being written by 02:00:00:00:10:01' IMG promote gold 2
NDTEST_BIND=$W expect maintenance-writer-shuts-down 0 nd detach 02:00:00:00:10:01 1
expect_out promote-to-test 'version 2 is now in test' IMG promote gold 2 --to test
expect tester-reads-test-version 0 nd check 02:00:00:00:10:02 1 11 2000 64
expect non-tester-reads-production 0 nd check 02:00:00:00:10:07 1 0 2000 64
expect_out promote-to-production 'version 2 is now in production' IMG promote gold 2
expect new-client-reads-v2 0 nd check 02:00:00:00:10:08 1 11 2000 64
# The client that attached before the promote: same boot (same nonce, address) keeps v1.
NDTEST_BIND=$B expect pinned-client-keeps-v1 0 nd check 02:00:00:00:10:06 1 0 2000 64
NDTEST_BIND=$B expect pinned-client-reboot-gets-v2 0 nd check 02:00:00:00:10:06 2 11 2000 64
# Persistent overlays: keep stays on v1 with its data; reset moves to v2, afresh.
expect persistent-keep-has-its-data 0 nd check 02:00:00:00:10:03 2 5 100 16
expect persistent-keep-still-v1 0 nd check 02:00:00:00:10:03 3 0 2000 64
expect persistent-reset-on-v2 0 nd check 02:00:00:00:10:04 2 11 2000 64
expect persistent-reset-afresh 0 nd check 02:00:00:00:10:04 3 0 300 16
grep -q 'persistent overlay of 02:00:00:00:10:04 on image gold reset from version 1 onto version 2' \
	"$ND_TMP/gold.log" && pass persistent-reset-logged || fail persistent-reset-logged "no line"
expect_out versions-pins '^1 +retired .* 1 +[0-9]+ +[0-9]+  the image file' IMG versions gold

# --- NBD reads the version too ----------------------------------------------
nbdcopy "$URI/gold" "$ND_TMP/nbd-v2.img" 2>"$ND_TMP/nbdcopy.err" && cmp -s "$ND_TMP/nbd-v2.img" "$ND_TMP/v2.img" &&
	pass nbd-reads-production || fail nbd-reads-production "$(cat "$ND_TMP/nbdcopy.err") differs"

# --- a third version, rollback, delete refused while pinned ------------------
expect_out new-version-3 'version 3 of gold created over version 2' IMG new-version gold
NDTEST_BIND=$W expect maintenance-write-3 0 nd write 02:00:00:00:10:01 2 12 3000 32 1
NDTEST_BIND=$W expect maintenance-writer-3-off 0 nd detach 02:00:00:00:10:01 2
expect_out promote-3 'version 3 is now in production' IMG promote gold 3
NDTEST_BIND=$P expect client-on-v3 0 nd check 02:00:00:00:10:0a 1 12 3000 32
NDTEST_BIND=$P expect client-on-v3-off 0 nd detach 02:00:00:00:10:0a 1
expect persistent-pins-v3 0 nd check 02:00:00:00:10:09 1 12 3000 32
check_fails delete-production-refused 1 'version 3 is in production' IMG delete-version gold 3
expect_out rollback 'version 2 is in production again \(version 3 retired\)' IMG rollback gold
expect after-rollback-v2 0 nd check 02:00:00:00:10:0b 1 0 3000 32
check_fails delete-pinned-refused 1 'version 3 is pinned by 1 persistent overlay' \
	IMG delete-version gold 3
check_fails delete-with-children-refused 1 'version 1 has versions built on it' \
	IMG delete-version gold 1
expect_out reset-client 'starts afresh on the current version' IMG reset-client gold 02:00:00:00:10:09
expect persistent-reset-by-admin 0 nd check 02:00:00:00:10:09 2 0 3000 32
expect_out delete-version-3 'version 3 deleted' IMG delete-version gold 3
[ ! -e "$STATE/images/gold/delta-3.data" ] && pass delete-removes-delta ||
	fail delete-removes-delta "delta-3.data still there"

# --- the store survives a restart -------------------------------------------
chain_now=$(IMG list | awk '$1 == "gold" { print $6 }')
[ -n "$chain_now" ] && [ "$chain_now" != "$chain_before" ] && pass chain-fingerprint-changes ||
	fail chain-fingerprint-changes "'$chain_before' -> '$chain_now'"
stop_server
check image-file-untouched-2 cmp "$BASE" "$ND_TMP/pristine.img"
start gold2 --config "$ND_TMP/gold.conf"
expect_out chain-fingerprint-same-after-restart "^gold .* $chain_now " IMG list
expect_out restart-keeps-versions '^2 +production' IMG versions gold
expect restart-production-v2 0 nd check 02:00:00:00:10:0c 1 11 2000 64
expect restart-persistent-keep 0 nd check 02:00:00:00:10:03 4 5 100 16

# --- merge while clients read (every read checked against its version) -------
stop_server
NETDISKD_MERGE_DELAY_US=150000 start gold3 --config "$ND_TMP/gold.conf"
expect_out new-version-4 'version 4 of gold created over version 2' IMG new-version gold --note during-merge
NDTEST_BIND=$W expect maintenance-write-4 0 nd write 02:00:00:00:10:01 3 12 3000 32 1
"$NDTEST" "127.0.0.1:$ND_PORT" "$ND_TMP/v2.img" readloop 02:00:00:00:10:0d 9 >"$ND_TMP/readloop.out" 2>&1 &
RL=$!
sleep 0.5
IMG merge gold --no-wait >"$ND_TMP/merge.out" 2>&1
sleep 1
expect_out merge-progress '^job merge version=2 done=[0-9]+ total=33554432' IMG job gold
check_fails merge-twice-refused 1 'a merge of version 2 is already running' IMG merge gold
# The maintenance writer keeps writing while its chain is merged under it.
NDTEST_BIND=$W expect maintenance-write-during-merge 0 nd write 02:00:00:00:10:01 4 13 5000 8 1
wait_for 30 sh -c "'$NETDISK' image --control '$CTL' job gold | grep -q 'result=ok'" &&
	pass merge-finishes || fail merge-finishes "$(IMG job gold 2>&1)"
wait "$RL"
grep -q 'PASS readloop-data-right' "$ND_TMP/readloop.out" && pass merge-reader-sees-its-version ||
	fail merge-reader-sees-its-version "$(cat "$ND_TMP/readloop.out")"
expect_out merged-v2-is-a-base '^2 +production .* base2 ' IMG versions gold
[ -e "$STATE/images/gold/base-2.img" ] && [ ! -e "$STATE/images/gold/delta-2.data" ] &&
	pass merge-replaced-delta || fail merge-replaced-delta "$(ls "$STATE/images/gold")"
nbdcopy "$URI/gold" "$ND_TMP/nbd-merged.img" && cmp -s "$ND_TMP/nbd-merged.img" "$ND_TMP/v2.img" &&
	pass nbd-after-merge || fail nbd-after-merge "production differs after the merge"
NDTEST_BIND=$W expect maintenance-after-merge 0 nd check 02:00:00:00:10:01 4 12 3000 32
NDTEST_BIND=$W expect maintenance-after-merge-2 0 nd check 02:00:00:00:10:01 4 13 5000 8
expect persistent-v1-after-merge 0 nd check 02:00:00:00:10:03 5 5 100 16
check image-file-untouched-3 cmp "$BASE" "$ND_TMP/pristine.img"

# --- export -------------------------------------------------------------------
expect_out export 'version 2 of gold exported to' IMG export gold 2 -o "$ND_TMP/v2.qcow2"
qemu-img convert -f qcow2 -O raw "$ND_TMP/v2.qcow2" "$ND_TMP/v2-back.img" &&
	cmp -s "$ND_TMP/v2-back.img" "$ND_TMP/v2.img" && pass export-qcow2-content ||
	fail export-qcow2-content "the exported qcow2 differs from version 2"
[ -z "$(ls "$STATE/images/gold" | grep export)" ] && pass export-cleans-up ||
	fail export-cleans-up "$(ls "$STATE/images/gold")"

# --- every misuse: a message and a non-zero exit ------------------------------
check_fails misuse-no-command 2 'usage: netdisk image' "$NETDISK" image
check_fails misuse-unknown-command 2 "unknown command 'frobnicate'" IMG frobnicate
check_fails misuse-versions-no-image 2 'versions takes IMAGE' IMG versions
check_fails misuse-unknown-image 1 "unknown image 'nosuch'" IMG versions nosuch
check_fails misuse-promote-no-version 2 'promote takes IMAGE VERSION' IMG promote gold
check_fails misuse-promote-bad-version 2 "VERSION must be a number from 1, not 'x'" IMG promote gold x
check_fails misuse-promote-zero 2 "VERSION must be a number from 1, not '0'" IMG promote gold 0
check_fails misuse-promote-missing-version 1 'image gold has no version 99' IMG promote gold 99
check_fails misuse-promote-bad-to 2 "--to takes test or production, not 'prod'" IMG promote gold 4 --to prod
check_fails misuse-promote-production 1 'version 2 is already in production' IMG promote gold 2
check_fails misuse-to-elsewhere 2 '--to is for promote' IMG rollback gold --to test
check_fails misuse-note-elsewhere 2 '--note is for new-version' IMG promote gold 4 --note x
check_fails misuse-unknown-option 2 'unknown option' IMG list --frob
check_fails misuse-export-no-output 2 'export needs -o FILE.qcow2' IMG export gold 2
check_fails misuse-export-maintenance 1 'version 4 is in maintenance' IMG export gold 4 -o "$ND_TMP/x.qcow2"
check_fails misuse-merge-maintenance 1 'version 4 is in maintenance' IMG merge gold --upto 4
check_fails misuse-merge-base 1 'version 2 is a base already' IMG merge gold --upto 2
check_fails misuse-rollback-nothing 1 'image other has no earlier production version' IMG rollback other
check_fails misuse-reset-bad-mac 1 "a MAC is aa:bb:cc:dd:ee:ff, not 'zz'" IMG reset-client gold zz
check_fails misuse-reset-unpinned 1 'has no persistent overlay pinned' IMG reset-client gold 02:00:00:00:99:99
check_fails misuse-no-server 1 'cannot reach netdiskd at /nonexistent/control' \
	"$NETDISK" image --control /nonexistent/control list
check_fails misuse-note-control-chars 2 '--note must be one line' IMG new-version gold --note $'a\tb'
check_fails misuse-new-version-from-missing 1 'has no version 7' IMG new-version gold --from 7
# A raw request the CLI would never send: the server's parser answers an error.
printf 'promote\t\tgold\n' | python3 -c '
import socket, sys
s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); s.sendall(sys.stdin.buffer.read())
reply = b""
while True:
    chunk = s.recv(4096)
    if not chunk:
        break
    reply += chunk
print(reply.decode())' "$CTL" >"$ND_TMP/raw.out" 2>&1
grep -q '^error empty field 2' "$ND_TMP/raw.out" && pass control-rejects-empty-field ||
	fail control-rejects-empty-field "$(cat "$ND_TMP/raw.out")"

# --- canary: a test version for a group, then a percentage; boots counted -----
ndo() { NDTEST_IMAGE=other "$NDTEST" "127.0.0.1:$ND_PORT" "$ND_TMP/other.img" "$@"; }
expect_out canary-new-version 'version 2 of other created' IMG new-version other
NDTEST_BIND=$W expect canary-write 0 ndo write 02:00:00:00:10:21 1 21 100 8 1
NDTEST_BIND=$W expect canary-writer-off 0 ndo detach 02:00:00:00:10:21 1
expect_out canary-to-group 'canary: testers, group lab-a, and 0% of the other clients' \
	IMG promote other 2 --to test --group lab-a
expect canary-group-member-reads-test 0 ndo check 02:00:00:00:10:22 1 21 100 8
expect canary-others-read-production 1 ndo check 02:00:00:00:10:23 1 21 100 8
expect_out canary-widen '100% of the others' IMG promote other 2 --to test --percent 100
expect canary-percent-reads-test 0 ndo check 02:00:00:00:10:24 1 21 100 8
check_fails canary-percent-range 2 "--percent takes 1..100, not '101'" \
	IMG promote other 2 --to test --percent 101
check_fails canary-group-needs-test 2 '--group and --percent are for promote --to test' \
	IMG promote other 2 --group lab-a
# A BIOS client whose session the OS takes over (NBD) boots ok; one that
# attaches again without getting there failed.
token=$(NDTEST_KIND=1 ndo token 02:00:00:00:10:25 1 0 0 0)
nbdinfo "$URI/session:$token" >/dev/null 2>&1 || fail canary-handoff "nbdinfo on the session failed"
NDTEST_KIND=1 ndo check 02:00:00:00:10:26 1 21 100 8 >/dev/null
NDTEST_KIND=1 ndo check 02:00:00:00:10:26 2 21 100 8 >/dev/null
expect_out canary-boots-counted '^2 +test .* 1 +1  $' IMG versions other
expect_out canary-shown '^canary 2: testers, 100% of the others' IMG versions other
NDTEST_BIND=$W expect maintenance-writer-4-off 0 nd detach 02:00:00:00:10:01 4
expect_out promote-4-to-test 'version 4 is now in test' IMG promote gold 4 --to test
stop_server

# --- kill -9 at every crash point of each operation ---------------------------
# State A: v2 production (merged into a base), v4 in test with acknowledged
# (flushed) writes, v1 retired and pinned.  Each run crashes netdiskd at point K of the operation; the restarted
# server must load the store with production intact and v4's writes in it.
cp -a --sparse=always "$STATE" "$ND_TMP/state-A"
crash_run() { # OP K CLI-ARGS...: 0 if the server crashed at K, 1 if the op finished
	local op=$1 k=$2
	shift 2
	rm -rf "$STATE"
	cp -a --sparse=always "$ND_TMP/state-A" "$STATE"
	NETDISKD_CRASH=$op:$k start crash-$op-$k --config "$ND_TMP/gold.conf"
	IMG "$@" >/dev/null 2>&1
	# (a merge finishes in the background: give it time to reach its points)
	for _ in $(seq 50); do kill -0 "$ND_SERVER_PID" 2>/dev/null || break
		IMG job gold 2>/dev/null | grep -q '^job none' && break; sleep 0.1; done
	if kill -0 "$ND_SERVER_PID" 2>/dev/null; then stop_server; return 1; fi
	wait "$ND_SERVER_PID" 2>/dev/null
	return 0
}
verify_store() { # NAME: the store loads; production and v4's acknowledged writes intact
	local name=$1 st
	start verify-$name --config "$ND_TMP/gold.conf"
	if ! IMG versions gold >"$ND_TMP/verify.out" 2>&1; then
		fail "$name" "store did not load: $(tail -n 3 "$ND_TMP/verify-$name.log")"; stop_server; return 1
	fi
	local ok=1 prod
	prod=$(awk '$2 == "production" { print $1 }' "$ND_TMP/verify.out")
	# Production is whole: v2, or v4 (promoted) with v4's data on top, or v1 (rolled back).
	case $prod in
	2) nd check 02:00:00:00:20:01 1 11 2000 64 && nd check 02:00:00:00:20:01 2 0 3000 32 || ok=0 ;;
	4) nd check 02:00:00:00:20:01 1 12 3000 32 && nd check 02:00:00:00:20:01 2 13 5000 8 || ok=0 ;;
	1) nd check 02:00:00:00:20:01 1 0 2000 64 || ok=0 ;;
	*) ok=0 ;;
	esac
	# v4 (if still there) holds every acknowledged write.
	st=$(awk '$1 == 4 { print $2 }' "$ND_TMP/verify.out")
	if [ "$st" = test ]; then
		# (in test: read through a tester)
		nd check 02:00:00:00:10:02 9 12 3000 32 && nd check 02:00:00:00:10:02 10 13 5000 8 || ok=0
	fi
	stop_server
	[ "$ok" != 0 ] && return 0
	fail "$name" "production $prod, version 4 $st: data wrong ($(tr '\n' ' ' <"$ND_TMP/verify.out"))"
	return 1
}
for spec in "promote:promote gold 4" "rollback:rollback gold" "merge:merge gold --upto 4" \
	"delete-version:delete-version gold 4" "new-version:new-version gold"; do
	op=${spec%%:*}
	read -r -a args <<<"${spec#*:}"
	k=1 bad=0
	while [ $k -le 12 ]; do
		crash_run "$op" $k "${args[@]}" || break
		grep -q "exiting at crash point $k of $op" "$ND_TMP/crash-$op-$k.log" ||
			{ fail "crash-$op-$k" "no crash line: $(tail -n 2 "$ND_TMP/crash-$op-$k.log")"; bad=1; }
		verify_store "crash-$op-$k" || bad=1
		k=$((k + 1))
	done
	# The last run finished the operation without crashing: it took effect.
	verify_store "crash-$op-finished" || bad=1
	[ $bad = 0 ] && [ $k -gt 1 ] && pass "kill9-$op: $((k - 1)) crash points, store whole after each" ||
		fail "kill9-$op" "$((k - 1)) crash points; see above"
done
