/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Copy-on-write overlay layer: a sparse data file plus a persistent block map. */

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "netdisk/proto.h"
#include "layer.h"

/*
 * The data file has the lower layer's size and holds a block at its own
 * offset; only blocks written through the overlay are allocated.  The map file
 * is a 64-byte header (magic, lower size, block size, lower version) and then
 * one bit per block.  A write stores its data
 * before the map bits that make it visible, so after a crash a block reads
 * either old or new, and a flush (fdatasync of both) makes it durable.
 *
 * Reads hold the overlay's lock shared and writes exclusively (the map is
 * updated byte by byte); a flush holds none: fdatasync may run beside writes.
 */

#define OV_BLOCK 4096u
#define OV_MAGIC "NDOVMAP1"
#define OV_HDR 64

struct overlay {
	struct layer l;
	int data_fd;
	int map_fd;
	uint64_t blocks;
	uint8_t *map; /* one bit per block, as in the map file */
	uint64_t used; /* blocks set in map (for overlay_used without a scan) */
	pthread_rwlock_t lock; /* map and data: reads shared, writes exclusive */
};

static int allocated(struct overlay *o, uint64_t b)
{
	return (o->map[b / 8] >> (b % 8)) & 1;
}

/* Count the blocks a loaded map holds. */
static void count_used(struct overlay *o)
{
	uint64_t b;

	o->used = 0;
	for (b = 0; b < o->blocks; b++)
		o->used += allocated(o, b);
}

static int ov_read(struct layer *l, void *buf, size_t len, uint64_t off, int flags)
{
	struct overlay *o = (struct overlay *)l;
	int rc = 0;

	pthread_rwlock_rdlock(&o->lock);

	while (len) {
		uint64_t b = off / OV_BLOCK;
		int here = allocated(o, b);
		size_t run = OV_BLOCK - off % OV_BLOCK;

		/* Extend the run over following blocks in the same layer. */
		while (run < len && allocated(o, b + (off % OV_BLOCK + run) / OV_BLOCK) == here)
			run += OV_BLOCK;
		if (run > len)
			run = len;
		rc = here ? pread_flags(o->data_fd, buf, run, off, flags)
			  : l->lower->ops->read(l->lower, buf, run, off, flags);
		if (rc < 0)
			break;
		buf = (char *)buf + run;
		off += run;
		len -= run;
	}
	pthread_rwlock_unlock(&o->lock);
	return rc;
}

/* Copy block b up from the lower layer so a partial write can land on it. */
static int fill_block(struct overlay *o, uint64_t b)
{
	uint8_t blk[OV_BLOCK];
	int rc = layer_read(o->l.lower, blk, OV_BLOCK, b * OV_BLOCK);

	return rc < 0 ? rc : pwrite_full(o->data_fd, blk, OV_BLOCK, b * OV_BLOCK);
}

/* Mark blocks first..last allocated, in memory and in the map file. */
static int mark(struct overlay *o, uint64_t first, uint64_t last)
{
	uint64_t b;

	for (b = first; b <= last; b++) {
		o->used += !allocated(o, b);
		o->map[b / 8] |= (uint8_t)(1u << (b % 8));
	}
	return pwrite_full(o->map_fd, o->map + first / 8, (size_t)(last / 8 - first / 8 + 1),
			   OV_HDR + first / 8);
}

static int ov_write(struct layer *l, const void *buf, size_t len, uint64_t off)
{
	struct overlay *o = (struct overlay *)l;
	uint64_t first = off / OV_BLOCK, last = (off + len - 1) / OV_BLOCK;
	int rc = 0;

	if (!len)
		return 0;
	pthread_rwlock_wrlock(&o->lock);
	if (off % OV_BLOCK && !allocated(o, first))
		rc = fill_block(o, first);
	if (!rc && (off + len) % OV_BLOCK && !allocated(o, last) &&
	    (last != first || !(off % OV_BLOCK)))
		rc = fill_block(o, last);
	if (!rc)
		rc = pwrite_full(o->data_fd, buf, len, off);
	if (!rc)
		rc = mark(o, first, last);
	pthread_rwlock_unlock(&o->lock);
	return rc;
}

static int ov_flush(struct layer *l)
{
	struct overlay *o = (struct overlay *)l;

	if (fdatasync(o->data_fd) < 0 || fdatasync(o->map_fd) < 0)
		return -errno;
	return 0;
}

static void ov_free(struct overlay *o);

static void ov_close(struct layer *l)
{
	ov_free((struct overlay *)l);
}

static const struct layer_ops overlay_ops = {
	.read = ov_read,
	.write = ov_write,
	.flush = ov_flush,
	.close = ov_close,
};

/* Load the map file: 1 if loaded, 0 if there is none, -1 if it was made
 * over another version of the lower layer. */
static int load_map(struct overlay *o, size_t map_bytes)
{
	uint8_t hdr[OV_HDR];

	if (pread_full(o->map_fd, hdr, OV_HDR, 0) < 0 || memcmp(hdr, OV_MAGIC, 8))
		return 0;
	if (nd_get64(hdr + 8) != o->l.size || nd_get32(hdr + 16) != OV_BLOCK ||
	    nd_get64(hdr + 20) != layer_version(o->l.lower))
		return -1;
	if (pread_full(o->map_fd, o->map, map_bytes, OV_HDR) < 0)
		return 0;
	count_used(o);
	return 1;
}

/* Start an empty overlay: truncate both files and write a fresh map. */
static int reset(struct overlay *o, size_t map_bytes)
{
	uint8_t hdr[OV_HDR] = OV_MAGIC;

	nd_put64(hdr + 8, o->l.size);
	nd_put32(hdr + 16, OV_BLOCK);
	nd_put64(hdr + 20, layer_version(o->l.lower));
	memset(o->map, 0, map_bytes);
	o->used = 0;
	if (ftruncate(o->data_fd, 0) < 0 || ftruncate(o->data_fd, (off_t)o->l.size) < 0 ||
	    ftruncate(o->map_fd, 0) < 0 || pwrite_full(o->map_fd, hdr, OV_HDR, 0) < 0 ||
	    pwrite_full(o->map_fd, o->map, map_bytes, OV_HDR) < 0)
		return -errno;
	return 0;
}

/* Free an overlay that failed to open (or is being closed): fds, map, lock. */
static void ov_free(struct overlay *o)
{
	if (o->data_fd >= 0)
		close(o->data_fd);
	if (o->map_fd >= 0)
		close(o->map_fd);
	free(o->map);
	pthread_rwlock_destroy(&o->lock);
	free(o);
}

/* An overlay over `lower` with its files opened with `oflags` and an empty
 * map of *map_bytes; NULL with err (naming `what`) if it cannot be. */
static struct overlay *ov_new(struct layer *lower, const char *data_path, const char *map_path,
			      int oflags, const char *what, size_t *map_bytes, char *err,
			      size_t errlen)
{
	struct overlay *o = calloc(1, sizeof(*o));

	if (!o) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	pthread_rwlock_init(&o->lock, NULL);
	o->l.ops = &overlay_ops;
	o->l.lower = lower;
	o->l.size = lower->size;
	o->blocks = (lower->size + OV_BLOCK - 1) / OV_BLOCK;
	*map_bytes = (size_t)((o->blocks + 7) / 8);
	o->map = calloc(1, *map_bytes);
	o->data_fd = open(data_path, oflags | O_CLOEXEC, 0600);
	o->map_fd = o->data_fd < 0 ? -1 : open(map_path, oflags | O_CLOEXEC, 0600);
	if (!o->map || o->data_fd < 0 || o->map_fd < 0) {
		snprintf(err, errlen, "cannot open %s %s: open: %s", what, data_path, strerror(errno));
		ov_free(o);
		return NULL;
	}
	return o;
}

struct layer *overlay_open(struct layer *lower, const char *data_path, const char *map_path,
			   int fresh, int *stale, char *err, size_t errlen)
{
	size_t map_bytes;
	struct overlay *o = ov_new(lower, data_path, map_path, O_RDWR | O_CREAT, "overlay",
				   &map_bytes, err, errlen);
	int loaded = 0;

	if (!o)
		return NULL;
	if (!fresh)
		loaded = load_map(o, map_bytes);
	*stale = loaded < 0;
	if (loaded <= 0 && reset(o, map_bytes) < 0) {
		snprintf(err, errlen, "cannot create overlay %s: %s", data_path, strerror(errno));
		ov_free(o);
		return NULL;
	}
	return &o->l;
}

/* A version delta of the image store: like an overlay, but never reset: it is
 * created empty (OVD_CREATE) or must load, over exactly the lower layer it was
 * made over; read-only unless OVD_WRITABLE (the maintenance version). */
struct layer *overlay_open_delta(struct layer *lower, const char *data_path, const char *map_path,
				 int flags, char *err, size_t errlen)
{
	int oflags = flags & OVD_CREATE ? O_RDWR | O_CREAT | O_TRUNC
				       : flags & OVD_WRITABLE ? O_RDWR : O_RDONLY;
	size_t map_bytes;
	struct overlay *o = ov_new(lower, data_path, map_path, oflags, "version delta", &map_bytes,
				   err, errlen);
	int loaded;

	if (!o)
		return NULL;
	if (flags & OVD_CREATE) {
		if (reset(o, map_bytes) < 0 || fsync(o->data_fd) < 0 || fsync(o->map_fd) < 0) {
			snprintf(err, errlen, "cannot create version delta %s: %s", data_path,
				 strerror(errno));
			ov_free(o);
			return NULL;
		}
		return &o->l;
	}
	loaded = load_map(o, map_bytes);
	if (loaded <= 0) {
		snprintf(err, errlen, "version delta %s: %s", map_path,
			 loaded < 0 ? "made over another layer than its parent version"
				    : "no valid block map");
		ov_free(o);
		return NULL;
	}
	return &o->l;
}

/* Bytes of data an overlay or delta holds (allocated blocks), for `image
 * versions`, `netdisk status` and the metrics. */
uint64_t overlay_used(struct layer *l)
{
	struct overlay *o = (struct overlay *)l;
	uint64_t n;

	pthread_rwlock_rdlock(&o->lock);
	n = o->used;
	pthread_rwlock_unlock(&o->lock);
	return n * OV_BLOCK;
}

/* Is this layer an overlay (a delta), as opposed to a file? */
int overlay_is_delta(struct layer *l)
{
	return l->ops == &overlay_ops;
}

void overlay_remove(const char *data_path, const char *map_path)
{
	unlink(data_path);
	unlink(map_path);
}

int layer_own_data(struct layer *l, uint64_t off, uint64_t len)
{
	struct overlay *o = (struct overlay *)l;
	uint64_t b, last;
	int any = 0;

	if (!l)
		return 0;
	if (l->ops != &overlay_ops)
		return 1; /* a writable image (direct mode): every byte is its own */
	if (!len || off >= l->size)
		return 0;
	if (len > l->size - off)
		len = l->size - off;
	last = (off + len - 1) / OV_BLOCK;
	pthread_rwlock_rdlock(&o->lock);
	for (b = off / OV_BLOCK; b <= last && !any; b++) {
		if (b % 8 == 0 && b + 8 <= last + 1 && !o->map[b / 8]) {
			b += 7; /* a whole map byte of unwritten blocks */
			continue;
		}
		any = allocated(o, b);
	}
	pthread_rwlock_unlock(&o->lock);
	return any;
}
