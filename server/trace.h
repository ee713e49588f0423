/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Boot traces (trace.c): a file per session of the reads it made, for replaying boots (issue #15). */
#ifndef ND_TRACE_H
#define ND_TRACE_H

#include <stdint.h>

struct config;
struct server;
struct session;

/* Creates the configured trace directory if needed; 0, or -1 with a message. */
int trace_init(const struct config *c, char *err, size_t errlen);
/* Records one read of `count` sectors at `lba` ("udp" or "nbd"); opens the
 * session's file at its first read.  No-op without trace-dir. */
void trace_read(struct server *s, struct session *ss, uint64_t lba, uint64_t count,
		const char *via);
/* Closes the session's trace (at its end). */
void trace_end(struct session *ss);

#endif
