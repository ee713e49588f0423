/* SPDX-License-Identifier: GPL-2.0-or-later */
/* libFuzzer harness: any bytes as the persistent disk tier's header and map
 * pages (linux/agent/ptier.c), read from a local disk at boot.  The first
 * byte's low bits put the magic in and reseal the pages, so the fuzzer gets
 * past the checksums to the fields; what parses must build back the same. */

#include <stdlib.h>
#include <string.h>
#include "../../linux/agent/ptier.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t page[PT_PAGE], again[PT_PAGE], map[PT_PAGE];
	uint64_t e[PT_PER_PAGE];
	struct pt_header h, h2;
	char why[300];
	uint8_t how = size ? data[0] : 0;
	size_t n;
	int rc;

	if (size)
		data++, size--;
	memset(page, 0, sizeof(page));
	n = size < PT_PAGE ? size : PT_PAGE;
	memcpy(page, data, n);
	if (how & 1)
		memcpy(page, PT_MAGIC, 8);
	if (how & 2)
		pt_seal(page);
	rc = pt_header_parse(page, &h, why, sizeof(why));
	if (rc == 0) {
		if (h.npages != pt_map_pages(h.nslots) || strlen(h.image) > 64 ||
		    !pt_header_matches(&h, &h, why, sizeof(why)))
			abort();
		pt_header_build(again, &h);
		if (pt_header_parse(again, &h2, why, sizeof(why)) != 0 || memcmp(&h, &h2, sizeof(h)))
			abort();
	}
	memset(map, 0, sizeof(map));
	if (size > PT_PAGE)
		memcpy(map, data + PT_PAGE, size - PT_PAGE < PT_PAGE ? size - PT_PAGE : PT_PAGE);
	if (how & 4)
		pt_seal(map);
	if (pt_map_parse(map, how >> 4, rc == 0 ? h.nslots : 600, 1000, e, why, sizeof(why)) == 0)
		for (n = 0; n < PT_PER_PAGE; n++)
			if (e[n] > 1000)
				abort();
	return 0;
}
