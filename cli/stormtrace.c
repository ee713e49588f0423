/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Parses boot trace files for the storm simulator (cli/storm.c); bounded and strict, fuzzed by tests/fuzz/fuzz-stormtrace.c. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "stormtrace.h"

void storm_trace_free(struct storm_trace *t)
{
	free(t->rec);
	memset(t, 0, sizeof(*t));
}

/* One unsigned decimal field at *p (leading blanks skipped); -1 if none. */
static int field_u64(const char **p, uint64_t *v)
{
	const char *s = *p;
	uint64_t x = 0;

	while (*s == ' ' || *s == '\t')
		s++;
	if (*s < '0' || *s > '9')
		return -1;
	while (*s >= '0' && *s <= '9') {
		if (x > (UINT64_MAX - 9) / 10)
			return -1;
		x = x * 10 + (uint64_t)(*s++ - '0');
	}
	*p = s;
	*v = x;
	return 0;
}

static int parse_line(const char *line, struct storm_rec *r)
{
	const char *p = line;
	char *end;
	uint64_t count;

	errno = 0;
	r->ms = strtod(p, &end);
	if (end == p || errno || !isfinite(r->ms) || r->ms < 0 || r->ms > 1e9)
		return -1;
	p = end;
	if ((*p != ' ' && *p != '\t') || field_u64(&p, &r->lba) < 0)
		return -1;
	if ((*p != ' ' && *p != '\t') || field_u64(&p, &count) < 0)
		return -1;
	if (count == 0 || count > STORM_TRACE_MAX_COUNT || r->lba > UINT64_MAX - count)
		return -1;
	r->count = (uint32_t)count;
	while (*p == ' ' || *p == '\t')
		p++;
	if (*p && strcmp(p, "udp") && strcmp(p, "nbd"))
		return -1;
	return 0;
}

int storm_trace_parse(const char *text, size_t len, struct storm_trace *t, char *err,
		      size_t errlen)
{
	size_t at = 0, lineno = 0, cap = 0;
	char line[256];

	memset(t, 0, sizeof(*t));
	while (at < len) {
		const char *nl = memchr(text + at, '\n', len - at);
		size_t n = nl ? (size_t)(nl - (text + at)) : len - at;
		struct storm_rec r;

		lineno++;
		if (n && text[at + n - 1] == '\r')
			n--;
		if (n >= sizeof(line)) {
			snprintf(err, errlen, "trace line %zu: longer than %zu bytes", lineno,
				 sizeof(line) - 1);
			goto bad;
		}
		memcpy(line, text + at, n);
		line[n] = 0;
		at += (nl ? (size_t)(nl - (text + at)) + 1 : len - at);
		if (memchr(line, 0, n)) {
			snprintf(err, errlen, "trace line %zu: a NUL byte", lineno);
			goto bad;
		}
		if (line[0] == '#') {
			const char *s = strstr(line, " sectors ");
			uint64_t v;

			if (lineno == 1 && s) {
				s += 9;
				if (field_u64(&s, &v) == 0)
					t->sectors = v;
			}
			continue;
		}
		if (!line[strspn(line, " \t")])
			continue;
		if (parse_line(line, &r) < 0) {
			snprintf(err, errlen, "trace line %zu: not \"MS LBA COUNT [udp|nbd]\" "
				 "(COUNT 1..%u): %.60s", lineno, STORM_TRACE_MAX_COUNT, line);
			goto bad;
		}
		if (t->n && r.ms < t->rec[t->n - 1].ms) {
			snprintf(err, errlen, "trace line %zu: time %.3f goes backwards", lineno, r.ms);
			goto bad;
		}
		if (t->n == cap) {
			struct storm_rec *nr;

			if (cap >= STORM_TRACE_MAX_RECS) {
				snprintf(err, errlen, "trace: more than %u records", STORM_TRACE_MAX_RECS);
				goto bad;
			}
			cap = cap ? cap * 2 : 256;
			nr = realloc(t->rec, cap * sizeof(*nr));
			if (!nr) {
				snprintf(err, errlen, "trace: realloc: %s", strerror(errno));
				goto bad;
			}
			t->rec = nr;
		}
		t->rec[t->n++] = r;
		t->total += r.count;
	}
	if (!t->n) {
		snprintf(err, errlen, "trace: no read records");
		goto bad;
	}
	return 0;
bad:
	storm_trace_free(t);
	return -1;
}
