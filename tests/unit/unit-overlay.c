/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Unit tests of the overlay layer's crash consistency (server/overlay.c):
 * a sequence of writes is cut short at every pwrite in turn, as a crash
 * would (that pwrite writes nothing, or only its sectors up to a 512-byte
 * boundary of the file: a disk writes whole sectors; none after it reach the
 * files), then the overlay is opened again from its files: every sector must
 * read as it was before the write under way or as that write made it (so a
 * block the map shows before its data is there reads as neither), and every
 * write finished before must read back.  The cut goes through the linker's
 * --wrap=pwrite (tests/build.mk).  Version deltas (the same code opened with
 * overlay_open_delta) must reopen read-only and refuse, never reset, when
 * their lower layer or files are not what they were made over.
 */

#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "layer.h"
#include "unit.h"

#define BLOCK 4096
#define SECTOR 512
#define DISK (64 * BLOCK)

ssize_t __real_pwrite(int fd, const void *buf, size_t len, off_t off);

static int fail_all; /* unit_fail_pwrites */

void unit_fail_pwrites(int err)
{
	fail_all = err;
}

static struct {
	int armed;
	unsigned left;     /* pwrites that go through before the cut */
	size_t cut_bytes;  /* how much of the cut pwrite is written */
	int crashed;       /* the cut happened: later pwrites write nothing */
} cut;

ssize_t __wrap_pwrite(int fd, const void *buf, size_t len, off_t off);
ssize_t __wrap_pwrite(int fd, const void *buf, size_t len, off_t off)
{
	if (fail_all) {
		errno = fail_all;
		return -1;
	}
	if (!cut.armed)
		return __real_pwrite(fd, buf, len, off);
	if (cut.crashed) {
		errno = EIO;
		return -1;
	}
	if (cut.left) {
		cut.left--;
		return __real_pwrite(fd, buf, len, off);
	}
	cut.crashed = 1;
	if (cut.cut_bytes) {
		/* Up to the first sector boundary of the file past cut_bytes. */
		off_t end = (off + (off_t)cut.cut_bytes + 511) & ~(off_t)511;

		if (end > off && (size_t)(end - off) < len)
			return __real_pwrite(fd, buf, (size_t)(end - off), off);
	}
	errno = EIO;
	return -1;
}

/* The writes: partial blocks, whole blocks, spans across blocks. */
static const struct {
	uint32_t off, len;
} writes[] = {
	{ 0, BLOCK },
	{ 3 * BLOCK + 512, 1024 },
	{ 5 * BLOCK - 512, 2 * BLOCK + 1024 },
	{ 20 * BLOCK, 6 * BLOCK },
	{ 3 * BLOCK, BLOCK },
	{ 40 * BLOCK + 100 * 512, 512 },
	{ 63 * BLOCK, BLOCK },
};
#define NWRITES (sizeof(writes) / sizeof(writes[0]))

static uint8_t disk_now[DISK], disk_before[DISK], buf[DISK];

static void apply(uint8_t *disk, unsigned i)
{
	unsigned k;

	for (k = 0; k < writes[i].len; k++)
		disk[writes[i].off + k] = (uint8_t)(i * 37 + k * 11 + 1);
}

static struct layer *open_overlay(struct layer *base, const char *data, const char *map,
				  int fresh)
{
	char err[256];
	int stale;
	struct layer *o = overlay_open(base, data, map, fresh, &stale, err, sizeof(err));

	if (!o)
		fprintf(stderr, "unit: overlay: %s\n", err);
	return o;
}

/* One run: cut the sequence at pwrite number `at` (that one writes `bytes`).
 * 1 if a cut happened, 0 if the sequence finished first, -1 on a failed check. */
static int run(struct layer *base, const char *data, const char *map, unsigned at, size_t bytes)
{
	struct layer *o = open_overlay(base, data, map, 1);
	unsigned i, b, done = 0, bad = 0;
	int happened;

	if (!o)
		return -1;
	memcpy(disk_now, buf, DISK);
	cut = (typeof(cut)){ 1, at, bytes, 0 };
	for (i = 0; i < NWRITES; i++) {
		uint8_t *d = malloc(writes[i].len);

		memcpy(disk_before, disk_now, DISK);
		apply(disk_now, i);
		memcpy(d, disk_now + writes[i].off, writes[i].len);
		if (layer_write(o, d, writes[i].len, writes[i].off) < 0) {
			free(d);
			break;
		}
		free(d);
		done++;
	}
	happened = cut.crashed;
	cut.armed = 0;
	layer_close(o); /* no flush: what reached the files is what a crash leaves */
	o = open_overlay(base, data, map, 0);
	if (!o)
		return -1;
	{
		static uint8_t seen[DISK];

		if (layer_read(o, seen, DISK, 0) < 0) {
			layer_close(o);
			return -1;
		}
		/* Finished writes (all but the one under way) read back; each
		 * sector is as before or as after the one under way. */
		for (b = 0; b < DISK / SECTOR; b++) {
			const uint8_t *s = seen + b * SECTOR;

			if (done == NWRITES) {
				bad += memcmp(s, disk_now + b * SECTOR, SECTOR) != 0;
			} else if (memcmp(s, disk_before + b * SECTOR, SECTOR) &&
				   memcmp(s, disk_now + b * SECTOR, SECTOR)) {
				bad++;
			}
		}
	}
	layer_close(o);
	if (bad) {
		fprintf(stderr, "unit: cut at pwrite %u (%zu bytes): %u sectors neither before nor "
			"after the write under way\n", at, bytes, bad);
		return -1;
	}
	return happened;
}

/* Version deltas (overlay_open_delta): created empty, reopened read-only with
 * what was written, never reset: over another lower layer, or without its
 * files, they refuse to open. */
static void unit_delta(struct layer *base, const char *image)
{
	char data[300], map[300], other[300], err[256];
	uint8_t blk[BLOCK], back[BLOCK];
	struct layer *d, *o;
	struct timespec later[2] = { { 0, UTIME_OMIT }, { 2000000000, 0 } };
	int fd;

	snprintf(data, sizeof(data), "%s/delta.data", unit_tmpdir());
	snprintf(map, sizeof(map), "%s/delta.map", unit_tmpdir());
	snprintf(other, sizeof(other), "%s/other-base.img", unit_tmpdir());
	memset(blk, 0x5a, sizeof(blk));
	d = overlay_open_delta(base, data, map, OVD_CREATE | OVD_WRITABLE, err, sizeof(err));
	if (!check_that(d && layer_write(d, blk, BLOCK, 3 * BLOCK) == 0 && layer_flush(d) == 0,
			"delta-create-write", "%s", d ? "write failed" : err))
		return;
	layer_close(d);
	d = overlay_open_delta(base, data, map, 0, err, sizeof(err));
	check_that(d && layer_read(d, back, BLOCK, 3 * BLOCK) == 0 && !memcmp(back, blk, BLOCK) &&
		   layer_read(d, back, BLOCK, 0) == 0 && !memcmp(back, buf, BLOCK) &&
		   layer_write(d, blk, BLOCK, 0) < 0,
		   "delta-reopens-read-only", "%s", d ? "wrong data, or a write went through" : err);
	layer_close(d);
	/* The same bytes under another version (its mtime differs): refused, not reset. */
	fd = open(other, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	if (fd < 0 || write(fd, buf, DISK) != DISK || futimens(fd, later) < 0 || close(fd) < 0) {
		check_that(0, "delta-other-lower-refused", "cannot write %s", other);
		return;
	}
	o = file_layer_open(other, 0, err, sizeof(err));
	d = o ? overlay_open_delta(o, data, map, 0, err, sizeof(err)) : NULL;
	check_that(o && !d && strstr(err, "made over another layer"), "delta-other-lower-refused",
		   "%s", d ? "opened" : err);
	layer_close(d);
	layer_close(o);
	d = overlay_open_delta(base, data, map, 0, err, sizeof(err));
	check_that(d != NULL, "delta-not-reset", "%s", err); /* still there after the refusal */
	layer_close(d);
	unlink(map);
	d = overlay_open_delta(base, data, map, 0, err, sizeof(err));
	check_that(!d && strstr(err, "open"), "delta-missing-map-refused", "%s", d ? "opened" : err);
	layer_close(d);
	(void)image;
}

void unit_overlay(void)
{
	char image[300], data[300], map[300], err[256];
	struct layer *base;
	unsigned at, cuts = 0;
	int fd, rc = 0;
	size_t k;

	snprintf(image, sizeof(image), "%s/overlay-base.img", unit_tmpdir());
	snprintf(data, sizeof(data), "%s/ov.data", unit_tmpdir());
	snprintf(map, sizeof(map), "%s/ov.map", unit_tmpdir());
	for (k = 0; k < DISK; k++)
		buf[k] = (uint8_t)(k * 3 + (k >> 12));
	fd = open(image, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	if (fd < 0 || write(fd, buf, DISK) != DISK || close(fd) < 0) {
		check_that(0, "overlay-setup", "cannot write %s", image);
		return;
	}
	base = file_layer_open(image, 0, err, sizeof(err));
	if (!check_that(base != NULL, "overlay-setup", "%s", err))
		return;
	/* Every pwrite cut: once writing nothing, once writing a part. */
	for (at = 0; rc >= 0 && at < 200; at++) {
		rc = run(base, data, map, at, 0);
		if (rc > 0)
			rc = run(base, data, map, at, 700);
		if (rc == 0)
			break; /* the sequence finished before pwrite `at`: every one was cut */
		cuts += rc > 0;
	}
	check_that(rc == 0 && cuts > 5, "overlay-crash-consistent",
		   "%u cut points, last result %d", cuts, rc);
	check_that(rc == 0, "overlay-uncut-reads-back", "the whole sequence did not read back");
	unit_delta(base, image);
	layer_close(base);
}
