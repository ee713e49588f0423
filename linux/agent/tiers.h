/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The write-redirection chain of netdisk-attach (issue #17): RAM, local disk and
 * server tiers, one write target at a time, reads newest copy first; plus the
 * parser of control-socket commands (the write-cache setting: common/wcache.h). */
#ifndef TIERS_H
#define TIERS_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include "ptier.h"
#include "wcache.h"

#define TIER_BLOCK 4096u          /* the chain's unit: one bit/slot per 4 KiB */
#define TIER_STRIPES 64           /* same-block requests serialize on block % 64 */
#define TIER_DISK_DATA (1u << 20) /* a volatile disk tier's slots start 1 MiB in
				   * (labels kept); a persistent one's after its map */

enum { TGT_RAM = WC_RAM, TGT_DISK = WC_DISK, TGT_SERVER = WC_SERVER };

/* The server behind the chain; ctx is the caller's (one connection per worker).
 * Each returns 0 or -errno, and may block (reconnecting) but not fail on a
 * lost connection. */
struct chain_server {
	int (*read)(void *ctx, uint64_t off, uint32_t len, void *buf);
	int (*write)(void *ctx, uint64_t off, uint32_t len, const void *buf);
	int (*flush)(void *ctx);
};

/* A local tier: a fixed number of 4 KiB slots, in RAM or in a file/partition,
 * a hash from block to slot, and the slots in least-recently-written order.
 * A persistent disk tier also keeps its map on the disk (ptier.h): what the
 * map should say (dmap) is written at the next sync (chain_flush), after the
 * data it points to is durable, and a freed slot is reused only once the map
 * saying it is free is durable, so a crash never leaves a map entry over
 * another block's data. */
struct tier {
	int present;
	uint32_t nslots, used, nfree;
	uint8_t *mem;        /* RAM: nslots * TIER_BLOCK, preallocated */
	int fd;              /* disk: slot s at data_off + s * TIER_BLOCK */
	uint64_t data_off;
	int persistent;
	uint64_t *dmap;      /* persistent: per slot, block + 1 or 0 (as the map will say) */
	uint32_t npages;     /* ... map pages */
	uint8_t *dirty;      /* ... per page: changed since the last sync */
	uint32_t *dirtylist, ndirty;
	uint32_t *pending, npending; /* ... slots freed since the last sync */
	uint8_t *page;       /* ... one map page being written */
	uint64_t *hkey;      /* block + 1, 0 = empty; hcap entries (power of two) */
	uint32_t *hval;
	uint32_t hcap;
	uint64_t *slot_block;
	uint32_t *prev, *next, head, tail; /* LRW list; UINT32_MAX ends it */
	uint32_t *freeslots;
	int warned;          /* 0, 80 or 95: the last fill warning given */
	char name[128];
};

struct chain {
	uint64_t size, nblocks;
	struct tier t[2];    /* TGT_RAM, TGT_DISK */
	int order[3], norder; /* targets by redirection, newest first */
	int target;
	int overflow;        /* a full RAM tier moves its oldest blocks to disk (set
			      * when a disk tier is added) */
	uint64_t writes[3];  /* blocks written per target */
	pthread_mutex_t lock; /* tier metadata and local data */
	pthread_mutex_t stripe[TIER_STRIPES];
	const struct chain_server *srv;
	void (*warn)(const char *msg); /* fill warnings (console, kernel log) */
};

int chain_init(struct chain *c, uint64_t size, const struct chain_server *srv,
	       void (*warn)(const char *));
void chain_free(struct chain *c);
/* Add the RAM tier (bytes, rounded down to 4 KiB) or a disk tier on fd
 * (bytes of slots after TIER_DISK_DATA).  0 or -errno. */
int chain_add_ram(struct chain *c, uint64_t bytes);
int chain_add_disk(struct chain *c, int fd, uint64_t bytes, const char *name);
/* Add a persistent disk tier on fd, a device or file of `bytes` bytes in all:
 * its blocks are kept when its header matches `want` (image version, disk
 * size: chain's), else it is reset.  0 with what was done in msg (kept N
 * blocks, or reset and why), or -errno (an I/O error; msg says which call). */
int chain_add_disk_persistent(struct chain *c, int fd, uint64_t bytes, const char *name,
			      const struct pt_header *want, char *msg, size_t msglen);
/* Before fd serves as a volatile disk tier: a persistent tier's header on it
 * is wiped (its map is about to be overwritten).  1 if there was one, 0 if
 * not, -errno. */
int disk_forget_persistent(int fd);
/* Writes go to target from now on (it must exist): 0 or -errno. */
int chain_redirect(struct chain *c, int target);
/* I/O of any byte range inside the disk; scratch is one TIER_BLOCK buffer
 * of the caller's.  0 or -errno (-ENOSPC: no room in the target). */
int chain_read(struct chain *c, void *ctx, uint64_t off, uint32_t len, void *buf);
int chain_write(struct chain *c, void *ctx, uint64_t off, uint32_t len, const void *buf,
		void *scratch);
int chain_flush(struct chain *c, void *ctx);
/* Which target holds block b now (TGT_SERVER when no local tier does). */
int chain_holder(struct chain *c, uint64_t b);
/* The write target now; whether local tiers hold every block of a range. */
int chain_target(struct chain *c);
int chain_is_local(struct chain *c, uint64_t off, uint32_t len);
/* One line: target, order, per-tier use. */
void chain_status(struct chain *c, char *out, size_t len);
const char *chain_target_name(int target);

/* A control-socket request: "redirect ram|disk[:PATH]|server" or "status". */
enum { CTL_STATUS = 1, CTL_REDIRECT = 2 };
struct ctl_cmd {
	int cmd, target;
	char path[128];      /* disk:PATH, else "" */
};
int ctl_parse(const char *line, size_t len, struct ctl_cmd *c, char *err, size_t errlen);

#endif /* TIERS_H */
