/* SPDX-License-Identifier: GPL-2.0-or-later */
/* libFuzzer harness: any Ethernet frame or DHCP payload into the stubs' DHCP client (client/dhcp.c), never read past its end. */

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "dhcp.h"

/*
 * The first byte picks what the rest is: even, an Ethernet frame for
 * nd_dhcp_frame, whose payload (if it finds one) goes on to nd_dhcp_parse;
 * odd, a DHCP payload for nd_dhcp_parse, with the fields that must match
 * (op, hardware type and length, xid, chaddr, magic cookie) fixed up when
 * bit 1 is set, so the fuzzer reaches the options at once.  The input is
 * copied to a buffer of its exact size: ASan sees any read past it.
 */
static const uint8_t mac[6] = { 2, 0, 0, 0, 0, 9 };
#define XID 0x6e640001u
static volatile uint8_t sink;

static void use(const struct nd_dhcp_lease *l)
{
	unsigned i;

	for (i = 0; i < sizeof(l->image) && l->image[i]; i++)
		sink ^= (uint8_t)l->image[i];
	sink ^= l->ip[0] ^ l->server[3] ^ l->netmask[1] ^ l->router[2] ^ (uint8_t)l->port;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct nd_dhcp_lease lease;
	uint8_t *p;
	unsigned at, plen;
	size_t len;

	if (size < 1 || size > 4096)
		return 0;
	len = size - 1;
	p = malloc(len ? len : 1);
	memcpy(p, data + 1, len);
	if (!(data[0] & 1)) {
		if (nd_dhcp_frame(p, (unsigned)len, mac, &at, &plen) == 0) {
			if (at + plen > len)
				abort(); /* the payload must lie inside the frame */
			if (nd_dhcp_parse(p + at, plen, XID, mac, &lease) > 0)
				use(&lease);
		}
	} else {
		if ((data[0] & 2) && len >= 240) {
			p[0] = 2, p[1] = 1, p[2] = 6;
			p[4] = XID >> 24, p[5] = (XID >> 16) & 255, p[6] = (XID >> 8) & 255, p[7] = XID & 255;
			memcpy(p + 28, mac, 6);
			p[236] = 99, p[237] = 130, p[238] = 83, p[239] = 99;
		}
		if (nd_dhcp_parse(p, (unsigned)len, XID, mac, &lease) > 0)
			use(&lease);
	}
	free(p);
	return 0;
}
