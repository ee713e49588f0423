/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Stacked storage layers: a raw image file at the bottom, per-client overlays above it. */
#ifndef LAYER_H
#define LAYER_H

#include <errno.h>
#include <stdint.h>
#include <sys/types.h>

struct layer;

#define LAYER_NOWAIT 1 /* read: -EAGAIN rather than wait for storage (the page cache only) */

/* What every layer does.  Offsets and lengths are in bytes; 0 or -errno. */
struct layer_ops {
	int (*read)(struct layer *l, void *buf, size_t len, uint64_t off, int flags);
	int (*write)(struct layer *l, const void *buf, size_t len, uint64_t off);
	int (*flush)(struct layer *l);
	int (*trim)(struct layer *l, uint64_t off, size_t len); /* NULL: not supported */
	uint64_t (*version)(struct layer *l); /* changes when the content is changed behind our back */
	void (*close)(struct layer *l);
};

struct layer {
	const struct layer_ops *ops;
	struct layer *lower; /* the layer reads fall through to, or NULL */
	uint64_t size;       /* bytes */
};

static inline int layer_read(struct layer *l, void *buf, size_t len, uint64_t off)
{
	return l->ops->read(l, buf, len, off, 0);
}

/* A read that fails (-EAGAIN, or any other error) rather than wait for storage. */
static inline int layer_read_cached(struct layer *l, void *buf, size_t len, uint64_t off)
{
	return l->ops->read(l, buf, len, off, LAYER_NOWAIT);
}

static inline int layer_write(struct layer *l, const void *buf, size_t len, uint64_t off)
{
	return l->ops->write(l, buf, len, off);
}

static inline int layer_flush(struct layer *l)
{
	return l->ops->flush(l);
}

/* Let the layer drop a range's storage (reads of it are then unspecified). */
static inline int layer_trim(struct layer *l, uint64_t off, size_t len)
{
	return l->ops->trim ? l->ops->trim(l, off, len) : -EOPNOTSUPP;
}

/* What overlays record of the layer below them, to notice it changed. */
static inline uint64_t layer_version(struct layer *l)
{
	return l->ops->version ? l->ops->version(l) : 0;
}

/* Close this layer only (not the ones below it). */
static inline void layer_close(struct layer *l)
{
	if (l)
		l->ops->close(l);
}

/* A raw image file.  Writable only if `writable`; closing it closes the fd. */
struct layer *file_layer_open(const char *path, int writable, char *err, size_t errlen);

/* A copy-on-write overlay over `lower` kept in DATA_PATH (sparse data file)
 * and MAP_PATH (block map).  `fresh` discards what they held.  An overlay
 * made over another version of the lower layer (its size or layer_version
 * differ: the image was changed) is discarded too, and *stale says so. */
struct layer *overlay_open(struct layer *lower, const char *data_path, const char *map_path,
			   int fresh, int *stale, char *err, size_t errlen);

#define OVD_WRITABLE 1 /* overlay_open_delta: open for writing (a maintenance version) */
#define OVD_CREATE 2   /* ... create it empty (truncating what was there) */
struct layer *overlay_open_delta(struct layer *lower, const char *data_path, const char *map_path,
				 int flags, char *err, size_t errlen);
uint64_t overlay_used(struct layer *l);   /* bytes in the overlay's allocated blocks */
int overlay_is_delta(struct layer *l);    /* is this layer an overlay? */
/* Does the session layer `l` (its own: an overlay, a writable image, or
 * NULL) hold data of its own in [off, off+len): blocks its client wrote?
 * 1 for a writable image, 0 for NULL. */
int layer_own_data(struct layer *l, uint64_t off, uint64_t len);

/* Remove an overlay's files (after layer_close). */
void overlay_remove(const char *data_path, const char *map_path);

/* Full pread/pwrite that return 0 or -errno, retrying short transfers.
 * pread_flags takes LAYER_NOWAIT. */
int pread_flags(int fd, void *buf, size_t len, uint64_t off, int flags);
int pread_full(int fd, void *buf, size_t len, uint64_t off);
int pwrite_full(int fd, const void *buf, size_t len, uint64_t off);

#endif /* LAYER_H */
