#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# The test library's own helpers, on made-up input: console_text puts back a
# line that a kernel message split on a VM's serial console (t-e2e-iscsi once
# failed on exactly that: "NETDISK-NET-OK eth0 10.0.[ 3.19] IPv6: ...").
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/image-lib.sh"
requires cmd:perl

printf '%s\r\n' 'Loading, please wait...' \
	'NETDISK-NET-OK eth0 10.0.[    3.190953] IPv6: ADDRCONF(NETDEV_CHANGE): eth0: link becomes ready' \
	'2.15 boot-[    3.200000] e1000: eth0 NIC Link is Up' '[    3.300000] random: crng init done' 'table' \
	$'netdisk-demo:/# \e[6n[    6.201926] EXT4-fs (sda2): re-mounted.' 'echo done' >"$ND_TMP/console.log"
console_text "$ND_TMP/console.log" >"$ND_TMP/console.txt"

rejoined() {
	grep -qx 'NETDISK-NET-OK eth0 10.0.2.15 boot-table' "$ND_TMP/console.txt" || { echo "got: $(cat "$ND_TMP/console.txt")"; return 1; }
	local k
	for k in 'IPv6: ADDRCONF(NETDEV_CHANGE): eth0: link becomes ready' 'e1000: eth0 NIC Link is Up' 'random: crng init done'; do
		grep -qE "^\[ *[0-9.]+\] $(sed 's/[()]/\\&/g' <<<"$k")\$" "$ND_TMP/console.txt" || { echo "lost or split: $k"; return 1; }
	done
	[ "$(wc -l <"$ND_TMP/console.txt")" = 7 ] || { echo "not 7 lines: $(cat "$ND_TMP/console.txt")"; return 1; }
	! grep -q $'\r' "$ND_TMP/console.txt" || { echo "carriage returns left"; return 1; }
}
check "console_text: a line split by kernel messages is whole again, the messages kept on their own lines" rejoined

escapes_kept() {
	grep -qFx $'netdisk-demo:/# \e[6n[    6.201926] EXT4-fs (sda2): re-mounted.' "$ND_TMP/console.txt" &&
		grep -qx 'echo done' "$ND_TMP/console.txt" || { echo "got: $(tail -n 2 "$ND_TMP/console.txt" | cat -v)"; return 1; }
}
check "console_text: a line with escape sequences (a prompt) is left as it is" escapes_kept
