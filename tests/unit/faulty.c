/* SPDX-License-Identifier: GPL-2.0-or-later */
/* A transport wrapper that loses, duplicates and reorders datagrams, for tests. */

#include <string.h>
#include "faulty.h"

static unsigned roll(struct faulty *f)
{
	f->rng ^= f->rng << 13;
	f->rng ^= f->rng >> 7;
	f->rng ^= f->rng << 17;
	return (unsigned)(f->rng % 100);
}

static int hold(uint8_t *slot, int *slot_len, const void *buf, unsigned len)
{
	if (len > FAULTY_MAX)
		return 0;
	memcpy(slot, buf, len);
	*slot_len = (int)len;
	return 1;
}

/* Outgoing: drop, hold back until after the next one, or send twice. */
static int faulty_send(void *ctx, const void *buf, unsigned len)
{
	struct faulty *f = ctx;
	int rc;

	if (roll(f) < f->loss) {
		f->dropped++;
		return 0;
	}
	if (!f->held_tx_len && roll(f) < f->reorder && hold(f->held_tx, &f->held_tx_len, buf, len)) {
		f->reordered++;
		return 0;
	}
	rc = f->inner.send(f->inner.ctx, buf, len);
	if (f->held_tx_len) {
		f->inner.send(f->inner.ctx, f->held_tx, (unsigned)f->held_tx_len);
		f->held_tx_len = 0;
	}
	if (roll(f) < f->dup) {
		f->duplicated++;
		f->inner.send(f->inner.ctx, buf, len);
	}
	return rc;
}

/* Incoming: the same faults, applied to what the server sent. */
static int faulty_recv(void *ctx, void *buf, unsigned size, uint32_t wait_ms)
{
	struct faulty *f = ctx;
	int n;

	if (f->dup_rx_len && (unsigned)f->dup_rx_len <= size) {
		n = f->dup_rx_len;
		memcpy(buf, f->dup_rx, (size_t)n);
		f->dup_rx_len = 0;
		return n;
	}
	for (;;) {
		n = f->inner.recv(f->inner.ctx, buf, size, wait_ms);
		if (n <= 0) {
			if (n == 0 && f->held_rx_len && (unsigned)f->held_rx_len <= size) {
				n = f->held_rx_len;
				memcpy(buf, f->held_rx, (size_t)n);
				f->held_rx_len = 0;
			}
			return n;
		}
		if (roll(f) < f->loss) {
			f->dropped++;
			continue;
		}
		if (!f->held_rx_len && roll(f) < f->reorder &&
		    hold(f->held_rx, &f->held_rx_len, buf, (unsigned)n)) {
			f->reordered++;
			continue;
		}
		break;
	}
	if (f->held_rx_len) {
		/* Deliver the held one after this one. */
		memcpy(f->dup_rx, f->held_rx, (size_t)f->held_rx_len);
		f->dup_rx_len = f->held_rx_len;
		f->held_rx_len = 0;
	} else if (roll(f) < f->dup) {
		f->duplicated++;
		hold(f->dup_rx, &f->dup_rx_len, buf, (unsigned)n);
	}
	return n;
}

static uint32_t faulty_now(void *ctx)
{
	struct faulty *f = ctx;

	return f->inner.now_ms(f->inner.ctx);
}

void faulty_init(struct faulty *f, const struct nd_transport *inner, uint64_t seed,
		 unsigned loss, unsigned dup, unsigned reorder, struct nd_transport *tp)
{
	memset(f, 0, sizeof(*f));
	f->inner = *inner;
	f->rng = seed ? seed : 1;
	f->loss = loss;
	f->dup = dup;
	f->reorder = reorder;
	tp->ctx = f;
	tp->send = faulty_send;
	tp->recv = faulty_recv;
	tp->now_ms = faulty_now;
}
