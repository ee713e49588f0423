/* SPDX-License-Identifier: GPL-2.0-or-later */
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
#include "group.h"
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
	unsigned corrupt_at;    /* a byte of every reply longer than this is flipped (0: none) */
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
		if (net.corrupt_at && len > net.corrupt_at)
			d[net.corrupt_at] ^= 0x40;
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
	mcast_close(&net.srv);
	auth_free(&net.srv);
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

/* A volatile session on `image` whose server comes back serving `now` in
 * mode `mode`: size or mode changed, so recovery must refuse it. */
static void recover_changed(const char *name, const char *image, const char *now, int mode)
{
	struct nd_client c;
	struct nd_retry retry;
	int r;

	restart(image, ND_MODE_VOLATILE, NULL);
	client_new(&c, ND_DEFAULT_DGRAM, 16);
	nd_attach(&c, "disk");
	restart(now, mode, NULL);
	nd_retry_begin(&c, &retry);
	nevents = 0;
	r = read_fails_lost(&c) ? nd_recover(&c, ND_E_STATUS, &retry) : -1;
	check_that(r == 0 && c.sectors == 0 && nevents == 2 && events[1].arg == ND_RECOVER_CHANGED,
		   name, "r %d, %llu sectors, %u events", r, (unsigned long long)c.sectors, nevents);
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

	/* The image changed size or mode behind the restart: the disk is gone. */
	recover_changed("recover-size-changed-refused", image, image_big, ND_MODE_VOLATILE);
	recover_changed("recover-mode-changed-refused", image, image, ND_MODE_READONLY);
	server_down();
}

/* Out of space reaches the client as NOSPACE and the server's log once per
 * session and kind of error, with operation, image, client, offset and errno. */
static void storage_error(const char *image)
{
	char logpath[300], line[512], found[512] = "";
	struct nd_client c;
	struct verify w = { 8 * ND_SECTOR_SIZE, 4, 0 };
	int saved, rc, rc2, lines = 0;
	FILE *f;

	if (server_up(image, ND_MODE_VOLATILE, NULL) < 0)
		return;
	script(0, 0, 0, 31);
	client_new(&c, ND_DEFAULT_DGRAM, 16);
	nd_attach(&c, "disk");
	snprintf(logpath, sizeof(logpath), "%s/server.log", unit_tmpdir());
	saved = unit_stderr_to(logpath);
	unit_fail_pwrites(ENOSPC);
	rc = nd_write(&c, 8, 1, get_pattern, &w);
	rc2 = nd_write(&c, 16, 1, get_pattern, &w); /* the same kind again: not logged */
	unit_fail_pwrites(0);
	unit_stderr_back(saved);
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

/* Multicast: netdiskd's group sends and the client's group cache. */

/* Start multicast on the unit server in `mode` (no socket: the sink gets
 * the group datagrams like any other). */
static int mcast_on(int mode)
{
	char err[256];

	net.srv.cfg.mc.mode = mode;
	net.srv.udp_fd = -1;
	if (mcast_open(&net.srv, err, sizeof(err)) < 0) {
		fprintf(stderr, "unit: mcast_open: %s\n", err);
		return -1;
	}
	return 0;
}

/* How a crafted group datagram is spoiled. */
enum forge { F_GOOD, F_MAGIC, F_FLAGS, F_TRUNC, F_STREAM, F_TOKEN_TAIL, F_RANGE, F_ACROSS,
	     F_COUNT0, F_OFFSET };

/* Queue a group datagram of `count` sectors at `lba`, pattern gen, for the
 * client's stream (spoiled as `how` says). */
static void inject(struct nd_client *c, uint64_t lba, uint32_t count, unsigned gen, enum forge how)
{
	static uint8_t d[ND_HDR_SIZE + ND_MC_MAX_SECTORS * ND_SECTOR_SIZE];
	struct nd_hdr *h = (struct nd_hdr *)d;
	struct verify v = { lba * ND_SECTOR_SIZE, gen, 0 };
	int len = ND_HDR_SIZE + (int)count * ND_SECTOR_SIZE;

	memset(d, 0, sizeof(d));
	nd_put32(h->magic, how == F_MAGIC ? 0x4E44534Cu : ND_MAGIC);
	h->version = ND_VERSION;
	h->opcode = ND_OP_READ;
	h->flags = how == F_FLAGS ? ND_FLAG_MCAST : ND_FLAG_REPLY | ND_FLAG_MCAST;
	nd_put16(h->data_len, (uint16_t)(count * ND_SECTOR_SIZE));
	memcpy(h->token, c->mc_stream, 8);
	if (how == F_STREAM)
		h->token[3] ^= 0x40;
	if (how == F_TOKEN_TAIL)
		h->token[12] = 1;
	nd_put64(h->lba, how == F_RANGE ? c->sectors - 1 : lba);
	nd_put32(h->count, how == F_COUNT0 ? 0 : count);
	nd_put32(h->offset, how == F_OFFSET ? 512 : 0);
	get_pattern(&v, 0, d + ND_HDR_SIZE, count * ND_SECTOR_SIZE);
	if (how == F_TRUNC)
		len -= 100;
	if (how == F_ACROSS) /* two sectors from an odd LBA: two blocks of two */
		nd_put64(h->lba, lba | 1);
	enqueue(d, len);
}

/* A small read elsewhere: the client takes everything queued before it. */
static void drain(struct nd_client *c)
{
	read_check(c, 2000, 1, 1, 0);
}

static void multicast(const char *image)
{
	static uint8_t cache[256 << 10];
	struct nd_group g;
	struct nd_client c;
	struct verify w = { 300 * ND_SECTOR_SIZE, 1, 0 };
	unsigned long req, mc0;
	uint32_t t0;
	long bad;
	int rc;

	/* Offered only to a client that says it can take it. */
	if (server_up(image, ND_MODE_VOLATILE, NULL) < 0 || mcast_on(MCAST_AUTO) < 0)
		return;
	script(0, 0, 0, 11);
	client_new(&c, ND_DEFAULT_DGRAM, 16);
	rc = nd_attach(&c, "disk");
	check_that(rc == ND_DONE && !c.mc_addr[0] && !session_find(&net.srv, c.token)->mc_group,
		   "mc-not-offered-without-cap", "rc %d, group %u.%u.%u.%u", rc, c.mc_addr[0],
		   c.mc_addr[1], c.mc_addr[2], c.mc_addr[3]);
	client_new(&c, ND_DEFAULT_DGRAM, 16);
	c.cfg.caps = ND_CAP_MULTICAST;
	c.cfg.nonce = 78;
	rc = nd_attach(&c, "disk");
	check_that(rc == ND_DONE && !memcmp(c.mc_addr, "\xef\xff\x4e\x01", 4) &&
		   c.mc_port == ND_DEFAULT_PORT + 1 && c.mc_sectors == 2 &&
		   memcmp(c.mc_stream, "\0\0\0\0\0\0\0\0", 8),
		   "mc-offered-in-attach", "rc %d, group %u.%u.%u.%u:%u, %u sectors", rc,
		   c.mc_addr[0], c.mc_addr[1], c.mc_addr[2], c.mc_addr[3], c.mc_port, c.mc_sectors);
	rc = nd_group_attach(&c, &g, cache, sizeof(cache), 2000);
	check_that(rc == ND_DONE && g.nent > 200, "mc-cache-attach", "rc %d, %u blocks", rc, g.nent);

	/* Cache hit: blocks that came by the group are not asked for. */
	inject(&c, 64, 2, 0, F_GOOD);
	inject(&c, 66, 2, 0, F_GOOD);
	inject(&c, 68, 1, 0, F_GOOD);
	inject(&c, 69, 1, 0, F_GOOD);
	drain(&c);
	req = net.requests;
	t0 = net.clock;
	bad = read_check(&c, 64, 6, 6, 0);
	check_that(bad == 0 && net.requests == req && g.st.cached == 4 && g.st.hits == 6,
		   "mc-cache-hit-asks-nothing", "%ld bad bytes, %lu requests, %u cached, %u hits",
		   bad, net.requests - req, g.st.cached, g.st.hits);
	/* ... nor waits for anything (it waited for the next datagram, up to
	 * rto_max, before it returned). */
	check_that(net.clock == t0, "mc-cache-hit-no-wait", "waited %u ms", net.clock - t0);
	/* Read from the cache: kept, so the same sectors again come from it
	 * too (the server would hold them back from the group). */
	req = net.requests;
	bad = read_check(&c, 64, 6, 6, 0);
	check_that(bad == 0 && net.requests == req && g.st.hits == 12, "mc-cache-read-kept",
		   "%ld bad bytes, %lu requests, %u hits", bad, net.requests - req, g.st.hits);
	/* Miss: half the range cached; the READ asks only for the chunks it lacks. */
	inject(&c, 100, 2, 0, F_GOOD);
	inject(&c, 102, 2, 0, F_GOOD);
	inject(&c, 104, 2, 0, F_GOOD);
	drain(&c);
	mc0 = net.srv.stats.tx_unicast;
	bad = read_check(&c, 100, 12, 12, 0);
	/* 12 sectors are five chunks of 1424 bytes; the first two are cached
	 * whole, so three data datagrams come: 1424, 1424 and 448 bytes. */
	check_that(bad == 0 && net.srv.stats.tx_unicast - mc0 == 2 * 1472 + 448 + 48,
		   "mc-cache-miss-asks-only-lacking", "%ld bad bytes, %lu unicast bytes for 6 lacking sectors",
		   bad, (unsigned long)(net.srv.stats.tx_unicast - mc0));
	/* Expiry: blocks not read within the timeout are dropped. */
	inject(&c, 200, 2, 0, F_GOOD);
	drain(&c);
	net.clock += 2500;
	req = net.requests;
	bad = read_check(&c, 200, 2, 2, 0);
	check_that(bad == 0 && net.requests == req + 1 && g.st.expired >= 1, "mc-cache-expiry",
		   "%ld bad bytes, %lu requests, %u expired", bad, net.requests - req, g.st.expired);

	/* A new stream (a new ATTACH to a restarted server): what the cache
	 * held may be stale and goes. */
	inject(&c, 400, 2, 0, F_GOOD);
	drain(&c);
	c.mc_stream[0] ^= 1;
	req = net.requests;
	bad = read_check(&c, 400, 2, 2, 0);
	c.mc_stream[0] ^= 1;
	check_that(bad == 0 && net.requests == req + 1 && g.st.flushed == 1, "mc-new-stream-empties-cache",
		   "%ld bad bytes, %lu requests, flushed %u", bad, net.requests - req, g.st.flushed);
	inject(&c, 402, 2, 0, F_GOOD); /* back to the first stream: emptied again */
	drain(&c);

	/* Forged, wrong-stream, truncated and out-of-range datagrams: dropped and counted. */
	{
		struct nd_group_stats before = g.st;

		inject(&c, 300, 2, 7, F_MAGIC);
		inject(&c, 300, 2, 7, F_FLAGS);
		inject(&c, 300, 2, 7, F_TRUNC);
		inject(&c, 300, 2, 7, F_COUNT0);
		inject(&c, 300, 2, 7, F_OFFSET);
		inject(&c, 300, 2, 7, F_STREAM);
		inject(&c, 300, 2, 7, F_TOKEN_TAIL);
		inject(&c, 300, 2, 7, F_RANGE);
		inject(&c, 300, 2, 7, F_ACROSS);
		drain(&c);
		bad = read_check(&c, 300, 4, 4, 0);
		check_that(g.st.bad - before.bad == 5 && g.st.foreign - before.foreign == 2 &&
			   g.st.range - before.range == 2 && g.st.cached == before.cached && bad == 0,
			   "mc-forged-dropped-and-counted", "bad +%u foreign +%u range +%u cached +%u, "
			   "%ld bad bytes read", g.st.bad - before.bad, g.st.foreign - before.foreign,
			   g.st.range - before.range, g.st.cached - before.cached, bad);
	}

	/* Own writes: an LBA this client wrote is never taken from the group. */
	rc = nd_write(&c, 300, 4, get_pattern, &w);
	inject(&c, 300, 2, 0, F_GOOD);
	inject(&c, 302, 2, 0, F_GOOD);
	inject(&c, 304, 2, 0, F_GOOD);
	drain(&c);
	bad = rc == ND_DONE ? read_check(&c, 300, 4, 4, 1) : -1;
	check_that(bad == 0 && g.st.own == 4, "mc-own-write-never-from-group",
		   "write rc %d, %ld bytes not the client's own, %u sectors refused", rc, bad, g.st.own);
	bad = read_check(&c, 304, 2, 2, 0);
	check_that(bad == 0 && g.st.hits >= 8, "mc-next-to-own-write-from-group", "%ld bad, %u hits",
		   bad, g.st.hits);

	/* The server's rule: with `always`, reads go to the group, the data is
	 * right, and a member's own overlay data goes by unicast. */
	mcast_close(&net.srv);
	mcast_on(MCAST_ALWAYS);
	client_new(&c, ND_DEFAULT_DGRAM, 16);
	c.cfg.caps = ND_CAP_MULTICAST;
	c.cfg.nonce = 79;
	rc = nd_attach(&c, "disk");
	/* Offered the group, not joined yet (the stubs' datagram-size probe):
	 * the READs say UNICAST, and the answers come to the client, not to a
	 * group it would never hear. */
	{
		uint32_t rtx = c.retransmits;

		mc0 = (unsigned long)net.srv.stats.tx_multicast;
		bad = rc == ND_DONE ? read_check(&c, 0, 128, 128, 0) : -1;
		check_that(rc == ND_DONE && c.mc_addr[0] && bad == 0 &&
			   net.srv.stats.tx_multicast == mc0 && c.retransmits == rtx,
			   "mc-not-joined-reads-by-unicast", "rc %d, group %u, %ld bad bytes, %llu "
			   "multicast bytes, %u retransmits", rc, c.mc_addr[0], bad,
			   net.srv.stats.tx_multicast - mc0, c.retransmits - rtx);
	}
	if (rc == ND_DONE)
		rc = nd_group_attach(&c, &g, cache, sizeof(cache), 2000);
	mc0 = (unsigned long)net.srv.stats.tx_multicast;
	bad = rc == ND_DONE ? read_check(&c, 0, 1024, 256, 0) : -1;
	check_that(bad == 0 && net.srv.stats.tx_multicast - mc0 > 1024 * ND_SECTOR_SIZE &&
		   g.st.hits == 1024 && c.retransmits == 0, "mc-always-reads-by-group",
		   "%ld bad bytes, %llu multicast bytes, %u hits, %u retransmits", bad,
		   net.srv.stats.tx_multicast - mc0, g.st.hits, c.retransmits);
	/* Read again within the server's hold-back: the group does not carry
	 * it again, so it must come from the cache, not from a repair after
	 * a timeout (with "read is freed" every read here was a retransmission). */
	{
		unsigned long rep = net.srv.stats.repairs;
		uint32_t hits = g.st.hits, rtx = c.retransmits;

		req = net.requests;
		bad = read_check(&c, 768, 256, 256, 0); /* the last quarter: the cache holds it */
		check_that(bad == 0 && net.requests == req && g.st.hits - hits == 256 &&
			   c.retransmits == rtx && net.srv.stats.repairs == rep,
			   "mc-reread-within-hold-from-cache", "%ld bad bytes, %lu requests, %u hits, "
			   "%u retransmits, %lu repairs", bad, net.requests - req, g.st.hits - hits,
			   c.retransmits - rtx, net.srv.stats.repairs - rep);
		/* A cache timeout shorter than the server's hold is stretched to it. */
		rc = nd_group_attach(&c, &g, cache, sizeof(cache), 100);
		check_that(rc == ND_DONE && c.mc_hold_ms == net.srv.cfg.mc.resend_ms &&
			   c.mc_hold_ms > 100 && g.timeout_ms > c.mc_hold_ms,
			   "mc-cache-keeps-for-server-hold", "hold %u ms (server %u), cache keeps %u ms",
			   c.mc_hold_ms, net.srv.cfg.mc.resend_ms, g.timeout_ms);
		nd_group_attach(&c, &g, cache, sizeof(cache), 2000);
		/* Half a group block sent (its second sector) does not hold back
		 * the other half. */
		rep = net.srv.stats.repairs;
		rtx = c.retransmits;
		bad = read_check(&c, 2001, 1, 1, 0);
		bad += read_check(&c, 2000, 1, 1, 0);
		check_that(bad == 0 && c.retransmits == rtx && net.srv.stats.repairs == rep,
			   "mc-half-block-not-held", "%ld bad bytes, %u retransmits, %lu repairs", bad,
			   c.retransmits - rtx, net.srv.stats.repairs - rep);
	}
	/* The rate cap is charged for what goes: a member's READ of blocks the
	 * group just carried costs nothing (it was charged in full, so 32
	 * members asking at once looked like 32 sends and went unicast). */
	{
		struct nd_client b;
		unsigned long capped;
		uint64_t m0;

		net.srv.cfg.mc.rate_mbit = 1; /* a burst of 12500 bytes */
		bad = read_check(&c, 1900, 20, 20, 0); /* 10 blocks: 10720 bytes to the group */
		client_new(&b, ND_DEFAULT_DGRAM, 16);
		b.cfg.caps = ND_CAP_MULTICAST;
		b.cfg.mac[5] = 0x23;
		rc = nd_attach(&b, "disk");
		capped = net.srv.stats.mc_capped;
		m0 = net.srv.stats.tx_multicast;
		bad += rc == ND_DONE ? read_check(&b, 1900, 20, 20, 0) : -1;
		check_that(bad == 0 && net.srv.stats.mc_capped == capped &&
			   net.srv.stats.tx_multicast == m0, "mc-cap-charges-what-goes",
			   "%ld bad bytes, %lu more capped, %llu multicast bytes", bad,
			   net.srv.stats.mc_capped - capped, net.srv.stats.tx_multicast - m0);
		net.srv.cfg.mc.rate_mbit = 400;
	}
	w.base = 10 * ND_SECTOR_SIZE;
	rc = nd_write(&c, 10, 2, get_pattern, &w);
	mc0 = (unsigned long)net.srv.stats.tx_multicast;
	bad = rc == ND_DONE ? read_check(&c, 10, 2, 2, 1) : -1;
	check_that(net.srv.stats.tx_multicast == mc0 && bad == 0, "mc-own-overlay-by-unicast",
		   "%ld bytes not its own, %llu multicast bytes for a range the client wrote", bad,
		   net.srv.stats.tx_multicast - mc0);

	/* Loss on the group: the client repairs by unicast (ND_FLAG_RETRY). */
	script(15, 0, 10, 12);
	bad = read_check(&c, 1024, 512, 128, 0);
	check_that(bad == 0 && net.srv.stats.repairs > 0, "mc-loss-repaired-by-unicast",
		   "%ld bad bytes, %lu repairs", bad, net.srv.stats.repairs);
	script(0, 0, 0, 13);
	nd_group_detach(&c);

	/* auto: a READ overlapping another member's recent one goes to the group. */
	mcast_close(&net.srv);
	mcast_on(MCAST_AUTO);
	{
		struct nd_client a, b;
		unsigned long long m1, m2;

		client_new(&a, ND_DEFAULT_DGRAM, 16);
		a.cfg.caps = ND_CAP_MULTICAST;
		a.cfg.mac[5] = 0x21;
		rc = nd_attach(&a, "disk");
		client_new(&b, ND_DEFAULT_DGRAM, 16);
		b.cfg.caps = ND_CAP_MULTICAST;
		b.cfg.mac[5] = 0x22;
		rc |= nd_attach(&b, "disk");
		rc |= nd_group_attach(&b, &g, cache, sizeof(cache), 2000);
		m1 = net.srv.stats.tx_multicast;
		bad = rc == ND_DONE ? read_check(&a, 1600, 64, 64, 0) : -1;
		m2 = net.srv.stats.tx_multicast;
		bad += rc == ND_DONE ? read_check(&b, 1632, 64, 64, 0) : -1;
		check_that(rc == ND_DONE && bad == 0 && m2 == m1 && net.srv.stats.tx_multicast > m2,
			   "mc-auto-overlap-goes-to-group", "rc %d, %ld bad, first read %llu multicast "
			   "bytes, overlapping one %llu", rc, bad, m2 - m1, net.srv.stats.tx_multicast - m2);
		net.clock += 1000;
		usleep(600 * 1000); /* the server's window is real time */
		m1 = net.srv.stats.tx_multicast;
		bad = read_check(&a, 1632, 64, 64, 0);
		check_that(bad == 0 && net.srv.stats.tx_multicast == m1, "mc-auto-window-passes",
			   "%llu multicast bytes after the window", net.srv.stats.tx_multicast - m1);
	}
	server_down();
}

/*
 * The site key through the client core and the server's handler: a keyed
 * client gets its challenge and attaches, also through loss, duplication
 * and reordering (the challenge round trip retries like any request); an
 * unkeyed one and one with another key get AUTH and nothing else.
 */
static void site_key(const char *image)
{
	static const uint8_t key[ND_KEY_LEN] = { 1, 2, 3, 4, 5, 6, 7, 8, 9 };
	uint8_t other[ND_KEY_LEN] = { 9 };
	char path[300], err[512];
	struct nd_client c;
	struct verify v = { 0, 0, 0 };
	unsigned i, ok = 0;
	FILE *f;
	int rc;

	if (server_up(image, ND_MODE_VOLATILE, NULL) < 0)
		return;
	snprintf(path, sizeof(path), "%s/site.key", unit_tmpdir());
	f = fopen(path, "w");
	for (i = 0; f && i < ND_KEY_LEN; i++)
		fprintf(f, "%02x", key[i]);
	if (!f || fclose(f) != 0)
		return;
	snprintf(net.srv.cfg.site_key_file, sizeof(net.srv.cfg.site_key_file), "%s", path);
	if (auth_init(&net.srv, err, sizeof(err)) < 0) {
		check_that(0, "site-key-init", "%s", err);
		return;
	}
	for (i = 0; i < 20; i++) {
		script(i ? 10 : 0, i ? 10 : 0, i ? 10 : 0, 100 + i);
		client_new(&c, ND_DEFAULT_DGRAM, 16);
		c.cfg.key = key;
		c.cfg.nonce = 1000 + i;
		v.bad = 0;
		rc = nd_attach(&c, "disk");
		if (rc == ND_DONE && nd_read(&c, 0, 64, put_check, &v) == ND_DONE && !v.bad)
			ok++;
	}
	check_that(ok == 20, "site-key-attach-through-loss", "%u of 20 keyed clients attached and read", ok);
	script(0, 0, 0, 7);
	client_new(&c, ND_DEFAULT_DGRAM, 16);
	rc = nd_attach(&c, "disk");
	check_that(rc == ND_E_STATUS && c.last_status == ND_ERR_AUTH, "site-key-unkeyed-gets-auth",
		   "rc %d status %u", rc, c.last_status);
	client_new(&c, ND_DEFAULT_DGRAM, 16);
	c.cfg.key = other;
	rc = nd_attach(&c, "disk");
	check_that(rc == ND_E_STATUS && c.last_status == ND_ERR_AUTH && net.srv.stats.auth_refused == 4,
		   "site-key-wrong-key-gets-auth-counted", "rc %d status %u refused %lu", rc,
		   c.last_status, net.srv.stats.auth_refused);
	server_down();
}

/* The reason a PERSONA refusal carries, as the stubs and the CLI print it:
 * ": " and the text, unprintable bytes as '?', at most 127 of them; nothing
 * for another status or an empty payload. */
static void status_reason(void)
{
	struct nd_client c;
	char *t = (char *)rxbuf + ND_HDR_SIZE;
	const char *r;

	client_new(&c, 1472, 8);
	c.last_status = ND_ERR_PERSONA;
	memcpy(t, "no /opt\n\x1b[2J", 12);
	nd_put16(((struct nd_hdr *)rxbuf)->data_len, 12);
	r = nd_status_reason(&c);
	check_that(!strcmp(r, ": no /opt??[2J"), "status-reason-printable", "'%s'", r);
	memset(t, 'x', 300);
	nd_put16(((struct nd_hdr *)rxbuf)->data_len, 300);
	r = nd_status_reason(&c);
	check_that(strlen(r) == 2 + 127, "status-reason-capped", "%zu bytes", strlen(r));
	nd_put16(((struct nd_hdr *)rxbuf)->data_len, 0);
	check_that(!*nd_status_reason(&c), "status-reason-none", "'%s'", nd_status_reason(&c));
	nd_put16(((struct nd_hdr *)rxbuf)->data_len, 5);
	c.last_status = ND_ERR_DENIED;
	check_that(!*nd_status_reason(&c), "status-reason-other-status", "'%s'",
		   nd_status_reason(&c));
}

/* takeover = iscsi: the handoff bit, nd_ibft's table (checked by the core),
 * and a session whose takeover is nbd refused; the table's fields are read
 * back by tests/ibft-probe.py in t-ibft.sh. */
static void ibft(const char *image)
{
	struct nd_ibft_req q = { .ip = { 10, 0, 2, 15 }, .server = { 10, 0, 2, 2 },
				 .netmask = { 255, 255, 255, 0 }, .mac = { 2, 0, 0, 0, 0, 7 } };
	struct nd_client c;
	const uint8_t *t = rxbuf + ND_HDR_SIZE;
	int rc, n;

	if (server_up(image, ND_MODE_VOLATILE, NULL) < 0)
		return;
	script(0, 0, 0, 3);
	client_new(&c, ND_DEFAULT_DGRAM, 16);
	rc = nd_attach(&c, "disk");
	n = nd_ibft(&c, &q);
	check_that(rc == ND_DONE && !(c.handoff & ND_HANDOFF_ISCSI) && n == ND_E_STATUS &&
		   c.last_status == ND_ERR_DENIED, "ibft-refused-for-nbd-takeover",
		   "rc %d handoff %x nd_ibft %d status %u", rc, c.handoff, n, c.last_status);
	net.srv.cfg.takeover = TAKEOVER_ISCSI;
	snprintf(net.srv.cfg.iscsi_listen, sizeof(net.srv.cfg.iscsi_listen), "0.0.0.0:3260");
	c.cfg.nonce = 81;
	rc = nd_attach(&c, "disk");
	n = nd_ibft(&c, &q);
	check_that(rc == ND_DONE && (c.handoff & ND_HANDOFF_ISCSI) && n > 312 && n <= ND_IBFT_MAX &&
		   !memcmp(t, "iBFT", 4) && (t[4] | t[5] << 8) == n, "ibft-table-for-iscsi-takeover",
		   "rc %d handoff %x nd_ibft %d", rc, c.handoff, n);
	/* A table with a wrong byte is refused by the core, not copied. */
	net.corrupt_at = ND_HDR_SIZE + 100;
	n = nd_ibft(&c, &q);
	net.corrupt_at = 0;
	check_that(n == ND_E_PROTO, "ibft-bad-checksum-refused", "nd_ibft %d", n);
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
	multicast(image);
	site_key(image);
	status_reason();
	ibft(image);
}
