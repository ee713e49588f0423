/* SPDX-License-Identifier: GPL-2.0-or-later */
/* A Linux TAP device as a frame device, so the stubs' own IP stack runs against the kernel's. */
#ifndef TAPDEV_H
#define TAPDEV_H

#include "ipstack.h"

/* Attach to the existing TAP interface ifname (IFF_TAP, no packet info);
 * with device_sums the device sums what the stack reads (read_sum).  0, or
 * -1 with errno set. */
int tapdev_open(struct nd_framedev *dev, const char *ifname, const uint8_t mac[6],
		int device_sums);

/* Faults on received frames, in percent, and what was done. */
struct tapdev_faults {
	unsigned loss, dup, reorder;
	unsigned long dropped, duplicated, reordered;
};

/* Apply these faults to every frame received from now on. */
void tapdev_faults(const struct tapdev_faults *f);
const struct tapdev_faults *tapdev_faults_seen(void);

#endif /* TAPDEV_H */
