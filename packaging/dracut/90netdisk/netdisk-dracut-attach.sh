#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-or-later
# dracut initqueue job of the netdisk module: brings up the boot NIC from the stub's boot table and hands its disk to the kernel's NBD driver.
#
# What the agent does: docs/handoff.md.  Without a boot table nothing
# happens, unless netdisk.server= names the server and dracut's own network
# (ip=, rd.neednet=1) brought an interface up.
type getarg >/dev/null 2>&1 || . /lib/dracut-lib.sh

AGENT=/sbin/netdisk-attach
mkdir -p /run/netdisk
if "$AGENT" --configure-network; then
	. /run/netdisk/net.env
	info "netdisk: $interface $ip from the boot table"
elif ! getarg netdisk.server= >/dev/null; then
	exit 0 # not booted from a netdisk stub
fi
modprobe -q nbd
if "$AGENT"; then
	info "netdisk: network disk attached"
else
	warn "netdisk: no network disk attached (netdisk-attach failed, see above)"
fi
exit 0
