/* SPDX-License-Identifier: GPL-2.0-or-later */
/* libFuzzer harness: any sequence of datagrams into the client core's multicast group cache (client/group.c), with reads and writes between them. */

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "group.h"

/*
 * The input is a sequence of records: a 2-byte length and that many bytes,
 * a datagram handed to the cache as the core hands one that carries
 * ND_FLAG_MCAST.  The length's top bit makes the harness fix the header up
 * (magic, version, opcode, flags, data_len, the stream) so the fuzzer
 * reaches the cache quickly.  After each datagram the harness completes a
 * read slot at the datagram's LBA from the cache (every byte put must lie
 * inside the slot), now and then marks a written range, and moves the
 * clock on.
 */
#define FIX_UP 0x8000
#define IMAGE_SECTORS 4096
static const uint8_t stream[8] = { 'N', 'D', 'S', 'T', 'R', 'E', 'A', 'M' };
static uint8_t rxbuf[ND_MAX_DGRAM];
static uint64_t cache[(512 << 10) / 8];
static uint32_t clock_ms;
static uint32_t slot_bytes;
static volatile uint8_t sink_sum;

static uint32_t now(void *ctx)
{
	return clock_ms;
}

static void put(void *ctx, uint32_t offset, const void *data, unsigned len)
{
	const uint8_t *d = data;

	if (!len || offset + len > slot_bytes || offset + len < offset)
		abort(); /* outside the slot */
	sink_sum ^= d[0] ^ d[len - 1];
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct nd_client c;
	struct nd_group g;
	struct nd_transport tp = { 0, 0, 0, now };

	if (size < 2)
		return 0;
	memset(&c, 0, sizeof(c));
	c.tp = tp;
	c.rxbuf = rxbuf;
	c.sectors = IMAGE_SECTORS;
	c.chunk = (uint16_t)(512 + data[0] * 7); /* 512..2297: boundaries on and off sectors */
	memcpy(c.mc_addr, "\xef\xff\x4e\x01", 4);
	c.mc_port = 10810;
	c.mc_sectors = (uint16_t)(1 + data[1] % ND_MC_MAX_SECTORS);
	memcpy(c.mc_stream, stream, 8);
	clock_ms = 0;
	if (nd_group_attach(&c, &g, cache, sizeof(cache), 1000) != ND_DONE)
		abort();
	data += 2;
	size -= 2;
	while (size >= 2) {
		unsigned len = (unsigned)(data[0] << 8 | data[1]), fix = len & FIX_UP;
		struct nd_hdr *h = (struct nd_hdr *)rxbuf;
		struct nd_slot s;

		len &= ~FIX_UP;
		data += 2;
		size -= 2;
		if (len > size)
			len = (unsigned)size;
		if (len > sizeof(rxbuf))
			len = sizeof(rxbuf);
		memcpy(rxbuf, data, len);
		data += len;
		size -= len;
		if (fix && len >= ND_HDR_SIZE) { /* a valid datagram: 1+ sectors inside one block */
			uint64_t lba = nd_get64(h->lba) % IMAGE_SECTORS;
			uint32_t count = (len - ND_HDR_SIZE) / ND_SECTOR_SIZE, room = c.mc_sectors -
					 (uint32_t)(lba % c.mc_sectors);

			count = count < 1 ? 1 : count > room ? room : count;
			if (count > IMAGE_SECTORS - lba)
				count = (uint32_t)(IMAGE_SECTORS - lba);
			if (len < ND_HDR_SIZE + count * ND_SECTOR_SIZE)
				memset(rxbuf + len, 0, ND_HDR_SIZE + count * ND_SECTOR_SIZE - len);
			len = ND_HDR_SIZE + count * ND_SECTOR_SIZE;
			nd_put32(h->magic, ND_MAGIC);
			h->version = ND_VERSION;
			h->opcode = ND_OP_READ;
			h->flags = ND_FLAG_REPLY | ND_FLAG_MCAST;
			h->reserved = 0;
			memset(h->status, 0, 2);
			nd_put16(h->data_len, (uint16_t)(count * ND_SECTOR_SIZE));
			memcpy(h->token, stream, 8);
			memset(h->token + 8, 0, 8);
			nd_put64(h->lba, lba);
			nd_put32(h->count, count);
			memset(h->offset, 0, 4);
		}
		c.gh->take(&c, (int)len);
		/* A read slot around the datagram's LBA, filled from the cache. */
		memset(&s, 0, sizeof(s));
		s.busy = 1;
		s.lba = len >= ND_HDR_SIZE ? nd_get64(h->lba) % IMAGE_SECTORS : 0;
		s.count = 1 + (len >= ND_HDR_SIZE ? h->req_id[3] : 0) % 64;
		if (s.count > IMAGE_SECTORS - s.lba)
			s.count = (uint32_t)(IMAGE_SECTORS - s.lba);
		slot_bytes = s.count * ND_SECTOR_SIZE;
		s.missing = nd_chunks_for(slot_bytes, c.chunk) >= 64 ? ~(uint64_t)0
			  : ((uint64_t)1 << nd_chunks_for(slot_bytes, c.chunk)) - 1;
		c.gh->fill(&c, &s, put, 0);
		if (len >= ND_HDR_SIZE && h->req_id[2] & 1)
			c.gh->wrote(&c, s.lba, s.count);
		clock_ms += len >= ND_HDR_SIZE ? h->req_id[1] : 1;
	}
	nd_group_detach(&c);
	return 0;
}
