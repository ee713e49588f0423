/* SPDX-License-Identifier: GPL-2.0-or-later */
/* netdisk storm: replays a boot trace as N simulated clients (a process each, own session and MAC), then prints per-client and summary figures. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "conn.h"
#include "ndcommon.h"
#include "stormtrace.h"

#define STORM_MAX_CLIENTS 1024

/* What a client process leaves for the parent (shared memory). */
struct client_result {
	int state;            /* 0 never finished, 1 right data, 2 wrong data */
	double done_s;        /* from the start signal to its last read */
	double p99_ms;
	uint64_t sectors;     /* read in all */
	uint64_t group_sectors; /* of which taken from the multicast group */
	uint64_t bad_sectors; /* differing from --verify */
	uint32_t retransmits;
	int joined;
};

struct shared {
	double t0;            /* the start, CLOCK_MONOTONIC seconds */
	struct client_result r[];
};

static void put_mem(void *ctx, uint32_t off, const void *data, unsigned len)
{
	memcpy((uint8_t *)ctx + off, data, len);
}

static int cmp_float(const void *a, const void *b)
{
	float x = *(const float *)a, y = *(const float *)b;

	return x < y ? -1 : x > y;
}

static void sleep_until(double t)
{
	double now;

	while ((now = seconds_now()) < t) {
		struct timespec ts = { (time_t)(t - now), (long)((t - now - (time_t)(t - now)) * 1e9) };

		nanosleep(&ts, NULL);
	}
}

/* Client k's MAC: the base plus k in its low 24 bits. */
static void client_mac(const uint8_t base[6], unsigned k, uint8_t mac[6])
{
	uint32_t low = ((uint32_t)base[3] << 16 | (uint32_t)base[4] << 8 | base[5]) + k;

	memcpy(mac, base, 3);
	mac[3] = (uint8_t)(low >> 16);
	mac[4] = (uint8_t)(low >> 8);
	mac[5] = (uint8_t)low;
}

/* One simulated client (a child process): attach, say ready, wait for the
 * start, replay, leave its figures in r and lat.  Never returns. */
static void run_client(unsigned k, const char *server, const struct storm_trace *t,
		       const struct storm_opts *so, const struct opts *o, const uint8_t *image,
		       uint64_t image_sectors, struct shared *sh, float *lat, int ready_w,
		       int go_r)
{
	struct client_result *r = &sh->r[k - 1];
	struct opts co = *o;
	struct conn c;
	uint32_t most = 0;
	uint8_t *buf;
	size_t i;
	char b;

	client_mac(o->mac, k, co.mac);
	connect_server(&c, server, &co);
	for (i = 0; i < t->n; i++) {
		if (t->rec[i].lba + t->rec[i].count > c.c.sectors)
			die("client %u: trace read %llu+%u is outside the disk (%llu sectors)", k,
			    (unsigned long long)t->rec[i].lba, t->rec[i].count,
			    (unsigned long long)c.c.sectors);
		if (t->rec[i].count > most)
			most = t->rec[i].count;
	}
	buf = malloc((size_t)most * ND_SECTOR_SIZE);
	if (!buf)
		die("client %u: out of memory", k);
	if (write(ready_w, "r", 1) != 1)
		die("client %u: write ready pipe: %s", k, strerror(errno));
	close(ready_w);
	if (read(go_r, &b, 1) < 0) /* EOF is the start */
		die("client %u: read start pipe: %s", k, strerror(errno));
	for (i = 0; i < t->n; i++) {
		const struct storm_rec *q = &t->rec[i];
		double t1;
		int rc;

		if (!so->no_times)
			sleep_until(sh->t0 + q->ms / 1e3 / so->speed);
		t1 = seconds_now();
		rc = nd_read(&c.c, q->lba, q->count, put_mem, buf);
		if (rc < 0)
			die("client %u: read %llu+%u failed: %s", k, (unsigned long long)q->lba,
			    q->count, err_text(&c.c, rc));
		lat[i] = (float)((seconds_now() - t1) * 1e3);
		r->sectors += q->count;
		if (image) {
			uint32_t s;

			for (s = 0; s < q->count; s++)
				if (q->lba + s >= image_sectors ||
				    memcmp(buf + (size_t)s * ND_SECTOR_SIZE,
					   image + (q->lba + s) * ND_SECTOR_SIZE, ND_SECTOR_SIZE))
					r->bad_sectors++;
		}
	}
	r->done_s = seconds_now() - sh->t0;
	qsort(lat, t->n, sizeof(*lat), cmp_float);
	r->p99_ms = lat[t->n * 99 / 100];
	r->joined = c.c.gh != NULL;
	r->group_sectors = r->joined ? c.group.st.hits : 0;
	r->retransmits = c.c.retransmits;
	disconnect(&c);
	r->state = r->bad_sectors ? 2 : 1;
	_exit(r->bad_sectors ? 1 : 0);
}

static void *map_file(const char *path, uint64_t *sectors)
{
	struct stat st;
	void *p;
	int fd = open(path, O_RDONLY);

	if (fd < 0 || fstat(fd, &st) < 0)
		die("--verify %s: open/fstat: %s", path, strerror(errno));
	if (st.st_size < ND_SECTOR_SIZE)
		die("--verify %s: smaller than one sector", path);
	p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED)
		die("--verify %s: mmap: %s", path, strerror(errno));
	close(fd);
	*sectors = (uint64_t)st.st_size / ND_SECTOR_SIZE;
	return p;
}

static char *read_whole(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	size_t cap = 1 << 16, n = 0, got;
	char *p = malloc(cap);

	if (!f)
		die("trace %s: fopen: %s", path, strerror(errno));
	if (!p)
		die("out of memory");
	while ((got = fread(p + n, 1, cap - n, f)) > 0) {
		n += got;
		if (n == cap) {
			if (cap >= (size_t)1 << 30)
				die("trace %s: larger than 1 GiB", path);
			p = realloc(p, cap *= 2);
			if (!p)
				die("out of memory");
		}
	}
	if (ferror(f))
		die("trace %s: fread: %s", path, strerror(errno));
	fclose(f);
	*len = n;
	return p;
}

int cmd_storm(const char *server, const char *trace, const struct storm_opts *so,
	      const struct opts *o)
{
	struct storm_trace t;
	struct shared *sh;
	uint8_t *image = NULL;
	uint64_t image_sectors = 0, uni = 0, grp = 0;
	size_t len, shsize, latsize, nlat = 0;
	float *lat, *all;
	pid_t *pid;
	int ready[2], go[2], failed = 0, ok = 0;
	unsigned k, ready_n = 0;
	double all_done = 0;
	char err[256], *text;

	if (so->clients < 1 || so->clients > STORM_MAX_CLIENTS)
		die("--clients must be 1..%d", STORM_MAX_CLIENTS);
	if (!(so->speed >= 0.001 && so->speed <= 1e6))
		die("--speed must be 0.001..1000000");
	text = read_whole(trace, &len);
	if (storm_trace_parse(text, len, &t, err, sizeof(err)) < 0)
		die("%s: %s", trace, err);
	free(text);
	if (so->verify)
		image = map_file(so->verify, &image_sectors);
	shsize = sizeof(*sh) + so->clients * sizeof(sh->r[0]);
	latsize = (size_t)so->clients * t.n * sizeof(float);
	sh = mmap(NULL, shsize + latsize, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (sh == MAP_FAILED)
		die("mmap %zu bytes of results: %s", shsize + latsize, strerror(errno));
	lat = (float *)((uint8_t *)sh + shsize);
	pid = calloc(so->clients, sizeof(*pid));
	if (!pid || pipe(ready) < 0 || pipe(go) < 0)
		die("pipe: %s", strerror(errno));
	fflush(stdout);
	fflush(stderr);
	for (k = 1; k <= so->clients; k++) {
		pid[k - 1] = fork();
		if (pid[k - 1] < 0)
			die("fork client %u: %s", k, strerror(errno));
		if (pid[k - 1] == 0) {
			close(ready[0]);
			close(go[1]);
			run_client(k, server, &t, so, o, image, image_sectors, sh,
				   lat + (size_t)(k - 1) * t.n, ready[1], go[0]);
		}
	}
	close(ready[1]);
	close(go[0]);
	/* Every client attached (or gone): then all start at once. */
	for (;;) {
		char b[64];
		ssize_t n = read(ready[0], b, sizeof(b));

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		ready_n += (unsigned)n;
	}
	close(ready[0]);
	fprintf(stderr, "netdisk storm: %u of %u clients attached, %zu reads (%llu sectors) each, "
		"%s (x%g)\n", ready_n, so->clients, t.n, (unsigned long long)t.total,
		so->no_times ? "as fast as they go" : "at the trace's times", so->speed);
	sh->t0 = seconds_now();
	close(go[1]);
	for (k = 1; k <= so->clients; k++) {
		int status;

		while (waitpid(pid[k - 1], &status, 0) < 0 && errno == EINTR)
			;
	}
	all = malloc(latsize ? latsize : 1);
	if (!all)
		die("out of memory");
	for (k = 1; k <= so->clients; k++) {
		struct client_result *r = &sh->r[k - 1];
		uint8_t mac[6];
		char ms[18];

		client_mac(o->mac, k, mac);
		nd_mac_format(mac, ms);
		if (r->state != 1) {
			failed++;
			printf("client %u mac=%s %s\n", k, ms,
			       r->state == 2 ? "WRONG DATA" : "FAILED (see its error above)");
			if (r->state != 2)
				continue;
		} else {
			ok++;
		}
		memcpy(all + nlat, lat + (size_t)(k - 1) * t.n, t.n * sizeof(float));
		nlat += t.n;
		if (r->done_s > all_done)
			all_done = r->done_s;
		uni += (r->sectors - r->group_sectors) * ND_SECTOR_SIZE;
		grp += r->group_sectors * ND_SECTOR_SIZE;
		printf("client %u mac=%s done_s=%.3f p99_ms=%.3f unicast_bytes=%llu "
		       "multicast_bytes=%llu retransmits=%u group=%s verify=%s\n", k, ms, r->done_s,
		       r->p99_ms, (unsigned long long)((r->sectors - r->group_sectors) * ND_SECTOR_SIZE),
		       (unsigned long long)(r->group_sectors * ND_SECTOR_SIZE), r->retransmits,
		       r->joined ? "joined" : "no",
		       !image ? "off" : r->bad_sectors ? "BAD" : "ok");
	}
	qsort(all, nlat, sizeof(*all), cmp_float);
	printf("storm clients=%u multicast=%s ok=%d failed=%d reads=%zu all_done_s=%.3f "
	       "p99_ms=%.3f unicast_bytes=%llu multicast_bytes=%llu\n", so->clients,
	       o->multicast ? "on" : "off", ok, failed, t.n, all_done,
	       nlat ? all[nlat * 99 / 100] : 0.0, (unsigned long long)uni, (unsigned long long)grp);
	free(all);
	free(pid);
	storm_trace_free(&t);
	return failed ? 1 : 0;
}
