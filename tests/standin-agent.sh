#!/bin/sh
# Stand-in for netdisk-attach in image tests: boot-table addressing from test.ip=, NBD attach with nbd-client to test.nbd=.
#
# It follows the initramfs hook contract (docs/images.md) with stock tools so
# the Linux half of a network boot is tested before the real agent exists:
#   test.ip=ADDR/PREFIX,GATEWAY   pretends a boot table gave this address
#   test.nbd=HOST:PORT            the NBD server holding the disk

cmdline_value() {
	local word
	for word in $(cat /proc/cmdline); do
		case $word in "$1"=*) echo "${word#*=}" ;; esac
	done
}

# Plays the boot table: a static address on the first non-loopback interface.
configure_network() {
	local setting address interface dev
	setting=$(cmdline_value test.ip)
	[ -n "$setting" ] || return 1
	for dev in /sys/class/net/*; do
		[ "${dev##*/}" = lo ] || { interface=${dev##*/}; break; }
	done
	address=${setting%,*}
	ip addr add "$address" dev "$interface" || return 1
	ip route add default via "${setting#*,}" dev "$interface" || return 1
	cat >/run/netdisk/net.env <<ENV
interface=$interface
ip=${address%/*}
mask=${address#*/}
router=${setting#*,}
ENV
}

# Attaches /dev/nbd0 and names its second partition as the root.
attach() {
	local server tries=50
	server=$(cmdline_value test.nbd)
	[ -n "$server" ] || return 1
	nbd-client "${server%:*}" "${server#*:}" /dev/nbd0 || return 1
	until [ -b /dev/nbd0p2 ]; do
		[ "$tries" -gt 0 ] || return 1
		tries=$((tries - 1))
		blockdev --rereadpt /dev/nbd0 2>/dev/null
		sleep 0.2
	done
	echo /dev/nbd0p2 >/run/netdisk/root
}

case $1 in
--configure-network) configure_network ;;
"") attach ;;
*) exit 2 ;;
esac
