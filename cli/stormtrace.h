/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Boot trace files (docs/server.md "Boot traces") parsed for the storm simulator: a list of reads with their relative times. */
#ifndef ND_STORMTRACE_H
#define ND_STORMTRACE_H

#include <stddef.h>
#include <stdint.h>

#define STORM_TRACE_MAX_COUNT 65536u  /* sectors one record may read */
#define STORM_TRACE_MAX_RECS 4000000u /* records one trace may hold */

struct storm_rec {
	double ms;      /* since the first read */
	uint64_t lba;
	uint32_t count; /* sectors, 1..STORM_TRACE_MAX_COUNT */
};

struct storm_trace {
	struct storm_rec *rec;
	size_t n;
	uint64_t sectors; /* the header's "sectors N", 0 when absent */
	uint64_t total;   /* sectors read by all records */
};

/*
 * Parse `len` bytes of a trace: "# ..." comment lines (the header's
 * "sectors N" is kept), blank lines, and records "MS LBA COUNT [udp|nbd]".
 * Times must not go backwards.  0, or -1 with the line and the reason in err.
 */
int storm_trace_parse(const char *text, size_t len, struct storm_trace *t, char *err,
		      size_t errlen);
void storm_trace_free(struct storm_trace *t);

#endif
