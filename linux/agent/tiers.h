/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The write-redirection chain of netdisk-attach (issue #17): RAM, local disk and
 * server tiers, one write target at a time, reads newest copy first; plus the
 * parser of control-socket commands (the write-cache setting: common/wcache.h). */
#ifndef TIERS_H
#define TIERS_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include "wcache.h"

#define TIER_BLOCK 4096u          /* the chain's unit: one bit/slot per 4 KiB */
#define TIER_STRIPES 64           /* same-block requests serialize on block % 64 */
#define TIER_DISK_DATA (1u << 20) /* a disk tier's slots start 1 MiB in (labels kept) */

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
 * a hash from block to slot, and the slots in least-recently-written order. */
struct tier {
	int present;
	uint32_t nslots, used, nfree;
	uint8_t *mem;        /* RAM: nslots * TIER_BLOCK, preallocated */
	int fd;              /* disk: slot s at TIER_DISK_DATA + s * TIER_BLOCK */
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
