/* Resource limits: file descriptors (raise, count, refuse before running out) and
 * per-source rate limits (token buckets keyed by address). */

#include <dirent.h>
#include <errno.h>
#include <netinet/in.h>
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
