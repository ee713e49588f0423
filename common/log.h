/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Logging for the host programs: one line per event on standard error, in a
 * format a log shipper can parse.
 *
 * text (default):  2026-12-03T19:40:01.123Z info netdiskd: attach mac=... ip=...
 * json:            {"time":"...","level":"info","prog":"netdiskd","msg":"attach",
 *                   "mac":"...","ip":"..."}
 *
 * A message is free words followed by key=value fields (values without
 * spaces); the JSON form puts the words in "msg" and each field under its key. */
#ifndef ND_LOG_H
#define ND_LOG_H

enum nd_log_level {
	ND_LOG_ERROR = 0, /* something failed: a client got an error, or we stop */
	ND_LOG_WARN = 1,  /* something odd we coped with */
	ND_LOG_INFO = 2,  /* sessions, connections, start and stop (the default) */
	ND_LOG_DEBUG = 3, /* one line per request (-v) */
};

enum nd_log_format { ND_LOG_TEXT, ND_LOG_JSON };

/* Program name, least important level written, and format. */
void nd_log_init(const char *prog, int level, enum nd_log_format format);

/* Whether a message at level would be written (to skip costly formatting). */
int nd_log_enabled(int level);

void nd_log(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* "text" or "json" into *format; 0, or -1 for any other name. */
int nd_log_format_parse(const char *s, enum nd_log_format *format);

/* Format an error message into err (errlen bytes) for the caller to report;
 * returns -1, so that `return nd_errf(err, errlen, ...)` fails a call. */
int nd_errf(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#endif /* ND_LOG_H */
