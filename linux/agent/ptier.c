/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The persistent disk tier's on-disk format (ptier.h): building and checking
 * its header and map pages.  No I/O; fuzzed by tests/fuzz/fuzz_ptier.c. */

#include <stdio.h>
#include <string.h>
#include "netdisk/proto.h"
#include "ptier.h"

/* CRC-32 (IEEE, reflected) of n bytes: enough to tell a torn 4 KiB write. */
static uint32_t crc32(const uint8_t *p, size_t n)
{
	uint32_t c = 0xffffffffu;
	int k;

	while (n--) {
		c ^= *p++;
		for (k = 0; k < 8; k++)
			c = (c >> 1) ^ (0xedb88320u & (0u - (c & 1)));
	}
	return ~c;
}

void pt_seal(uint8_t page[PT_PAGE])
{
	nd_put32(page + PT_PAGE - 4, crc32(page, PT_PAGE - 4));
}

static int sealed(const uint8_t page[PT_PAGE])
{
	return nd_get32(page + PT_PAGE - 4) == crc32(page, PT_PAGE - 4);
}

uint32_t pt_map_pages(uint32_t nslots)
{
	return (nslots + PT_PER_PAGE - 1) / PT_PER_PAGE;
}

uint32_t pt_slots_for(uint64_t bytes)
{
	uint64_t blocks = bytes / PT_PAGE, s;

	if (blocks < 2)
		return 0;
	s = blocks - (blocks + PT_PER_PAGE) / (PT_PER_PAGE + 1);
	while (s && s + (s + PT_PER_PAGE - 1) / PT_PER_PAGE > blocks)
		s--;
	return s >= (1u << 30) ? 0 : (uint32_t)s;
}

void pt_layout(struct pt_header *h)
{
	h->npages = pt_map_pages(h->nslots);
	h->data_off = PT_MAP_OFF + (uint64_t)h->npages * PT_PAGE;
}

void pt_header_build(uint8_t page[PT_PAGE], const struct pt_header *h)
{
	memset(page, 0, PT_PAGE);
	memcpy(page, PT_MAGIC, 8);
	nd_put32(page + 8, PT_FORMAT);
	nd_put32(page + 12, PT_PAGE);
	nd_put64(page + 16, h->disk_size);
	nd_put32(page + 24, h->nslots);
	nd_put32(page + 28, h->npages);
	nd_put64(page + 32, h->data_off);
	nd_put32(page + 40, h->vnum);
	nd_put64(page + 48, h->image_id);
	memcpy(page + 56, h->image, strnlen(h->image, 64));
	pt_seal(page);
}

int pt_header_parse(const uint8_t page[PT_PAGE], struct pt_header *h, char *why, size_t whylen)
{
	struct pt_header want;
	size_t i;

	memset(h, 0, sizeof(*h));
	if (memcmp(page, PT_MAGIC, 8)) {
		snprintf(why, whylen, "no write-cache header");
		return 1;
	}
	if (!sealed(page)) {
		snprintf(why, whylen, "its header is torn or garbled (checksum)");
		return -1;
	}
	if (nd_get32(page + 8) != PT_FORMAT || nd_get32(page + 12) != PT_PAGE) {
		snprintf(why, whylen, "its header is of format %u with %u-byte blocks (want %u, %u)",
			 nd_get32(page + 8), nd_get32(page + 12), PT_FORMAT, PT_PAGE);
		return -1;
	}
	h->disk_size = nd_get64(page + 16);
	h->nslots = nd_get32(page + 24);
	h->npages = nd_get32(page + 28);
	h->data_off = nd_get64(page + 32);
	h->vnum = nd_get32(page + 40);
	h->image_id = nd_get64(page + 48);
	memcpy(h->image, page + 56, 64);
	h->image[64] = 0;
	for (i = strlen(h->image); i < 64; i++)
		if (page[56 + i]) {
			snprintf(why, whylen, "its header's image name is not NUL-padded");
			return -1;
		}
	want = *h;
	pt_layout(&want);
	if (!h->nslots || h->nslots >= (1u << 30) || h->npages != want.npages ||
	    h->data_off != want.data_off || nd_get32(page + 44)) {
		snprintf(why, whylen, "its header's layout is inconsistent (%u slots, %u map pages, "
			 "data at %llu)", h->nslots, h->npages, (unsigned long long)h->data_off);
		return -1;
	}
	return 0;
}

int pt_header_matches(const struct pt_header *have, const struct pt_header *want, char *why,
		      size_t whylen)
{
	if (strcmp(have->image, want->image) || have->vnum != want->vnum ||
	    have->image_id != want->image_id) {
		snprintf(why, whylen, "it was written over image %s version %u (id %016llx); the "
			 "server now serves %s version %u (id %016llx)", have->image, have->vnum,
			 (unsigned long long)have->image_id, want->image, want->vnum,
			 (unsigned long long)want->image_id);
		return 0;
	}
	if (have->disk_size != want->disk_size) {
		snprintf(why, whylen, "it was written over a disk of %llu bytes, this one has %llu",
			 (unsigned long long)have->disk_size, (unsigned long long)want->disk_size);
		return 0;
	}
	if (have->nslots != want->nslots) {
		snprintf(why, whylen, "it has %u slots, the device now holds %u", have->nslots,
			 want->nslots);
		return 0;
	}
	return 1;
}

void pt_map_build(uint8_t page[PT_PAGE], uint32_t index, const uint64_t *entries, uint32_t n)
{
	uint32_t i;

	memset(page, 0, PT_PAGE);
	for (i = 0; i < n && i < PT_PER_PAGE; i++)
		nd_put64(page + 8 * i, entries[i]);
	nd_put32(page + PT_PAGE - 8, index);
	pt_seal(page);
}

int pt_map_parse(const uint8_t page[PT_PAGE], uint32_t index, uint32_t nslots, uint64_t nblocks,
		 uint64_t entries[PT_PER_PAGE], char *why, size_t whylen)
{
	uint64_t first = (uint64_t)index * PT_PER_PAGE;
	uint32_t i;

	if (!sealed(page) || nd_get32(page + PT_PAGE - 8) != index) {
		snprintf(why, whylen, "map page %u is torn, garbled or misplaced", index);
		return -1;
	}
	for (i = 0; i < PT_PER_PAGE; i++) {
		entries[i] = nd_get64(page + 8 * i);
		if (entries[i] && (entries[i] > nblocks || first + i >= nslots)) {
			snprintf(why, whylen, "map page %u: slot %llu names block %llu (disk has %llu, "
				 "tier %u slots)", index, (unsigned long long)(first + i),
				 (unsigned long long)(entries[i] - 1), (unsigned long long)nblocks,
				 nslots);
			return -1;
		}
	}
	return 0;
}
