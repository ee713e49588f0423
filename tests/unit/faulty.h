/* SPDX-License-Identifier: GPL-2.0-or-later */
/* A transport wrapper that loses, duplicates and reorders datagrams, for tests. */
#ifndef FAULTY_H
#define FAULTY_H

#include "ndclient.h"

#define FAULTY_MAX 65536

struct faulty {
	struct nd_transport inner;
	uint64_t rng;
	unsigned loss, dup, reorder; /* percent of datagrams, each direction */
	uint8_t held_tx[FAULTY_MAX], held_rx[FAULTY_MAX], dup_rx[FAULTY_MAX];
	int held_tx_len, held_rx_len, dup_rx_len;
	unsigned long dropped, duplicated, reordered;
};

/* Wrap `inner`; `tp` becomes the faulty transport. */
void faulty_init(struct faulty *f, const struct nd_transport *inner, uint64_t seed,
		 unsigned loss, unsigned dup, unsigned reorder, struct nd_transport *tp);

#endif /* FAULTY_H */
