/* SPDX-License-Identifier: GPL-2.0-or-later */
/* libFuzzer harness: any bytes as a boot trace file into the storm simulator's parser (cli/stormtrace.c); an accepted trace must keep its promises. */

#include <stdint.h>
#include <stdlib.h>
#include "../../cli/stormtrace.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct storm_trace t;
	char err[256];
	uint64_t total = 0;
	size_t i;

	if (storm_trace_parse((const char *)data, size, &t, err, sizeof(err)) < 0)
		return 0;
	if (!t.n)
		abort();
	for (i = 0; i < t.n; i++) {
		const struct storm_rec *r = &t.rec[i];

		if (r->count < 1 || r->count > STORM_TRACE_MAX_COUNT || r->lba > UINT64_MAX - r->count ||
		    !(r->ms >= 0) || (i && r->ms < t.rec[i - 1].ms))
			abort();
		total += r->count;
	}
	if (total != t.total)
		abort();
	storm_trace_free(&t);
	return 0;
}
