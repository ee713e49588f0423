/*
 * Unit tests of the client core (client/ndclient.c) and the stub policy
 * (client/policy.c) against netdiskd's own request handler, in process: a
 * scripted transport hands each request to handle_datagram() and the replies
 * back to the client, losing, duplicating, reordering or refusing datagrams
 * as the test says, on a virtual clock (a wait with nothing to receive moves
 * the clock on at once, so timeouts cost no real time).
 */

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "netdiskd.h"
#include "ndclient.h"
#include "policy.h"
#include "unit.h"

#define IMAGE_BYTES (1u << 20)
#define QMAX 4096

/* The transport's script and state. */
static struct {
	struct server srv;
	int up;                 /* srv is set up */
	uint32_t clock;         /* virtual milliseconds */
	uint64_t rng;
	unsigned loss, dup, reorder; /* percent of datagrams (loss: both directions) */
	unsigned max_reply;     /* replies longer than this are lost (0: no limit) */
	int deaf;               /* every request is lost */
	unsigned long lost, duplicated, reordered, requests;
	struct {
		uint8_t data[ND_MAX_DGRAM];
		int len;
	} q[QMAX];
	unsigned head, n;
} net;

static struct sockaddr_in peer = { .sin_family = AF_INET, .sin_port = 0x4242 };

/* Events the client reported, for the policy checks. */
static struct {
	int event;
	uint32_t arg;
} events[64];
static unsigned nevents;

static unsigned rnd(unsigned below)
{
	net.rng = net.rng * 6364136223846793005ull + 1442695040888963407ull;
	return (unsigned)(net.rng >> 33) % below;
}

static void enqueue(const uint8_t *d, int len)
{
	unsigned at;

	if (net.n == QMAX)
		return; /* a full receive queue drops, as a socket's would */
	at = (net.head + net.n++) % QMAX;
	memcpy(net.q[at].data, d, (size_t)len);
	net.q[at].len = len;
}

/* netdiskd's send(): each reply datagram through the script into the queue. */
static void sink(struct server *s, struct iovec (*iov)[2], unsigned n, const struct sockaddr *to,
		 socklen_t tolen)
{
	static uint8_t d[ND_MAX_DGRAM];
	unsigned i;

	for (i = 0; i < n; i++) {
		size_t len = iov[i][0].iov_len + iov[i][1].iov_len;

		memcpy(d, iov[i][0].iov_base, iov[i][0].iov_len);
		if (iov[i][1].iov_len)
			memcpy(d + iov[i][0].iov_len, iov[i][1].iov_base, iov[i][1].iov_len);
		if ((net.max_reply && len > net.max_reply) || (net.loss && rnd(100) < net.loss)) {
			net.lost++;
			continue;
		}
		enqueue(d, (int)len);
		if (net.dup && rnd(100) < net.dup) {
			enqueue(d, (int)len);
			net.duplicated++;
		}
	}
}

static int tp_send(void *ctx, const void *buf, unsigned len)
{
	net.requests++;
	if (net.deaf || (net.loss && rnd(100) < net.loss)) {
		net.lost++;
		return 0;
	}
	handle_datagram(&net.srv, buf, len, (struct sockaddr *)&peer, sizeof(peer));
	return 0;
}

static int tp_recv(void *ctx, void *buf, unsigned size, uint32_t wait_ms)
{
	static uint8_t tmp[ND_MAX_DGRAM];
	int len;

	if (!net.n) {
		net.clock += wait_ms ? wait_ms : 1;
		return 0;
	}
	/* Reorder: swap the first two waiting, so the second comes first. */
	if (net.reorder && net.n > 1 && rnd(100) < net.reorder) {
		unsigned a = net.head, b = (net.head + 1) % QMAX;
		int alen = net.q[a].len;

		memcpy(tmp, net.q[a].data, (size_t)alen);
		memcpy(net.q[a].data, net.q[b].data, (size_t)net.q[b].len);
		net.q[a].len = net.q[b].len;
		memcpy(net.q[b].data, tmp, (size_t)alen);
		net.q[b].len = alen;
		net.reordered++;
	}
	len = net.q[net.head].len;
	if ((unsigned)len > size)
		len = (int)size;
	memcpy(buf, net.q[net.head].data, (size_t)len);
	net.head = (net.head + 1) % QMAX;
	net.n--;
	return len;
}

static uint32_t tp_now(void *ctx)
{
	return net.clock;
}

/* Byte `off` of the image as written by make_image (gen 0) or a test write. */
static uint8_t pattern(uint64_t off, unsigned gen)
{
	return (uint8_t)((off * 2654435761u >> 13) ^ (off >> 9) ^ (gen * 0x5b));
}

static void make_image(const char *path, uint32_t bytes)
{
	uint8_t *b = malloc(bytes);
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	uint32_t i;

	for (i = 0; b && i < bytes; i++)
		b[i] = pattern(i, 0);
	if (!b || fd < 0 || write(fd, b, bytes) != (ssize_t)bytes) {
		perror("unit: image");
		exit(2);
	}
	close(fd);
	free(b);
}

static void server_down(void)
{
	if (!net.up)
		return;
	server_close(&net.srv);
	config_free(&net.srv.cfg);
	free(net.srv.iobuf);
	memset(&net.srv, 0, sizeof(net.srv));
	net.up = 0;
	net.n = 0;
}

/* (Re)start the server with one image "disk"; state_dir NULL: a temporary one.
 * Session records of an earlier server are not restored: its sessions are lost. */
static int server_up(const char *image, int mode, const char *state_dir)
{
	char err[512];

	server_down();
	config_defaults(&net.srv.cfg);
	if (state_dir)
		snprintf(net.srv.cfg.state_dir, sizeof(net.srv.cfg.state_dir), "%s", state_dir);
	if (config_add_image(&net.srv.cfg, "disk", image, mode, err, sizeof(err)) ||
	    config_check(&net.srv.cfg, err, sizeof(err)) ||
	    server_open_images(&net.srv, err, sizeof(err)) ||
	    server_state_init(&net.srv, err, sizeof(err))) {
		fprintf(stderr, "unit: server: %s\n", err);
		return -1;
	}
	net.srv.iobuf_size = 2048 * ND_SECTOR_SIZE;
	net.srv.iobuf = malloc(net.srv.iobuf_size);
	net.srv.send = sink;
	net.up = 1;
	return 0;
}

static void script(unsigned loss, unsigned dup, unsigned reorder, uint64_t seed)
{
	net.loss = loss;
	net.dup = dup;
	net.reorder = reorder;
	net.rng = seed;
	net.max_reply = 0;
	net.deaf = 0;
	net.lost = net.duplicated = net.reordered = 0;
}

static void on_event(void *ctx, int event, uint32_t arg)
{
	if (event == ND_EV_RETRY || event == ND_EV_RECOVERED || nevents == 64)
		return;
	events[nevents].event = event;
	events[nevents++].arg = arg;
}

static uint8_t txbuf[ND_MAX_DGRAM], rxbuf[ND_MAX_DGRAM];

static void client_new(struct nd_client *c, uint16_t dgram, uint16_t window)
{
	struct nd_transport tp = { 0, tp_send, tp_recv, tp_now };

	nd_client_init(c, &tp, txbuf, rxbuf, sizeof(rxbuf));
	memcpy(c->cfg.mac, "\x02\x00\x00\x00\x00\x07", 6);
	c->cfg.client_kind = ND_KIND_UNKNOWN;
	c->cfg.nonce = 77;
	c->cfg.max_dgram = dgram;
	c->cfg.window = window;
	c->cfg.give_up_ms = 60000; /* virtual: bounds every test */
	c->cfg.event = on_event;
	nevents = 0;
}

/* Reads check every byte against the pattern of generation gen. */
struct verify {
	uint64_t base;
	unsigned gen;
	uint32_t bad;
};

static void put_check(void *ctx, uint32_t offset, const void *data, unsigned len)
{
	struct verify *v = ctx;
	const uint8_t *d = data;
	unsigned i;

	for (i = 0; i < len; i++)
		v->bad += d[i] != pattern(v->base + offset + i, v->gen);
}

static void get_pattern(void *ctx, uint32_t offset, void *data, unsigned len)
{
	struct verify *v = ctx;
	uint8_t *d = data;
	unsigned i;

	for (i = 0; i < len; i++)
		d[i] = pattern(v->base + offset + i, v->gen);
}

/* Read sectors [lba, lba + count) in calls of `per` sectors; mismatching bytes, or -1. */
static long read_check(struct nd_client *c, uint64_t lba, uint32_t count, uint32_t per,
		       unsigned gen)
{
	long bad = 0;

	while (count) {
		uint32_t n = count < per ? count : per;
		struct verify v = { lba * ND_SECTOR_SIZE, gen, 0 };

		if (nd_read(c, lba, n, put_check, &v) != ND_DONE)
			return -1;
		bad += v.bad;
		lba += n;
		count -= n;
	}
	return bad;
}

static void faults(const char *image)
{
	struct nd_client c;
	struct verify w = { 100 * ND_SECTOR_SIZE, 1, 0 };
	long bad;
	int rc;

	if (server_up(image, ND_MODE_VOLATILE, NULL) < 0)
		return;
	script(0, 0, 0, 1);
	client_new(&c, ND_DEFAULT_DGRAM, 16);
	c.cfg.caps = ND_CAP_BOOT_TABLE;
	rc = nd_attach(&c, "disk");
	check_that(rc == ND_DONE && c.sectors == IMAGE_BYTES / ND_SECTOR_SIZE && c.dgram > 0,
		   "core-attach", "rc %d, %llu sectors", rc, (unsigned long long)c.sectors);
	{
		struct session *ss = session_find(&net.srv, c.token);

		check_that(ss && ss->caps == ND_CAP_BOOT_TABLE, "server-records-caps",
			   "session %s, caps %#x", ss ? "found" : "missing", ss ? ss->caps : 0);
	}
	bad = read_check(&c, 0, (uint32_t)c.sectors, 256, 0);
	check_that(bad == 0 && c.retransmits == 0, "core-read-clean",
		   "%ld bad bytes, %u retransmits", bad, c.retransmits);

	script(20, 0, 0, 2);
	bad = read_check(&c, 0, (uint32_t)c.sectors, 200, 0);
	check_that(bad == 0 && net.lost > 0 && c.retransmits > 0, "core-read-loss",
		   "%ld bad bytes, %lu lost, %u retransmits", bad, net.lost, c.retransmits);

	script(0, 30, 0, 3);
	bad = read_check(&c, 0, (uint32_t)c.sectors, 200, 0);
	check_that(bad == 0 && net.duplicated > 0, "core-read-duplicates",
		   "%ld bad bytes, %lu duplicated", bad, net.duplicated);

	script(0, 0, 40, 4);
	bad = read_check(&c, 0, (uint32_t)c.sectors, 200, 0);
	check_that(bad == 0 && net.reordered > 0, "core-read-reorder",
		   "%ld bad bytes, %lu reordered", bad, net.reordered);

	script(10, 10, 20, 5);
	rc = nd_write(&c, 100, 300, get_pattern, &w);
	script(0, 0, 0, 6);
	bad = rc == ND_DONE ? read_check(&c, 100, 300, 64, 1) : -1;
	check_that(bad == 0, "core-write-under-faults-reads-back",
		   "write rc %d, %ld bad bytes read back", rc, bad);
	bad = read_check(&c, 0, 100, 64, 0);
	check_that(bad == 0, "core-write-leaves-neighbours", "%ld bad bytes before the write", bad);

	script(0, 0, 0, 7);
	net.deaf = 1;
	c.cfg.give_up_ms = 3000;
	{
		uint32_t start = net.clock;
		struct verify v = { 0, 0, 0 };

		rc = nd_read(&c, 0, 8, put_check, &v);
		check_that(rc == ND_E_TIMEOUT && net.clock - start >= 3000 &&
			   net.clock - start < 3000 + 5000, "core-gives-up-after-give-up-ms",
			   "rc %d after %u virtual ms", rc, net.clock - start);
	}
	server_down();
}

static const struct nd_ladder_step ladder[] = {
	{ 16384 + ND_HDR_SIZE, 16 },
	{ 8192 + ND_HDR_SIZE, 1 },
	{ ND_DEFAULT_DGRAM, 16 },
};

static void probe(const char *image)
{
	struct nd_client c;
	long bad;
	int rc;

	if (server_up(image, ND_MODE_VOLATILE, NULL) < 0)
		return;
	script(0, 0, 0, 11);
	client_new(&c, 0, 0);
	rc = nd_attach_ladder(&c, "disk", ladder, 3, 600);
	check_that(rc == ND_DONE && c.dgram == ladder[0].dgram && nevents == 0,
		   "probe-keeps-largest-that-gets-through", "rc %d, dgram %u, %u events", rc,
		   c.dgram, nevents);

	/* A NIC that loses datagrams of more than one frame (fragmented). */
	script(0, 0, 0, 12);
	net.max_reply = 1500;
	client_new(&c, 0, 0);
	rc = nd_attach_ladder(&c, "disk", ladder, 3, 600);
	check_that(rc == ND_DONE && c.dgram <= ND_DEFAULT_DGRAM && nevents == 2 &&
		   events[0].event == ND_EV_PROBE_LOST && events[0].arg == 1 &&
		   events[1].event == ND_EV_PROBE_LOST && events[1].arg == 2,
		   "probe-steps-down-the-ladder", "rc %d, dgram %u, %u events (%d/%u, %d/%u)", rc,
		   c.dgram, nevents, events[0].event, events[0].arg, events[1].event, events[1].arg);
	check_that(c.cfg.give_up_ms == 60000 && c.cfg.event == on_event && !c.retrying,
		   "probe-restores-settings", "give_up %u, event hook %s", c.cfg.give_up_ms,
		   c.cfg.event == on_event ? "kept" : "lost");
	bad = read_check(&c, 0, 512, 128, 0);
	check_that(bad == 0, "probe-then-reads", "%ld bad bytes", bad);

	/* Only the larger datagrams lose: the middle step is kept. */
	script(0, 0, 0, 13);
	net.max_reply = 9000;
	client_new(&c, 0, 0);
	rc = nd_attach_ladder(&c, "disk", ladder, 3, 600);
	check_that(rc == ND_DONE && c.dgram == ladder[1].dgram && nevents == 1,
		   "probe-stops-at-first-good-step", "rc %d, dgram %u, %u events", rc, c.dgram,
		   nevents);

	/* No server: the ATTACH times out and the result says so. */
	script(0, 0, 0, 14);
	net.deaf = 1;
	client_new(&c, 0, 0);
	c.cfg.give_up_ms = 2000;
	rc = nd_attach_ladder(&c, "disk", ladder, 3, 600);
	check_that(rc == ND_E_TIMEOUT && nevents == 0, "probe-attach-timeout",
		   "rc %d, %u events", rc, nevents);
	server_down();
}

/* Lose the server's sessions: restart it without the session records. */
static int restart(const char *image, int mode, const char *state)
{
	char cmd[600];

	server_down();
	if (state) {
		snprintf(cmd, sizeof(cmd), "rm -rf '%s/sessions'", state);
		if (system(cmd) != 0)
			return -1;
	}
	return server_up(image, mode, state);
}

/* A read that fails because the server lost the session. */
static int read_fails_lost(struct nd_client *c)
{
	struct verify v = { 0, 0, 0 };
	int rc = nd_read(c, 0, 8, put_check, &v);

	return rc == ND_E_STATUS && c->last_status == ND_ERR_SESSION;
}

static void recovery(const char *image, const char *image_big)
{
	char state[300];
	struct nd_client c;
	struct verify w = { 40 * ND_SECTOR_SIZE, 2, 0 };
	struct nd_retry retry;
	long bad;
	int r;

	snprintf(state, sizeof(state), "%s/state", unit_tmpdir());
	/* Persistent: the overlay keeps the write across the restart. */
	if (server_up(image, ND_MODE_PERSISTENT, state) < 0)
		return;
	script(0, 0, 0, 21);
	client_new(&c, ND_DEFAULT_DGRAM, 16);
	if (!check_that(nd_attach(&c, "disk") == ND_DONE &&
			nd_write(&c, 40, 8, get_pattern, &w) == ND_DONE, "recover-setup",
			"attach or write failed"))
		return;
	restart(image, ND_MODE_PERSISTENT, state);
	nevents = 0;
	nd_retry_begin(&c, &retry);
	r = read_fails_lost(&c) ? nd_recover(&c, ND_E_STATUS, &retry) : -1;
	check_that(r == 1 && retry.tries == 1 && nevents == 2 && events[0].event == ND_EV_SESSION_LOST &&
		   events[0].arg == ND_RECOVER_ATTACHING && events[1].event == ND_EV_REATTACHED,
		   "recover-persistent-attaches-again", "r %d, tries %u, %u events", r, retry.tries,
		   nevents);
	bad = read_check(&c, 40, 8, 8, 2);
	check_that(bad == 0, "recover-persistent-keeps-writes", "%ld bad bytes", bad);

	/* The new session lost again within the same request: no second try. */
	restart(image, ND_MODE_PERSISTENT, state);
	nevents = 0;
	r = read_fails_lost(&c) ? nd_recover(&c, ND_E_STATUS, &retry) : -1;
	check_that(r == 0 && nevents == 1 && events[0].arg == ND_RECOVER_ONCE,
		   "recover-once-per-request", "r %d, %u events, reason %u", r, nevents,
		   events[0].arg);

	/* Not a lost session: nothing to recover, nothing reported. */
	nd_retry_begin(&c, &retry);
	nevents = 0;
	c.last_status = ND_ERR_IO;
	check_that(nd_recover(&c, ND_E_STATUS, &retry) == 0 &&
		   nd_recover(&c, ND_E_TIMEOUT, &retry) == 0 && nevents == 0 && retry.tries == 0,
		   "recover-only-lost-sessions", "recovered from another error");

	/* Volatile with writes: refused, and the disk is gone. */
	restart(image, ND_MODE_VOLATILE, NULL);
	client_new(&c, ND_DEFAULT_DGRAM, 16);
	w.gen = 3;
	nd_attach(&c, "disk");
	nd_write(&c, 40, 8, get_pattern, &w);
	restart(image, ND_MODE_VOLATILE, NULL);
	nd_retry_begin(&c, &retry);
	nevents = 0;
	r = read_fails_lost(&c) ? nd_recover(&c, ND_E_STATUS, &retry) : -1;
	check_that(r == 0 && nevents == 1 && events[0].arg == ND_RECOVER_VOLATILE &&
		   c.sectors == 0 && net.srv.nsessions == 0, "recover-volatile-with-writes-refused",
		   "r %d, %u events, reason %u, %llu sectors, %u server sessions", r, nevents,
		   events[0].arg, (unsigned long long)c.sectors, net.srv.nsessions);

	/* Volatile, acknowledged writes only in the request under way (pieces of
	 * it): redoing the request loses nothing, attached again. */
	client_new(&c, ND_DEFAULT_DGRAM, 16);
	nd_attach(&c, "disk");
	nd_retry_begin(&c, &retry);
	nd_write(&c, 40, 8, get_pattern, &w);
	restart(image, ND_MODE_VOLATILE, NULL);
	nevents = 0;
	r = read_fails_lost(&c) ? nd_recover(&c, ND_E_STATUS, &retry) : -1;
	check_that(r == 1 && events[0].arg == ND_RECOVER_ATTACHING,
		   "recover-volatile-writes-of-this-request", "r %d, reason %u", r, events[0].arg);

	/* Volatile without writes: nothing to lose, attached again. */
	client_new(&c, ND_DEFAULT_DGRAM, 16);
	nd_attach(&c, "disk");
	restart(image, ND_MODE_VOLATILE, NULL);
	nd_retry_begin(&c, &retry);
	r = read_fails_lost(&c) ? nd_recover(&c, ND_E_STATUS, &retry) : -1;
	check_that(r == 1 && read_check(&c, 0, 64, 64, 0) == 0, "recover-volatile-unwritten",
		   "r %d", r);

	/* The image changed size behind the restart: the disk is gone. */
	restart(image_big, ND_MODE_VOLATILE, NULL);
	nd_retry_begin(&c, &retry);
	nevents = 0;
	r = read_fails_lost(&c) ? nd_recover(&c, ND_E_STATUS, &retry) : -1;
	check_that(r == 0 && c.sectors == 0 && nevents == 2 &&
		   events[1].arg == ND_RECOVER_CHANGED, "recover-size-changed-refused",
		   "r %d, %llu sectors, %u events", r, (unsigned long long)c.sectors, nevents);

	/* Or its mode. */
	restart(image, ND_MODE_VOLATILE, NULL);
	client_new(&c, ND_DEFAULT_DGRAM, 16);
	nd_attach(&c, "disk");
	restart(image, ND_MODE_READONLY, NULL);
	nd_retry_begin(&c, &retry);
	nevents = 0;
	r = read_fails_lost(&c) ? nd_recover(&c, ND_E_STATUS, &retry) : -1;
	check_that(r == 0 && c.sectors == 0 && nevents == 2 &&
		   events[1].arg == ND_RECOVER_CHANGED, "recover-mode-changed-refused",
		   "r %d, %llu sectors, %u events", r, (unsigned long long)c.sectors, nevents);
	server_down();
}

/* Out of space reaches the client as NOSPACE and the server's log once per
 * session and kind of error, with operation, image, client, offset and errno. */
static void storage_error(const char *image)
{
	char logpath[300], line[512], found[512] = "";
	struct nd_client c;
	struct verify w = { 8 * ND_SECTOR_SIZE, 4, 0 };
	int saved, fd, rc, rc2, lines = 0;
	FILE *f;

	if (server_up(image, ND_MODE_VOLATILE, NULL) < 0)
		return;
	script(0, 0, 0, 31);
	client_new(&c, ND_DEFAULT_DGRAM, 16);
	nd_attach(&c, "disk");
	snprintf(logpath, sizeof(logpath), "%s/server.log", unit_tmpdir());
	fflush(stderr);
	saved = dup(2);
	fd = open(logpath, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	dup2(fd, 2);
	close(fd);
	unit_fail_pwrites(ENOSPC);
	rc = nd_write(&c, 8, 1, get_pattern, &w);
	rc2 = nd_write(&c, 16, 1, get_pattern, &w); /* the same kind again: not logged */
	unit_fail_pwrites(0);
	fflush(stderr);
	dup2(saved, 2);
	close(saved);
	f = fopen(logpath, "r");
	while (f && fgets(line, sizeof(line), f))
		if (strstr(line, "storage error")) {
			lines++;
			snprintf(found, sizeof(found), "%s", line);
		}
	if (f)
		fclose(f);
	check_that(rc == ND_E_STATUS && rc2 == ND_E_STATUS && c.last_status == ND_ERR_NOSPACE,
		   "storage-error-nospace-status", "rc %d %d, status %u", rc, rc2, c.last_status);
	check_that(lines == 1 && strstr(found, " error netdiskd: storage error, ") &&
		   strstr(found, "op=write image=disk mac=02:00:00:00:00:07 ip=") &&
		   strstr(found, " offset=4096 len=512 errno=ENOSPC"), "storage-error-logged-once",
		   "%d lines, last '%s'", lines, found);
	server_down();
}

void unit_client(void)
{
	char image[300], big[300];

	snprintf(image, sizeof(image), "%s/disk.img", unit_tmpdir());
	snprintf(big, sizeof(big), "%s/big.img", unit_tmpdir());
	make_image(image, IMAGE_BYTES);
	make_image(big, 2 * IMAGE_BYTES);
	nd_log_init("netdiskd", ND_LOG_ERROR, ND_LOG_TEXT);
	faults(image);
	probe(image);
	recovery(image, big);
	storage_error(image);
}
