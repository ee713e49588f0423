/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The multicast group block cache of the client core (freestanding): see group.h. */

#include "group.h"

void *memcpy(void *dst, const void *src, size_t n);
void *memset(void *dst, int c, size_t n);

static uint32_t now_ms(struct nd_client *c)
{
	return c->tp.now_ms(c->tp.ctx);
}

/*
 * n / d, and n % d in *rem.  The BIOS stub links no libgcc, so its build
 * (-DND_NO_DIV64) divides a 64-bit n by shifts and subtractions, and a
 * 32-bit one (every LBA of an image below 2 TiB) with the CPU's division.
 */
static uint64_t div64(uint64_t n, uint32_t d, uint32_t *rem)
{
#ifdef ND_NO_DIV64
	uint64_t q = 0, r = 0;
	int b;

	if (!(n >> 32)) {
		*rem = (uint32_t)n % d;
		return (uint32_t)n / d;
	}
	for (b = 63; b >= 0; b--) {
		r = r << 1 | (n >> b & 1);
		if (r >= d) {
			r -= d;
			q |= (uint64_t)1 << b;
		}
	}
	*rem = (uint32_t)r;
	return q;
#else
	*rem = (uint32_t)(n % d);
	return n / d;
#endif
}

static int same8(const uint8_t *a, const uint8_t *b)
{
	unsigned i;

	for (i = 0; i < 8; i++)
		if (a[i] != b[i])
			return 0;
	return 1;
}

int nd_group_check(const uint8_t *d, int len, const uint8_t stream[8], uint16_t sectors,
		   uint64_t image_sectors)
{
	const struct nd_hdr *h = (const struct nd_hdr *)d;
	uint32_t count, data_len;
	uint64_t lba;
	unsigned i;

	if (len < ND_HDR_SIZE || nd_get32(h->magic) != ND_MAGIC || h->version != ND_VERSION ||
	    h->opcode != ND_OP_READ || h->flags != (ND_FLAG_REPLY | ND_FLAG_MCAST) ||
	    nd_get16(h->status) != ND_OK || nd_get32(h->offset) != 0)
		return ND_GROUP_BAD;
	data_len = nd_get16(h->data_len);
	count = nd_get32(h->count);
	if ((uint32_t)len != ND_HDR_SIZE + data_len || count == 0 ||
	    data_len != count * ND_SECTOR_SIZE || count > ND_MC_MAX_SECTORS)
		return ND_GROUP_BAD;
	for (i = 8; i < 16; i++)
		if (h->token[i])
			return ND_GROUP_FOREIGN;
	if (!same8(h->token, stream))
		return ND_GROUP_FOREIGN;
	lba = nd_get64(h->lba);
	if (!sectors || lba >= image_sectors || count > image_sectors - lba ||
	    div64(lba, sectors, &i) != div64(lba + count - 1, sectors, &i))
		return ND_GROUP_RANGE;
	return ND_GROUP_OK;
}

/* Plain memory (nd_group_attach): ctx is the memory. */
static void plain_load(void *ctx, void *dst, size_t at, unsigned len)
{
	memcpy(dst, (uint8_t *)ctx + at, len);
}

static void plain_store(void *ctx, size_t at, const void *src, unsigned len)
{
	memcpy((uint8_t *)ctx + at, src, len);
}

static const uint8_t *plain_view(void *ctx, size_t at, unsigned len)
{
	return (const uint8_t *)ctx + at;
}

/* Entry i of the cache, copied in and out: the memory may be the
 * environment's (struct nd_group_mem). */
static void ent_load(const struct nd_group *g, uint32_t i, struct nd_group_entry *e)
{
	g->mem->load(g->mem_ctx, e, (size_t)i * sizeof(*e), sizeof(*e));
}

static void ent_store(const struct nd_group *g, uint32_t i, const struct nd_group_entry *e)
{
	g->mem->store(g->mem_ctx, (size_t)i * sizeof(*e), e, sizeof(*e));
}

/* Every entry empty. */
static void ent_clear_all(const struct nd_group *g)
{
	static const struct nd_group_entry none;
	uint32_t i;

	for (i = 0; i < g->nent; i++)
		ent_store(g, i, &none);
}

static int written(const struct nd_group *g, uint64_t lba)
{
	unsigned i;

	for (i = 0; i < g->nwrote; i++)
		if (lba >= g->wrote[i].lba && lba < g->wrote[i].end)
			return 1;
	return 0;
}

/* Where a sector goes: its group block, the cache slot of that block, and
 * its index in the block. */
struct place {
	uint64_t block;
	uint32_t slot, i;
};

static void place_of(const struct nd_group *g, uint64_t lba, struct place *p)
{
	p->block = div64(lba, g->sectors, &p->i);
	div64(p->block, g->nent, &p->slot);
}

/* Load into *e the entry of p's slot: 1 if it holds p's block, 0 if not;
 * an expired one is emptied on the way. */
static int entry_for(struct nd_group *g, const struct place *p, uint32_t now,
		     struct nd_group_entry *e)
{
	uint32_t slot = p->slot;

	ent_load(g, slot, e);
	if (!e->block)
		return 0;
	if (now - e->seen_ms >= g->timeout_ms) {
		g->st.expired++;
		e->block = 0;
		ent_store(g, slot, e);
		return 0;
	}
	return e->block == p->block + 1;
}

/* Where sector i of the block in `slot` lies in the cache's memory. */
static size_t sector_at(const struct nd_group *g, uint32_t slot, unsigned i)
{
	return g->data + ((size_t)slot * g->sectors + i) * ND_SECTOR_SIZE;
}

/* A new ATTACH (recovery, a restarted server) may bring another stream:
 * what the cache holds of the old one may be stale, so it goes. */
static void same_stream(struct nd_client *c, struct nd_group *g)
{
	if (same8(g->stream, c->mc_stream))
		return;
	ent_clear_all(g);
	memcpy(g->stream, c->mc_stream, sizeof(g->stream));
	g->st.flushed++;
}

/* The hook: a datagram flagged ND_FLAG_MCAST is in c->rxbuf. */
static int group_take(struct nd_client *c, int len)
{
	struct nd_group *g = c->group;
	const struct nd_hdr *h = (const struct nd_hdr *)c->rxbuf;
	struct nd_group_entry e;
	struct place p;
	uint64_t lba;
	uint32_t count, i, fresh = 0;

	same_stream(c, g);
	switch (nd_group_check(c->rxbuf, len, c->mc_stream, g->sectors, c->sectors)) {
	case ND_GROUP_OK: break;
	case ND_GROUP_FOREIGN: g->st.foreign++; return 0;
	case ND_GROUP_RANGE: g->st.range++; return 0;
	default: g->st.bad++; return 0;
	}
	lba = nd_get64(h->lba);
	count = nd_get32(h->count);
	place_of(g, lba, &p);
	if (!entry_for(g, &p, now_ms(c), &e)) {
		if (e.block)
			g->st.evicted++;
		e.block = p.block + 1;
		e.present = 0;
	}
	/* The server holds the block back from now on (it just sent it): it
	 * stays at least as long. */
	e.seen_ms = now_ms(c);
	for (i = 0; i < count; i++) {
		uint32_t bit = (uint32_t)1 << (p.i + i);

		if (written(g, lba + i)) {
			g->st.own++;
			continue;
		}
		if (e.present & bit)
			continue;
		g->mem->store(g->mem_ctx, sector_at(g, p.slot, p.i + i),
			      c->rxbuf + ND_HDR_SIZE + i * ND_SECTOR_SIZE, ND_SECTOR_SIZE);
		e.present |= bit;
		fresh++;
	}
	if (fresh)
		g->st.cached++;
	else
		g->st.dup++;
	if (!e.present)
		e.block = 0;
	ent_store(g, p.slot, &e);
	return fresh != 0;
}

/* Whether the cache holds sector `lba`: 1 and its place in *p. */
static int cached(struct nd_group *g, uint64_t lba, uint32_t now, struct place *p)
{
	struct nd_group_entry e;

	place_of(g, lba, p);
	return entry_for(g, p, now, &e) && (e.present >> p->i & 1);
}

static void forget(struct nd_group *g, uint64_t lba, uint32_t now)
{
	struct nd_group_entry e;
	struct place p;

	place_of(g, lba, &p);
	if (entry_for(g, &p, now, &e)) {
		e.present &= ~((uint32_t)1 << p.i);
		if (!e.present)
			e.block = 0;
		ent_store(g, p.slot, &e);
	}
}

/* The hook: complete the slot's missing chunks the cache holds whole. */
static uint64_t group_fill(struct nd_client *c, struct nd_slot *s, nd_put_fn put, void *ctx)
{
	struct nd_group *g = c->group;
	uint32_t bytes = s->count * ND_SECTOR_SIZE, i, n = nd_chunks_for(bytes, c->chunk);
	uint64_t done = 0;
	uint32_t now = now_ms(c); /* one time for the whole slot: nothing expires midway */
	struct place p;

	same_stream(c, g);
	for (i = 0; i < n && i < 64; i++) {
		uint32_t from = i * c->chunk, to = bytes - from < c->chunk ? bytes : from + c->chunk;
		uint64_t x, first = s->lba + from / ND_SECTOR_SIZE, last = s->lba + (to - 1) / ND_SECTOR_SIZE;

		if (!(s->missing >> i & 1))
			continue;
		for (x = first; x <= last && cached(g, x, now, &p); x++)
			;
		if (x <= last)
			continue;
		for (x = first; x <= last; x++) {
			uint32_t at = (uint32_t)(x - s->lba) * ND_SECTOR_SIZE;
			uint32_t a = at > from ? at : from, b = at + ND_SECTOR_SIZE < to ? at + ND_SECTOR_SIZE : to;

			place_of(g, x, &p);
			put(ctx, s->base + a,
			    g->mem->view(g->mem_ctx, sector_at(g, p.slot, p.i) + (a - at), b - a), b - a);
			if (b == at + ND_SECTOR_SIZE) /* its last byte: count each sector once */
				g->st.hits++;
			/* Not freed when read: the server holds the block back
			 * from the group for its hold time after sending it, so a
			 * second read within it would find neither the cache nor
			 * an answer, and wait for a repair.  It goes when it
			 * expires or another block needs its slot. */
		}
		done |= (uint64_t)1 << i;
	}
	return done;
}

/* The hook: [lba, lba + count) is this client's own from now on. */
static void group_wrote(struct nd_client *c, uint64_t lba, uint32_t count)
{
	struct nd_group *g = c->group;
	uint64_t end = lba + count, x;
	uint32_t now = now_ms(c);
	unsigned i;

	for (x = lba; x < end; x++)
		forget(g, x, now);
	for (i = 0; i < g->nwrote; i++) /* grow a range it touches */
		if (lba <= g->wrote[i].end && g->wrote[i].lba <= end) {
			if (lba < g->wrote[i].lba)
				g->wrote[i].lba = lba;
			if (end > g->wrote[i].end)
				g->wrote[i].end = end;
			return;
		}
	if (g->nwrote < ND_GROUP_WRITES) {
		g->wrote[g->nwrote].lba = lba;
		g->wrote[g->nwrote++].end = end;
		return;
	}
	/* Out of ranges: the last one becomes the hull of itself and this one
	 * (more than was written is refused, never less). */
	i = ND_GROUP_WRITES - 1;
	if (lba < g->wrote[i].lba)
		g->wrote[i].lba = lba;
	if (end > g->wrote[i].end)
		g->wrote[i].end = end;
}

static const struct nd_group_hooks hooks = { group_take, group_fill, group_wrote };

int nd_group_attach_mem(struct nd_client *c, struct nd_group *g, const struct nd_group_mem *mem,
			void *ctx, size_t bytes, uint32_t timeout_ms)
{
	size_t per;

	if ((c->mc_addr[0] & 0xF0) != 0xE0 || !c->mc_sectors || c->mc_sectors > ND_MC_MAX_SECTORS)
		return ND_E_ARG;
	per = sizeof(struct nd_group_entry) + (size_t)c->mc_sectors * ND_SECTOR_SIZE;
	if (c->group != g) /* the same cache again keeps its counters and written ranges */
		memset(g, 0, sizeof(*g));
	g->mem = mem;
	g->mem_ctx = ctx;
	g->bytes = bytes;
	g->sectors = c->mc_sectors;
	g->timeout_ms = timeout_ms ? timeout_ms : 1;
	/* Never shorter than the server's hold-back (and a margin for the
	 * way to the server): a block it withholds is still here. */
	if (c->mc_hold_ms && g->timeout_ms < c->mc_hold_ms + c->mc_hold_ms / 8u + 20u)
		g->timeout_ms = c->mc_hold_ms + c->mc_hold_ms / 8u + 20u;
	g->nent = (uint32_t)(bytes / per);
	if (!g->nent)
		return ND_E_ARG;
	g->data = (size_t)g->nent * sizeof(struct nd_group_entry);
	ent_clear_all(g);
	memcpy(g->stream, c->mc_stream, sizeof(g->stream));
	c->group = g;
	c->gh = &hooks;
	return ND_DONE;
}

int nd_group_attach(struct nd_client *c, struct nd_group *g, void *mem, size_t bytes,
		    uint32_t timeout_ms)
{
	static const struct nd_group_mem plain = { plain_load, plain_store, plain_view };

	return nd_group_attach_mem(c, g, &plain, mem, bytes, timeout_ms);
}

void nd_group_detach(struct nd_client *c)
{
	c->gh = 0;
}
