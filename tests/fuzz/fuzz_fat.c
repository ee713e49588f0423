/* SPDX-License-Identifier: GPL-2.0-or-later */
/* libFuzzer harness: the FAT code that rewrites boot menus on an image's EFI
 * system partition (server/fat.c).  The input patches a valid FAT16 file
 * system the harness builds (boot sector, two FATs, root directory, a
 * directory SYSLINUX with SYSLINUX.CFG and a file with a VFAT long name,
 * "netdisk-linux.conf", two long name entries before its short one): chunks
 * of [offset:3][length:1][bytes], so damaged BPBs, chains, loops, entries
 * and long names (sequence numbers, checksums) are all a few bytes away. */

#include <stdlib.h>
#include <string.h>
#include "fat.h"

#define DISK (4u << 20) /* 8192 sectors of 512: 8000-odd clusters, FAT16 */

struct mem_layer {
	struct layer l;
	uint8_t *p;
};

static int mem_read(struct layer *l, void *buf, size_t len, uint64_t off, int flags)
{
	struct mem_layer *m = (struct mem_layer *)l;

	(void)flags;
	if (off > l->size || len > l->size - off)
		abort(); /* fat.c checks every range against the partition */
	memcpy(buf, m->p + off, len);
	return 0;
}

static int mem_write(struct layer *l, const void *buf, size_t len, uint64_t off)
{
	struct mem_layer *m = (struct mem_layer *)l;

	if (off > l->size || len > l->size - off)
		abort();
	memcpy(m->p + off, buf, len);
	return 0;
}

static const struct layer_ops mem_ops = { .read = mem_read, .write = mem_write };

static void put16(uint8_t *p, unsigned v) { p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); }

/* Two long name entries for `name` (at most 26 characters) and the short
 * entry `sfn` after them, at e. */
static void long_name(uint8_t *e, const char *name, const uint8_t sfn[11])
{
	static const uint8_t pos[13] = { 1, 3, 5, 7, 9, 14, 16, 18, 20, 22, 24, 28, 30 };
	size_t len = strlen(name), k;
	uint8_t sum = 0;
	int part, i;

	for (i = 0; i < 11; i++)
		sum = (uint8_t)(((sum & 1) << 7) + (sum >> 1) + sfn[i]);
	for (part = 2; part >= 1; part--) {
		uint8_t *x = e + (2 - part) * 32;

		x[0] = (uint8_t)(part | (part == 2 ? 0x40 : 0)), x[11] = 0x0f, x[13] = sum;
		for (k = 0; k < 13; k++) {
			size_t at = (size_t)(part - 1) * 13 + k;
			unsigned c = at < len ? (unsigned char)name[at] : at == len ? 0 : 0xffff;

			put16(x + pos[k], c);
		}
	}
	memcpy(e + 64, sfn, 11);
}

/* FAT16: 1 reserved sector, 2 FATs of 32 sectors, 512 root entries (32 sectors). */
static void build(uint8_t *d)
{
	const unsigned fat = 512, root = fat + 2 * 32 * 512, data = root + 32 * 512;
	uint8_t *e;
	int i;

	memset(d, 0, DISK);
	d[0] = 0xeb, d[1] = 0x3c, d[2] = 0x90;
	put16(d + 11, 512), d[13] = 1, put16(d + 14, 1), d[16] = 2, put16(d + 17, 512);
	put16(d + 19, DISK / 512), d[21] = 0xf8, put16(d + 22, 32);
	memcpy(d + 54, "FAT16   ", 8);
	d[510] = 0x55, d[511] = 0xaa;
	for (i = 0; i < 2; i++) { /* clusters 2 (SYSLINUX dir), 3 and 4 (the files): ends of chains */
		uint8_t *f = d + fat + i * 32 * 512;

		put16(f, 0xfff8), put16(f + 2, 0xffff), put16(f + 4, 0xffff), put16(f + 6, 0xffff);
		put16(f + 8, 0xffff);
	}
	e = d + root;
	memcpy(e, "SYSLINUX   ", 11), e[11] = 0x10, put16(e + 26, 2);
	e = d + data; /* cluster 2 */
	memcpy(e, ".          ", 11), e[11] = 0x10, put16(e + 26, 2);
	memcpy(e + 32, "..         ", 11), e[32 + 11] = 0x10;
	memcpy(e + 64, "SYSLINUXCFG", 11), put16(e + 64 + 26, 3), put16(e + 64 + 28, 100);
	memset(d + data + 512, 'c', 100); /* cluster 3 */
	long_name(d + data + 96, "netdisk-linux.conf", (const uint8_t *)"NETDIS~1CON");
	put16(d + data + 160 + 26, 4), put16(d + data + 160 + 28, 100);
	memset(d + data + 1024, 'e', 100); /* cluster 4 */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const paths[] = { "/syslinux/syslinux.cfg", "/SYSLINUX/SYSLINUX.CFG",
					     "/syslinux/NetDisk-Linux.conf", "/EFI/BOOT/grub.cfg",
					     "/syslinux", "/syslinux/netdisk-linux.con\xc3\xa9" };
	static uint8_t *disk;
	struct mem_layer m = { { &mem_ops, NULL, DISK }, NULL };
	char err[256], content[3000];
	size_t i, at;

	if (!disk && !(disk = malloc(DISK)))
		abort();
	build(disk);
	for (at = 0; at + 4 <= size;) { /* the patches */
		uint32_t off = (uint32_t)data[at] | (uint32_t)data[at + 1] << 8 |
			       (uint32_t)data[at + 2] << 16;
		size_t n = data[at + 3];

		at += 4;
		if (n > size - at)
			n = size - at;
		off %= DISK;
		if (n > DISK - off)
			n = DISK - off;
		memcpy(disk + off, data + at, n);
		at += n;
	}
	m.p = disk;
	memset(content, 'x', sizeof(content));
	for (i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
		if (!fat_probe(&m.l, 0, DISK))
			break;
		int rc;

		err[0] = 0;
		rc = fat_put_file(&m.l, 0, DISK, paths[i], content, (i * 997 + size) % sizeof(content),
				  err, sizeof(err));
		if (rc < 0 && !err[0])
			abort(); /* a refusal says why */
		if (rc < 0 && size == 0 && i < 3)
			abort(); /* the unpatched file system takes both spellings and the long name */
	}
	return 0;
}
