/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The stubs' own polled driver for the legacy virtio-net PCI interface: two virtqueues in one memory block, no interrupts. */
#include "virtio_net.h"

void *memcpy(void *dst, const void *src, size_t n);
void *memset(void *dst, int c, size_t n);

/* Legacy virtio PCI registers, offsets in I/O BAR 0. */
#define REG_DEVICE_FEATURES 0x00
#define REG_GUEST_FEATURES 0x04
#define REG_QUEUE_PFN 0x08      /* queue address >> 12 */
#define REG_QUEUE_SIZE 0x0c
#define REG_QUEUE_SELECT 0x0e
#define REG_QUEUE_NOTIFY 0x10
#define REG_STATUS 0x12
#define REG_ISR 0x13
#define REG_NET_MAC 0x14        /* device config; MSI-X must be off to find it here */

#define STATUS_ACKNOWLEDGE 1
#define STATUS_DRIVER 2
#define STATUS_DRIVER_OK 4
#define STATUS_FAILED 0x80

#define NET_F_MAC (1u << 5)

#define QUEUE_RX 0
#define QUEUE_TX 1

/* The split virtqueue: descriptors, avail ring, used ring at the next 4 KiB. */
#define PAGE 4096u
#define DESC_SIZE 16
#define DESC_F_NEXT 1
#define DESC_F_WRITE 2
#define AVAIL_F_NO_INTERRUPT 1
#define USED_F_NO_NOTIFY 1
#define RING_HDR 4              /* flags and idx before each ring */

/*
 * Each buffer: the 10-byte legacy virtio_net_hdr at offset 0, the frame at
 * HDR_ROOM.  Without VIRTIO_F_ANY_LAYOUT a legacy device wants the header
 * in a descriptor of its own, so every buffer is a chain of two.  The frame
 * room holds 1514 bytes and a VLAN tag.
 */
#define NET_HDR_LEN 10
#define HDR_ROOM 16
#define BUF_STRIDE 1536u
#define FRAME_ROOM (BUF_STRIDE - HDR_ROOM)
#define MAX_RX_BUFS 128

static uint32_t page_up(uint32_t n)
{
	return (n + PAGE - 1) & ~(PAGE - 1);
}

static uint32_t ring_bytes(uint16_t size)
{
	return page_up(DESC_SIZE * size + RING_HDR + 2 * size + 2) + page_up(RING_HDR + 8 * size + 2);
}

static uint32_t rx_buf(const struct vn_dev *d, unsigned i)
{
	return d->rx_bufs_at + i * BUF_STRIDE;
}

static uint32_t tx_buf(const struct vn_dev *d, unsigned i)
{
	return d->tx_bufs_at + i * BUF_STRIDE;
}

static void set_status(struct vn_dev *d, uint8_t status)
{
	d->p->out8(d->p->ctx, REG_STATUS, status);
}

static void notify(struct vn_dev *d, uint16_t queue)
{
	d->p->out16(d->p->ctx, REG_QUEUE_NOTIFY, queue);
}

static void put_desc(struct vn_dev *d, struct vn_queue *q, unsigned i, uint32_t addr,
		     uint32_t len, uint16_t flags, uint16_t next)
{
	uint32_t at = q->desc + i * DESC_SIZE;

	d->p->write32(d->p->ctx, at, addr);
	d->p->write32(d->p->ctx, at + 4, 0);
	d->p->write32(d->p->ctx, at + 8, len);
	d->p->write16(d->p->ctx, at + 12, flags);
	d->p->write16(d->p->ctx, at + 14, next);
}

/* Offer the chain starting at descriptor head; x86 keeps stores in order,
 * so the device never sees the new idx before the slot. */
static void post(struct vn_dev *d, struct vn_queue *q, uint16_t head)
{
	d->p->write16(d->p->ctx, q->avail + RING_HDR + 2 * (q->avail_idx & (q->size - 1)), head);
	q->avail_idx++;
	d->p->write16(d->p->ctx, q->avail + 2, q->avail_idx);
}

/* The device's used idx, and whether it is further ahead than a queue can be. */
static int used_waiting(struct vn_dev *d, struct vn_queue *q)
{
	uint16_t n = d->p->read16(d->p->ctx, q->used + 2) - q->used_idx;

	return n > q->size ? -1 : n;
}

/* The next used element: the head of the chain and the bytes the device wrote. */
static uint32_t take_used(struct vn_dev *d, struct vn_queue *q, uint32_t *len)
{
	uint32_t at = q->used + RING_HDR + 8 * (q->used_idx & (q->size - 1));

	q->used_idx++;
	*len = d->p->read32(d->p->ctx, at + 4);
	return d->p->read32(d->p->ctx, at);
}

/*
 * QEMU clears USED_F_NO_NOTIFY only when it ran out of receive buffers, so
 * that is the only time it needs to hear about new ones.  The flag may be
 * read before the device sees the idx just written (x86 lets a load pass a
 * store), so a notification not sent stays due and receive() looks again
 * whenever it finds nothing waiting.
 */
static void kick_rx(struct vn_dev *d)
{
	if (d->p->read16(d->p->ctx, d->rx.used) & USED_F_NO_NOTIFY) {
		d->notify_due = 1;
		return;
	}
	d->notify_due = 0;
	d->notifies++;
	notify(d, QUEUE_RX);
}

static void vn_release(void *ctx)
{
	struct vn_dev *d = ctx;

	if (d->held == VN_NONE || d->stopped)
		return;
	post(d, &d->rx, 2 * d->held);
	d->held = VN_NONE;
	kick_rx(d);
}

static int vn_receive(void *ctx)
{
	struct vn_dev *d = ctx;
	uint32_t id, len;
	int n;

	if (d->stopped)
		return -1;
	vn_release(d);
	for (;;) {
		n = used_waiting(d, &d->rx);
		if (n < 0)
			return -1;
		if (!n) {
			if (d->notify_due)
				kick_rx(d);
			return 0;
		}
		id = take_used(d, &d->rx, &len);
		if (id & 1 || id / 2 >= d->rx_bufs)
			return -1; /* not a chain we posted: the device is confused */
		if (len >= NET_HDR_LEN + ND_ETH_HLEN && len <= HDR_ROOM + FRAME_ROOM) {
			d->held = id / 2;
			d->held_len = len - NET_HDR_LEN;
			return d->held_len;
		}
		post(d, &d->rx, id); /* a runt: give the buffer straight back */
	}
}

/* Whether [offset, offset + len) lies within the frame receive() took. */
static int in_held_frame(const struct vn_dev *d, unsigned offset, unsigned len)
{
	return d->held != VN_NONE && offset <= d->held_len && len <= d->held_len - offset;
}

static void vn_read(void *ctx, unsigned offset, void *dst, unsigned len)
{
	struct vn_dev *d = ctx;

	if (!in_held_frame(d, offset, len))
		return;
	d->p->copy_from(d->p->ctx, dst, rx_buf(d, d->held) + HDR_ROOM + offset, len);
}

static uint32_t vn_read_sum(void *ctx, unsigned offset, void *dst, unsigned len)
{
	struct vn_dev *d = ctx;

	if (!in_held_frame(d, offset, len))
		return 0;
	return d->p->copy_from_sum(d->p->ctx, dst, rx_buf(d, d->held) + HDR_ROOM + offset, len);
}

/* Mark every tx buffer the device has finished with as free. */
static void reclaim_tx(struct vn_dev *d)
{
	uint32_t id, len;
	int n = used_waiting(d, &d->tx);

	while (n-- > 0) {
		id = take_used(d, &d->tx, &len);
		if (id / 2 < VN_TX_BUFS)
			d->tx_busy &= ~(1u << (id / 2));
	}
}

static int vn_transmit(void *ctx, const void *frame, unsigned len)
{
	struct vn_dev *d = ctx;
	unsigned i;

	if (d->stopped || len > FRAME_ROOM)
		return -1;
	reclaim_tx(d);
	for (i = 0; i < VN_TX_BUFS && d->tx_busy & (1u << i); i++)
		;
	if (i == VN_TX_BUFS) {
		notify(d, QUEUE_TX); /* in case the device missed the last one */
		return -1;
	}
	d->p->copy_to(d->p->ctx, tx_buf(d, i) + HDR_ROOM, frame, len);
	d->p->write32(d->p->ctx, d->tx.desc + (2 * i + 1) * DESC_SIZE + 8, len);
	d->tx_busy |= 1u << i;
	post(d, &d->tx, 2 * i);
	/* Sends are few (requests, ARP): always tell the device. */
	notify(d, QUEUE_TX);
	return 0;
}

/* Select a queue and learn its size: a power of two holding `chains` chains of two. */
static int probe_queue(struct vn_dev *d, uint16_t index, struct vn_queue *q, unsigned chains)
{
	d->p->out16(d->p->ctx, REG_QUEUE_SELECT, index);
	q->size = d->p->in16(d->p->ctx, REG_QUEUE_SIZE);
	if (!q->size || (q->size & (q->size - 1)) || q->size < 2 * chains)
		return VN_E_DEVICE;
	return VN_OK;
}

int nd_vn_probe(struct vn_dev *d, const struct vn_platform *p, unsigned rx_bufs,
		uint32_t *mem_size)
{
	unsigned i;

	memset(d, 0, sizeof(*d));
	d->p = p;
	d->stopped = 1;
	d->held = VN_NONE;
	if (!rx_bufs || rx_bufs > MAX_RX_BUFS)
		return VN_E_ARG;
	d->rx_bufs = rx_bufs;
	set_status(d, 0);
	set_status(d, STATUS_ACKNOWLEDGE);
	set_status(d, STATUS_ACKNOWLEDGE | STATUS_DRIVER);
	if (!(p->in32(p->ctx, REG_DEVICE_FEATURES) & NET_F_MAC) ||
	    probe_queue(d, QUEUE_RX, &d->rx, rx_bufs) || probe_queue(d, QUEUE_TX, &d->tx, VN_TX_BUFS)) {
		set_status(d, STATUS_FAILED);
		return VN_E_DEVICE;
	}
	p->out32(p->ctx, REG_GUEST_FEATURES, NET_F_MAC);
	for (i = 0; i < 6; i++)
		d->mac[i] = p->in8(p->ctx, REG_NET_MAC + i);
	d->mem_size = ring_bytes(d->rx.size) + ring_bytes(d->tx.size) +
		      page_up((rx_bufs + VN_TX_BUFS) * BUF_STRIDE);
	*mem_size = d->mem_size;
	return VN_OK;
}

/* Zero len bytes of device-visible memory (the rings start out empty). */
static void zero_mem(struct vn_dev *d, uint32_t at, uint32_t len)
{
	uint8_t zeros[64];
	uint32_t n;

	memset(zeros, 0, sizeof(zeros));
	for (; len; at += n, len -= n) {
		n = len < sizeof(zeros) ? len : sizeof(zeros);
		d->p->copy_to(d->p->ctx, at, zeros, n);
	}
}

/* Place a queue's three parts at linear address at and give it to the device. */
static void place_queue(struct vn_dev *d, uint16_t index, struct vn_queue *q, uint32_t at)
{
	q->desc = at;
	q->avail = at + DESC_SIZE * q->size;
	q->used = at + page_up(DESC_SIZE * q->size + RING_HDR + 2 * q->size + 2);
	q->avail_idx = 0;
	q->used_idx = 0;
	d->p->write16(d->p->ctx, q->avail, AVAIL_F_NO_INTERRUPT);
	d->p->out16(d->p->ctx, REG_QUEUE_SELECT, index);
	d->p->out32(d->p->ctx, REG_QUEUE_PFN, at / PAGE);
}

int nd_vn_start(struct vn_dev *d, uint32_t mem, struct nd_framedev *dev)
{
	uint32_t rings = ring_bytes(d->rx.size) + ring_bytes(d->tx.size);
	unsigned i;

	if (!d->mem_size || !mem || mem % PAGE || mem + d->mem_size < mem)
		return VN_E_ARG;
	d->mem = mem;
	d->rx_bufs_at = mem + rings;
	d->tx_bufs_at = d->rx_bufs_at + d->rx_bufs * BUF_STRIDE;
	zero_mem(d, mem, rings);
	place_queue(d, QUEUE_RX, &d->rx, mem);
	place_queue(d, QUEUE_TX, &d->tx, mem + ring_bytes(d->rx.size));
	for (i = 0; i < d->rx_bufs; i++) {
		put_desc(d, &d->rx, 2 * i, rx_buf(d, i), NET_HDR_LEN, DESC_F_WRITE | DESC_F_NEXT,
			 2 * i + 1);
		put_desc(d, &d->rx, 2 * i + 1, rx_buf(d, i) + HDR_ROOM, FRAME_ROOM, DESC_F_WRITE, 0);
		post(d, &d->rx, 2 * i);
	}
	for (i = 0; i < VN_TX_BUFS; i++) {
		zero_mem(d, tx_buf(d, i), NET_HDR_LEN); /* no offloads: an all-zero header */
		put_desc(d, &d->tx, 2 * i, tx_buf(d, i), NET_HDR_LEN, DESC_F_NEXT, 2 * i + 1);
		put_desc(d, &d->tx, 2 * i + 1, tx_buf(d, i) + HDR_ROOM, 0, 0, 0);
	}
	d->tx_busy = 0;
	d->held = VN_NONE;
	d->stopped = 0;
	set_status(d, STATUS_ACKNOWLEDGE | STATUS_DRIVER | STATUS_DRIVER_OK);
	notify(d, QUEUE_RX);
	dev->ctx = d;
	memcpy(dev->mac, d->mac, sizeof(dev->mac));
	dev->mtu = 1500;
	dev->transmit = vn_transmit;
	dev->receive = vn_receive;
	dev->read = vn_read;
	dev->read_sum = d->p->copy_from_sum ? vn_read_sum : NULL;
	dev->release = vn_release;
	return VN_OK;
}

void nd_vn_reset(struct vn_dev *d)
{
	unsigned n;

	if (!d->p)
		return;
	/* Frames still in the ring go out first (the last may be the IGMP
	 * leave of ExitBootServices): the device sends them off its own
	 * thread, so wait for it, boundedly. */
	for (n = 0; d->tx_busy && !d->stopped && n < 200000; n++)
		reclaim_tx(d);
	set_status(d, 0);
	/* Reading the ISR drops an interrupt line the device may have raised. */
	d->p->in8(d->p->ctx, REG_ISR);
	d->stopped = 1;
	d->held = VN_NONE;
}
