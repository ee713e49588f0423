/* SPDX-License-Identifier: GPL-2.0-or-later */
/* netdisk storm: replays a boot trace as N simulated clients (a process each, or a thread each sharing one group socket: --one-process; own session and MAC), then prints per-client and summary figures. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
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

/*
 * --one-process: every client is a thread with its own session, MAC, UDP
 * socket and group cache, but the group is joined once.  One receiver
 * thread reads the group socket (recvmmsg) into a ring of datagrams; each
 * client's transport reads its unicast socket and then the ring at its own
 * cursor, so the kernel copies a group datagram once, not once a client:
 * 128 or 256 clients on two cores then load the server, not the host's
 * socket fan-out.  A client more than half the ring behind loses the
 * oldest datagrams (counted; it repairs them like any loss).
 */
#define RING 65536
#define RX_BATCH 64

struct tclient {
	struct nd_udp_host *u;  /* the client's own socket to the server */
	uint64_t cursor;        /* the next ring datagram to take */
	int efd;                /* eventfd: the receiver's wake-up */
	atomic_int waiting;     /* in poll, wants a wake-up */
	unsigned long lost;     /* ring datagrams it fell too far behind for */
	unsigned turn;          /* recv calls, to try the socket every 16th */
};

static struct {
	pthread_mutex_t lock;
	int started;
	struct nd_udp_host h;   /* fd: to the server (its address); gfd: the group */
	struct sockaddr_in server;
	uint8_t *ring;
	int *lens;
	unsigned size;          /* bytes a ring slot */
	atomic_uint_least64_t wseq;
	struct tclient *cl;     /* one per client, efd < 0 until it takes part */
	unsigned n;
	unsigned long foreign;  /* group datagrams not from the server */
} sg = { .lock = PTHREAD_MUTEX_INITIALIZER };

static void *group_rx(void *arg)
{
	static struct mmsghdr mm[RX_BATCH];
	static struct iovec iov[RX_BATCH];
	static struct sockaddr_in from[RX_BATCH];
	unsigned i, j, k;

	(void)arg;
	for (;;) {
		uint64_t w = atomic_load(&sg.wseq);
		int n;

		for (i = 0; i < RX_BATCH; i++) {
			iov[i].iov_base = sg.ring + (size_t)((w + i) % RING) * sg.size;
			iov[i].iov_len = sg.size;
			memset(&mm[i], 0, sizeof(mm[i]));
			mm[i].msg_hdr.msg_name = &from[i];
			mm[i].msg_hdr.msg_namelen = sizeof(from[i]);
			mm[i].msg_hdr.msg_iov = &iov[i];
			mm[i].msg_hdr.msg_iovlen = 1;
		}
		n = recvmmsg(sg.h.gfd, mm, RX_BATCH, MSG_WAITFORONE, NULL);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			die("storm: group socket: recvmmsg: %s", strerror(errno));
		}
		for (i = j = 0; i < (unsigned)n; i++) {
			if (mm[i].msg_hdr.msg_namelen != sizeof(sg.server) ||
			    from[i].sin_addr.s_addr != sg.server.sin_addr.s_addr ||
			    from[i].sin_port != sg.server.sin_port) {
				sg.foreign++; /* anyone may send to a group: only the server counts */
				continue;
			}
			if (i != j)
				memmove(sg.ring + (size_t)((w + j) % RING) * sg.size, iov[i].iov_base,
					mm[i].msg_len);
			sg.lens[(w + j) % RING] = (int)mm[i].msg_len;
			j++;
		}
		atomic_store(&sg.wseq, w + j);
		for (k = 0; j && k < sg.n; k++)
			if (atomic_exchange(&sg.cl[k].waiting, 0)) {
				uint64_t one = 1;

				if (write(sg.cl[k].efd, &one, sizeof(one)) < 0 && errno != EAGAIN)
					die("storm: client %u: write eventfd: %s", k + 1, strerror(errno));
			}
	}
	return NULL;
}

/* The next group datagram for t from the ring: its length, or 0. */
static int ring_take(struct tclient *t, void *buf, unsigned size)
{
	uint64_t w = atomic_load(&sg.wseq);
	unsigned slot;
	int len;

	if (t->cursor == w)
		return 0;
	if (w - t->cursor > RING / 2) {
		t->lost += w - t->cursor - RING / 2;
		t->cursor = w - RING / 2;
	}
	slot = (unsigned)(t->cursor % RING);
	len = sg.lens[slot] < (int)size ? sg.lens[slot] : (int)size;
	memcpy(buf, sg.ring + (size_t)slot * sg.size, (size_t)len);
	t->cursor++;
	return len;
}

static int shared_send(void *ctx, const void *buf, unsigned len)
{
	struct tclient *t = ctx;

	if (send(t->u->fd, buf, len, 0) < 0 && errno != ECONNREFUSED && errno != ENOBUFS)
		return -1;
	return 0;
}

/* The transport's recv: the client's own socket first, then the ring. */
static int shared_recv(void *ctx, void *buf, unsigned size, uint32_t wait_ms)
{
	struct tclient *t = ctx;
	struct pollfd p[2] = { { t->u->fd, POLLIN, 0 }, { t->efd, POLLIN, 0 } };
	uint64_t x;
	ssize_t n;

	for (;;) {
		/* The ring first, the socket (a system call) every 16th time:
		 * 128 clients each trying their socket for every group
		 * datagram cost the host more than the server's work. */
		if (++t->turn % 16 && (n = ring_take(t, buf, size)) != 0)
			return (int)n;
		n = recv(t->u->fd, buf, size, MSG_DONTWAIT);
		if (n >= 0)
			return (int)n;
		if (errno == EINTR || errno == ECONNREFUSED)
			continue;
		if (errno != EAGAIN)
			return -1;
		if ((n = ring_take(t, buf, size)) != 0)
			return (int)n;
		if (!wait_ms)
			return 0;
		atomic_store(&t->waiting, 1);
		if (atomic_load(&sg.wseq) != t->cursor) { /* came meanwhile */
			atomic_store(&t->waiting, 0);
			continue;
		}
		poll(p, 2, (int)wait_ms);
		atomic_store(&t->waiting, 0);
		if (read(t->efd, &x, sizeof(x)) < 0 && errno != EAGAIN)
			return -1;
		wait_ms = 0; /* one wait; then take what arrived, or report none */
	}
}

/* Client k (a thread) joined through the shared socket: the first one
 * joins the group and starts the receiver. */
static void share_group(struct conn *c, unsigned k, const char *server, unsigned dgram)
{
	struct tclient *t = &sg.cl[k - 1];
	socklen_t len = sizeof(sg.server);
	char err[256];
	pthread_t rx;

	pthread_mutex_lock(&sg.lock);
	if (!sg.started) {
		if (nd_udp_host_open(&sg.h, server, err, sizeof(err)) < 0 ||
		    nd_udp_host_join(&sg.h, c->c.mc_addr, c->c.mc_port, err, sizeof(err)) < 0)
			die("storm: the shared group socket: %s", err);
		if (getpeername(sg.h.fd, (struct sockaddr *)&sg.server, &len) < 0)
			die("storm: getpeername: %s", strerror(errno));
		sg.size = dgram;
		sg.ring = malloc((size_t)RING * dgram);
		sg.lens = calloc(RING, sizeof(*sg.lens));
		if (!sg.ring || !sg.lens)
			die("storm: out of memory for the group ring");
		if ((errno = pthread_create(&rx, NULL, group_rx, NULL)) != 0)
			die("storm: pthread_create (group receiver): %s", strerror(errno));
		pthread_detach(rx);
		fprintf(stderr, "netdisk storm: one group socket for every client\n");
		sg.started = 1;
	}
	pthread_mutex_unlock(&sg.lock);
	t->u = &c->udp;
	t->cursor = atomic_load(&sg.wseq);
	c->c.tp.ctx = t;
	c->c.tp.send = shared_send;
	c->c.tp.recv = shared_recv;
}

/* One simulated client (a child process or a thread): attach, say ready,
 * wait for the start, replay, leave its figures in r and lat; 0 if its
 * data was right. */
static int run_client(unsigned k, const char *server, const struct storm_trace *t,
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
	co.shared_group = so->one_process;
	connect_server(&c, server, &co);
	if (so->one_process && c.c.gh)
		share_group(&c, k, server, o->dgram);
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
	if (!so->one_process) /* threads share the parent's descriptors */
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
		if (rc < 0) {
			unsigned x;

			for (x = 0; x < ND_MAX_INFLIGHT; x++)
				if (c.c.slot[x].busy)
					fprintf(stderr, "netdisk storm: client %u: in flight: %llu+%u id %u, "
						"chunks missing %#llx, rto %u ms\n", k,
						(unsigned long long)c.c.slot[x].lba, c.c.slot[x].count,
						c.c.slot[x].id, (unsigned long long)c.c.slot[x].missing,
						c.c.slot[x].rto_ms);
			die("client %u: read %llu+%u failed: %s (%u retransmits, %u stray datagrams)",
			    k, (unsigned long long)q->lba, q->count, err_text(&c.c, rc),
			    c.c.retransmits, c.c.stray);
		}
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
	free(buf);
	r->state = r->bad_sectors ? 2 : 1;
	return r->bad_sectors ? 1 : 0;
}

/* --one-process: a client thread's arguments. */
struct targ {
	unsigned k;
	const char *server;
	const struct storm_trace *t;
	const struct storm_opts *so;
	const struct opts *o;
	const uint8_t *image;
	uint64_t image_sectors;
	struct shared *sh;
	float *lat;
	int ready_w, go_r;
};

static void *client_thread(void *arg)
{
	struct targ *a = arg;

	run_client(a->k, a->server, a->t, a->so, a->o, a->image, a->image_sectors, a->sh, a->lat,
		   a->ready_w, a->go_r);
	return NULL;
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
	int ready[2], go[2], failed = 0, ok = 0, ready_fd_open = 0;
	struct targ *targ = NULL;
	pthread_t *tid = NULL;
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
	if (so->one_process) {
		sg.n = so->clients;
		sg.cl = calloc(so->clients, sizeof(*sg.cl));
		targ = calloc(so->clients, sizeof(*targ));
		tid = calloc(so->clients, sizeof(*tid));
		if (!sg.cl || !targ || !tid)
			die("out of memory");
		for (k = 0; k < so->clients; k++) {
			sg.cl[k].efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
			if (sg.cl[k].efd < 0)
				die("eventfd: %s", strerror(errno));
		}
	}
	for (k = 1; k <= so->clients && so->one_process; k++) {
		pthread_attr_t at;
		struct targ *a = &targ[k - 1];

		*a = (struct targ){ k, server, &t, so, o, image, image_sectors, sh,
				    lat + (size_t)(k - 1) * t.n, ready[1], go[0] };
		pthread_attr_init(&at);
		pthread_attr_setstacksize(&at, 256 << 10);
		if ((errno = pthread_create(&tid[k - 1], &at, client_thread, a)) != 0)
			die("pthread_create client %u: %s", k, strerror(errno));
		pthread_attr_destroy(&at);
	}
	for (k = 1; k <= so->clients && !so->one_process; k++) {
		pid[k - 1] = fork();
		if (pid[k - 1] < 0)
			die("fork client %u: %s", k, strerror(errno));
		if (pid[k - 1] == 0) {
			close(ready[0]);
			close(go[1]);
			_exit(run_client(k, server, &t, so, o, image, image_sectors, sh,
					 lat + (size_t)(k - 1) * t.n, ready[1], go[0]));
		}
	}
	/* Threads: the parent's ready end stays open (they write to it), so
	 * count N answers instead of waiting for EOF. */
	if (!so->one_process)
		close(ready[1]);
	else
		ready_fd_open = 1;
	if (!so->one_process)
		close(go[0]);
	/* Every client attached (or gone): then all start at once. */
	while (!ready_fd_open || ready_n < so->clients) {
		char b[64];
		ssize_t n = read(ready[0], b, ready_fd_open ? so->clients - ready_n : sizeof(b));

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

		if (so->one_process)
			pthread_join(tid[k - 1], NULL);
		else
			while (waitpid(pid[k - 1], &status, 0) < 0 && errno == EINTR)
				;
	}
	if (so->one_process) {
		unsigned long lost = 0;

		for (k = 0; k < so->clients; k++)
			lost += sg.cl[k].lost;
		fprintf(stderr, "netdisk storm: shared group socket: %llu datagrams, %lu not from "
			"the server, %lu ring datagrams lost by clients behind\n",
			(unsigned long long)atomic_load(&sg.wseq), sg.foreign, lost);
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
	free(targ);
	free(tid);
	storm_trace_free(&t);
	return failed ? 1 : 0;
}
