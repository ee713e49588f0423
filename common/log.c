/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Logging for the host programs: leveled, timestamped lines on standard error
 * in text or JSON (see log.h for the format). */

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include "log.h"

static const char *log_prog = "netdisk";
static int log_level = ND_LOG_INFO;
static enum nd_log_format log_format = ND_LOG_TEXT;

static const char *const level_names[] = { "error", "warn", "info", "debug" };

void nd_log_init(const char *prog, int level, enum nd_log_format format)
{
	log_prog = prog;
	log_level = level;
	log_format = format;
}

int nd_log_enabled(int level)
{
	return level <= log_level;
}

int nd_log_format_parse(const char *s, enum nd_log_format *format)
{
	if (!strcmp(s, "text"))
		*format = ND_LOG_TEXT;
	else if (!strcmp(s, "json"))
		*format = ND_LOG_JSON;
	else
		return -1;
	return 0;
}

/* Append s[0..n) to out as the inside of a JSON string. */
static size_t json_escape(char *out, size_t room, size_t at, const char *s, size_t n)
{
	for (size_t i = 0; i < n && at + 7 < room; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c == '"' || c == '\\')
			at += (size_t)snprintf(out + at, room - at, "\\%c", c);
		else if (c < 0x20)
			at += (size_t)snprintf(out + at, room - at, "\\u%04x", c);
		else
			out[at++] = (char)c;
	}
	out[at] = 0;
	return at;
}

/* A key=value word: a key of [a-z0-9_] then '='. */
static int is_field(const char *w, size_t n, size_t *keylen)
{
	size_t i = 0;

	while (i < n && (islower((unsigned char)w[i]) || isdigit((unsigned char)w[i]) ||
			 w[i] == '_'))
		i++;
	*keylen = i;
	return i > 0 && i < n && w[i] == '=';
}

/* msg as JSON: words into "msg", key=value fields as members. */
static void write_json(const char *when, const char *level, const char *msg)
{
	char out[4096], words[2048];
	size_t at, wn = 0;
	const char *p = msg;

	at = (size_t)snprintf(out, sizeof(out), "{\"time\":\"%s\",\"level\":\"%s\",\"prog\":\"",
			      when, level);
	at = json_escape(out, sizeof(out), at, log_prog, strlen(log_prog));
	at += (size_t)snprintf(out + at, sizeof(out) - at, "\"");
	while (*p) {
		size_t n = strcspn(p, " "), keylen;

		if (n && is_field(p, n, &keylen) && at + 16 < sizeof(out)) {
			at += (size_t)snprintf(out + at, sizeof(out) - at, ",\"%.*s\":\"",
					       (int)keylen, p);
			at = json_escape(out, sizeof(out), at, p + keylen + 1, n - keylen - 1);
			at += (size_t)snprintf(out + at, sizeof(out) - at, "\"");
		} else if (n) {
			wn += (size_t)snprintf(words + wn, sizeof(words) - wn, "%s%.*s",
					       wn ? " " : "", (int)n, p);
			if (wn >= sizeof(words))
				wn = sizeof(words) - 1;
		}
		p += n;
		while (*p == ' ')
			p++;
	}
	words[wn] = 0;
	if (at + 16 < sizeof(out)) {
		at += (size_t)snprintf(out + at, sizeof(out) - at, ",\"msg\":\"");
		at = json_escape(out, sizeof(out), at, words, wn);
	}
	fprintf(stderr, "%s\"}\n", out);
}

void nd_log(int level, const char *fmt, ...)
{
	char when[40], msg[2048];
	struct timeval tv;
	struct tm tm;
	va_list ap;

	if (!nd_log_enabled(level))
		return;
	if (level < ND_LOG_ERROR)
		level = ND_LOG_ERROR;
	if (level > ND_LOG_DEBUG)
		level = ND_LOG_DEBUG;
	/* UTC, ISO 8601 with milliseconds; gmtime_r: NBD threads log concurrently. */
	gettimeofday(&tv, NULL);
	gmtime_r(&tv.tv_sec, &tm);
	strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(when + strlen(when), sizeof(when) - strlen(when), ".%03ldZ",
		 (long)(tv.tv_usec / 1000));
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	/* One fprintf per line: stdio locks the stream, so lines never interleave. */
	if (log_format == ND_LOG_JSON)
		write_json(when, level_names[level], msg);
	else
		fprintf(stderr, "%s %s %s: %s\n", when, level_names[level], log_prog, msg);
}

int nd_errf(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return -1;
}
