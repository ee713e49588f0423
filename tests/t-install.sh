#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Installing netdisk like a Debian service: `make install` (PREFIX, DESTDIR),
# the manual pages (clean, and naming every config key and option), the
# Debian package (dpkg-buildpackage, lintian without errors or warnings),
# and that package installed into a throw-away root (an overlay of this
# machine's root in a private mount namespace): its user, its unit
# (systemd-analyze verify), the unit's own command serving an image as that
# user, a bad config refused with the status the unit does not restart on,
# and a purge.  This machine runs no systemd as PID 1, so the unit is not
# started by systemd itself (docs/install.md says so).
. "$(dirname "$0")/lib.sh"
requires root cmd:setpriv cmd:dpkg-buildpackage cmd:dh cmd:lintian cmd:groff cmd:systemd-analyze cmd:unshare

MAN=$ND_TOP/packaging/man
NETDISK=$ND_BUILD/netdisk

# --- make install -------------------------------------------------------------
DEST=$ND_TMP/dest
make -s -C "$ND_TOP" install BUILD="$ND_BUILD" DESTDIR="$DEST" PREFIX=/usr >"$ND_TMP/install.log" 2>&1
ok=1
for f in usr/sbin/netdiskd:755 usr/bin/netdisk:755 usr/lib/netdisk/netdisk-attach:755 \
	usr/lib/netdisk/netdisk.pxe:644 usr/lib/netdisk/netdisk.efi:644 \
	usr/lib/netdisk/netdisk-virtio.rom:644 usr/share/man/man8/netdiskd.8:644 usr/share/man/man1/netdisk.1:644 \
	usr/share/man/man5/netdiskd.conf.5:644 usr/share/doc/netdisk/server.md:644 \
	etc/netdisk/netdiskd.conf:644 lib/systemd/system/netdiskd.service:644 \
	usr/share/initramfs-tools/hooks/netdisk:755 usr/share/initramfs-tools/scripts/local-top/netdisk:755 \
	usr/lib/dracut/modules.d/90netdisk/module-setup.sh:755; do
	path=${f%:*} mode=${f#*:}
	got=$(stat -c %a "$DEST/$path" 2>/dev/null)
	[ "$got" = "$mode" ] || { ok=0; echo "# $path: mode '$got', want $mode"; }
done
[ $ok = 1 ] && pass "make install PREFIX=/usr puts every file in place with its mode" ||
	fail "make install PREFIX=/usr" "$(tail -5 "$ND_TMP/install.log")"
check "installed netdiskd and netdisk run (--help)" \
	sh -c "'$DEST/usr/sbin/netdiskd' --help | grep -q '^usage: netdiskd' && '$DEST/usr/bin/netdisk' --help | grep -q '^usage: netdisk'"
check "installed stubs are the built ones" cmp "$DEST/usr/lib/netdisk/netdisk.pxe" "$ND_BUILD/netdisk.pxe"
grep -q '^ExecStart=/usr/sbin/netdiskd --config /etc/netdisk/netdiskd.conf ' \
	"$DEST/lib/systemd/system/netdiskd.service" &&
	pass "unit runs /usr/sbin/netdiskd with /etc/netdisk/netdiskd.conf" ||
	fail "unit ExecStart (PREFIX=/usr)" "$(grep ExecStart "$DEST/lib/systemd/system/netdiskd.service")"

LOCAL=$ND_TMP/local
make -s -C "$ND_TOP" install BUILD="$ND_BUILD" DESTDIR="$LOCAL" >/dev/null 2>&1
if [ -x "$LOCAL/usr/local/sbin/netdiskd" ] && [ -f "$LOCAL/usr/local/etc/netdisk/netdiskd.conf" ] &&
	grep -q '^ExecStart=/usr/local/sbin/netdiskd --config /usr/local/etc/netdisk/netdiskd.conf ' \
		"$LOCAL/usr/local/lib/systemd/system/netdiskd.service"; then
	pass "make install defaults to PREFIX=/usr/local, config and unit follow it"
else
	fail "make install default PREFIX" "$(find "$LOCAL" -type f | head)"
fi

# --- manual pages -----------------------------------------------------------------
for page in netdiskd.8 netdisk.1 netdiskd.conf.5; do
	out=$(groff -man -ww -z "$MAN/$page" 2>&1)
	[ -z "$out" ] && pass "man page $page formats without warnings" || fail "man page $page" "$out"
done
# Every config key netdiskd accepts (the names its parser compares with, and
# its numeric key table) is in netdiskd.conf(5).
keys=$( (grep -ohE 'strcmp\(k, "[a-z-]+"\)' "$ND_TOP"/server/*.c
	sed -n '/uint_keys\[\] = {/,/^};/p' "$ND_TOP/server/config.c" | grep -oE '^\s*\{ "[a-z-]+"') |
	grep -oE '"[a-z-]+"' | tr -d '"' | sort -u)
missing=$(for k in $keys; do grep -qE "^\.B[IR]? $k( |$)" "$MAN/netdiskd.conf.5" || echo "$k"; done)
[ -n "$keys" ] && [ -z "$missing" ] && pass "netdiskd.conf(5) names all $(echo "$keys" | wc -w) config keys" ||
	fail "netdiskd.conf(5) keys" "missing: $(echo $missing)"
opts=$("$ND_BUILD/netdiskd" --help | grep -oE -- '--[a-z-]+' | sort -u)
missing=$(for o in $opts; do grep -qF -- "\\-\\-${o#--}" "$MAN/netdiskd.8" || echo "$o"; done)
[ -n "$opts" ] && [ -z "$missing" ] && pass "netdiskd(8) names all $(echo "$opts" | wc -w) options of netdiskd --help" ||
	fail "netdiskd(8) options" "missing: $(echo $missing)"
cmds=$("$NETDISK" --help | awk '/^  [a-z][a-z-]* /{print $1}' | sort -u)
missing=$(for c in $cmds; do grep -qE "^\.B[I]? $c( |$)" "$MAN/netdisk.1" || echo "$c"; done)
[ -n "$cmds" ] && [ -z "$missing" ] && pass "netdisk(1) names all $(echo "$cmds" | wc -w) commands of netdisk --help" ||
	fail "netdisk(1) commands" "missing: $(echo $missing)"

# --- the Debian package -----------------------------------------------------------
PKG=$ND_TMP/pkg
mkdir -p "$PKG/netdisk-src"
(cd "$ND_TOP" && git ls-files -z --cached --others --exclude-standard | xargs -0 tar -cf - 2>/dev/null) |
	tar -xf - -C "$PKG/netdisk-src"
start=$SECONDS
(cd "$PKG/netdisk-src" && dpkg-buildpackage -b -uc -us -j2) >"$PKG/build.log" 2>&1
deb=$(ls "$PKG"/netdisk_*_amd64.deb 2>/dev/null | head -1)
if [ -n "$deb" ]; then
	pass "dpkg-buildpackage -b builds netdisk_*.deb ($((SECONDS - start)) s)"
else
	fail "dpkg-buildpackage" "$(tail -15 "$PKG/build.log")"
	exit 1
fi
lint=$(lintian --fail-on error,warning "$deb" 2>&1)
rc=$?
echo "$lint" | sed 's/^/# lintian: /'
[ $rc -eq 0 ] && ! echo "$lint" | grep -qE '^[EW]: ' && pass "lintian: no error or warning" ||
	fail "lintian" "$(echo "$lint" | grep -E '^[EW]: ' | head -5)"

# The package is also what a golden image installs (docs/install.md): the
# hook and the module, and dh_installinitramfs's trigger that rebuilds the
# image's initramfs when the package is installed.
# deb_has_initramfs_hook DEB: its file list and its trigger say so.
deb_has_initramfs_hook() {
	dpkg-deb -c "$1" | grep -q ' ./usr/share/initramfs-tools/scripts/local-top/netdisk$' &&
		dpkg-deb -c "$1" | grep -q ' ./usr/lib/dracut/modules.d/90netdisk/module-setup.sh$' &&
		dpkg-deb -I "$1" triggers | grep -qx 'activate-noawait update-initramfs' &&
		dpkg-deb --fsys-tarfile "$1" | tar -xOf - ./usr/share/initramfs-tools/hooks/netdisk |
		grep -q 'NETDISK_ATTACH:-/usr/lib/netdisk/netdisk-attach}'
}
check "the package holds the initramfs-tools hook (for /usr/lib/netdisk/netdisk-attach), its trigger, the dracut module" \
	deb_has_initramfs_hook "$deb"

# --- installed into a throw-away root -------------------------------------------
# The root is an overlay of / whose writes go to a tmpfs of a private mount
# namespace: dpkg, adduser and the server change nothing on this machine.
head -c 8M /dev/urandom >"$ND_TMP/lab.img"
port=$(free_port)
cat >"$ND_TMP/inroot.sh" <<EOF
set -u
r() { echo "RESULT \$*"; }
dpkg -i "$deb" >/tmp/dpkg.log 2>&1 && r dpkg-install ok || { r dpkg-install bad; tail -5 /tmp/dpkg.log; }
getent passwd netdisk | grep -q ':/var/lib/netdisk:' && r user ok || r user bad
systemd-analyze verify /lib/systemd/system/netdiskd.service >/tmp/verify.log 2>&1 &&
	r verify ok || { r verify bad; cat /tmp/verify.log; }
mkdir -p /srv/netdisk && cp "$ND_TMP/lab.img" /srv/netdisk/lab.img
sed -i 's/^listen = .*/listen = 127.0.0.1:$port/' /etc/netdisk/netdiskd.conf
printf '[image lab]\npath = /srv/netdisk/lab.img\n' >>/etc/netdisk/netdiskd.conf
mkdir -p /var/lib/netdisk && chown netdisk:netdisk /var/lib/netdisk && chmod 750 /var/lib/netdisk
cmd=\$(sed -n 's/^ExecStart=//p' /lib/systemd/system/netdiskd.service)
setpriv --reuid=netdisk --regid=netdisk --init-groups sh -c "umask 0007; exec \$cmd" 2>/tmp/netdiskd.log &
pid=\$!
for i in \$(seq 50); do netdisk info 127.0.0.1:$port --image lab >/dev/null 2>&1 && break; sleep 0.1; done
netdisk read 127.0.0.1:$port 0 16384 --image lab -o /tmp/read.bin >/dev/null 2>&1 &&
	cmp -s /tmp/read.bin /srv/netdisk/lab.img && r serve ok || { r serve bad; tail -3 /tmp/netdiskd.log; }
[ "\$(stat -c '%U:%G %a' /var/lib/netdisk/control 2>/dev/null)" = "netdisk:netdisk 660" ] &&
	NETDISK_CONTROL=/var/lib/netdisk/control netdisk image list 2>&1 | grep -q lab && r control ok ||
	{ r control bad; ls -l /var/lib/netdisk; }
kill -TERM \$pid; wait \$pid; r stop-status \$?
echo 'colour = red' >>/etc/netdisk/netdiskd.conf
setpriv --reuid=netdisk --regid=netdisk --init-groups sh -c "exec \$cmd" 2>/tmp/bad.log; r bad-config-status \$?
grep -q "netdiskd.conf:[0-9]*: unknown image key 'colour'" /tmp/bad.log && r bad-config-says ok ||
	{ r bad-config-says bad; cat /tmp/bad.log; }
dpkg --purge netdisk >/tmp/purge.log 2>&1 && [ ! -e /usr/sbin/netdiskd ] && [ ! -e /etc/netdisk/netdiskd.conf ] &&
	r purge ok || { r purge bad; tail -3 /tmp/purge.log; }
EOF
ROOTFS=$ND_TMP/root
mkdir -p "$ROOTFS"
timeout 300 unshare --mount --fork bash -c '
	set -e
	R=$1 T=$2
	mount --make-rprivate /
	mount -t tmpfs tmpfs "$R"
	mkdir -p "$R/u" "$R/w" "$R/m"
	mount -t overlay overlay -o lowerdir=/,upperdir="$R/u",workdir="$R/w" "$R/m"
	for d in proc sys dev; do mount --rbind /$d "$R/m/$d"; done
	mount -t tmpfs tmpfs "$R/m/run"
	mkdir -p "$R/m$T" && mount --bind "$T" "$R/m$T"
	chroot "$R/m" bash "$T/inroot.sh"
' unshare "$ROOTFS" "$ND_TMP" >"$ND_TMP/inroot.log" 2>&1
sed 's/^/# root: /' "$ND_TMP/inroot.log" | grep -v '^# root: RESULT'
result() { grep -m1 "^RESULT $1 " "$ND_TMP/inroot.log" | cut -d' ' -f3; }
[ "$(result dpkg-install)" = ok ] && pass "package installs (dpkg -i) into a throw-away root" ||
	fail "dpkg -i" "see the '# root:' lines"
[ "$(result user)" = ok ] && pass "postinst made the system user netdisk (home /var/lib/netdisk)" ||
	fail "system user netdisk" "not made"
[ "$(result verify)" = ok ] && pass "systemd-analyze verify accepts the installed unit" ||
	fail "systemd-analyze verify" "see the '# root:' lines"
[ "$(result serve)" = ok ] && pass "the unit's ExecStart, as user netdisk, serves the configured image" ||
	fail "serve as the unit" "see the '# root:' lines"
[ "$(result control)" = ok ] && pass "control socket netdisk:netdisk 0660 in the state dir, netdisk image list works" ||
	fail "control socket" "see the '# root:' lines"
[ "$(result stop-status)" = 0 ] && pass "SIGTERM (systemctl stop) ends it with status 0" ||
	fail "stop status" "$(result stop-status)"
[ "$(result bad-config-status)" = 2 ] && [ "$(result bad-config-says)" = ok ] &&
	pass "a bad config exits 2 (RestartPreventExitStatus) naming the key" ||
	fail "bad config" "status $(result bad-config-status), message $(result bad-config-says)"
[ "$(result purge)" = ok ] && pass "dpkg --purge removes program and config" ||
	fail "purge" "see the '# root:' lines"
[ ! -e /usr/sbin/netdiskd ] && ! getent passwd netdisk >/dev/null &&
	pass "this machine's root is untouched by the install" ||
	fail "host root touched" "/usr/sbin/netdiskd or user netdisk exists on the host"
