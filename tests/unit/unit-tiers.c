/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Unit tests of netdisk-attach's write-redirection chain (linux/agent/tiers.c)
 * against an in-memory server: the D1/E1/E2 sequence, partial writes,
 * RAM overflow to disk, ENOSPC, fill warnings, a random run against a model,
 * the persistent disk tier across "reboots" (kept, reset on another image
 * version or a torn header, unflushed writes never read as another block's),
 * its on-disk format (linux/agent/ptier.c), and the write-cache /
 * control-command parsers. */

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "../../linux/agent/tiers.h"
#include "unit.h"

#define DISK (1u << 20) /* 256 blocks */

static uint8_t server_mem[DISK];
static unsigned server_writes, server_reads;

static int mem_read(void *ctx, uint64_t off, uint32_t len, void *buf)
{
	(void)ctx;
	server_reads++;
	if (off + len > DISK)
		return -EINVAL;
	memcpy(buf, server_mem + off, len);
	return 0;
}

static int mem_write(void *ctx, uint64_t off, uint32_t len, const void *buf)
{
	(void)ctx;
	server_writes++;
	if (off + len > DISK)
		return -EINVAL;
	memcpy(server_mem + off, buf, len);
	return 0;
}

static int mem_flush(void *ctx)
{
	(void)ctx;
	return 0;
}

static const struct chain_server mem_ops = { mem_read, mem_write, mem_flush };

static char warnings[1024];

static void catch_warning(const char *msg)
{
	size_t n = strlen(warnings);

	snprintf(warnings + n, sizeof(warnings) - n, "%s|", msg);
}

static int scratch_disk(void)
{
	char path[256];
	int fd;

	snprintf(path, sizeof(path), "%s/tier-disk", unit_tmpdir());
	unlink(path);
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	if (fd >= 0 && ftruncate(fd, TIER_DISK_DATA + DISK) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

static void fill(uint8_t *b, uint8_t v, size_t n)
{
	memset(b, v, n);
}

static int block_is(struct chain *c, uint64_t off, uint8_t v)
{
	uint8_t got[TIER_BLOCK];
	size_t i;

	if (chain_read(c, NULL, off, TIER_BLOCK, got))
		return 0;
	for (i = 0; i < TIER_BLOCK; i++)
		if (got[i] != v)
			return 0;
	return 1;
}

/* The example: D1 to E1 (ram), redirect E2 (disk), D1 again, redirect server. */
static void d1_e1_e2(void)
{
	struct chain c;
	uint8_t d[TIER_BLOCK], scratch[TIER_BLOCK];
	const uint64_t D1 = 5 * TIER_BLOCK;
	int fd = scratch_disk();

	memset(server_mem, 0x11, sizeof(server_mem));
	chain_init(&c, DISK, &mem_ops, NULL);
	check_that(chain_add_ram(&c, 64 * TIER_BLOCK) == 0, "tiers-add-ram", "failed");
	check_that(fd >= 0 && chain_add_disk(&c, fd, DISK, "scratch") == 0, "tiers-add-disk", "failed");
	chain_redirect(&c, TGT_RAM);
	fill(d, 0xE1, sizeof(d));
	server_writes = 0;
	check_that(chain_write(&c, NULL, D1, TIER_BLOCK, d, scratch) == 0 && block_is(&c, D1, 0xE1) &&
			   chain_holder(&c, 5) == TGT_RAM && server_writes == 0 && server_mem[D1] == 0x11,
		   "tiers-d1-in-ram", "holder %s, server writes %u, server byte %#x",
		   chain_target_name(chain_holder(&c, 5)), server_writes, server_mem[D1]);
	check_that(chain_is_local(&c, D1 + 100, 200) && !chain_is_local(&c, D1, 2 * TIER_BLOCK) &&
			   chain_target(&c) == TGT_RAM,
		   "tiers-is-local", "wrong");
	chain_redirect(&c, TGT_DISK);
	fill(d, 0xE2, sizeof(d));
	check_that(chain_write(&c, NULL, D1, TIER_BLOCK, d, scratch) == 0 && block_is(&c, D1, 0xE2) &&
			   chain_holder(&c, 5) == TGT_DISK && c.t[TGT_RAM].used == 0,
		   "tiers-d1-in-disk", "holder %s, ram used %u", chain_target_name(chain_holder(&c, 5)),
		   c.t[TGT_RAM].used);
	chain_redirect(&c, TGT_SERVER);
	check_that(block_is(&c, D1, 0xE2) && server_mem[D1] == 0x11, "tiers-d1-redirected-server-reads-disk",
		   "read is not the disk copy, or the server changed");
	check_that(block_is(&c, D1 + TIER_BLOCK, 0x11), "tiers-unwritten-from-server", "wrong");
	fill(d, 0x5E, sizeof(d));
	check_that(chain_write(&c, NULL, D1, TIER_BLOCK, d, scratch) == 0 && block_is(&c, D1, 0x5E) &&
			   server_mem[D1] == 0x5E && chain_holder(&c, 5) == TGT_SERVER &&
			   c.t[TGT_DISK].used == 0,
		   "tiers-d1-on-server", "holder %s, server byte %#x, disk used %u",
		   chain_target_name(chain_holder(&c, 5)), server_mem[D1], c.t[TGT_DISK].used);
	/* And back to ram: the order now is ram, server, disk. */
	chain_redirect(&c, TGT_RAM);
	check_that(c.order[0] == TGT_RAM && c.order[1] == TGT_SERVER && c.order[2] == TGT_DISK,
		   "tiers-order-newest-first", "order %d %d %d", c.order[0], c.order[1], c.order[2]);
	check_that(chain_redirect(&c, 7) == -EINVAL, "tiers-redirect-bad", "accepted");
	chain_free(&c);
	close(fd);

	chain_init(&c, DISK, &mem_ops, NULL);
	check_that(chain_redirect(&c, TGT_DISK) == -ENOENT && c.target == TGT_SERVER,
		   "tiers-redirect-missing-tier", "accepted");
	chain_free(&c);
}

/* A 512-byte write into a block the server holds: the block moves to RAM merged. */
static void partial(void)
{
	struct chain c;
	uint8_t d[512], scratch[TIER_BLOCK], got[TIER_BLOCK];
	int ok = 1, i;

	memset(server_mem, 0x22, sizeof(server_mem));
	chain_init(&c, DISK, &mem_ops, NULL);
	chain_add_ram(&c, 8 * TIER_BLOCK);
	chain_redirect(&c, TGT_RAM);
	fill(d, 0x99, sizeof(d));
	ok = chain_write(&c, NULL, 3 * TIER_BLOCK + 1024, 512, d, scratch) == 0 &&
	     chain_read(&c, NULL, 3 * TIER_BLOCK, TIER_BLOCK, got) == 0;
	for (i = 0; ok && i < (int)TIER_BLOCK; i++)
		ok = got[i] == (i >= 1024 && i < 1536 ? 0x99 : 0x22);
	check_that(ok && server_mem[3 * TIER_BLOCK + 1024] == 0x22, "tiers-partial-rmw",
		   "byte %d wrong or server changed", i);
	/* A read across ram and server blocks in one call. */
	ok = chain_read(&c, NULL, 2 * TIER_BLOCK + 100, 3 * TIER_BLOCK, server_mem + DISK - 3 * TIER_BLOCK) == 0;
	check_that(ok && server_mem[DISK - 3 * TIER_BLOCK + TIER_BLOCK - 100 + 1024] == 0x99,
		   "tiers-read-mixed", "wrong");
	chain_free(&c);
}

static void overflow_and_full(void)
{
	struct chain c;
	uint8_t d[TIER_BLOCK], scratch[TIER_BLOCK];
	int fd = scratch_disk(), i, ok = 1, rc;

	memset(server_mem, 0, sizeof(server_mem));
	chain_init(&c, DISK, &mem_ops, catch_warning);
	chain_add_ram(&c, 4 * TIER_BLOCK);
	chain_add_disk(&c, fd, DISK, "scratch");
	c.overflow = 1;
	chain_redirect(&c, TGT_RAM);
	for (i = 0; i < 6 && ok; i++) {
		fill(d, (uint8_t)(0x40 + i), sizeof(d));
		ok = chain_write(&c, NULL, (uint64_t)i * TIER_BLOCK, TIER_BLOCK, d, scratch) == 0;
	}
	check_that(ok && c.t[TGT_RAM].used == 4 && c.t[TGT_DISK].used == 2 &&
			   chain_holder(&c, 0) == TGT_DISK && chain_holder(&c, 1) == TGT_DISK &&
			   chain_holder(&c, 5) == TGT_RAM,
		   "tiers-overflow-lrw-to-disk", "ram %u disk %u", c.t[TGT_RAM].used,
		   c.t[TGT_DISK].used);
	for (i = 0, ok = 1; i < 6; i++)
		ok &= block_is(&c, (uint64_t)i * TIER_BLOCK, (uint8_t)(0x40 + i));
	check_that(ok, "tiers-overflow-reads-back", "a block changed");
	chain_free(&c);
	close(fd);

	warnings[0] = 0;
	chain_init(&c, DISK, &mem_ops, catch_warning);
	chain_add_ram(&c, 20 * TIER_BLOCK);
	chain_redirect(&c, TGT_RAM);
	for (i = 0, rc = 0; i < 20 && rc == 0; i++)
		rc = chain_write(&c, NULL, (uint64_t)i * TIER_BLOCK, TIER_BLOCK, d, scratch);
	check_that(rc == 0 && strstr(warnings, "ram tier 80 %") && strstr(warnings, "ram tier 95 %"),
		   "tiers-fill-warnings", "got '%s'", warnings);
	rc = chain_write(&c, NULL, 30 * TIER_BLOCK, TIER_BLOCK, d, scratch);
	check_that(rc == -ENOSPC && chain_holder(&c, 30) == TGT_SERVER, "tiers-full-enospc",
		   "rc %d", rc);
	/* Rewriting a block the full tier holds still works; a write to the server frees one. */
	check_that(chain_write(&c, NULL, 3 * TIER_BLOCK, TIER_BLOCK, d, scratch) == 0,
		   "tiers-full-rewrite", "failed");
	chain_redirect(&c, TGT_SERVER);
	chain_write(&c, NULL, 3 * TIER_BLOCK, TIER_BLOCK, d, scratch);
	chain_redirect(&c, TGT_RAM);
	check_that(chain_write(&c, NULL, 30 * TIER_BLOCK, TIER_BLOCK, d, scratch) == 0,
		   "tiers-freed-by-server-write", "still full");
	chain_free(&c);
}

/* Random I/O and redirections against a plain array: every read must match. */
static void random_model(void)
{
	static uint8_t model[DISK], buf[64 * 1024];
	uint8_t scratch[TIER_BLOCK];
	struct chain c;
	unsigned seed = 17, i, bad = 0, enospc = 0;
	int fd = scratch_disk();

	memset(server_mem, 0x33, sizeof(server_mem));
	memcpy(model, server_mem, sizeof(model));
	chain_init(&c, DISK - 1536, &mem_ops, NULL); /* a short last block too */
	chain_add_ram(&c, 40 * TIER_BLOCK);
	chain_add_disk(&c, fd, 60 * TIER_BLOCK, "scratch");
	c.overflow = 1;
	for (i = 0; i < 20000 && !bad; i++) {
		unsigned r = (unsigned)rand_r(&seed);
		uint64_t off = (uint64_t)rand_r(&seed) % (c.size);
		uint32_t len = (uint32_t)(rand_r(&seed) % 3 == 0 ? 1 + rand_r(&seed) % 700
								  : (1 + rand_r(&seed) % 12) * 512);

		if (len > c.size - off)
			len = (uint32_t)(c.size - off);
		if (r % 50 == 0) {
			chain_redirect(&c, (int)(r / 50 % 3));
		} else if (r % 2) {
			int rc, j;

			for (j = 0; j < (int)len; j++)
				buf[j] = (uint8_t)rand_r(&seed);
			rc = chain_write(&c, NULL, off, len, buf, scratch);
			if (rc == 0)
				memcpy(model + off, buf, len);
			else if (rc == -ENOSPC) {
				enospc++;
				chain_redirect(&c, TGT_SERVER); /* the model can't say what a failed write left */
				rc = chain_write(&c, NULL, off, len, buf, scratch);
				if (rc == 0)
					memcpy(model + off, buf, len);
			}
			bad += rc != 0;
		} else {
			bad += chain_read(&c, NULL, off, len, buf) != 0 || memcmp(buf, model + off, len);
		}
	}
	for (i = 0; i < c.size / sizeof(buf) && !bad; i++)
		bad += chain_read(&c, NULL, (uint64_t)i * sizeof(buf), sizeof(buf), buf) != 0 ||
		       memcmp(buf, model + (size_t)i * sizeof(buf), sizeof(buf));
	check_that(!bad, "tiers-random-vs-model", "%u reads or writes went wrong (%u ENOSPC)", bad, enospc);
	chain_free(&c);
	close(fd);
}

static void parsers(void)
{
	struct wc_config w;
	struct ctl_cmd cc;
	char err[200];

	check_that(wc_parse("ram:1024M overflow=disk:LABEL=ndcache", &w, err, sizeof(err)) == 0 &&
			   w.target == TGT_RAM && w.ram_bytes == 1ull << 30 &&
			   !strcmp(w.disk, "LABEL=ndcache"),
		   "wc-parse-ram-overflow", "%s", err);
	check_that(wc_parse("ram:64M,overflow=disk:/dev/vda", &w, err, sizeof(err)) == 0 &&
			   w.ram_bytes == 64ull << 20 && !strcmp(w.disk, "/dev/vda"),
		   "wc-parse-commas", "%s", err);
	check_that(wc_parse("server", &w, err, sizeof(err)) == 0 && w.target == TGT_SERVER &&
			   !w.ram_bytes,
		   "wc-parse-server", "%s", err);
	check_that(wc_parse("disk:PARTLABEL=cache", &w, err, sizeof(err)) == 0 &&
			   w.target == TGT_DISK,
		   "wc-parse-disk", "%s", err);
	check_that(wc_parse("ram:12Q", &w, err, sizeof(err)) < 0 &&
			   wc_parse("ram:99999999999999999999G", &w, err, sizeof(err)) < 0 &&
			   wc_parse("", &w, err, sizeof(err)) < 0 &&
			   wc_parse("disk:relative", &w, err, sizeof(err)) < 0 &&
			   wc_parse("server overflow=disk:/x", &w, err, sizeof(err)) < 0 &&
			   wc_parse("ram:1M ram:2M", &w, err, sizeof(err)) < 0,
		   "wc-parse-rejects", "accepted a bad value");
	check_that(wc_parse("ram:64M,overflow=disk:LABEL=ndcache,persistent", &w, err, sizeof(err)) == 0 &&
			   w.disk_persistent && !strcmp(w.disk, "LABEL=ndcache") &&
			   wc_parse("disk:/dev/vdb persistent", &w, err, sizeof(err)) == 0 &&
			   w.disk_persistent && w.target == TGT_DISK &&
			   wc_parse("ram:64M", &w, err, sizeof(err)) == 0 && !w.disk_persistent,
		   "wc-parse-persistent", "%s", err);
	check_that(wc_parse("ram:64M persistent", &w, err, sizeof(err)) < 0 &&
			   wc_parse("server persistent", &w, err, sizeof(err)) < 0 &&
			   wc_parse("disk:/x persistent persistent", &w, err, sizeof(err)) < 0,
		   "wc-parse-persistent-rejects", "accepted");
	check_that(ctl_parse("redirect disk:/dev/vda\n", 23, &cc, err, sizeof(err)) == 0 &&
			   cc.cmd == CTL_REDIRECT && cc.target == TGT_DISK && !strcmp(cc.path, "/dev/vda"),
		   "ctl-parse-redirect-disk", "%s", err);
	check_that(ctl_parse("status", 6, &cc, err, sizeof(err)) == 0 && cc.cmd == CTL_STATUS &&
			   ctl_parse("redirect ram", 12, &cc, err, sizeof(err)) == 0 && cc.target == TGT_RAM,
		   "ctl-parse-status-ram", "%s", err);
	check_that(ctl_parse("redirect tape", 13, &cc, err, sizeof(err)) < 0 &&
			   ctl_parse("redirect\0ram", 12, &cc, err, sizeof(err)) < 0 &&
			   ctl_parse("reboot", 6, &cc, err, sizeof(err)) < 0,
		   "ctl-parse-rejects", "accepted");
}

/* The on-disk format alone: header and map pages built, parsed, damaged. */
static void ptier_format(void)
{
	struct pt_header h = { .disk_size = DISK, .nslots = 1000, .vnum = 3, .image_id = 0xabcdef },
			 got, other;
	uint8_t page[PT_PAGE];
	uint64_t e[PT_PER_PAGE], in[PT_PER_PAGE] = { 0 };
	char why[300];
	uint32_t s;
	int ok = 1;

	snprintf(h.image, sizeof(h.image), "demo");
	pt_layout(&h);
	check_that(h.npages == 2 && h.data_off == PT_MAP_OFF + 2 * PT_PAGE, "ptier-layout",
		   "%u pages, data at %llu", h.npages, (unsigned long long)h.data_off);
	for (s = 1; s < 5000; s += 7) { /* the most slots whose map fits beside them */
		uint64_t bytes = (uint64_t)s * PT_PAGE;
		uint32_t n = pt_slots_for(bytes);

		if (n + pt_map_pages(n) > s || n + 1 + pt_map_pages(n + 1) <= s)
			ok = 0;
	}
	check_that(ok && pt_slots_for(PT_PAGE) == 0, "ptier-slots-fit", "wrong");
	pt_header_build(page, &h);
	check_that(pt_header_parse(page, &got, why, sizeof(why)) == 0 &&
			   pt_header_matches(&got, &h, why, sizeof(why)) && got.nslots == 1000 &&
			   !strcmp(got.image, "demo"),
		   "ptier-header-roundtrip", "%s", why);
	other = h;
	other.image_id++;
	check_that(!pt_header_matches(&got, &other, why, sizeof(why)) && strstr(why, "version 3"),
		   "ptier-header-other-version", "%s", why);
	other = h;
	other.disk_size += PT_PAGE;
	check_that(!pt_header_matches(&got, &other, why, sizeof(why)), "ptier-header-other-size",
		   "matched");
	page[100] ^= 1; /* a torn or garbled header */
	check_that(pt_header_parse(page, &got, why, sizeof(why)) == -1 && strstr(why, "torn"),
		   "ptier-header-torn", "%s", why);
	memset(page, 0, sizeof(page));
	check_that(pt_header_parse(page, &got, why, sizeof(why)) == 1, "ptier-header-absent", "%s",
		   why);
	h.npages = 7; /* sealed but inconsistent */
	pt_header_build(page, &h);
	check_that(pt_header_parse(page, &got, why, sizeof(why)) == -1, "ptier-header-layout",
		   "accepted");
	in[0] = 5;
	in[10] = DISK / TIER_BLOCK; /* the last block */
	pt_map_build(page, 1, in, PT_PER_PAGE);
	check_that(pt_map_parse(page, 1, 1000, DISK / TIER_BLOCK, e, why, sizeof(why)) == 0 &&
			   e[0] == 5 && e[10] == DISK / TIER_BLOCK && !e[1],
		   "ptier-map-roundtrip", "%s", why);
	check_that(pt_map_parse(page, 0, 1000, DISK / TIER_BLOCK, e, why, sizeof(why)) < 0 &&
			   pt_map_parse(page, 1, 1000, DISK / TIER_BLOCK - 1, e, why, sizeof(why)) < 0 &&
			   pt_map_parse(page, 1, PT_PER_PAGE + 5, DISK / TIER_BLOCK, e, why, sizeof(why)) < 0,
		   "ptier-map-rejects", "misplaced page, block past the disk or slot past the tier taken");
	page[2000] ^= 0x80;
	check_that(pt_map_parse(page, 1, 1000, DISK / TIER_BLOCK, e, why, sizeof(why)) < 0,
		   "ptier-map-torn", "accepted");
}

#define PDISK (PT_MAP_OFF + 2 * PT_PAGE + DISK) /* a persistent tier's file */

/* "Boot": a chain over the in-memory server with a persistent disk tier on fd
 * as the write target, made for image version (vnum, id).  0 or -errno. */
static int pboot(struct chain *c, int fd, uint32_t vnum, uint64_t id, char *msg, size_t len)
{
	struct pt_header want = { .vnum = vnum, .image_id = id };
	int rc;

	snprintf(want.image, sizeof(want.image), "demo");
	chain_init(c, DISK, &mem_ops, NULL);
	rc = chain_add_disk_persistent(c, fd, PDISK, "pdisk", &want, msg, len);
	return rc ? rc : chain_redirect(c, TGT_DISK);
}

/* The persistent disk tier across "reboots" (chain_free, then a new chain). */
static void persistent(void)
{
	struct chain c;
	uint8_t d[TIER_BLOCK], scratch[TIER_BLOCK];
	char path[256], msg[600];
	int fd, rc;

	snprintf(path, sizeof(path), "%s/tier-pdisk", unit_tmpdir());
	unlink(path);
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	if (fd < 0 || ftruncate(fd, PDISK) < 0) {
		check_that(0, "ptier-file", "cannot make %s", path);
		return;
	}
	memset(server_mem, 0x11, sizeof(server_mem));
	rc = pboot(&c, fd, 1, 77, msg, sizeof(msg));
	check_that(rc == 0 && strstr(msg, "reset (no write-cache header)"), "ptier-new-is-reset",
		   "rc %d: %s", rc, msg);
	fill(d, 0xA1, sizeof(d));
	rc = chain_write(&c, NULL, 7 * TIER_BLOCK, TIER_BLOCK, d, scratch);
	fill(d, 0xA2, sizeof(d));
	rc |= chain_write(&c, NULL, 8 * TIER_BLOCK, TIER_BLOCK, d, scratch);
	rc |= chain_flush(&c, NULL);
	/* After the flush: block 8 is rewritten in place, 9 written, 7 moved to
	 * the server (its slot freed) -- none of it flushed. */
	fill(d, 0xA3, sizeof(d));
	rc |= chain_write(&c, NULL, 8 * TIER_BLOCK, TIER_BLOCK, d, scratch);
	rc |= chain_write(&c, NULL, 9 * TIER_BLOCK, TIER_BLOCK, d, scratch);
	chain_redirect(&c, TGT_SERVER);
	fill(d, 0x5E, sizeof(d));
	rc |= chain_write(&c, NULL, 7 * TIER_BLOCK, TIER_BLOCK, d, scratch);
	chain_redirect(&c, TGT_DISK);
	/* A new block now must not take block 7's old slot: its free is not durable. */
	fill(d, 0xA4, sizeof(d));
	rc |= chain_write(&c, NULL, 10 * TIER_BLOCK, TIER_BLOCK, d, scratch);
	check_that(rc == 0 && c.t[TGT_DISK].npending == 1, "ptier-writes", "rc %d, %u pending", rc,
		   c.t[TGT_DISK].npending);
	chain_free(&c); /* a crash: no flush */
	rc = pboot(&c, fd, 1, 77, msg, sizeof(msg));
	check_that(rc == 0 && strstr(msg, "kept 2 blocks"), "ptier-kept-across-reboot", "rc %d: %s",
		   rc, msg);
	/* Flushed: 7 (stale now; the server's copy is newer but its drop was not
	 * flushed) and 8 (rewritten in place); unflushed new blocks 9, 10: the server's. */
	check_that(block_is(&c, 8 * TIER_BLOCK, 0xA3) && block_is(&c, 7 * TIER_BLOCK, 0xA1) &&
			   block_is(&c, 9 * TIER_BLOCK, 0x11) && block_is(&c, 10 * TIER_BLOCK, 0x11),
		   "ptier-crash-reads-old-or-new", "a block reads another's data");
	chain_redirect(&c, TGT_SERVER);
	fill(d, 0x5F, sizeof(d));
	rc = chain_write(&c, NULL, 7 * TIER_BLOCK, TIER_BLOCK, d, scratch) | chain_flush(&c, NULL);
	chain_free(&c);
	rc |= pboot(&c, fd, 1, 77, msg, sizeof(msg));
	check_that(rc == 0 && strstr(msg, "kept 1 blocks") && block_is(&c, 7 * TIER_BLOCK, 0x5F),
		   "ptier-flushed-drop-kept", "rc %d: %s", rc, msg);
	chain_free(&c);
	/* Another image version: reset, and the server's content shows. */
	rc = pboot(&c, fd, 2, 78, msg, sizeof(msg));
	check_that(rc == 0 && strstr(msg, "reset (it was written over image demo version 1") &&
			   block_is(&c, 8 * TIER_BLOCK, 0x11) && c.t[TGT_DISK].used == 0,
		   "ptier-other-version-reset", "rc %d: %s", rc, msg);
	fill(d, 0xB1, sizeof(d));
	rc = chain_write(&c, NULL, 8 * TIER_BLOCK, TIER_BLOCK, d, scratch) | chain_flush(&c, NULL);
	chain_free(&c);
	/* A garbled header: reset, never used. */
	if (pwrite(fd, "X", 1, PT_HDR_OFF + 30) != 1)
		rc = -1;
	rc |= pboot(&c, fd, 2, 78, msg, sizeof(msg));
	check_that(rc == 0 && strstr(msg, "torn or garbled") && block_is(&c, 8 * TIER_BLOCK, 0x11),
		   "ptier-torn-header-reset", "rc %d: %s", rc, msg);
	fill(d, 0xB2, sizeof(d));
	rc = chain_write(&c, NULL, 8 * TIER_BLOCK, TIER_BLOCK, d, scratch) | chain_flush(&c, NULL);
	chain_free(&c);
	/* A torn map page: reset. */
	if (pwrite(fd, "\377", 1, PT_MAP_OFF + 8 * 0 + 3) != 1)
		rc = -1;
	rc |= pboot(&c, fd, 2, 78, msg, sizeof(msg));
	check_that(rc == 0 && strstr(msg, "map page 0") && block_is(&c, 8 * TIER_BLOCK, 0x11),
		   "ptier-torn-map-reset", "rc %d: %s", rc, msg);
	chain_free(&c);
	/* A volatile tier over it wipes the header. */
	check_that(disk_forget_persistent(fd) == 1 && disk_forget_persistent(fd) == 0,
		   "ptier-volatile-forgets", "header not wiped");
	close(fd);
}

void unit_tiers(void)
{
	ptier_format();
	persistent();
	d1_e1_e2();
	partial();
	overflow_and_full();
	random_model();
	parsers();
}
