#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# netdiskd over UDP: write modes, sessions across restarts, bad input, faults, the CLI.
. "$(dirname "$0")/lib.sh"

NDTEST=$ND_BUILD/tests/ndtest
NETDISK=$ND_BUILD/netdisk
BASE=$ND_TMP/base.img
head -c 32M /dev/urandom >"$BASE"
cp "$BASE" "$ND_TMP/pristine.img"

nd() { "$NDTEST" "127.0.0.1:$ND_PORT" "$BASE" "$@"; }

start() { start_server "$1" "${@:2}" || { fail "$1-start" "netdiskd did not start"; cat "$ND_TMP/$1.log"; exit 1; }; }

# --- volatile, the default -------------------------------------------------
start volatile "$BASE"
nd rw 02:00:00:00:01:01
nd raw
nd faults 02:00:00:00:01:02 20 10 10
nd readahead 02:00:00:00:01:09 20 10 10
# A retried ATTACH (same nonce) is the same boot only from the same address and port.
B=127.0.0.1:$(free_port) C=127.0.0.1:$(free_port)
NDTEST_BIND=$B expect volatile-write 0 nd write 02:00:00:00:01:03 1 5 700 40 1
NDTEST_BIND=$B expect volatile-same-boot-keeps 0 nd check 02:00:00:00:01:03 1 5 700 40
NDTEST_BIND=$B expect volatile-reboot-discards 0 nd check 02:00:00:00:01:03 2 0 700 40
NDTEST_BIND=$B expect isolation-write-b 0 nd write 02:00:00:00:01:04 1 6 900 16 0
NDTEST_BIND=$C expect isolation-write-c 0 nd write 02:00:00:00:01:05 1 7 900 16 0
NDTEST_BIND=$B expect isolation-b-sees-own 0 nd check 02:00:00:00:01:04 1 6 900 16
NDTEST_BIND=$C expect isolation-c-sees-own 0 nd check 02:00:00:00:01:05 1 7 900 16
grep -q 'attach mac=02:00:00:00:01:04 ip=127.0.0.1:[0-9]* image=base mode=volatile' \
	"$ND_TMP/volatile.log" && pass log-attach-line || fail log-attach-line "no attach line in the log"
stop_server
check volatile-image-untouched cmp "$BASE" "$ND_TMP/pristine.img"

# --- persistent: across reboots, restarts and kill -9 ------------------------
STATE=$ND_TMP/state
start persistent --mode persistent --state-dir "$STATE" "$BASE"
expect persistent-write 0 nd write 02:00:00:00:02:01 1 8 1000 64 1
expect persistent-reboot-keeps 0 nd check 02:00:00:00:02:01 2 8 1000 64
expect persistent-other-client-isolated 0 nd check 02:00:00:00:02:02 1 0 1000 64
stop_server
start persistent2 --mode persistent --state-dir "$STATE" "$BASE"
expect persistent-server-restart-keeps 0 nd check 02:00:00:00:02:01 3 8 1000 64
expect persistent-write-flush 0 nd write 02:00:00:00:02:01 4 9 2000 100 1
kill -9 "$ND_SERVER_PID"; wait "$ND_SERVER_PID" 2>/dev/null
start persistent3 --mode persistent --state-dir "$STATE" "$BASE"
expect persistent-kill9-keeps-flushed 0 nd check 02:00:00:00:02:01 5 9 2000 100
expect persistent-kill9-keeps-older 0 nd check 02:00:00:00:02:01 5 8 1000 64

# One session continues across a server restart without attaching again.
coproc CONT { nd continue 02:00:00:00:02:03; }
read -r -t 20 line <&"${CONT[0]}"
[ "$line" = "PASS continue-write" ] && read -r -t 20 line <&"${CONT[0]}"
if [ "$line" = READY ]; then
	stop_server
	ND_PORT_FIXED=$ND_PORT start persistent4 --mode persistent --state-dir "$STATE" "$BASE"
	echo go >&"${CONT[1]}"
	cat <&"${CONT[0]}"
else
	fail continue-write "client not ready: $line"
fi
wait "$CONT_PID" 2>/dev/null
grep -q 'restored .* session' "$ND_TMP/persistent4.log" && pass persistent-sessions-restored ||
	fail persistent-sessions-restored "no restore line in the log"
stop_server

# A changed image (rebuilt, or written in direct mode) invalidates overlays made over it.
touch -d '+1 minute' "$BASE"
start persistent5 --mode persistent --state-dir "$STATE" "$BASE"
expect persistent-image-changed-starts-afresh 0 nd check 02:00:00:00:02:01 6 0 1000 64
grep -q 'overlay of 02:00:00:00:02:01 on image base was made over an older version' \
	"$ND_TMP/persistent5.log" && pass persistent-stale-overlay-logged ||
	fail persistent-stale-overlay-logged "no log line about the stale overlay"
stop_server
check persistent-image-untouched cmp "$BASE" "$ND_TMP/pristine.img"

# --- direct: writes into the image, one writer ---------------------------------
DIRECT=$ND_TMP/direct.img
cp "$BASE" "$DIRECT"
start direct --mode direct "$DIRECT"
expect direct-write 0 nd write 02:00:00:00:03:01 1 12 3000 16 1
expect direct-lands-in-image 0 "$NDTEST" x "$BASE" file-pattern "$DIRECT" 12 3000 16
expect direct-second-writer-busy 6 nd attach-status 02:00:00:00:03:02 1
grep -q 'attach refused, image held by a direct-mode writer: mac=02:00:00:00:03:02 ' "$ND_TMP/direct.log" &&
	pass direct-refusal-logged || fail direct-refusal-logged "no refusal line in the log"
expect direct-writer-reboot-ok 0 nd attach-status 02:00:00:00:03:01 2
expect direct-writer-detach 0 nd detach 02:00:00:00:03:01 2
expect direct-next-writer-ok 0 nd write 02:00:00:00:03:02 1 13 3000 16 1
expect direct-next-writer-lands 0 "$NDTEST" x "$BASE" file-pattern "$DIRECT" 13 3000 16
stop_server

# --- readonly and the config file ----------------------------------------------
cp "$BASE" "$ND_TMP/second.img"
cat >"$ND_TMP/netdiskd.conf" <<CONF
# two images, one bound client, only listed clients
state-dir = $ND_TMP/cfgstate
allow = listed
default-image = base

[image base]
path = base.img
mode = volatile

[image second]
path = second.img
mode = readonly

[client 02:00:00:00:04:01]
image = second

[client 02:00:00:00:04:02]
mode = persistent
CONF
start config --config "$ND_TMP/netdiskd.conf"
expect config-unlisted-denied 5 nd attach-status 02:00:00:00:04:09 1
expect config-bound-client-readonly-write-refused 1 nd write 02:00:00:00:04:01 1 14 10 1 0
expect config-bound-client-reads-its-image 0 nd check 02:00:00:00:04:01 1 0 10 1
NDTEST_IMAGE=base expect config-bound-client-other-image-denied 5 nd attach-status 02:00:00:00:04:01 2
NDTEST_IMAGE=nosuch expect config-unknown-image 7 nd attach-status 02:00:00:00:04:02 1
expect config-client-mode-persistent 0 nd write 02:00:00:00:04:02 2 15 20 4 1
expect config-client-mode-persistent-kept 0 nd check 02:00:00:00:04:02 3 15 20 4
stop_server

bad_config() {
	local name=$1 want=$2
	printf '%s\n' "$3" >"$ND_TMP/bad.conf"
	timeout 10 "$ND_BUILD/netdiskd" --listen 127.0.0.1:1 --config "$ND_TMP/bad.conf" >"$ND_TMP/bad.out" 2>&1
	local rc=$?
	if [ $rc -eq 2 ] && grep -q -- "$want" "$ND_TMP/bad.out"; then pass "$name"; else
		fail "$name" "exit $rc: $(cat "$ND_TMP/bad.out")"
	fi
}
bad_config config-error-unknown-key "bad.conf:2: unknown key 'colour'" $'# x\ncolour = blue'
bad_config config-error-bad-mode "mode must be" $'[image a]\npath=/x\nmode = sometimes'
bad_config config-error-bad-mac "bad MAC address" $'[client 02:00:00]\nimage=a'
bad_config config-error-no-path "image 'a' has no path" $'[image a]\nmode = volatile'
bad_config config-error-persistent-needs-state "give a state directory" $'[image a]\npath=/x\nmode=persistent'
bad_config config-error-unknown-client-image "no image 'zz'" $'[image a]\npath=/x\n[client 02:00:00:00:00:01]\nimage=zz'
bad_config config-error-bad-name "bad image name" $'[image ../etc]\npath=/x'
bad_config config-error-nbd-limit "bad.conf:1: nbd-memory must be 64..1048576 MiB, not '3'" $'nbd-memory = 3\n[image a]\npath=/x'
bad_config config-error-client-twice "bad.conf:4: client 02:00:00:00:00:01 already has a section at line 2" \
	$'[image a]\n[client 02:00:00:00:00:01]\nimage=a\n[client 02:00:00:00:00:01]\nmode=direct'
# One file under two names (here a symbolic link) would let a direct writer of one
# name change the disk under the other's clients.
ln -s "$BASE" "$ND_TMP/alias.img"
bad_config config-error-same-file-twice "images 'a' .* and 'b' .* are the same file" \
	"$(printf '[image a]\npath=%s\nmode=direct\n[image b]\npath=%s' "$BASE" "$ND_TMP/alias.img")"

# A relative image path is relative to where netdiskd was started, with or
# without a state directory (the image store records version 1's path).
mkdir -p "$ND_TMP/reldir"
cp "$BASE" "$ND_TMP/reldir/rel.img"
for state in "" "--state-dir=relstate"; do
	name=relative-path${state:+-state-dir}
	pushd "$ND_TMP/reldir" >/dev/null
	start_server "$name" $state rel=rel.img
	popd >/dev/null
	expect "$name-reads" 0 nd check 02:00:00:00:07:01 1 0 2048 64
	stop_server
done

# A block device is served, sized by BLKGETSIZE64: a loop device over a copy of the image.
cp "$BASE" "$ND_TMP/loopback.img"
LOOPDEV=$(losetup --find --show "$ND_TMP/loopback.img" 2>"$ND_TMP/losetup.err")
if [ -n "$LOOPDEV" ]; then
	start_server blockdev --mode direct "disk=$LOOPDEV" &&
		grep -q "image disk: $LOOPDEV, 32 MiB, direct" "$ND_TMP/blockdev.log" && pass blockdev-served ||
		fail blockdev-served "$(tail -n 2 "$ND_TMP/blockdev.log")"
	NDTEST_IMAGE=disk expect blockdev-reads-image 0 nd check 02:00:00:00:08:01 1 0 100 64
	NDTEST_IMAGE=disk expect blockdev-write 0 nd write 02:00:00:00:08:01 2 21 4000 32 1
	stop_server
	losetup -d "$LOOPDEV"
	expect blockdev-write-lands 0 "$NDTEST" x "$BASE" file-pattern "$ND_TMP/loopback.img" 21 4000 32
else
	fail blockdev-losetup "$(cat "$ND_TMP/losetup.err")"
fi

expect server-missing-image 1 "$ND_BUILD/netdiskd" --listen 127.0.0.1:1 "$ND_TMP/nonexistent.img"
head -c 1000 /dev/zero >"$ND_TMP/odd.img"
expect server-odd-size-image 1 "$ND_BUILD/netdiskd" --listen 127.0.0.1:1 "$ND_TMP/odd.img"
expect server-bad-listen 1 "$ND_BUILD/netdiskd" --listen nonsense:xx "$BASE"
expect server-bad-mode 2 "$ND_BUILD/netdiskd" --mode sometimes "$BASE"

# --- the CLI ------------------------------------------------------------------
start cli --mode persistent --state-dir "$ND_TMP/clistate" "$BASE"
S=127.0.0.1:$ND_PORT
"$NETDISK" read "$S" 100 50 -o "$ND_TMP/r.bin" && dd if="$BASE" bs=512 skip=100 count=50 status=none |
	cmp -s - "$ND_TMP/r.bin" && pass cli-read || fail cli-read "read differs from the image"
head -c 8192 /dev/urandom >"$ND_TMP/w.bin"
"$NETDISK" write "$S" 77 -i "$ND_TMP/w.bin" && "$NETDISK" read "$S" 77 16 | cmp -s - "$ND_TMP/w.bin" &&
	pass cli-write-read-back || fail cli-write-read-back "written data not read back"
"$NETDISK" info "$S" | grep -q 'mode: *persistent' && pass cli-info || fail cli-info "info lacks the mode"
"$NETDISK" bench "$S" --seconds 1 | grep -q 'sequential .* MB/s' && pass cli-bench-runs ||
	fail cli-bench-runs "bench printed no result"
expect cli-bad-address 1 "$NETDISK" read 127.0.0.1:99999 0 1
expect cli-bad-number 1 "$NETDISK" read "$S" x 1
expect cli-past-end 1 "$NETDISK" read "$S" 65536 1
expect cli-unknown-command 2 "$NETDISK" frobnicate "$S"
head -c 100 /dev/zero >"$ND_TMP/partial.bin"
expect cli-partial-sector 1 "$NETDISK" write "$S" 0 -i "$ND_TMP/partial.bin"
stop_server
expect cli-no-server 1 "$NETDISK" read --timeout 1 "$S" 0 1
grep -q "server did not answer" "$ND_TMP/expect.out" && pass cli-no-server-message ||
	fail cli-no-server-message "$(cat "$ND_TMP/expect.out")"
