/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Boot traces: with trace-dir set, every session's reads (ms since its first read, LBA, count, UDP or NBD) go to a file of its own. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include "netdiskd.h"
#include "trace.h"

/* NBD workers trace from several threads; one lock covers opening and
 * writing (a line per read: cheap next to the read itself). */
static pthread_mutex_t trace_lock = PTHREAD_MUTEX_INITIALIZER;

int trace_init(const struct config *c, char *err, size_t errlen)
{
	if (!c->trace_dir[0])
		return 0;
	if (mkdir(c->trace_dir, 0755) < 0 && errno != EEXIST) {
		snprintf(err, errlen, "cannot create trace directory %s: mkdir: %s", c->trace_dir,
			 strerror(errno));
		return -1;
	}
	if (access(c->trace_dir, W_OK | X_OK) < 0) {
		snprintf(err, errlen, "trace directory %s: access: %s", c->trace_dir, strerror(errno));
		return -1;
	}
	return 0;
}

static double ms_since(const struct timespec *t0)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (now.tv_sec - t0->tv_sec) * 1e3 + (now.tv_nsec - t0->tv_nsec) / 1e6;
}

/* Opens the session's trace file and writes its header; on failure logs
 * once and leaves the session untraced.  Called with trace_lock held. */
static void trace_open(struct server *s, struct session *ss)
{
	char path[PATH_MAX], mac[ND_MAC_STRLEN + 1];
	struct timespec wall;
	struct tm tm;

	/* Named by the token's fingerprint, never by token bytes (#13). */
	nd_mac_format(ss->mac, mac);
	snprintf(path, sizeof(path), "%s/%s-%02x%02x%02x%02x%02x%02x-%08x.trace", s->cfg.trace_dir,
		 ss->img->name, ss->mac[0], ss->mac[1], ss->mac[2], ss->mac[3], ss->mac[4],
		 ss->mac[5], nd_token_fingerprint(ss->token));
	ss->trace = fopen(path, "w");
	if (!ss->trace) {
		nd_log(ND_LOG_WARN, "trace: fopen %s: %s (session not traced)", path, strerror(errno));
		ss->trace_off = 1;
		return;
	}
	setvbuf(ss->trace, NULL, _IOLBF, 0); /* readable while the session lives */
	clock_gettime(CLOCK_MONOTONIC, &ss->trace_t0);
	clock_gettime(CLOCK_REALTIME, &wall);
	gmtime_r(&wall.tv_sec, &tm);
	fprintf(ss->trace,
		"# netdisk read trace 1: image %s sectors %llu mac %s started "
		"%04d-%02d-%02dT%02d:%02d:%02dZ\n# ms lba count via\n",
		ss->img->name, (unsigned long long)(ss->img->base->size / ND_SECTOR_SIZE), mac,
		tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
	log_msg("trace mac=%s image=%s to %s", mac, ss->img->name, path);
}

void trace_read(struct server *s, struct session *ss, uint64_t lba, uint64_t count,
		const char *via)
{
	if (!s->cfg.trace_dir[0] || ss->trace_off)
		return;
	pthread_mutex_lock(&trace_lock);
	if (!ss->trace && !ss->trace_off)
		trace_open(s, ss);
	if (ss->trace) {
		if (ss->trace_reads >= s->cfg.trace_max) {
			fprintf(ss->trace, "# stopped: trace-max %u reads\n", s->cfg.trace_max);
			fclose(ss->trace);
			ss->trace = NULL;
			ss->trace_off = 1;
		} else {
			fprintf(ss->trace, "%.3f %llu %llu %s\n", ms_since(&ss->trace_t0),
				(unsigned long long)lba, (unsigned long long)count, via);
			ss->trace_reads++;
		}
	}
	pthread_mutex_unlock(&trace_lock);
}

void trace_end(struct session *ss)
{
	pthread_mutex_lock(&trace_lock);
	if (ss->trace) {
		fprintf(ss->trace, "# end: %lu reads\n", ss->trace_reads);
		if (fclose(ss->trace) != 0)
			nd_log(ND_LOG_WARN, "trace: fclose: %s", strerror(errno));
		ss->trace = NULL;
	}
	ss->trace_off = 1;
	pthread_mutex_unlock(&trace_lock);
}
