#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Per-client personalization (issue #18) at host level: two clients of one
# ext4 image read different /etc/hostname, /etc/machine-id and SSH host keys,
# over UDP (the netdisk CLI) and NBD (session:TOKEN), checked with debugfs and
# e2fsck -fn on each client's view; the base stays byte for byte the same; a
# changed template changes the file at the next attach; a client's own write
# wins; and each bad input is a clear error while other clients are served.
. "$(dirname "$0")/lib.sh"
requires cmd:mke2fs cmd:debugfs cmd:e2fsck cmd:sfdisk cmd:nbdcopy cmd:ssh-keygen cmd:xxd cmd:mkfs.fat \
	cmd:fsck.fat cmd:mtype

NETDISK=$ND_BUILD/netdisk
STATE=$ND_TMP/state
A=52:54:00:aa:00:01 B=52:54:00:aa:00:02 C=52:54:00:aa:00:03 D=52:54:00:aa:00:04

# mkdisk OUT ROOTDIR FS_MIB: a 32 MiB MBR disk, partition 1 a 6 MiB FAT16 ESP
# at 1 MiB (with boot menus), partition 2 an ext4 of ROOTDIR at 8 MiB.
mkdisk() {
	local out=$1 root=$2 mib=$3
	mke2fs -q -F -t ext4 -b 4096 -L ndroot -d "$root" "$ND_TMP/part.img" "${mib}M" || return 1
	rm -f "$ND_TMP/esp.img"
	mkfs.fat -F 16 -s 1 -n NDESP -C "$ND_TMP/esp.img" 6144 >/dev/null || return 1
	mmd -i "$ND_TMP/esp.img" ::/syslinux ::/EFI ::/EFI/BOOT ::/loader ::/loader/entries
	mcopy -i "$ND_TMP/esp.img" "$ND_TMP/syslinux.cfg" ::/syslinux/syslinux.cfg
	mcopy -i "$ND_TMP/esp.img" "$ND_TMP/grub.cfg" ::/EFI/BOOT/grub.cfg
	# systemd-boot's names need VFAT long names (.conf is no 8.3 extension).
	mcopy -i "$ND_TMP/esp.img" "$ND_TMP/entry.conf" ::/loader/entries/netdisk-linux.conf
	truncate -s 32M "$out"
	printf 'label: dos\nstart=2048, size=12288, type=ef\nstart=16384, size=%d, type=83\n' \
		$((mib * 2048)) | sfdisk --quiet "$out"
	dd if="$ND_TMP/esp.img" of="$out" bs=1M seek=1 conv=notrunc,sparse status=none
	dd if="$ND_TMP/part.img" of="$out" bs=1M seek=8 conv=notrunc,sparse status=none
}
export MTOOLS_SKIP_CHECK=1
printf 'DEFAULT netdisk\nLABEL netdisk\n  LINUX /linux\n  APPEND root=LABEL=ndroot rw\n' >"$ND_TMP/syslinux.cfg"
# A long GRUB menu: the client's shorter one frees clusters.
{ echo 'menuentry netdisk {'; for i in $(seq 60); do echo "  # padding line $i of the golden menu"; done
  echo '  linux /linux root=LABEL=ndroot rw'; echo '}'; } >"$ND_TMP/grub.cfg"
# A client's syslinux menu, longer than the golden one: it needs new clusters.
{ printf 'DEFAULT netdisk\nLABEL netdisk\n  LINUX /linux\n  APPEND root=LABEL=ndroot rw netdisk.persona={hostname}\n'
  for i in $(seq 40); do echo "# {hostname} line $i"; done; } >"$ND_TMP/syslinux.tmpl"
printf 'title netdisk\nlinux /linux\noptions root=LABEL=ndroot rw\n' >"$ND_TMP/entry.conf"
mkdir -p "$ND_TMP/root/etc/ssh" "$ND_TMP/root/home"
echo golden >"$ND_TMP/root/etc/hostname"
echo 0123456789abcdef0123456789abcdef >"$ND_TMP/root/etc/machine-id"
echo "shared rsa key of the golden image" >"$ND_TMP/root/etc/ssh/ssh_host_rsa_key"
echo "shared ed25519 key" >"$ND_TMP/root/etc/ssh/ssh_host_ed25519_key"
ln -s /run/issue "$ND_TMP/root/etc/issue"
mkdisk "$ND_TMP/gold.img" "$ND_TMP/root" 20
sha_before=$(sha256sum <"$ND_TMP/gold.img")

printf 'Welcome to {hostname} ({mac}) at {site}\nversion {version} of {image}\n' >"$ND_TMP/issue.tmpl"
conf() { # conf MOTD_TEMPLATE: the config under test
	cat >"$ND_TMP/nd.conf" <<CONF
state-dir = $STATE
[image gold]
path = gold.img
hostname = {image}-{index}
var site = north
file /etc/motd = $1
file-mode /etc/motd = 0600
file-owner /etc/motd = 1000:1001
file /etc/issue from issue.tmpl
file esp:/syslinux/syslinux.cfg from syslinux.tmpl
file esp:/Loader/Entries/NetDisk-Linux.conf = title {hostname}\nlinux /linux\noptions root=LABEL=ndroot rw netdisk.persona={hostname}\n
file esp:/EFI/BOOT/grub.cfg = menuentry {hostname} {{\n  linux /linux root=LABEL=ndroot rw netdisk.persona={hostname}\n}}\n
[client $A]
hostname = lab-07
var site = south
[client $B]
[client $C]
mode = persistent
CONF
}
conf 'Hello {hostname}\n'
start_server nd --config "$ND_TMP/nd.conf" || { fail start "$(tail -n 3 "$ND_TMP/nd.log")"; exit 1; }
SRV=127.0.0.1:$ND_PORT
# The [client] sections' SSH host keys are made in the background at start,
# before any of them attaches (C attaches much later).
if wait_for 30 grep -q 'persona keys made ahead for 3 of 3 configured' "$ND_TMP/nd.log" &&
	[ -s "$STATE/persona/keys/525400aa0003/ssh_host_ed25519_key" ] &&
	[ -s "$STATE/persona/keys/525400aa0003/ssh_host_ecdsa_key.pub" ]; then
	pass keys-made-ahead; else fail keys-made-ahead "$(grep -a 'persona keys' "$ND_TMP/nd.log")"; fi

# view MAC OUT: the client's whole disk over UDP; part2 IMG OUT: its partition 2.
view() { "$NETDISK" read "$SRV" 0 65536 -o "$2" --mac "$1"; }
part2() { dd if="$1" of="$2" bs=1M skip=8 count=20 status=none; }
dcat() { debugfs -R "cat $2" "$1" 2>/dev/null; }

expect_out() { # expect_out NAME PATTERN COMMAND...
	local name=$1 pattern=$2 out
	shift 2
	if out=$("$@" 2>&1) && grep -qE -- "$pattern" <<<"$out"; then pass "$name"; else
		fail "$name" "$(echo "$out" | tail -n 3 | tr '\n' ' ')"
	fi
}

expect_out info-personalized 'personalized: yes, layer [0-9a-f]{6}' "$NETDISK" info "$SRV" --mac "$A"

# A over NBD first (a session kept by boot-table, read through session:TOKEN),
# then A and B over UDP.
"$NETDISK" boot-table "$SRV" -o "$ND_TMP/bt" --mac "$A" --keep >/dev/null 2>&1
token=$(xxd -p -s 68 -l 16 "$ND_TMP/bt" | tr -d '\n')
# The boot table carries it on: flags bit 0 and the handoff word at 156.
if [ "$(xxd -p -s 39 -l 1 "$ND_TMP/bt")" = 01 ] && [ "$(xxd -p -s 159 -l 1 "$ND_TMP/bt")" = 01 ]; then
	pass boot-table-personalized; else fail boot-table-personalized "$(xxd -s 36 -l 4 "$ND_TMP/bt")"; fi
check nbd-session-read nbdcopy "nbd://127.0.0.1:$ND_PORT/session:$token" "$ND_TMP/a-nbd.img"
check udp-read-a view "$A" "$ND_TMP/a.img"
check udp-read-b view "$B" "$ND_TMP/b.img"
check nbd-equals-udp cmp "$ND_TMP/a.img" "$ND_TMP/a-nbd.img"
part2 "$ND_TMP/a.img" "$ND_TMP/a.p2"
part2 "$ND_TMP/b.img" "$ND_TMP/b.p2"
part2 "$ND_TMP/gold.img" "$ND_TMP/g.p2"

ha=$(dcat "$ND_TMP/a.p2" /etc/hostname) hb=$(dcat "$ND_TMP/b.p2" /etc/hostname)
if [ "$ha" = lab-07 ] && [ "$hb" = gold-2 ]; then pass hostnames; else fail hostnames "A '$ha' B '$hb'"; fi
expect_out hosts-file $'127.0.1.1\tlab-07' dcat "$ND_TMP/a.p2" /etc/hosts
ma=$(dcat "$ND_TMP/a.p2" /etc/machine-id) mb=$(dcat "$ND_TMP/b.p2" /etc/machine-id)
if [[ $ma =~ ^[0-9a-f]{32}$ ]] && [[ $mb =~ ^[0-9a-f]{32}$ ]] && [ "$ma" != "$mb" ] &&
	[ "$ma" != 0123456789abcdef0123456789abcdef ]; then pass machine-ids; else fail machine-ids "A '$ma' B '$mb'"; fi
ka=$(dcat "$ND_TMP/a.p2" /etc/ssh/ssh_host_ed25519_key.pub) kb=$(dcat "$ND_TMP/b.p2" /etc/ssh/ssh_host_ed25519_key.pub)
if [[ $ka == ssh-ed25519\ * ]] && [[ $kb == ssh-ed25519\ * ]] && [ "$ka" != "$kb" ]; then
	pass ssh-host-keys; else fail ssh-host-keys "A '$ka' B '$kb'"; fi
expect_out ssh-private-key-mode 'Mode:  0600' debugfs -R "stat /etc/ssh/ssh_host_ed25519_key" "$ND_TMP/a.p2"
if debugfs -R "stat /etc/ssh/ssh_host_rsa_key" "$ND_TMP/a.p2" 2>&1 | grep -q 'File not found'; then
	pass shared-rsa-key-dropped; else fail shared-rsa-key-dropped "the golden image's RSA key is still there"; fi
expect_out motd-template '^Hello lab-07$' dcat "$ND_TMP/a.p2" /etc/motd
expect_out motd-owner 'User:  1000   Group:  1001' debugfs -R "stat /etc/motd" "$ND_TMP/a.p2"
expect_out motd-mode 'Mode:  0600' debugfs -R "stat /etc/motd" "$ND_TMP/a.p2"
expect_out file-from-template 'Welcome to gold-2 \(52:54:00:aa:00:02\) at north' dcat "$ND_TMP/b.p2" /etc/issue
expect_out client-var-wins 'at south' dcat "$ND_TMP/a.p2" /etc/issue
expect_out golden-untouched '^golden$' dcat "$ND_TMP/g.p2" /etc/hostname
check e2fsck-a e2fsck -fn "$ND_TMP/a.p2"
check e2fsck-b e2fsck -fn "$ND_TMP/b.p2"
check mbr-untouched cmp <(dd if="$ND_TMP/gold.img" bs=1M count=1 status=none) \
	<(dd if="$ND_TMP/a.img" bs=1M count=1 status=none)
# The ESP (FAT16): per-client boot menus, a grown one and a shrunk one; clean.
dd if="$ND_TMP/a.img" of="$ND_TMP/a.p1" bs=1M skip=1 count=6 status=none
dd if="$ND_TMP/b.img" of="$ND_TMP/b.p1" bs=1M skip=1 count=6 status=none
expect_out esp-syslinux-a 'APPEND root=LABEL=ndroot rw netdisk.persona=lab-07' mtype -i "$ND_TMP/a.p1" ::/syslinux/syslinux.cfg
expect_out esp-syslinux-grown '# gold-2 line 40' mtype -i "$ND_TMP/b.p1" ::/syslinux/syslinux.cfg
expect_out esp-grub-shrunk '^  linux /linux root=LABEL=ndroot rw netdisk.persona=gold-2$' mtype -i "$ND_TMP/b.p1" ::/EFI/BOOT/grub.cfg
expect_out esp-long-name '^options root=LABEL=ndroot rw netdisk.persona=gold-2$' \
	mtype -i "$ND_TMP/b.p1" ::/loader/entries/netdisk-linux.conf
check esp-fsck-a fsck.fat -n "$ND_TMP/a.p1"
check esp-fsck-b fsck.fat -n "$ND_TMP/b.p1"
dd if="$ND_TMP/gold.img" of="$ND_TMP/g.p1" bs=1M skip=1 count=6 status=none
check esp-golden-untouched cmp <(mtype -i "$ND_TMP/g.p1" ::/syslinux/syslinux.cfg) "$ND_TMP/syslinux.cfg"
expect_out log-cost 'persona built mac=52:54:00:aa:00:02 .* ms=[0-9.]+ bytes=[0-9]+' cat "$ND_TMP/nd.log"
expect_out reused-unchanged 'persona reused mac=52:54:00:aa:00:01' cat "$ND_TMP/nd.log"

# The layer's size: a few blocks, not the file system.
bytes=$(grep -o 'persona built mac=52:54:00:aa:00:02 .*bytes=[0-9]*' "$ND_TMP/nd.log" | grep -o 'bytes=[0-9]*' | cut -d= -f2)
if [ -n "$bytes" ] && [ "$bytes" -lt 262144 ]; then pass "layer-small ($bytes bytes)"; else fail layer-small "$bytes bytes"; fi

# A client's own write wins: C (persistent) overwrites its /etc/hostname's block.
check udp-read-c view "$C" "$ND_TMP/c.img"
part2 "$ND_TMP/c.img" "$ND_TMP/c.p2"
blk=$(debugfs -R "bmap /etc/hostname 0" "$ND_TMP/c.p2" 2>/dev/null)
{ printf 'mine-0\n'; head -c 4089 /dev/zero; } >"$ND_TMP/mine"
check client-write "$NETDISK" write "$SRV" $((16384 + blk * 8)) -i "$ND_TMP/mine" --mac "$C"
view "$C" "$ND_TMP/c2.img"
part2 "$ND_TMP/c2.img" "$ND_TMP/c2.p2"
expect_out client-write-wins '^mine-0$' dcat "$ND_TMP/c2.p2" /etc/hostname

# A changed template changes the file at the next attach; identity stays.
stop_server
conf 'Changed for {hostname}\n'
start_server nd2 --config "$ND_TMP/nd.conf"
SRV=127.0.0.1:$ND_PORT
view "$A" "$ND_TMP/a3.img" && part2 "$ND_TMP/a3.img" "$ND_TMP/a3.p2"
expect_out template-change '^Changed for lab-07$' dcat "$ND_TMP/a3.p2" /etc/motd
expect_out rebuilt-logged 'persona built mac=52:54:00:aa:00:01' cat "$ND_TMP/nd2.log"
if [ -n "$ma" ] && [ -n "$ka" ] && [ "$(dcat "$ND_TMP/a3.p2" /etc/machine-id)" = "$ma" ] &&
	[ "$(dcat "$ND_TMP/a3.p2" /etc/ssh/ssh_host_ed25519_key.pub)" = "$ka" ]; then
	pass identity-kept-across-rebuild; else fail identity-kept-across-rebuild "machine-id or key changed"; fi
# SIGHUP reloads the templates: the next attach rebuilds the layer.
conf 'Reloaded for {hostname}\n'
kill -HUP "$ND_SERVER_PID"
wait_for 10 grep -q 'config reloaded.*changed=image-gold-persona' "$ND_TMP/nd2.log" &&
	pass sighup-reload-logged || fail sighup-reload-logged "$(grep -a reload "$ND_TMP/nd2.log")"
view "$A" "$ND_TMP/a4.img" && part2 "$ND_TMP/a4.img" "$ND_TMP/a4.p2"
expect_out sighup-template-change '^Reloaded for lab-07$' dcat "$ND_TMP/a4.p2" /etc/motd
check sighup-e2fsck e2fsck -fn "$ND_TMP/a4.p2"
# Only the current layer of a client is kept.
n=$(ls "$STATE/persona/gold/" | grep -c '^525400aa0001-.*\.data$')
[ "$n" = 1 ] && pass old-layers-pruned || fail old-layers-pruned "$n layers of A"
check base-unchanged test "$(sha256sum <"$ND_TMP/gold.img")" = "$sha_before"
stop_server

# A crash at any point of a build (after each of the 12 files, before and
# between the renames) leaves nothing that is taken for a layer: the next start builds it
# whole (a clean file system with B's name) and leaves no temporary file.
crashes_ok=0
for k in $(seq 14); do
	rm -rf "$STATE/persona/gold"
	NETDISKD_CRASH=persona:$k start_server crash-$k --config "$ND_TMP/nd.conf"
	SRV=127.0.0.1:$ND_PORT
	"$NETDISK" info "$SRV" --mac "$B" --timeout 3 >/dev/null 2>&1
	wait "$ND_SERVER_PID" 2>/dev/null
	rc=$?
	grep -q "exiting at crash point $k of persona" "$ND_TMP/crash-$k.log" || { fail "crash-$k" "rc $rc: $(tail -n 2 "$ND_TMP/crash-$k.log")"; continue; }
	start_server after-$k --config "$ND_TMP/nd.conf"
	SRV=127.0.0.1:$ND_PORT
	view "$B" "$ND_TMP/k.img" && part2 "$ND_TMP/k.img" "$ND_TMP/k.p2"
	stop_server
	if [ "$(dcat "$ND_TMP/k.p2" /etc/hostname)" = gold-2 ] && e2fsck -fn "$ND_TMP/k.p2" >/dev/null 2>&1 &&
		grep -q 'persona built mac=52:54:00:aa:00:02' "$ND_TMP/after-$k.log" &&
		! ls "$STATE/persona/gold/" | grep -q tmp; then
		crashes_ok=$((crashes_ok + 1))
	else
		fail "crash-$k" "after the crash: $(grep -a persona "$ND_TMP/after-$k.log" | tail -n 1); $(ls "$STATE/persona/gold/")"
	fi
done
[ "$crashes_ok" = 14 ] && pass "crash-during-build (14 crash points)"

# ---- builds off the main loop ---------------------------------------------
# A build made slow on purpose (NETDISKD_PERSONA_DELAY_MS, a test knob: 5 s
# more per build): while a worker builds D's layer, E attaches to another
# image and reads (with a 3 s timeout, so a server busy building would fail
# it), before D's build is done; D's ATTACH is answered once it is, with one
# session however often D retransmitted; no more than max-sessions builds
# wait (G is refused BUSY); an NBD client naming the image waits for its
# build the same way.
E=52:54:00:aa:00:05
cp --sparse=always "$ND_TMP/gold.img" "$ND_TMP/plain.img"
cat >"$ND_TMP/slow.conf" <<CONF
state-dir = $ND_TMP/slow-state
nbd-exports = images
[image gold]
path = gold.img
hostname = s-{index}
ssh-host-keys = no
[image plain]
path = plain.img
CONF
NETDISKD_PERSONA_DELAY_MS=5000 start_server slow --config "$ND_TMP/slow.conf"
SRV=127.0.0.1:$ND_PORT
"$NETDISK" info "$SRV" --mac "$D" --image gold --timeout 30 >"$ND_TMP/slow-d.out" 2>&1 &
dpid=$!
if wait_for 10 grep -q "persona building mac=$D image=gold" "$ND_TMP/slow.log"; then
	check other-client-served-during-build "$NETDISK" read "$SRV" 0 2048 -o "$ND_TMP/e.img" \
		--mac "$E" --image plain --timeout 3
	if ! grep -q "persona built mac=$D" "$ND_TMP/slow.log" && kill -0 "$dpid" 2>/dev/null; then
		pass served-before-build-done; else fail served-before-build-done "D's build was already done"; fi

else
	fail other-client-served-during-build "no build started: $(tail -n 2 "$ND_TMP/slow.log")"
fi
wait "$dpid"
expect_out slow-attach-answered 'personalized: yes' cat "$ND_TMP/slow-d.out"
n=$(grep -c "attach mac=$D .*persona=" "$ND_TMP/slow.log")
[ "$n" = 1 ] && pass slow-attach-one-session || fail slow-attach-one-session "$n sessions for D"
# NBD naming the image (its MAC made from 127.0.0.1): waits for its build.
check nbd-attach-waits-for-build timeout 60 nbdcopy "nbd://127.0.0.1:$ND_PORT/gold" "$ND_TMP/nbd-slow.img"
part2 "$ND_TMP/nbd-slow.img" "$ND_TMP/nbd-slow.p2"
expect_out nbd-slow-hostname '^s-' dcat "$ND_TMP/nbd-slow.p2" /etc/hostname
stop_server
# At most max-sessions builds wait: with max-sessions = 1 and D's build in
# hand, G's ATTACH is refused BUSY (and logged), not queued.
sed -e 's/^nbd-exports = images$/max-sessions = 1/' -e 's/slow-state/slow1-state/' \
	"$ND_TMP/slow.conf" >"$ND_TMP/slow1.conf"
NETDISKD_PERSONA_DELAY_MS=5000 start_server slow1 --config "$ND_TMP/slow1.conf"
SRV=127.0.0.1:$ND_PORT
"$NETDISK" info "$SRV" --mac "$D" --image gold --timeout 30 >/dev/null 2>&1 &
dpid=$!
wait_for 10 grep -q "persona building mac=$D image=gold" "$ND_TMP/slow1.log"
check_fails build-queue-full 1 'busy' "$NETDISK" info "$SRV" --mac 52:54:00:aa:00:07 \
	--image gold --timeout 3
expect_out build-queue-full-logged 'attach refused, server full: max-sessions personalization layers are being built already: mac=52:54:00:aa:00:07' cat "$ND_TMP/slow1.log"
wait "$dpid"
stop_server

# ---- bad input -------------------------------------------------------------
# Config load: each refused, exit 2, the message naming the problem.
bad_conf() { # bad_conf NAME PATTERN KEY-LINES...
	local name=$1 pattern=$2
	shift 2
	{ printf 'state-dir = %s\n[image gold]\npath = gold.img\n' "$STATE"; printf '%s\n' "$@"; } >"$ND_TMP/bad.conf"
	check_fails "$name" 2 "$pattern" timeout 10 "$ND_BUILD/netdiskd" --config "$ND_TMP/bad.conf" --listen "127.0.0.1:$(free_port)"
}
bad_conf bad-unknown-variable 'unknown variable \{nope\}' 'file /etc/x = {nope}'
bad_conf bad-hostname-self 'cannot use \{hostname\}' 'hostname = {hostname}-x'
bad_conf bad-non-utf8 'not UTF-8' "$(printf 'file /etc/x = caf\xe9')"
bad_conf bad-duplicate-file 'duplicate key: file /etc/x' 'file /etc/x = a' 'file /etc/x = b'
bad_conf bad-duplicate-var 'duplicate key: var a' 'var a = 1' 'var a = 2'
bad_conf bad-duplicate-client-hostname 'duplicate key: hostname' "[client $A]" 'hostname = a' 'hostname = b'
bad_conf bad-client-hostname "'bad_name' is not a host name" "[client $A]" 'hostname = bad_name'
bad_conf bad-brace "lone '\}'" 'file /etc/x = a}b'
bad_conf bad-mode-without-file 'no `file /etc/y' 'file-mode /etc/y = 0600'
bad_conf bad-relative-path 'want an absolute path' 'file etc/x = a'
# An image without an ext file system: refused at start, naming the partitions.
head -c 4M /dev/zero >"$ND_TMP/raw.img"
cat >"$ND_TMP/raw.conf" <<CONF
state-dir = $STATE
[image raw]
path = raw.img
hostname = r-{index}
CONF
check_fails bad-no-ext4 1 'image raw has no ext2/3/4 file system with /etc to personalize \(the whole disk \(no partition table\): not ext2/3/4\)' \
	timeout 20 "$ND_BUILD/netdiskd" --config "$ND_TMP/raw.conf" --listen "127.0.0.1:$(free_port)"

# At attach: a missing directory and a full file system are DENIED to that
# client with the reason logged; the others go on being served, and no
# half-written layer is left behind.
mkdir -p "$ND_TMP/small/etc"
head -c 3400K /dev/urandom >"$ND_TMP/small/filler"
mkdisk "$ND_TMP/small.img" "$ND_TMP/small" 4
head -c 700K /dev/urandom | base64 -w 0 >"$ND_TMP/big.tmpl"
cat >"$ND_TMP/att.conf" <<CONF
state-dir = $STATE
[image gold]
path = gold.img
hostname = g-{index}
[image small]
path = small.img
hostname = s-{index}
ssh-host-keys = no
file /etc/big from big.tmpl
[image nodir]
path = nodir.img
hostname = n-{index}
file /opt/app/conf = x
[image f12]
path = f12.img
hostname = t-{index}
ssh-host-keys = no
file esp:/syslinux/syslinux.cfg from syslinux.tmpl
CONF
cp "$ND_TMP/gold.img" "$ND_TMP/nodir.img"
# f12: gold with a small FAT12 ESP (1.5 MiB, 512-byte clusters: the grown
# menu takes new clusters, odd and even FAT12 entries).
cp --sparse=always "$ND_TMP/gold.img" "$ND_TMP/f12.img"
rm -f "$ND_TMP/esp12.img"
mkfs.fat -F 12 -s 1 -n ND12 -C "$ND_TMP/esp12.img" 1536 >/dev/null
mmd -i "$ND_TMP/esp12.img" ::/syslinux
mcopy -i "$ND_TMP/esp12.img" "$ND_TMP/syslinux.cfg" ::/syslinux/syslinux.cfg
dd if="$ND_TMP/esp12.img" of="$ND_TMP/f12.img" bs=1M seek=1 conv=notrunc status=none
start_server nd3 --config "$ND_TMP/att.conf"
SRV=127.0.0.1:$ND_PORT
# The CLI shows the specific status (PERSONA) and the reason the reply carries.
check_fails attach-no-directory 1 'cannot personalize this client: personalization of image nodir version 1, partition 2: file /opt/app/conf: its directory /opt/app does not exist' "$NETDISK" info "$SRV" --mac "$D" --image nodir
expect_out attach-no-directory-logged 'attach refused, personalization of image nodir version 1, partition 2: file /opt/app/conf: its directory /opt/app does not exist in the image' cat "$ND_TMP/nd3.log"
check_fails attach-no-space 1 'cannot personalize this client: personalization of image small .*/etc/big' "$NETDISK" info "$SRV" --mac "$D" --image small
expect_out attach-no-space-logged 'attach refused, personalization of image small .*/etc/big: .*\(no space left in the image.s file system\)' cat "$ND_TMP/nd3.log"
if ls "$STATE/persona/small/" 2>/dev/null | grep -q .; then
	fail no-half-layer "$(ls "$STATE/persona/small/")"; else pass no-half-layer; fi
expect_out others-served 'personalized: yes' "$NETDISK" info "$SRV" --mac "$D" --image gold
# FAT12: the client's grown menu, and a clean FAT12.
"$NETDISK" read "$SRV" 2048 3072 -o "$ND_TMP/d12.p1" --mac "$D" --image f12 >/dev/null 2>&1
expect_out fat12-menu '# t-aa0004 line 40' mtype -i "$ND_TMP/d12.p1" ::/syslinux/syslinux.cfg
check fat12-fsck fsck.fat -n "$ND_TMP/d12.p1"
# Unlisted clients' SSH host keys come from the pool made ahead (persona-key-pool,
# 32): F's first attach takes a ready set (its comment is the pool's, not
# root@netdisk-MAC12 as ssh-keygen at the attach would make it).
F=52:54:00:aa:00:06
if wait_for 60 grep -q 'persona key pool: 32 SSH host key sets ready' "$ND_TMP/nd3.log"; then
	pass key-pool-filled; else fail key-pool-filled "$(grep -a 'key pool' "$ND_TMP/nd3.log")"; fi
expect_out unlisted-attach 'personalized: yes' "$NETDISK" info "$SRV" --mac "$F" --image gold
expect_out unlisted-keys-from-pool '^ssh-ed25519 [A-Za-z0-9+/=]+ root@netdisk$' \
	cat "$STATE/persona/keys/525400aa0006/ssh_host_ed25519_key.pub"
check server-alive kill -0 "$ND_SERVER_PID"
stop_server
check base-unchanged-end test "$(sha256sum <"$ND_TMP/gold.img")" = "$sha_before"
