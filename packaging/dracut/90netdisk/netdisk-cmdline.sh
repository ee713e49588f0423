#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-or-later
# dracut cmdline hook of the netdisk module: queues the network disk attach for the moment udev has settled.
#
# dracut's main loop (or dracut-initqueue.service under systemd) runs the job
# once while it waits for root=; nbdroot=/root=nbd: leave the disk to
# dracut's own nbd module.
type getarg >/dev/null 2>&1 || . /lib/dracut-lib.sh

if ! getarg nbdroot= >/dev/null && [ "${root#nbd:}" = "$root" ]; then
	/sbin/initqueue --settled --onetime --unique --name netdisk-attach /sbin/netdisk-dracut-attach
fi
