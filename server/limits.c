/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Resource limits: file descriptors (raise, count, refuse before running out),
 * per-source rate limits (token buckets keyed by address), and what the TCP
 * front ends (NBD, iSCSI) share: time limits on reads, admission at accept. */

#include <dirent.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include "netdiskd.h"

/* Raise the soft RLIMIT_NOFILE to the hard one: every session holds up to two
 * fds (an overlay's data and map) and every NBD connection one. */
void fd_limit_raise(struct server *s)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) < 0) {
		log_msg("warning: getrlimit RLIMIT_NOFILE: %s", strerror(errno));
		return;
	}
	if (rl.rlim_cur < rl.rlim_max) {
		rlim_t want = rl.rlim_max;

		rl.rlim_cur = want;
		if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
			log_msg("warning: setrlimit RLIMIT_NOFILE to %llu: %s",
				(unsigned long long)want, strerror(errno));
		getrlimit(RLIMIT_NOFILE, &rl);
	}
	s->fd_limit = rl.rlim_cur > 1u << 30 ? 1u << 30 : (unsigned)rl.rlim_cur;
}

/* Open file descriptors of this process (its entries in /proc/self/fd), or -1. */
int fds_in_use(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	int n = 0;

	if (!d)
		return -1;
	while ((e = readdir(d)))
		if (e->d_name[0] != '.')
			n++;
	closedir(d);
	return n - 1; /* not the directory's own fd */
}

/* Would `need` more fds leave fewer than `reserve` free?  1 with why set. */
int fds_short(const struct server *s, unsigned need, unsigned reserve, char *why, size_t whylen)
{
	int used;

	if (!s->fd_limit)
		return 0;
	used = fds_in_use();
	if (used < 0 && errno == EMFILE)
		used = (int)s->fd_limit; /* not even one fd left to look */
	if (used < 0 || (unsigned)used + need + reserve <= s->fd_limit)
		return 0;
	snprintf(why, whylen, "out of file descriptors (%d of %u in use, %u kept in reserve; "
		 "raise the limit: ulimit -n, LimitNOFILE=)", used, s->fd_limit, reserve);
	return 1;
}

/* Token buckets, one per recent source address, in a small table: a newcomer
 * takes over its slot only from a bucket that has filled up again (an address
 * idle long enough to be forgotten). */
#define RATE_SLOTS 1024

struct rate_slot {
	uint8_t addr[16];
	int used;
	double tokens;
	double when;          /* seconds, CLOCK_MONOTONIC, of the last refill */
	unsigned refused;     /* since the last report */
	double reported;      /* when refusals were last reported */
};

struct rate_table {
	struct rate_slot slot[RATE_SLOTS];
};

struct rate_table *rate_table_new(void)
{
	return calloc(1, sizeof(struct rate_table));
}

void rate_table_free(struct rate_table *t)
{
	free(t);
}

static void addr_key(const struct sockaddr *sa, uint8_t key[16])
{
	memset(key, 0, 16);
	if (sa->sa_family == AF_INET)
		memcpy(key, &((const struct sockaddr_in *)sa)->sin_addr, 4);
	else if (sa->sa_family == AF_INET6)
		memcpy(key, &((const struct sockaddr_in6 *)sa)->sin6_addr, 16);
}

static unsigned addr_hash(const uint8_t key[16])
{
	uint32_t h = 2166136261u;
	int i;

	for (i = 0; i < 16; i++)
		h = (h ^ key[i]) * 16777619u;
	return h % RATE_SLOTS;
}

/* May this source start one more (connection, ATTACH) now, at `rate` a second
 * with bursts of `burst`?  1 yes, 0 no; when 0, *refused counts this source's
 * refusals since the last one reported (at most one report every report_s
 * seconds): the caller logs when it is non-zero.  rate 0 or no table: yes. */
int rate_allow(struct rate_table *t, const struct sockaddr *sa, unsigned rate, unsigned burst,
	       unsigned report_s, unsigned *refused)
{
	struct timespec ts;
	struct rate_slot *r;
	uint8_t key[16];
	double now;

	*refused = 0;
	if (!rate || !t)
		return 1;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	now = (double)ts.tv_sec + ts.tv_nsec / 1e9;
	addr_key(sa, key);
	r = &t->slot[addr_hash(key)];
	if (r->used && memcmp(r->addr, key, 16)) {
		double full = r->tokens + (now - r->when) * rate;

		if (full < burst)
			return 1; /* slot busy with another address: do not punish this one */
		r->used = 0;
	}
	if (!r->used) {
		memcpy(r->addr, key, 16);
		r->used = 1;
		r->tokens = burst;
		r->when = now;
		r->refused = 0;
		r->reported = 0;
	}
	r->tokens += (now - r->when) * rate;
	if (r->tokens > burst)
		r->tokens = burst;
	r->when = now;
	if (r->tokens >= 1) {
		r->tokens -= 1;
		return 1;
	}
	r->refused++;
	if (!r->reported || now - r->reported >= report_s) {
		*refused = r->refused;
		r->refused = 0;
		r->reported = now;
	}
	return 0;
}

/* Open connections per source address, so that one host cannot take every
 * connection max-sessions allows.  A small hash of counted addresses. */
struct addr_count {
	struct addr_count *next;
	uint8_t addr[16];
	unsigned n;
};

static pthread_mutex_t counts_lock = PTHREAD_MUTEX_INITIALIZER;
static struct addr_count *counts[256];

/* Count one more connection from sa if it has fewer than max (0: no cap); 1 if
 * counted (give it back with addr_conn_give), 0 if over the cap. */
int addr_conn_take(const struct sockaddr *sa, unsigned max, unsigned *open)
{
	struct addr_count *a, **head;
	uint8_t key[16];
	int ok = 1;

	addr_key(sa, key);
	head = &counts[addr_hash(key) % 256];
	pthread_mutex_lock(&counts_lock);
	for (a = *head; a && memcmp(a->addr, key, 16); a = a->next)
		;
	if (!a && (a = calloc(1, sizeof(*a)))) {
		memcpy(a->addr, key, 16);
		a->next = *head;
		*head = a;
	}
	if (!a || (max && a->n >= max))
		ok = 0;
	else
		a->n++;
	*open = a ? a->n : 0;
	pthread_mutex_unlock(&counts_lock);
	return ok;
}

void addr_conn_give(const struct sockaddr *sa)
{
	struct addr_count *a, **p;
	uint8_t key[16];

	addr_key(sa, key);
	pthread_mutex_lock(&counts_lock);
	for (p = &counts[addr_hash(key) % 256]; (a = *p) && memcmp(a->addr, key, 16); p = &a->next)
		;
	if (a && --a->n == 0) {
		*p = a->next;
		free(a);
	}
	pthread_mutex_unlock(&counts_lock);
}

/* ---- TCP connections (NBD, iSCSI): time limits on reads, admission ---- */

int64_t mono_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void io_expect(struct io_limit *l, const char *what, const char *key, unsigned secs, int stall)
{
	l->awaiting = what;
	l->key = key;
	l->secs = secs;
	l->stall_s = stall ? secs : 0;
	l->deadline_ms = !stall && secs ? mono_now_ms() + (int64_t)secs * 1000 : 0;
}

int io_wait(struct io_limit *l, int fd)
{
	int64_t until = l->stall_s ? mono_now_ms() + (int64_t)l->stall_s * 1000 : l->deadline_ms;
	struct pollfd p = { fd, POLLIN, 0 };

	if (!until)
		return 0;
	for (;;) {
		int64_t left = until - mono_now_ms();
		int rc = left > 0 ? poll(&p, 1, left > 60000 ? 60000 : (int)left) : 0;

		if (rc > 0)
			return 0;
		if (rc < 0 && errno != EINTR)
			return -1;
		if (rc == 0 && mono_now_ms() >= until) {
			l->timed_out = 1;
			return -1;
		}
	}
}

/* Refusals at accept come in floods: the first, then once a second with a count. */
static void log_refused(struct refusals *r, const char *peer, const char *why)
{
	int64_t now = mono_now_ms();

	pthread_mutex_lock(&r->lock);
	if (now - r->last < 1000) {
		r->quiet++;
		pthread_mutex_unlock(&r->lock);
		return;
	}
	if (r->quiet)
		log_msg("%s connection refused ip=%s: %s (and %u more since the last report)",
			r->proto, peer, why, r->quiet);
	else
		log_msg("%s connection refused ip=%s: %s", r->proto, peer, why);
	r->last = now;
	r->quiet = 0;
	pthread_mutex_unlock(&r->lock);
}

int tcp_admit(struct server *s, struct refusals *r, unsigned open_now,
	      const struct sockaddr_storage *sa, const char *peer)
{
	char why[256];
	unsigned refused = 0, open;

	if (!r->rates)
		r->rates = rate_table_new();
	/* Threads per connection: bound connections like sessions, or a flood of
	 * them would exhaust the server. */
	if (open_now >= s->cfg.max_sessions) {
		snprintf(why, sizeof(why), "%u open (max-sessions)", s->cfg.max_sessions);
		log_refused(r, peer, why);
		return 0;
	}
	if (!addr_conn_take((const struct sockaddr *)sa, s->cfg.nbd_per_address, &open)) {
		snprintf(why, sizeof(why), "%u connections open from this address (nbd-per-address)",
			 open);
		log_refused(r, peer, why);
		return 0;
	}
	if (!r->rates || !rate_allow(r->rates, (const struct sockaddr *)sa, s->cfg.nbd_connect_rate,
				     4 * s->cfg.nbd_connect_rate, 1, &refused)) {
		if (refused)
			log_msg("%s connection refused ip=%s: more than %u connections a second from "
				"this address (nbd-connect-rate); %u refused", r->proto, peer,
				s->cfg.nbd_connect_rate, refused);
		addr_conn_give((const struct sockaddr *)sa);
		return 0;
	}
	/* Half the reserve stays for what a connection needs next (its session's
	 * files, which are refused with a reason the client is told). */
	if (fds_short(s, 1, FD_RESERVE / 2, why, sizeof(why))) {
		log_refused(r, peer, why);
		addr_conn_give((const struct sockaddr *)sa);
		return 0;
	}
	return 1;
}

void tcp_refused(struct refusals *r, const char *peer, const char *why)
{
	log_refused(r, peer, why);
}

int tcp_spawn(void *(*fn)(void *), void *arg)
{
	pthread_attr_t attr;
	pthread_t t;
	int rc;

	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	rc = pthread_create(&t, &attr, fn, arg);
	pthread_attr_destroy(&attr);
	return rc ? -1 : 0;
}
