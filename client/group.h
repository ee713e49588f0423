/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The multicast group block cache of the client core (freestanding): checks group datagrams, keeps their sectors a while, hands them to reads. */
#ifndef ND_GROUP_H
#define ND_GROUP_H

/*
 * A client whose ATTACH offered a group (c->mc_addr not zero) joins it in
 * its environment (IP_ADD_MEMBERSHIP, a NIC filter), gives the core a
 * cache with nd_group_attach, and receives the group's datagrams through
 * its transport's recv like any other.  The core then:
 *   - drops and counts group datagrams that are malformed or truncated,
 *     carry another stream (image or image version), or lie outside the
 *     image or across a group block;
 *   - keeps the sectors of the others in a direct-mapped cache of group
 *     blocks, for `timeout_ms` (at least the server's hold-back from
 *     ATTACH, mcast_hold) from the last datagram of a block; older blocks
 *     are dropped when met, and a block whose slot another block needs is
 *     evicted;
 *   - completes a read's chunks from the cache before asking the server,
 *     and asks the server only for the chunks it lacks.  A block read is
 *     kept, not freed: the server does not send a block to the group again
 *     within its hold-back, so a block read twice within it must still be
 *     here (the seed's "data read is freed" stalled every such read until
 *     a repair);
 *   - never takes from the group a sector this client wrote in the
 *     session (its overlay holds its own data there): the cache refuses
 *     them and drops what it held of them.
 * Nothing here is BIOS-, UEFI- or host-specific: the Linux agent can use
 * it as the CLI does.
 */

#include <stddef.h>
#include <stdint.h>
#include "ndclient.h"

#define ND_GROUP_WRITES 8 /* written ranges kept apart; more merge into one hull */

/* Counters, for the environment to show and tests to check. */
struct nd_group_stats {
	uint32_t cached;    /* group datagrams taken into the cache */
	uint32_t dup;       /* group datagrams whose sectors the cache held already */
	uint32_t bad;       /* malformed: header, flags, length, truncated */
	uint32_t foreign;   /* another stream: another image or image version */
	uint32_t range;     /* outside the image or across a group block */
	uint32_t own;       /* sectors refused because this client wrote them */
	uint32_t hits;      /* sectors a read took from the cache */
	uint32_t expired;   /* blocks dropped after timeout_ms */
	uint32_t evicted;   /* blocks dropped for another block */
	uint32_t flushed;   /* times the cache was emptied for a new stream */
};

struct nd_group_entry {
	uint64_t block;     /* lba / sectors + 1; 0 = empty */
	uint32_t present;   /* bit i: sector i of the block is held */
	uint32_t seen_ms;   /* when a datagram of it last came */
};

/*
 * How the cache reaches its memory: plain memory (nd_group_attach), or
 * memory the core cannot address, which the environment copies in and out
 * (the BIOS stub keeps it in extended memory, outside its 64 KiB segment).
 * Offsets are bytes from the start of the cache's memory; ctx is the
 * environment's (plain memory: the memory itself).
 */
struct nd_group_mem {
	/* Copy len bytes of the cache at `at` to dst / from src into the cache. */
	void (*load)(void *ctx, void *dst, size_t at, unsigned len);
	void (*store)(void *ctx, size_t at, const void *src, unsigned len);
	/* The len bytes of the cache at `at`, readable until the next call
	 * of any of these (plain memory: in place; else a copy). */
	const uint8_t *(*view)(void *ctx, size_t at, unsigned len);
};

struct nd_group {
	const struct nd_group_mem *mem; /* nent entries, then their data */
	void *mem_ctx;
	size_t bytes;
	size_t data;        /* offset of the data: nent blocks of `sectors` sectors */
	uint32_t nent;
	uint16_t sectors;   /* per block, from ATTACH */
	uint8_t stream[8];  /* the stream the cached blocks came from */
	uint32_t timeout_ms;
	struct { uint64_t lba, end; } wrote[ND_GROUP_WRITES];
	uint8_t nwrote;
	struct nd_group_stats st;
};

/*
 * Give client c (attached, c->mc_addr offered) a group cache in `mem`
 * (`bytes`, 8-byte aligned: e.g. 1 MiB holds 1000 blocks of two sectors).
 * Blocks live `timeout_ms`.  0, or ND_E_ARG if nothing was offered or the
 * memory holds no block.  Called again after a new ATTACH, it empties
 * the cache but keeps the written ranges (the overlay may still hold them).
 */
int nd_group_attach(struct nd_client *c, struct nd_group *g, void *mem, size_t bytes,
		    uint32_t timeout_ms);

/* The same with `bytes` of memory reached only through mem's copies (the
 * BIOS stub's extended memory); ctx is passed to them. */
int nd_group_attach_mem(struct nd_client *c, struct nd_group *g, const struct nd_group_mem *mem,
			void *ctx, size_t bytes, uint32_t timeout_ms);

/* Stop using the group (the environment leaves it): group datagrams count
 * as stray again. */
void nd_group_detach(struct nd_client *c);

/* Check one group datagram without a client (the fuzz harness, tools):
 * 0 if it is good, else the counter it would go to (ND_GROUP_BAD, ...). */
enum nd_group_verdict { ND_GROUP_OK = 0, ND_GROUP_BAD, ND_GROUP_FOREIGN, ND_GROUP_RANGE };
int nd_group_check(const uint8_t *d, int len, const uint8_t stream[8], uint16_t sectors,
		   uint64_t image_sectors);

#endif /* ND_GROUP_H */
