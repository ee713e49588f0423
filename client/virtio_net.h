/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The stubs' own polled driver for the legacy virtio-net PCI interface, as an nd_framedev (freestanding). */
#ifndef NDVIRTIO_NET_H
#define NDVIRTIO_NET_H

#include <stddef.h>
#include <stdint.h>
#include "ipstack.h"

/* The PCI ids of a transitional (legacy-capable) virtio-net function. */
#define VN_PCI_VENDOR 0x1af4
#define VN_PCI_DEVICE 0x1000

/*
 * What the driver needs from the firmware environment.  Ports are offsets
 * within the function's I/O BAR 0.  Device-visible memory is reached only
 * by 32-bit linear (= physical) address, never through a pointer: in real
 * mode it is far memory.
 */
struct vn_platform {
	void *ctx;
	uint8_t (*in8)(void *ctx, uint16_t port);
	uint16_t (*in16)(void *ctx, uint16_t port);
	uint32_t (*in32)(void *ctx, uint16_t port);
	void (*out8)(void *ctx, uint16_t port, uint8_t v);
	void (*out16)(void *ctx, uint16_t port, uint16_t v);
	void (*out32)(void *ctx, uint16_t port, uint32_t v);
	uint16_t (*read16)(void *ctx, uint32_t addr);
	uint32_t (*read32)(void *ctx, uint32_t addr);
	void (*write16)(void *ctx, uint32_t addr, uint16_t v);
	void (*write32)(void *ctx, uint32_t addr, uint32_t v);
	void (*copy_from)(void *ctx, void *dst, uint32_t addr, unsigned len);
	void (*copy_to)(void *ctx, uint32_t addr, const void *src, unsigned len);
	/* Optional (NULL: the IP stack sums after copy_from): copy_from that
	 * also returns the bytes' sum as nd_framedev.read_sum describes it. */
	uint32_t (*copy_from_sum)(void *ctx, void *dst, uint32_t addr, unsigned len);
};

/* One device: its two virtqueues and the buffers in the memory block. */
struct vn_queue {
	uint16_t size;       /* entries, dictated by the device */
	uint16_t avail_idx;  /* next avail ring slot we fill (free-running) */
	uint16_t used_idx;   /* next used ring slot we read (free-running) */
	uint32_t desc, avail, used; /* linear addresses of the three parts */
};

struct vn_dev {
	const struct vn_platform *p;
	struct vn_queue rx, tx;
	uint32_t mem, mem_size;
	uint32_t rx_bufs_at, tx_bufs_at; /* linear addresses of the buffer arrays */
	uint16_t rx_bufs;
	uint16_t held;       /* rx buffer receive() took, VN_NONE if none */
	uint16_t held_len;   /* its frame's length */
	uint8_t tx_busy;     /* bit i: tx buffer i is with the device */
	uint8_t notify_due;  /* rx buffers posted that the device may not know of */
	uint8_t stopped;     /* reset: never touch the device again */
	uint8_t mac[6];
	uint32_t notifies;   /* rx queue notifications sent (for measurements) */
};

#define VN_NONE 0xffff
#define VN_TX_BUFS 8

enum vn_result {
	VN_OK = 0,
	VN_E_DEVICE = -1,   /* no queues, no MAC, or queues the driver cannot use */
	VN_E_ARG = -2,      /* bad buffer count or memory block */
};

/*
 * Reset the device, announce the driver and size its queues.  *mem_size is
 * then the size of the one block of device-visible memory nd_vn_start()
 * needs for rx_bufs receive buffers (1 to 128): 4 KiB aligned, below
 * 4 GiB, owned by the device until nd_vn_reset().
 */
int nd_vn_probe(struct vn_dev *d, const struct vn_platform *p, unsigned rx_bufs,
		uint32_t *mem_size);

/* Lay the queues out in the block at linear address mem, post every
 * receive buffer, start the device and fill dev (ctx = d). */
int nd_vn_start(struct vn_dev *d, uint32_t mem, struct nd_framedev *dev);

/* Status 0: the device stops all DMA and forgets the queues.  The block
 * is free afterwards; the nd_framedev fails from now on. */
void nd_vn_reset(struct vn_dev *d);

#endif /* NDVIRTIO_NET_H */
