#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# dracut module netdisk (Fedora, RHEL and the like): netdisk-attach, the nbd driver and the NIC drivers in the distribution's own initramfs.
#
# At boot netdisk-cmdline.sh queues netdisk-dracut-attach.sh to run once udev
# has settled (the NIC drivers are loaded), while dracut waits for root=;
# docs/handoff.md, "Stock distributions".  NETDISK_ATTACH overrides the
# agent's path when building.

# called by dracut: include the module whenever the agent is installed, also
# with hostonly (the image is for the machines that boot it, not this one).
check() {
	require_binaries "${NETDISK_ATTACH:-@LIBDIR@/netdisk-attach}" || return 1
	return 0
}

# called by dracut
depends() {
	return 0
}

# called by dracut: the NBD driver and the network card drivers, whatever
# this machine has (dracut-network's kernel-network-modules is not needed).
installkernel() {
	hostonly='' instmods nbd virtio_net vmxnet3 xen-netfront =drivers/net/ethernet =drivers/net/hyperv
}

# called by dracut
install() {
	inst_simple "${NETDISK_ATTACH:-@LIBDIR@/netdisk-attach}" /sbin/netdisk-attach
	inst_script "$moddir/netdisk-dracut-attach.sh" /sbin/netdisk-dracut-attach
	inst_hook cmdline 90 "$moddir/netdisk-cmdline.sh"
}
