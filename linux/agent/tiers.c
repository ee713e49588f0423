/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The write-redirection chain (tiers.h): where each 4 KiB block's newest copy
 * is, and reads and writes through RAM, local disk and server tiers.
 *
 * Invariant: at most one local tier holds a block.  A write stores the block
 * in the target and drops every other local copy (a write to the server drops
 * them all), so the first holder found walking the targets newest-redirection
 * first is the newest copy, and a stale copy never takes up room.  A block no
 * local tier holds is read from the server (its overlay, then the image).
 * All memory is allocated when a tier is added; the I/O path allocates nothing.
 * A persistent disk tier's map is loaded, reset and synced here too (its
 * format: ptier.c). */

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include "tiers.h"

#define NONE UINT32_MAX

static const char *const names[3] = { "ram", "disk", "server" };

const char *chain_target_name(int target)
{
	return target >= 0 && target < 3 ? names[target] : "?";
}

int chain_init(struct chain *c, uint64_t size, const struct chain_server *srv,
	       void (*warn)(const char *))
{
	int i;

	memset(c, 0, sizeof(*c));
	c->size = size;
	c->nblocks = (size + TIER_BLOCK - 1) / TIER_BLOCK;
	c->srv = srv;
	c->warn = warn;
	c->target = TGT_SERVER;
	c->order[0] = TGT_SERVER;
	c->norder = 1;
	pthread_mutex_init(&c->lock, NULL);
	for (i = 0; i < TIER_STRIPES; i++)
		pthread_mutex_init(&c->stripe[i], NULL);
	return 0;
}

static void tier_free(struct tier *t)
{
	if (t->mem)
		munmap(t->mem, (size_t)t->nslots * TIER_BLOCK);
	free(t->hkey);
	free(t->hval);
	free(t->slot_block);
	free(t->prev);
	free(t->next);
	free(t->freeslots);
	free(t->dmap);
	free(t->dirty);
	free(t->dirtylist);
	free(t->pending);
	free(t->page);
	memset(t, 0, sizeof(*t));
}

void chain_free(struct chain *c)
{
	tier_free(&c->t[TGT_RAM]);
	tier_free(&c->t[TGT_DISK]);
}

static int tier_setup(struct tier *t, uint64_t slots64, const char *name)
{
	uint32_t i, n;

	if (slots64 == 0 || slots64 >= (1u << 30))
		return -EINVAL;
	n = (uint32_t)slots64;
	memset(t, 0, sizeof(*t));
	t->nslots = n;
	for (t->hcap = 16; t->hcap < 2 * n; t->hcap *= 2)
		;
	t->hkey = calloc(t->hcap, sizeof(*t->hkey));
	t->hval = calloc(t->hcap, sizeof(*t->hval));
	t->slot_block = calloc(n, sizeof(*t->slot_block));
	t->prev = calloc(n, sizeof(*t->prev));
	t->next = calloc(n, sizeof(*t->next));
	t->freeslots = calloc(n, sizeof(*t->freeslots));
	if (!t->hkey || !t->hval || !t->slot_block || !t->prev || !t->next || !t->freeslots) {
		tier_free(t);
		return -ENOMEM;
	}
	for (i = 0; i < n; i++)
		t->freeslots[i] = n - 1 - i; /* slot 0 is handed out first */
	t->nfree = n;
	t->head = t->tail = NONE;
	t->fd = -1;
	snprintf(t->name, sizeof(t->name), "%s", name);
	return 0;
}

int chain_add_ram(struct chain *c, uint64_t bytes)
{
	struct tier *t = &c->t[TGT_RAM];
	int rc;

	if (t->present)
		return -EEXIST;
	rc = tier_setup(t, bytes / TIER_BLOCK, "ram");
	if (rc)
		return rc;
	/* Preallocated and, under the agent's mlockall(MCL_FUTURE), resident. */
	t->mem = mmap(NULL, (size_t)t->nslots * TIER_BLOCK, PROT_READ | PROT_WRITE,
		      MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (t->mem == MAP_FAILED) {
		rc = -errno;
		t->mem = NULL;
		tier_free(t);
		return rc;
	}
	pthread_mutex_lock(&c->lock);
	t->present = 1;
	pthread_mutex_unlock(&c->lock);
	return 0;
}

int chain_add_disk(struct chain *c, int fd, uint64_t bytes, const char *name)
{
	struct tier *t = &c->t[TGT_DISK];
	struct tier fresh;
	int rc;

	if (t->present)
		return -EEXIST;
	rc = tier_setup(&fresh, bytes / TIER_BLOCK, name);
	if (rc)
		return rc;
	fresh.fd = fd;
	fresh.data_off = TIER_DISK_DATA;
	pthread_mutex_lock(&c->lock);
	*t = fresh;
	t->present = 1;
	c->overflow = 1; /* a full RAM tier now moves its oldest blocks here */
	pthread_mutex_unlock(&c->lock);
	return 0;
}

/* --- the block -> slot hash (linear probing, backward-shift deletion) --- */

static uint32_t hslot(const struct tier *t, uint64_t b)
{
	return (uint32_t)((b * 0x9e3779b97f4a7c15ull) >> 32) & (t->hcap - 1);
}

static uint32_t tier_lookup(const struct tier *t, uint64_t b)
{
	uint32_t i;

	if (!t->present)
		return NONE;
	for (i = hslot(t, b); t->hkey[i]; i = (i + 1) & (t->hcap - 1))
		if (t->hkey[i] == b + 1)
			return t->hval[i];
	return NONE;
}

static void hash_put(struct tier *t, uint64_t b, uint32_t s)
{
	uint32_t i;

	for (i = hslot(t, b); t->hkey[i]; i = (i + 1) & (t->hcap - 1))
		;
	t->hkey[i] = b + 1;
	t->hval[i] = s;
}

static void hash_del(struct tier *t, uint64_t b)
{
	uint32_t i, j, home, mask = t->hcap - 1;

	for (i = hslot(t, b); t->hkey[i] && t->hkey[i] != b + 1; i = (i + 1) & mask)
		;
	if (!t->hkey[i])
		return;
	t->hkey[i] = 0;
	/* Move later entries of the run back into the hole where their probe allows. */
	for (j = (i + 1) & mask; t->hkey[j]; j = (j + 1) & mask) {
		home = hslot(t, t->hkey[j] - 1);
		if (((j - home) & mask) >= ((j - i) & mask)) {
			t->hkey[i] = t->hkey[j];
			t->hval[i] = t->hval[j];
			t->hkey[j] = 0;
			i = j;
		}
	}
}

/* --- least-recently-written order --- */

static void lrw_unlink(struct tier *t, uint32_t s)
{
	if (t->prev[s] != NONE)
		t->next[t->prev[s]] = t->next[s];
	else
		t->head = t->next[s];
	if (t->next[s] != NONE)
		t->prev[t->next[s]] = t->prev[s];
	else
		t->tail = t->prev[s];
}

static void lrw_append(struct tier *t, uint32_t s)
{
	t->prev[s] = t->tail;
	t->next[s] = NONE;
	if (t->tail != NONE)
		t->next[t->tail] = s;
	else
		t->head = s;
	t->tail = s;
}

static void fill_warning(struct chain *c, struct tier *t)
{
	unsigned pct = (unsigned)((uint64_t)t->used * 100 / t->nslots);
	char msg[200];
	int level = pct >= 95 ? 95 : pct >= 80 ? 80 : 0;

	if (level > t->warned && c->warn) {
		snprintf(msg, sizeof(msg),
			 "write cache: %s tier %u %% full (%u of %u MiB)%s", t->name, pct,
			 (unsigned)((uint64_t)t->used * TIER_BLOCK >> 20),
			 (unsigned)((uint64_t)t->nslots * TIER_BLOCK >> 20),
			 t == &c->t[TGT_RAM] && c->overflow ? "; overflowing to disk when full"
							    : "; writes fail with an I/O error when full");
		c->warn(msg);
	}
	if (level > t->warned || pct < 75)
		t->warned = level;
}

/* Persistent tier: slot s's map entry becomes v (block + 1, or 0) at the next sync. */
static void map_set(struct tier *t, uint32_t s, uint64_t v)
{
	uint32_t p = s / PT_PER_PAGE;

	t->dmap[s] = v;
	if (!t->dirty[p]) {
		t->dirty[p] = 1;
		t->dirtylist[t->ndirty++] = p;
	}
}

/* Write map page p from dmap.  0 or -errno. */
static int map_write(struct tier *t, uint32_t p)
{
	uint64_t first = (uint64_t)p * PT_PER_PAGE;
	uint32_t n = t->nslots - first < PT_PER_PAGE ? (uint32_t)(t->nslots - first) : PT_PER_PAGE;

	pt_map_build(t->page, p, t->dmap + first, n);
	if (pwrite(t->fd, t->page, PT_PAGE, (off_t)(PT_MAP_OFF + (uint64_t)p * PT_PAGE)) != PT_PAGE)
		return errno ? -errno : -EIO;
	return 0;
}

/* Say that a sync's `call` failed with -rc (console, kernel log); rc. */
static int sync_failed(struct chain *c, struct tier *t, const char *call, int rc)
{
	char msg[200];

	if (c->warn) {
		snprintf(msg, sizeof(msg), "write cache: %s of the persistent disk tier on %s: %s",
			 call, t->name, strerror(-rc));
		c->warn(msg);
	}
	return rc;
}

/* Make a persistent tier's map durable (lock held): the data first, then the
 * changed map pages, then the slots freed since the last sync become
 * reusable.  0 or -errno (said on the console). */
static int tier_sync(struct chain *c, struct tier *t)
{
	int rc;

	if (!t->persistent || (!t->ndirty && !t->npending))
		return 0;
	if (fdatasync(t->fd) < 0)
		return sync_failed(c, t, "fdatasync", -errno);
	while (t->ndirty) {
		uint32_t p = t->dirtylist[t->ndirty - 1];

		rc = map_write(t, p);
		if (rc)
			return sync_failed(c, t, "pwrite of a map page", rc);
		t->dirty[p] = 0;
		t->ndirty--;
	}
	if (fdatasync(t->fd) < 0)
		return sync_failed(c, t, "fdatasync", -errno);
	while (t->npending)
		t->freeslots[t->nfree++] = t->pending[--t->npending];
	return 0;
}

static void tier_drop(struct tier *t, uint64_t b)
{
	uint32_t s = tier_lookup(t, b);

	if (s == NONE)
		return;
	hash_del(t, b);
	lrw_unlink(t, s);
	if (t->persistent) { /* free once the map saying so is durable */
		map_set(t, s, 0);
		t->pending[t->npending++] = s;
	} else {
		t->freeslots[t->nfree++] = s;
	}
	t->used--;
}

static int slot_write(struct tier *t, uint32_t s, const void *data)
{
	if (t->mem) {
		memcpy(t->mem + (size_t)s * TIER_BLOCK, data, TIER_BLOCK);
		return 0;
	}
	if (pwrite(t->fd, data, TIER_BLOCK, (off_t)(t->data_off + (uint64_t)s * TIER_BLOCK)) != TIER_BLOCK)
		return errno ? -errno : -EIO;
	return 0;
}

static int tier_store(struct chain *c, int which, uint64_t b, const void *data, void *spare);

/* Make room in the full RAM tier: its least recently written block moves to disk. */
static int ram_overflow(struct chain *c, void *spare)
{
	struct tier *ram = &c->t[TGT_RAM];
	uint32_t s = ram->head;
	uint64_t v;
	int rc;

	if (!c->overflow || !c->t[TGT_DISK].present || s == NONE)
		return -ENOSPC;
	v = ram->slot_block[s];
	memcpy(spare, ram->mem + (size_t)s * TIER_BLOCK, TIER_BLOCK);
	rc = tier_store(c, TGT_DISK, v, spare, NULL);
	if (rc)
		return rc;
	tier_drop(ram, v);
	return 0;
}

/* Store block b in tier `which` (lock held); spare: a block buffer for overflow. */
static int tier_store(struct chain *c, int which, uint64_t b, const void *data, void *spare)
{
	struct tier *t = &c->t[which];
	uint32_t s = tier_lookup(t, b);
	int rc, fresh = 0;

	if (s == NONE) {
		if (!t->nfree && t->npending && (rc = tier_sync(c, t)) != 0)
			return rc;
		if (!t->nfree && !(which == TGT_RAM && spare && ram_overflow(c, spare) == 0))
			return -ENOSPC;
		s = t->freeslots[--t->nfree];
		hash_put(t, b, s);
		t->slot_block[s] = b;
		if (t->persistent)
			map_set(t, s, b + 1);
		t->used++;
		fresh = 1;
	} else {
		lrw_unlink(t, s);
	}
	lrw_append(t, s);
	rc = slot_write(t, s, data);
	if (rc && fresh)
		tier_drop(t, b);
	if (fresh)
		fill_warning(c, t);
	return rc;
}

int chain_redirect(struct chain *c, int target)
{
	int i, j;

	if (target < 0 || target > TGT_SERVER)
		return -EINVAL;
	pthread_mutex_lock(&c->lock);
	if (target != TGT_SERVER && !c->t[target].present) {
		pthread_mutex_unlock(&c->lock);
		return -ENOENT;
	}
	for (i = j = 0; i < c->norder; i++)
		if (c->order[i] != target)
			c->order[j++] = c->order[i];
	memmove(c->order + 1, c->order, (size_t)j * sizeof(c->order[0]));
	c->order[0] = target;
	c->norder = j + 1;
	c->target = target;
	pthread_mutex_unlock(&c->lock);
	return 0;
}

/* Holder of block b, lock held: the first target, newest redirection first, that has it. */
static int holder(struct chain *c, uint64_t b, uint32_t *slot)
{
	int i;

	for (i = 0; i < c->norder; i++) {
		int w = c->order[i];

		if (w == TGT_SERVER)
			continue; /* the server is the fallback whatever its rank */
		*slot = tier_lookup(&c->t[w], b);
		if (*slot != NONE)
			return w;
	}
	for (i = 0; i < 2; i++) { /* a tier written before any redirection to it */
		*slot = tier_lookup(&c->t[i], b);
		if (*slot != NONE)
			return i;
	}
	return TGT_SERVER;
}

int chain_target(struct chain *c)
{
	int t;

	pthread_mutex_lock(&c->lock);
	t = c->target;
	pthread_mutex_unlock(&c->lock);
	return t;
}

int chain_is_local(struct chain *c, uint64_t off, uint32_t len)
{
	uint64_t b;
	uint32_t s;
	int local = 1;

	if (!len || off > c->size || len > c->size - off)
		return 0;
	pthread_mutex_lock(&c->lock);
	for (b = off / TIER_BLOCK; local && b <= (off + len - 1) / TIER_BLOCK; b++)
		local = holder(c, b, &s) != TGT_SERVER;
	pthread_mutex_unlock(&c->lock);
	return local;
}

int chain_holder(struct chain *c, uint64_t b)
{
	uint32_t s;
	int h;

	pthread_mutex_lock(&c->lock);
	h = holder(c, b, &s);
	pthread_mutex_unlock(&c->lock);
	return h;
}

/* Same-block requests run one at a time: lock the stripes of [b0, b1] in order. */
static uint64_t stripes_lock(struct chain *c, uint64_t b0, uint64_t b1)
{
	uint64_t mask = 0, b;
	int i;

	if (b1 - b0 >= TIER_STRIPES - 1)
		mask = ~0ull;
	else
		for (b = b0; b <= b1; b++)
			mask |= 1ull << (b % TIER_STRIPES);
	for (i = 0; i < TIER_STRIPES; i++)
		if (mask & (1ull << i))
			pthread_mutex_lock(&c->stripe[i]);
	return mask;
}

static void stripes_unlock(struct chain *c, uint64_t mask)
{
	int i;

	for (i = TIER_STRIPES - 1; i >= 0; i--)
		if (mask & (1ull << i))
			pthread_mutex_unlock(&c->stripe[i]);
}

/* Read [off, off+len) with the stripes held. */
static int read_locked(struct chain *c, void *ctx, uint64_t off, uint32_t len, uint8_t *buf)
{
	uint64_t end = off + len, run_start = 0, pos;
	int in_run = 0, rc = 0;

	for (pos = off; pos < end;) {
		uint64_t b = pos / TIER_BLOCK, bend = (b + 1) * TIER_BLOCK;
		uint32_t n = (uint32_t)((bend < end ? bend : end) - pos), s;
		int w;

		pthread_mutex_lock(&c->lock);
		w = holder(c, b, &s);
		if (w != TGT_SERVER) {
			struct tier *t = &c->t[w];

			if (t->mem)
				memcpy(buf + (pos - off), t->mem + (size_t)s * TIER_BLOCK + pos % TIER_BLOCK, n);
			else if (pread(t->fd, buf + (pos - off), n,
				       (off_t)(t->data_off + (uint64_t)s * TIER_BLOCK + pos % TIER_BLOCK)) != (ssize_t)n)
				rc = errno ? -errno : -EIO;
		}
		pthread_mutex_unlock(&c->lock);
		if (rc)
			return rc;
		if (w == TGT_SERVER && !in_run) {
			run_start = pos;
			in_run = 1;
		}
		if (w != TGT_SERVER && in_run) {
			rc = c->srv->read(ctx, run_start, (uint32_t)(pos - run_start), buf + (run_start - off));
			if (rc)
				return rc;
			in_run = 0;
		}
		pos += n;
	}
	if (in_run)
		rc = c->srv->read(ctx, run_start, (uint32_t)(end - run_start), buf + (run_start - off));
	return rc;
}

int chain_read(struct chain *c, void *ctx, uint64_t off, uint32_t len, void *buf)
{
	uint64_t mask;
	int rc;

	if (off > c->size || len > c->size - off)
		return -EINVAL;
	if (!len)
		return 0;
	mask = stripes_lock(c, off / TIER_BLOCK, (off + len - 1) / TIER_BLOCK);
	rc = read_locked(c, ctx, off, len, buf);
	stripes_unlock(c, mask);
	return rc;
}

/* Drop every local copy of blocks [b0, b1] except in tier `keep` (-1: all). */
static void drop_others(struct chain *c, uint64_t b0, uint64_t b1, int keep)
{
	uint64_t b;
	int i;

	for (i = 0; i < 2; i++)
		if (i != keep && c->t[i].present && c->t[i].used)
			for (b = b0; b <= b1; b++)
				tier_drop(&c->t[i], b);
}

/* One block's worth of a write: the whole block, or part of it merged into
 * the newest copy (read-modify-write through the chain). */
static int write_block(struct chain *c, void *ctx, int target, uint64_t b, uint64_t pos,
		       uint32_t n, const uint8_t *data, uint8_t *scratch)
{
	const uint8_t *whole = data;
	uint8_t spare[TIER_BLOCK];
	uint32_t s;
	int rc, w;

	if (n != TIER_BLOCK) {
		pthread_mutex_lock(&c->lock);
		w = holder(c, b, &s);
		pthread_mutex_unlock(&c->lock);
		if (w == TGT_SERVER && target == TGT_SERVER)
			return c->srv->write(ctx, pos, n, data); /* the server merges */
		if (w == TGT_SERVER) {
			uint64_t boff = b * TIER_BLOCK;
			uint32_t blen = (uint32_t)(boff + TIER_BLOCK <= c->size ? TIER_BLOCK : c->size - boff);

			memset(scratch, 0, TIER_BLOCK);
			rc = c->srv->read(ctx, boff, blen, scratch);
		} else {
			rc = read_locked(c, ctx, b * TIER_BLOCK,
					 (uint32_t)(b * TIER_BLOCK + TIER_BLOCK <= c->size ? TIER_BLOCK
											   : c->size - b * TIER_BLOCK),
					 scratch);
		}
		if (rc)
			return rc;
		memcpy(scratch + pos % TIER_BLOCK, data, n);
		whole = scratch;
	}
	if (target == TGT_SERVER) {
		uint64_t boff = b * TIER_BLOCK;
		uint32_t blen = (uint32_t)(boff + TIER_BLOCK <= c->size ? TIER_BLOCK : c->size - boff);

		rc = c->srv->write(ctx, boff, blen, whole);
		if (rc == 0) {
			pthread_mutex_lock(&c->lock);
			drop_others(c, b, b, -1);
			pthread_mutex_unlock(&c->lock);
		}
		return rc;
	}
	pthread_mutex_lock(&c->lock);
	rc = tier_store(c, target, b, whole, spare);
	if (rc == 0)
		drop_others(c, b, b, target);
	pthread_mutex_unlock(&c->lock);
	return rc;
}

int chain_write(struct chain *c, void *ctx, uint64_t off, uint32_t len, const void *vbuf,
		void *scratch)
{
	const uint8_t *buf = vbuf;
	uint64_t mask, end = off + len, pos, b0, b1;
	int rc = 0, target;

	if (off > c->size || len > c->size - off)
		return -EINVAL;
	if (!len)
		return 0;
	b0 = off / TIER_BLOCK;
	b1 = (end - 1) / TIER_BLOCK;
	mask = stripes_lock(c, b0, b1);
	pthread_mutex_lock(&c->lock);
	target = c->target;
	c->writes[target] += b1 - b0 + 1;
	pthread_mutex_unlock(&c->lock);
	pos = off;
	while (pos < end && rc == 0) {
		uint64_t b = pos / TIER_BLOCK;

		if (target == TGT_SERVER && pos % TIER_BLOCK == 0 && end - pos >= TIER_BLOCK) {
			/* Whole blocks to the server: one request for the run. */
			uint64_t run = (end - pos) / TIER_BLOCK * TIER_BLOCK;

			rc = c->srv->write(ctx, pos, (uint32_t)run, buf + (pos - off));
			if (rc == 0) {
				pthread_mutex_lock(&c->lock);
				drop_others(c, b, b + run / TIER_BLOCK - 1, -1);
				pthread_mutex_unlock(&c->lock);
			}
			pos += run;
			continue;
		}
		{
			uint64_t bend = (b + 1) * TIER_BLOCK;
			uint32_t n = (uint32_t)((bend < end ? bend : end) - pos);

			rc = write_block(c, ctx, target, b, pos, n, buf + (pos - off), scratch);
			pos += n;
		}
	}
	stripes_unlock(c, mask);
	return rc;
}

int chain_flush(struct chain *c, void *ctx)
{
	int rc = c->srv->flush(ctx), lrc;

	/* RAM is volatile; a persistent disk tier's data and map become durable. */
	pthread_mutex_lock(&c->lock);
	lrc = tier_sync(c, &c->t[TGT_DISK]);
	pthread_mutex_unlock(&c->lock);
	return rc ? rc : lrc;
}

void chain_status(struct chain *c, char *out, size_t len)
{
	size_t n;
	int i;

	pthread_mutex_lock(&c->lock);
	n = (size_t)snprintf(out, len, "target %s order", chain_target_name(c->target));
	for (i = 0; i < c->norder && n < len; i++)
		n += (size_t)snprintf(out + n, len - n, "%s%s", i ? "," : " ",
				      chain_target_name(c->order[i]));
	for (i = 0; i < 2 && n < len; i++)
		if (c->t[i].present)
			n += (size_t)snprintf(out + n, len - n, " %s %u/%u blocks (%s%s)",
					      chain_target_name(i), c->t[i].used, c->t[i].nslots,
					      c->t[i].name, c->t[i].persistent ? ", persistent" : "");
	if (n < len)
		snprintf(out + n, len - n, " overflow %s writes ram %llu disk %llu server %llu",
			 c->overflow ? "disk" : "none", (unsigned long long)c->writes[0],
			 (unsigned long long)c->writes[1], (unsigned long long)c->writes[2]);
	pthread_mutex_unlock(&c->lock);
}

/* --- the persistent disk tier at boot (format: ptier.c) --- */

/* Read one page of fd at off: 0 or -errno (-EIO when short). */
static int page_read(int fd, uint8_t *page, uint64_t off)
{
	ssize_t n = pread(fd, page, PT_PAGE, (off_t)off);

	return n == PT_PAGE ? 0 : n < 0 ? -errno : -EIO;
}

int disk_forget_persistent(int fd)
{
	uint8_t page[PT_PAGE];
	int rc = page_read(fd, page, PT_HDR_OFF);

	if (rc == -EIO)
		return 0; /* too small to have held one */
	if (rc)
		return rc;
	if (memcmp(page, PT_MAGIC, 8))
		return 0;
	memset(page, 0, PT_PAGE);
	if (pwrite(fd, page, PT_PAGE, PT_HDR_OFF) != PT_PAGE || fdatasync(fd) < 0)
		return errno ? -errno : -EIO;
	return 1;
}

/* Take the map from the disk into t (empty, t->present set): 0, or -1 with
 * why (a bad page, a block in two slots), or -errno with why. */
static int map_load(struct tier *t, uint64_t nblocks, char *why, size_t whylen)
{
	uint64_t e[PT_PER_PAGE];
	uint32_t p, i;
	int rc;

	for (p = 0; p < t->npages; p++) {
		rc = page_read(t->fd, t->page, PT_MAP_OFF + (uint64_t)p * PT_PAGE);
		if (rc) {
			snprintf(why, whylen, "pread of map page %u: %s", p, strerror(-rc));
			return rc;
		}
		if (pt_map_parse(t->page, p, t->nslots, nblocks, e, why, whylen) < 0)
			return -1;
		for (i = 0; i < PT_PER_PAGE && p * PT_PER_PAGE + i < t->nslots; i++) {
			uint32_t s = p * PT_PER_PAGE + i;

			if (!e[i])
				continue;
			if (tier_lookup(t, e[i] - 1) != NONE) {
				snprintf(why, whylen, "map: block %llu is in two slots",
					 (unsigned long long)(e[i] - 1));
				return -1;
			}
			hash_put(t, e[i] - 1, s);
			t->slot_block[s] = e[i] - 1;
			t->dmap[s] = e[i];
			lrw_append(t, s);
			t->used++;
		}
	}
	t->nfree = 0;
	for (i = t->nslots; i-- > 0;)
		if (!t->dmap[i])
			t->freeslots[t->nfree++] = i; /* the lowest free slot is handed out first */
	return 0;
}

/* Empty t in memory and on the disk: the header goes first (a crash in
 * between leaves no header, never a header over a half-written map), then
 * every map page empty, then the new header.  0 or -errno with why. */
static int tier_reset(struct tier *t, const struct pt_header *h, char *why, size_t whylen)
{
	uint32_t i, p;
	int rc;

	memset(t->hkey, 0, (size_t)t->hcap * sizeof(*t->hkey));
	memset(t->dmap, 0, (size_t)t->nslots * sizeof(*t->dmap));
	t->head = t->tail = NONE;
	t->used = 0;
	for (i = 0; i < t->nslots; i++)
		t->freeslots[i] = t->nslots - 1 - i;
	t->nfree = t->nslots;
	memset(t->page, 0, PT_PAGE);
	if (pwrite(t->fd, t->page, PT_PAGE, PT_HDR_OFF) != PT_PAGE || fdatasync(t->fd) < 0) {
		rc = errno ? -errno : -EIO;
		snprintf(why, whylen, "pwrite/fdatasync of the header: %s", strerror(-rc));
		return rc;
	}
	for (p = 0; p < t->npages; p++) {
		rc = map_write(t, p);
		if (rc) {
			snprintf(why, whylen, "pwrite of map page %u: %s", p, strerror(-rc));
			return rc;
		}
	}
	pt_header_build(t->page, h);
	if (fdatasync(t->fd) < 0 || pwrite(t->fd, t->page, PT_PAGE, PT_HDR_OFF) != PT_PAGE ||
	    fdatasync(t->fd) < 0) {
		rc = errno ? -errno : -EIO;
		snprintf(why, whylen, "writing the header: %s", strerror(-rc));
		return rc;
	}
	return 0;
}

int chain_add_disk_persistent(struct chain *c, int fd, uint64_t bytes, const char *name,
			      const struct pt_header *want, char *msg, size_t msglen)
{
	struct tier *t = &c->t[TGT_DISK], fresh;
	struct pt_header h = *want, have;
	char why[300];
	int rc, kept;

	msg[0] = 0;
	if (t->present)
		return -EEXIST;
	h.disk_size = c->size;
	h.nslots = bytes > PT_MAP_OFF ? pt_slots_for(bytes - PT_MAP_OFF) : 0;
	pt_layout(&h);
	rc = tier_setup(&fresh, h.nslots, name);
	if (rc)
		return rc;
	fresh.fd = fd;
	fresh.persistent = 1;
	fresh.data_off = h.data_off;
	fresh.npages = h.npages;
	fresh.dmap = calloc(h.nslots, sizeof(*fresh.dmap));
	fresh.dirty = calloc(h.npages, 1);
	fresh.dirtylist = calloc(h.npages, sizeof(*fresh.dirtylist));
	fresh.pending = calloc(h.nslots, sizeof(*fresh.pending));
	fresh.page = malloc(PT_PAGE);
	if (!fresh.dmap || !fresh.dirty || !fresh.dirtylist || !fresh.pending || !fresh.page) {
		tier_free(&fresh);
		return -ENOMEM;
	}
	fresh.present = 1; /* for tier_lookup while loading */
	rc = page_read(fd, fresh.page, PT_HDR_OFF);
	if (rc) {
		snprintf(msg, msglen, "pread of the header: %s", strerror(-rc));
		tier_free(&fresh);
		return rc;
	}
	rc = pt_header_parse(fresh.page, &have, why, sizeof(why));
	kept = rc == 0 && pt_header_matches(&have, &h, why, sizeof(why)) &&
	       (rc = map_load(&fresh, c->nblocks, why, sizeof(why))) == 0;
	if (!kept && rc < -1) { /* an I/O error reading the map */
		snprintf(msg, msglen, "%s", why);
		tier_free(&fresh);
		return rc;
	}
	if (kept) {
		snprintf(msg, msglen, "kept %u blocks written over image %s version %u", fresh.used,
			 h.image, h.vnum);
	} else {
		char reason[300];

		snprintf(reason, sizeof(reason), "%s", why);
		rc = tier_reset(&fresh, &h, why, sizeof(why));
		if (rc) {
			snprintf(msg, msglen, "%s", why);
			tier_free(&fresh);
			return rc;
		}
		snprintf(msg, msglen, "reset (%s): it starts empty over image %s version %u", reason,
			 h.image, h.vnum);
	}
	pthread_mutex_lock(&c->lock);
	*t = fresh;
	c->overflow = 1;
	pthread_mutex_unlock(&c->lock);
	return 0;
}
