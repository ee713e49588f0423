/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The on-disk format of netdisk-attach's persistent disk tier (issue #17): a
 * header naming the image version the blocks were written over, a map of
 * which network-disk block each 4 KiB slot holds, then the slots.  Pure
 * functions (no I/O), so the unit tests and tests/fuzz/fuzz_ptier.c can
 * drive them; tiers.c does the reading and writing.
 *
 * Layout on the device or file (all numbers big-endian):
 *   [0, 512 KiB)         untouched (partition labels, an ext2/3/4 superblock)
 *   512 KiB              header, 4 KiB (PT_HDR_OFF)
 *   1 MiB                map: npages pages of 4 KiB, PT_PER_PAGE entries each
 *   1 MiB + npages*4 KiB slots of 4 KiB (data_off)
 * Header: "NDWCACHE", u32 format (1), u32 block size (4096), u64 network
 * disk size, u32 slots, u32 map pages, u64 data offset, u32 image version
 * number, u32 0, u64 image version id, image name (64 bytes, NUL-padded),
 * zeros, u32 CRC-32 of the 4092 bytes before it at 4092.
 * Map page: PT_PER_PAGE u64 entries (block + 1, 0 = empty slot), u32 page
 * number, u32 CRC-32 of the 4092 bytes before it.
 * A torn or garbled header or page fails its CRC; the tier is then reset. */
#ifndef PTIER_H
#define PTIER_H

#include <stddef.h>
#include <stdint.h>

#define PT_PAGE 4096u
#define PT_HDR_OFF (512u << 10)
#define PT_MAP_OFF (1u << 20)
#define PT_PER_PAGE 511u
#define PT_FORMAT 1u
#define PT_MAGIC "NDWCACHE"

/* What a header says; also what the agent wants one to say. */
struct pt_header {
	uint64_t disk_size;  /* the network disk's size in bytes */
	uint32_t nslots, npages;
	uint64_t data_off;
	uint32_t vnum;       /* image version number (server's NBD info 0x4e45) */
	uint64_t image_id;   /* ... and id */
	char image[65];      /* image name */
};

/* Seal a page: the CRC-32 of its first 4092 bytes into its last 4. */
void pt_seal(uint8_t page[PT_PAGE]);
/* Map pages for n slots. */
uint32_t pt_map_pages(uint32_t nslots);
/* How many slots (with their map) fit in `bytes` from PT_MAP_OFF on; 0 if
 * none or more than the tiers take (2^30). */
uint32_t pt_slots_for(uint64_t bytes);
/* Fill h's layout fields (npages, data_off) for h->nslots. */
void pt_layout(struct pt_header *h);

void pt_header_build(uint8_t page[PT_PAGE], const struct pt_header *h);
/* 0 and h filled; 1: no header at all (no magic: a blank or foreign disk);
 * -1: a header that is torn, garbled or of another format.  why says which. */
int pt_header_parse(const uint8_t page[PT_PAGE], struct pt_header *h, char *why, size_t whylen);
/* Was `have` made for `want` (same image version, disk size and layout)?
 * 1, or 0 with the difference in why. */
int pt_header_matches(const struct pt_header *have, const struct pt_header *want, char *why,
		      size_t whylen);

/* Map page `index` from entries[0..n) (n <= PT_PER_PAGE; the rest empty). */
void pt_map_build(uint8_t page[PT_PAGE], uint32_t index, const uint64_t *entries, uint32_t n);
/* Check map page `index` of a tier of nslots over nblocks network-disk
 * blocks and copy its entries (PT_PER_PAGE) out: 0, or -1 with why (torn,
 * misplaced, a block past the disk, a used entry past the last slot). */
int pt_map_parse(const uint8_t page[PT_PAGE], uint32_t index, uint32_t nslots, uint64_t nblocks,
		 uint64_t entries[PT_PER_PAGE], char *why, size_t whylen);

#endif /* PTIER_H */
