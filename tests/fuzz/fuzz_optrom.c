/* SPDX-License-Identifier: GPL-2.0-or-later */
/* libFuzzer harness: any file as an option ROM image into the checker netdisk patch and tools/ndrom use (common/optrom.c). */

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "optrom.h"

/*
 * The input is the image, copied to a buffer of its exact size.  When its
 * first byte is odd, the harness first makes it look like a ROM (55 AA,
 * the size field matching) so the checker gets past its first tests; and
 * every image it accepts must still be accepted after nd_optrom_resum.
 */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct nd_optrom_info info;
	char err[160];
	uint8_t *p;

	if (size < 1 || size > 2 * ND_ROM_MAX)
		return 0;
	p = malloc(size);
	memcpy(p, data, size);
	if ((data[0] & 1) && size >= ND_ROM_BLOCK && size % ND_ROM_BLOCK == 0 && size <= ND_ROM_MAX) {
		p[0] = 0x55, p[1] = 0xaa, p[2] = (uint8_t)(size / ND_ROM_BLOCK);
		nd_optrom_resum(p, size);
	}
	if (nd_optrom_check(p, size, &info, err, sizeof(err)) == 0) {
		if (info.size != size || !info.bev || info.bev >= size)
			abort();
		nd_optrom_resum(p, size);
		if (nd_optrom_check(p, size, &info, err, sizeof(err)))
			abort();
	}
	free(p);
	return 0;
}
