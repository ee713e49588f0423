/* SPDX-License-Identifier: GPL-2.0-or-later */
/* ndtest: drives netdiskd through the client core (and raw datagrams) and checks the results. */

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include "ndclient.h"
#include "udp_host.h"
#include "ndcommon.h"
#include "faulty.h"
#include "ipstack.h"
#include "tapdev.h"

static const char *server;
static int failures;

/* NDTEST_BIND=IPV4[:PORT]: speak from that address and port (a client that
 * keeps its port across runs, or one on another host) by replacing the
 * transport's socket with one bound there. */
static void bind_source(struct nd_udp_host *u)
{
	const char *spec = getenv("NDTEST_BIND");
	struct sockaddr_storage peer;
	socklen_t plen = sizeof(peer);
	struct sockaddr_in src = { .sin_family = AF_INET };
	char ip[64];
	unsigned port;
	int fd, one = 1, size = 8 << 20;

	if (!spec)
		return;
	if (nd_split_hostport(spec, ip, sizeof(ip), &port, 0) < 0 ||
	    inet_pton(AF_INET, ip, &src.sin_addr) != 1) {
		fprintf(stderr, "ndtest: bad NDTEST_BIND '%s' (want IPV4[:PORT])\n", spec);
		exit(2);
	}
	src.sin_port = htons((uint16_t)port);
	fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || getpeername(u->fd, (struct sockaddr *)&peer, &plen) < 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    bind(fd, (struct sockaddr *)&src, sizeof(src)) < 0 ||
	    connect(fd, (struct sockaddr *)&peer, plen) < 0 || dup2(fd, u->fd) < 0) {
		fprintf(stderr, "ndtest: cannot speak from %s: %s\n", spec, strerror(errno));
		exit(2);
	}
	close(fd);
	setsockopt(u->fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof(size));
}

static void result(int ok, const char *name, const char *fmt, ...)
{
	va_list ap;

	if (ok) {
		printf("PASS %s\n", name);
		return;
	}
	failures++;
	printf("FAIL %s: ", name);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
}

/* A client session, optionally through a faulty transport. */
struct tclient {
	struct nd_udp_host udp;
	struct faulty *faults;
	struct nd_client c;
	uint8_t tx[ND_MAX_DGRAM], rx[ND_MAX_DGRAM];
};

static uint32_t host_ms(void *ctx)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint32_t)(ts.tv_sec * 1000 + ts.tv_nsec / 1000000);
}

/*
 * NDTEST_TAP=IFNAME,CLIENT-IP: the client speaks through the firmware
 * stubs' own Ethernet/IPv4/UDP stack on a TAP device (server given as
 * IPV4:PORT on the TAP's network /24) instead of a host UDP socket.
 * With NDTEST_TAP_SUMS set the device sums what the stack reads.
 */
static int tap_transport(const char *spec, const uint8_t *mac, uint32_t seed,
			 struct nd_transport *tp)
{
	static struct nd_framedev dev;
	const char *faults = getenv("NDTEST_TAP_FAULTS");
	struct tapdev_faults f = { 0 };
	struct nd_ipconf conf;
	char ifname[32], ip[32], host[64];
	unsigned port;

	memset(&conf, 0, sizeof(conf));
	if (sscanf(spec, "%31[^,],%31s", ifname, ip) != 2 ||
	    nd_split_hostport(server, host, sizeof(host), &port, ND_DEFAULT_PORT) < 0 ||
	    inet_pton(AF_INET, ip, conf.ip) != 1 || inet_pton(AF_INET, host, conf.server) != 1) {
		fprintf(stderr, "ndtest: NDTEST_TAP wants IFNAME,IPV4 and the server IPV4:PORT\n");
		exit(2);
	}
	if (tapdev_open(&dev, ifname, mac, getenv("NDTEST_TAP_SUMS") != NULL) < 0) {
		perror("ndtest: TAP device");
		exit(2);
	}
	if (faults && sscanf(faults, "%u,%u,%u", &f.loss, &f.dup, &f.reorder) == 3)
		tapdev_faults(&f);
	memset(conf.netmask, 255, 3);
	conf.server_port = (uint16_t)port;
	conf.seed = seed;
	tp->ctx = NULL;
	tp->now_ms = host_ms;
	return nd_ip_open(&dev, &conf, tp);
}

static int tclient_open(struct tclient *t, const char *mac, uint32_t nonce, unsigned dgram,
			struct faulty *faults, unsigned loss, unsigned dup, unsigned reorder)
{
	const char *tap = getenv("NDTEST_TAP"), *big = getenv("NDTEST_DGRAM");
	struct nd_transport tp;
	uint8_t mac_bytes[6];
	char err[256];

	memset(t, 0, sizeof(*t));
	if (nd_mac_parse(mac, mac_bytes) < 0) {
		fprintf(stderr, "ndtest: bad MAC '%s' (want aa:bb:cc:dd:ee:ff)\n", mac);
		return -1;
	}
	if (big && dgram == ND_DEFAULT_DGRAM)
		dgram = (unsigned)atoi(big);
	if (tap) {
		t->udp.fd = -1;
		if (tap_transport(tap, mac_bytes, nonce * 2654435761u, &tp) != ND_IP_OK) {
			fprintf(stderr, "ndtest: no ARP answer from the server on %s\n", tap);
			return -1;
		}
	} else if (nd_udp_host_open(&t->udp, server, err, sizeof(err)) < 0) {
		fprintf(stderr, "ndtest: %s\n", err);
		exit(2);
	} else {
		bind_source(&t->udp);
		nd_udp_host_transport(&t->udp, &tp);
	}
	if (faults) {
		struct nd_transport inner = tp;

		faulty_init(faults, &inner, nonce, loss, dup, reorder, &tp);
		t->faults = faults;
	}
	nd_client_init(&t->c, &tp, t->tx, t->rx, (uint16_t)dgram);
	memcpy(t->c.cfg.mac, mac_bytes, 6);
	t->c.cfg.nonce = nonce;
	t->c.cfg.client_kind = getenv("NDTEST_KIND") ? (uint8_t)atoi(getenv("NDTEST_KIND")) : ND_KIND_TOOL;
	t->c.cfg.rto_min_ms = 10;
	t->c.cfg.rto_max_ms = 200;
	t->c.cfg.give_up_ms = 20000;
	return nd_attach(&t->c, getenv("NDTEST_IMAGE"));
}

static void tclient_close(struct tclient *t, int detach)
{
	if (detach)
		nd_detach(&t->c);
	if (t->udp.fd >= 0)
		nd_udp_host_close(&t->udp);
}

/* Deterministic test data: byte i of sector lba under seed. */
static uint8_t pattern(uint32_t seed, uint64_t lba, unsigned i)
{
	uint64_t x = (lba + 1) * 0x9E3779B97F4A7C15ull ^ ((uint64_t)seed << 32) ^ (i / 8);

	x ^= x >> 29;
	x *= 0xBF58476D1CE4E5B9ull;
	x ^= x >> 32;
	return (uint8_t)(x >> (8 * (i % 8)));
}

static void fill_pattern(uint8_t *buf, uint32_t seed, uint64_t lba, uint32_t count)
{
	uint32_t s;
	unsigned i;

	for (s = 0; s < count; s++)
		for (i = 0; i < ND_SECTOR_SIZE; i++)
			buf[s * ND_SECTOR_SIZE + i] = pattern(seed, lba + s, i);
}

static void put_mem(void *ctx, uint32_t off, const void *data, unsigned len)
{
	memcpy((uint8_t *)ctx + off, data, len);
}

static void get_mem(void *ctx, uint32_t off, void *data, unsigned len)
{
	memcpy(data, (const uint8_t *)ctx + off, len);
}

/* The base image's bytes, to compare reads of unwritten sectors with. */
static uint8_t *base;
static uint64_t base_sectors;

static void load_base(const char *path)
{
	FILE *f = fopen(path, "rb");
	long size;

	if (!f || fseek(f, 0, SEEK_END) < 0 || (size = ftell(f)) <= 0) {
		fprintf(stderr, "ndtest: cannot read base image %s\n", path);
		exit(2);
	}
	rewind(f);
	base = malloc((size_t)size);
	if (!base || fread(base, 1, (size_t)size, f) != (size_t)size) {
		fprintf(stderr, "ndtest: cannot read base image %s\n", path);
		exit(2);
	}
	base_sectors = (uint64_t)size / ND_SECTOR_SIZE;
	fclose(f);
}

/* Read count sectors at lba, requesting ahead more after them; 1 if they equal want. */
static int read_ahead_equals(struct nd_client *c, uint64_t lba, uint32_t count, uint32_t ahead,
			     const uint8_t *want)
{
	uint8_t *got = malloc(count * ND_SECTOR_SIZE);
	int rc = nd_read_ahead(c, lba, count, ahead, put_mem, got), same;

	same = rc == 0 && !memcmp(got, want, count * ND_SECTOR_SIZE);
	free(got);
	return same;
}

static int read_equals(struct nd_client *c, uint64_t lba, uint32_t count, const uint8_t *want)
{
	return read_ahead_equals(c, lba, count, 0, want);
}

static int write_pattern(struct nd_client *c, uint32_t seed, uint64_t lba, uint32_t count)
{
	uint8_t *buf = malloc(count * ND_SECTOR_SIZE);
	int rc;

	fill_pattern(buf, seed, lba, count);
	rc = nd_write(c, lba, count, get_mem, buf);
	free(buf);
	return rc;
}

static int pattern_there(struct nd_client *c, uint32_t seed, uint64_t lba, uint32_t count)
{
	uint8_t *buf = malloc(count * ND_SECTOR_SIZE);
	int same;

	fill_pattern(buf, seed, lba, count);
	same = read_equals(c, lba, count, buf);
	free(buf);
	return same;
}

/* Writes of odd sizes and offsets read back; what was not written is the base. */
static void scenario_rw(const char *mac)
{
	static const struct { uint64_t lba; uint32_t count; } w[] = {
		{ 0, 1 }, { 7, 2 }, { 9, 1 }, { 100, 300 }, { 1000, 8 }, { 4095, 3 },
	};
	struct tclient t;
	uint8_t *buf;
	unsigned i;
	int ok = 1;

	result(tclient_open(&t, mac, 1, ND_DEFAULT_DGRAM, NULL, 0, 0, 0) == 0, "rw-attach",
	       "attach failed");
	for (i = 0; i < sizeof(w) / sizeof(w[0]); i++)
		ok &= write_pattern(&t.c, 7, w[i].lba, w[i].count) == 0;
	result(ok, "rw-write", "a write failed");
	ok = 1;
	for (i = 0; i < sizeof(w) / sizeof(w[0]); i++)
		ok &= pattern_there(&t.c, 7, w[i].lba, w[i].count);
	result(ok, "rw-read-after-write", "data read back differs from data written");
	ok = read_equals(&t.c, 2, 5, base + 2 * ND_SECTOR_SIZE) &&
	     read_equals(&t.c, 10, 90, base + 10 * ND_SECTOR_SIZE) &&
	     read_equals(&t.c, base_sectors - 200, 200, base + (base_sectors - 200) * ND_SECTOR_SIZE);
	result(ok, "rw-unwritten-is-base", "unwritten sectors differ from the image");
	result(nd_read(&t.c, base_sectors, 1, put_mem, t.rx) == ND_E_ARG &&
	       nd_read(&t.c, base_sectors - 1, 2, put_mem, t.rx) == ND_E_ARG,
	       "rw-out-of-range", "read past the end was not refused");
	result(pattern_there(&t.c, 7, 100, 300) && t.c.stray == 0, "rw-no-stray",
	       "%u stray datagrams", t.c.stray);
	buf = malloc(37 * ND_SECTOR_SIZE);
	fill_pattern(buf, 8, 2000, 37);
	result(nd_write_pieces(&t.c, 2000, 37, 5, get_mem, buf) == 0 &&
	       pattern_there(&t.c, 8, 2000, 37) &&
	       read_equals(&t.c, 2037, 1, base + 2037 * ND_SECTOR_SIZE),
	       "rw-write-in-pieces", "37 sectors written 5 at a time do not read back");
	free(buf);
	result(nd_flush(&t.c) == 0, "rw-flush", "flush failed");
	tclient_close(&t, 1);
}

/* Sequential reads, each requesting the next one ahead, from lba on. */
static int read_ahead_run(struct nd_client *c, uint64_t lba, unsigned calls, uint32_t count)
{
	int ok = 1;

	for (; calls--; lba += count)
		ok &= read_ahead_equals(c, lba, count, count, base + lba * ND_SECTOR_SIZE);
	return ok;
}

/* Reads requested ahead: taken by the next sequential read, never stale
 * after a write, ignored when the reader goes elsewhere, not resent when
 * they waited, right through a lossy link. */
static void scenario_readahead(const char *mac, unsigned loss, unsigned dup, unsigned reorder)
{
	static struct faulty f;
	struct tclient t;
	uint32_t stray, resent;
	int ok;

	result(tclient_open(&t, mac, 3, ND_DEFAULT_DGRAM, NULL, 0, 0, 0) == 0, "ahead-attach",
	       "attach failed");
	ok = read_ahead_run(&t.c, 0, 100, 8);
	result(ok && t.c.ahead_taken == 99 * 8 && t.c.stray == 0 && t.c.retransmits == 0,
	       "ahead-sequential", "data %s, %u sectors taken from read-ahead, %u stray, %u resent",
	       ok ? "right" : "WRONG", t.c.ahead_taken, t.c.stray, t.c.retransmits);
	/* The write drops what was requested ahead: the read after it, where
	 * the read-ahead was, asks afresh and sees the write. */
	resent = t.c.retransmits;
	ok = read_ahead_equals(&t.c, 3000, 8, 8, base + 3000 * ND_SECTOR_SIZE) &&
	     write_pattern(&t.c, 9, 3008, 8) == 0 && pattern_there(&t.c, 9, 3008, 8);
	result(ok && t.c.retransmits == resent, "ahead-write-in-between",
	       "the read after the write got old data or waited for %u retransmissions",
	       t.c.retransmits - resent);
	stray = t.c.stray;
	ok = read_ahead_equals(&t.c, 4000, 8, 8, base + 4000 * ND_SECTOR_SIZE) &&
	     read_equals(&t.c, 5000, 8, base + 5000 * ND_SECTOR_SIZE);
	result(ok && t.c.stray > stray, "ahead-elsewhere-ignored",
	       "read elsewhere: data differs or no reply was ignored");
	resent = t.c.retransmits;
	ok = read_ahead_equals(&t.c, 6000, 8, 8, base + 6000 * ND_SECTOR_SIZE);
	usleep(400 * 1000); /* longer than the largest retransmission timeout */
	ok &= read_equals(&t.c, 6008, 8, base + 6008 * ND_SECTOR_SIZE);
	result(ok && t.c.retransmits == resent, "ahead-waited-not-resent",
	       "data differs, or %u retransmissions after a pause", t.c.retransmits - resent);
	tclient_close(&t, 1);
	result(tclient_open(&t, mac, 4, ND_DEFAULT_DGRAM, &f, loss, dup, reorder) == 0,
	       "ahead-faults-attach", "attach failed through the faulty link");
	ok = read_ahead_run(&t.c, 0, 100, 8);
	result(ok && t.c.ahead_taken && t.c.retransmits, "ahead-faults",
	       "data %s through the faulty link, %u sectors taken from read-ahead, %u resent",
	       ok ? "right" : "WRONG", t.c.ahead_taken, t.c.retransmits);
	printf("# read-ahead through the faulty link: %u of %u sectors taken ahead, "
	       "%u retransmits, %u stray\n", t.c.ahead_taken, 99 * 8, t.c.retransmits, t.c.stray);
	tclient_close(&t, 1);
}

/* Write a pattern and keep the session (no detach), for restart tests. */
static int scenario_write(const char *mac, uint32_t nonce, uint32_t seed, uint64_t lba,
			  uint32_t count, int flush)
{
	struct tclient t;
	int rc = tclient_open(&t, mac, nonce, ND_DEFAULT_DGRAM, NULL, 0, 0, 0);

	if (rc == 0)
		rc = write_pattern(&t.c, seed, lba, count);
	if (rc == 0 && flush)
		rc = nd_flush(&t.c);
	tclient_close(&t, 0);
	if (rc)
		fprintf(stderr, "ndtest: write failed: %d (status %u)\n", rc, t.c.last_status);
	return rc ? 1 : 0;
}

/* Exit 0 if the pattern (or, with seed 0, the base image) is at lba. */
static int scenario_check(const char *mac, uint32_t nonce, uint32_t seed, uint64_t lba,
			  uint32_t count)
{
	struct tclient t;
	int rc = tclient_open(&t, mac, nonce, ND_DEFAULT_DGRAM, NULL, 0, 0, 0), same = 0;

	if (rc == 0)
		same = seed ? pattern_there(&t.c, seed, lba, count)
			    : read_equals(&t.c, lba, count, base + lba * ND_SECTOR_SIZE);
	else
		fprintf(stderr, "ndtest: attach failed: %d (status %s)\n", rc,
			nd_status_text(t.c.last_status));
	tclient_close(&t, 0);
	return rc ? 2 : same ? 0 : 1;
}

/* Exit with the nd_status an attach gets (0 = attached). */
static int scenario_attach_status(const char *mac, uint32_t nonce)
{
	struct tclient t;
	int rc = tclient_open(&t, mac, nonce, ND_DEFAULT_DGRAM, NULL, 0, 0, 0);

	tclient_close(&t, 0);
	return rc == ND_E_STATUS ? t.c.last_status : rc ? 100 : 0;
}

/* Write a pattern in pieces of `piece` sectors, all of them even after one
 * fails, then flush: exit with the first failure's nd_status (0 if none; 100
 * for no answer), for the disk-full test. */
static int scenario_write_status(const char *mac, uint32_t nonce, uint32_t seed, uint64_t lba,
				 uint32_t count, uint32_t piece)
{
	struct tclient t;
	int rc = tclient_open(&t, mac, nonce, ND_DEFAULT_DGRAM, NULL, 0, 0, 0), first = 0;
	uint32_t done;

	if (rc)
		return rc == ND_E_STATUS ? t.c.last_status : 100;
	for (done = 0; done <= count; done += piece) {
		rc = done < count ? write_pattern(&t.c, seed, lba + done,
						  count - done < piece ? count - done : piece)
				  : nd_flush(&t.c);
		if (rc && !first)
			first = rc == ND_E_STATUS ? t.c.last_status : 100;
	}
	tclient_close(&t, 0);
	return first;
}

/* A session silent for longer than session-timeout is gone: after `wait`
 * seconds of silence the next READ gets SESSION (and nothing else). */
static void scenario_idle(const char *mac, uint32_t nonce, unsigned wait)
{
	struct tclient t;
	uint8_t buf[ND_SECTOR_SIZE];
	int rc = tclient_open(&t, mac, nonce, ND_DEFAULT_DGRAM, NULL, 0, 0, 0);

	result(rc == 0 && write_pattern(&t.c, 41, 300, 8) == 0, "idle-attach-write",
	       "attach or write failed (%d, %s)", rc, nd_status_text(t.c.last_status));
	sleep(wait);
	rc = nd_read(&t.c, 0, 1, put_mem, buf);
	result(rc == ND_E_STATUS && t.c.last_status == ND_ERR_SESSION, "idle-session-expired",
	       "a read after %u s of silence got %d (%s), not SESSION", wait, rc,
	       nd_status_text(t.c.last_status));
	tclient_close(&t, 0);
}

/* Read random ranges for `seconds` (or until the file NDTEST_STOP names
 * exists) and check every byte against the base image (the legitimate
 * client while the blaster runs). */
static void scenario_readloop(const char *mac, unsigned seconds)
{
	struct tclient t;
	time_t end = time(NULL) + seconds;
	const char *stop = getenv("NDTEST_STOP");
	unsigned long reads = 0, bad = 0;
	uint32_t x = 12345;
	int rc = tclient_open(&t, mac, 9, ND_DEFAULT_DGRAM, NULL, 0, 0, 0);

	result(rc == 0, "readloop-attach", "attach failed (%d, %s)", rc,
	       nd_status_text(t.c.last_status));
	if (rc)
		return;
	while (time(NULL) < end && !(stop && access(stop, F_OK) == 0)) {
		uint32_t count = 1 + (x >> 8) % 64;
		uint64_t lba;

		x = x * 1103515245u + 12345u;
		lba = (x >> 4) % (base_sectors - count);
		if (!read_equals(&t.c, lba, count, base + lba * ND_SECTOR_SIZE))
			bad++;
		reads++;
	}
	result(bad == 0 && reads > 0, "readloop-data-right", "%lu of %lu reads failed or differed",
	       bad, reads);
	printf("# readloop: %lu reads checked, %u retransmits\n", reads, t.c.retransmits);
	tclient_close(&t, 1);
}

/* Loss, duplication and reordering in both directions: data stays exact. */
static void scenario_faults(const char *mac, unsigned loss, unsigned dup, unsigned reorder)
{
	static const unsigned dgrams[] = { ND_DEFAULT_DGRAM, 9000 };
	char name[64];
	unsigned i;

	for (i = 0; i < 2; i++) {
		static struct faulty f;
		struct tclient t;
		uint32_t seed = 100 + i;
		int ok;

		snprintf(name, sizeof(name), "faults-%u-attach", dgrams[i]);
		result(tclient_open(&t, mac, seed, dgrams[i], &f, loss, dup, reorder) == 0, name,
		       "attach failed through the faulty link");
		snprintf(name, sizeof(name), "faults-%u-write-read", dgrams[i]);
		ok = write_pattern(&t.c, seed, 300, 1500) == 0 && pattern_there(&t.c, seed, 300, 1500);
		result(ok, name, "data differs after writes and reads through the faulty link");
		snprintf(name, sizeof(name), "faults-%u-base", dgrams[i]);
		result(read_equals(&t.c, 2000, 1000, base + 2000 * ND_SECTOR_SIZE), name,
		       "unwritten data differs through the faulty link");
		snprintf(name, sizeof(name), "faults-%u-injected", dgrams[i]);
		result(f.dropped && f.duplicated && f.reordered && t.c.retransmits, name,
		       "faults were not exercised (dropped %lu dup %lu reordered %lu retrans %u)",
		       f.dropped, f.duplicated, f.reordered, t.c.retransmits);
		printf("# dgram %u: dropped %lu, duplicated %lu, reordered %lu, retransmits %u, "
		       "stray %u\n", dgrams[i], f.dropped, f.duplicated, f.reordered,
		       t.c.retransmits, t.c.stray);
		tclient_close(&t, 1);
	}
}

/* Raw datagrams: what a broken or hostile client might send. */
struct raw {
	struct nd_udp_host udp;
	uint8_t token[16];
	uint8_t reply[ND_MAX_DGRAM];
	int reply_len;
};

static struct nd_hdr *raw_build(uint8_t *buf, uint8_t op, const uint8_t *token, uint32_t id,
				uint64_t lba, uint32_t count, uint32_t off, const void *data,
				uint16_t len)
{
	struct nd_hdr *h = (struct nd_hdr *)buf;

	memset(h, 0, sizeof(*h));
	nd_put32(h->magic, ND_MAGIC);
	h->version = ND_VERSION;
	h->opcode = op;
	nd_put32(h->req_id, id);
	nd_put16(h->data_len, len);
	if (token)
		memcpy(h->token, token, 16);
	nd_put64(h->lba, lba);
	nd_put32(h->count, count);
	nd_put32(h->offset, off);
	if (len)
		memcpy(buf + ND_HDR_SIZE, data, len);
	return h;
}

/* Send len bytes; wait up to 300 ms for a reply.  Returns its status or -1. */
static int raw_send(struct raw *r, const uint8_t *buf, unsigned len)
{
	struct pollfd p = { r->udp.fd, POLLIN, 0 };

	while (recv(r->udp.fd, r->reply, sizeof(r->reply), MSG_DONTWAIT) > 0)
		;
	if (send(r->udp.fd, buf, len, 0) < 0)
		return -1;
	r->reply_len = 0;
	if (poll(&p, 1, 300) <= 0)
		return -1;
	r->reply_len = (int)recv(r->udp.fd, r->reply, sizeof(r->reply), 0);
	if (r->reply_len < ND_HDR_SIZE)
		return -1;
	return nd_get16(((struct nd_hdr *)r->reply)->status);
}

static int raw_req(struct raw *r, uint8_t op, const uint8_t *token, uint32_t id, uint64_t lba,
		   uint32_t count, uint32_t off, const void *data, uint16_t len)
{
	static uint8_t buf[ND_MAX_DGRAM];

	raw_build(buf, op, token, id, lba, count, off, data, len);
	return raw_send(r, buf, ND_HDR_SIZE + len);
}

static void scenario_raw(void)
{
	static uint8_t buf[ND_MAX_DGRAM];
	union {
		struct nd_attach_req req;
		uint8_t padded[ND_ATTACH_REQ_LEN];
	} u;
	struct nd_attach_req *req = &u.req;
	struct raw r;
	uint8_t a[ND_SECTOR_SIZE], b[ND_SECTOR_SIZE], bogus[16], mask[8], info[32] = { 0 };
	char err[256];
	uint64_t sectors;
	int st;

	if (nd_udp_host_open(&r.udp, server, err, sizeof(err)) < 0) {
		fprintf(stderr, "ndtest: %s\n", err);
		exit(2);
	}
	memset(&u, 0, sizeof(u));
	memcpy(req->mac, "\x02\x00\x00\x00\xaa\x01", 6);
	nd_put16(req->max_dgram, ND_DEFAULT_DGRAM);
	nd_put16(req->window, 8);
	st = raw_req(&r, ND_OP_ATTACH, NULL, 1, 0, 0, 0, req, sizeof(*req));
	result(st == ND_ERR_INVAL && r.reply_len == ND_HDR_SIZE, "raw-attach-unpadded-small-reply",
	       "an unpadded ATTACH got status %d, %d bytes (more than it sent?)", st, r.reply_len);
	st = raw_req(&r, ND_OP_ATTACH, NULL, 1, 0, 0, 0, u.padded, sizeof(u.padded));
	result(st == ND_OK && r.reply_len == ND_HDR_SIZE + (int)sizeof(struct nd_attach_rep),
	       "raw-attach", "status %d len %d", st, r.reply_len);
	memcpy(r.token, ((struct nd_hdr *)r.reply)->token, 16);
	sectors = nd_get64(r.reply + ND_HDR_SIZE);

	result(raw_send(&r, (const uint8_t *)"NDSK", 4) == -1, "raw-short-dropped",
	       "a 4-byte datagram got a reply");
	raw_build(buf, ND_OP_INFO, NULL, 2, 0, 0, 0, NULL, 0);
	buf[0] = 'X';
	result(raw_send(&r, buf, ND_HDR_SIZE) == -1, "raw-bad-magic-dropped",
	       "bad magic got a reply");
	raw_build(buf, ND_OP_INFO, NULL, 3, 0, 0, 0, NULL, 0);
	result(raw_send(&r, buf, ND_HDR_SIZE + 5) == -1, "raw-length-mismatch-dropped",
	       "data_len not matching the datagram got a reply");
	buf[4] = 2;
	st = raw_send(&r, buf, ND_HDR_SIZE);
	result(st == ND_ERR_VERSION && r.reply[4] == ND_VERSION, "raw-bad-version",
	       "status %d version %u", st, r.reply[4]);
	result(raw_req(&r, 99, r.token, 4, 0, 0, 0, NULL, 0) == ND_ERR_OPCODE, "raw-bad-opcode",
	       "unknown opcode not refused");
	memset(bogus, 0x5a, sizeof(bogus));
	result(raw_req(&r, ND_OP_READ, bogus, 5, 0, 1, 0, NULL, 0) == ND_ERR_SESSION,
	       "raw-bad-token", "foreign token not refused");
	result(raw_req(&r, ND_OP_READ, r.token, 6, sectors, 1, 0, NULL, 0) == ND_ERR_RANGE &&
	       raw_req(&r, ND_OP_READ, r.token, 7, ~0ull - 1, 2, 0, NULL, 0) == ND_ERR_RANGE &&
	       raw_req(&r, ND_OP_READ, r.token, 8, 0, 0, 0, NULL, 0) == ND_ERR_RANGE &&
	       raw_req(&r, ND_OP_READ, r.token, 9, 0, 100000, 0, NULL, 0) == ND_ERR_RANGE,
	       "raw-read-range", "out-of-range reads not refused");
	result(raw_req(&r, ND_OP_WRITE, r.token, 10, 0, 1, 0, a, 100) == ND_ERR_INVAL &&
	       raw_req(&r, ND_OP_WRITE, r.token, 11, 0, 1, 512, a, 100) == ND_ERR_INVAL,
	       "raw-write-malformed", "malformed write fragments not refused");
	nd_put64(mask, 0);
	result(raw_req(&r, ND_OP_READ, r.token, 12, 0, 1, 0, mask, 8) == -1, "raw-empty-mask",
	       "a read asking for no chunks got data");

	/* A delayed duplicate of an old WRITE must not undo a newer one. */
	memset(a, 0xaa, sizeof(a));
	memset(b, 0xbb, sizeof(b));
	result(raw_req(&r, ND_OP_WRITE, r.token, 1000, 50, 1, 0, a, sizeof(a)) == ND_OK &&
	       raw_req(&r, ND_OP_WRITE, r.token, 1001, 50, 1, 0, b, sizeof(b)) == ND_OK,
	       "raw-writes-acked", "writes were not acknowledged");
	result(raw_req(&r, ND_OP_WRITE, r.token, 1000, 50, 1, 0, a, sizeof(a)) == -1,
	       "raw-stale-write-dropped", "a stale write was answered");
	result(raw_req(&r, ND_OP_WRITE, r.token, 1001, 50, 1, 0, b, sizeof(b)) == ND_OK,
	       "raw-retried-write-reacked", "a retransmitted write was not acknowledged again");
	st = raw_req(&r, ND_OP_READ, r.token, 1002, 50, 1, 0, NULL, 0);
	result(st == ND_OK && r.reply_len == ND_HDR_SIZE + ND_SECTOR_SIZE &&
	       !memcmp(r.reply + ND_HDR_SIZE, b, sizeof(b)), "raw-newest-write-wins",
	       "sector does not hold the newest write");
	result(raw_req(&r, ND_OP_INFO, NULL, 1003, 0, 0, 0, info, sizeof(info)) == ND_OK &&
	       r.reply_len == ND_HDR_SIZE + (int)sizeof(info), "raw-server-alive",
	       "server stopped answering");
	result(raw_req(&r, ND_OP_INFO, NULL, 1003, 0, 0, 0, NULL, 0) == ND_ERR_INVAL &&
	       r.reply_len == ND_HDR_SIZE, "raw-server-info-unpadded-small-reply",
	       "a 48-byte server INFO got %d bytes", r.reply_len);
	result(raw_req(&r, ND_OP_DETACH, r.token, 1004, 0, 0, 0, NULL, 0) == ND_OK &&
	       raw_req(&r, ND_OP_READ, r.token, 1005, 0, 1, 0, NULL, 0) == ND_ERR_SESSION,
	       "raw-detach-ends-session", "session still usable after DETACH");
	nd_udp_host_close(&r.udp);
}

/* Attach (the same nonce continues a session) and detach: exit 0 on success. */
static int scenario_detach(const char *mac, uint32_t nonce)
{
	struct tclient t;
	int rc = tclient_open(&t, mac, nonce, ND_DEFAULT_DGRAM, NULL, 0, 0, 0);

	if (rc == 0)
		rc = nd_detach(&t.c);
	tclient_close(&t, 0);
	return rc ? 1 : 0;
}

/* One session across a server restart: write, wait for a line on stdin (the
 * test restarts the server meanwhile), then read back and write again. */
static void scenario_continue(const char *mac)
{
	struct tclient t;
	char line[16];

	result(tclient_open(&t, mac, 77, ND_DEFAULT_DGRAM, NULL, 0, 0, 0) == 0 &&
	       write_pattern(&t.c, 21, 4000, 64) == 0, "continue-write", "write failed");
	printf("READY\n");
	if (!fgets(line, sizeof(line), stdin))
		return;
	result(pattern_there(&t.c, 21, 4000, 64), "continue-read-after-restart",
	       "the session's data is gone after the server restarted (status %s)",
	       nd_status_text(t.c.last_status));
	result(write_pattern(&t.c, 22, 4100, 8) == 0 && pattern_there(&t.c, 22, 4100, 8),
	       "continue-write-after-restart", "writing after the restart failed");
	tclient_close(&t, 1);
}

/* Attach, write a pattern, print the session token and keep the session. */
static int scenario_token(const char *mac, uint32_t nonce, uint32_t seed, uint64_t lba,
			  uint32_t count)
{
	struct tclient t;
	int rc = tclient_open(&t, mac, nonce, ND_DEFAULT_DGRAM, NULL, 0, 0, 0), i;

	if (rc == 0 && seed)
		rc = write_pattern(&t.c, seed, lba, count);
	if (rc == 0) {
		for (i = 0; i < 16; i++)
			printf("%02x", t.c.token[i]);
		putchar('\n');
	}
	tclient_close(&t, 0);
	return rc ? 1 : 0;
}

/* Put the pattern into a copy of a file (to write it through another client). */
static int scenario_put_pattern(const char *file, uint32_t seed, uint64_t lba, uint32_t count)
{
	uint8_t *buf = malloc(count * ND_SECTOR_SIZE);
	int fd = open(file, O_WRONLY), ok;

	fill_pattern(buf, seed, lba, count);
	ok = fd >= 0 && pwrite(fd, buf, count * ND_SECTOR_SIZE, (off_t)(lba * ND_SECTOR_SIZE)) ==
				(ssize_t)(count * ND_SECTOR_SIZE);
	if (fd >= 0)
		close(fd);
	free(buf);
	return ok ? 0 : 1;
}

/* Exit 0 if the pattern is in the image file itself (direct mode). */
static int scenario_file_pattern(const char *file, uint32_t seed, uint64_t lba, uint32_t count)
{
	uint8_t *want = malloc(count * ND_SECTOR_SIZE), *got = malloc(count * ND_SECTOR_SIZE);
	int fd = open(file, O_RDONLY), same;

	fill_pattern(want, seed, lba, count);
	same = fd >= 0 && pread(fd, got, count * ND_SECTOR_SIZE, (off_t)(lba * ND_SECTOR_SIZE)) ==
				  (ssize_t)(count * ND_SECTOR_SIZE) &&
	       !memcmp(want, got, count * ND_SECTOR_SIZE);
	if (fd >= 0)
		close(fd);
	free(want);
	free(got);
	return same ? 0 : 1;
}

static void usage(void)
{
	fprintf(stderr,
		"usage: ndtest SERVER BASE-IMAGE SCENARIO [ARGS]\n"
		"  rw MAC | faults MAC LOSS DUP REORDER | readahead MAC LOSS DUP REORDER | raw\n"
		"  write MAC NONCE SEED LBA COUNT FLUSH   (exit 0 on success)\n"
		"  check MAC NONCE SEED LBA COUNT         (exit 0 if there; SEED 0 = base)\n"
		"  attach-status MAC NONCE                (exit = nd_status)\n"
		"  detach MAC NONCE | continue MAC | file-pattern FILE SEED LBA COUNT\n"
		"  token MAC NONCE SEED LBA COUNT (write, print the token, keep the session)\n"
		"  put-pattern FILE SEED LBA COUNT\n"
		"  write-status MAC NONCE SEED LBA COUNT PIECE (exit = nd_status of the first failure)\n"
		"  idle MAC NONCE SECONDS | readloop MAC SECONDS (NDTEST_STOP=FILE: until FILE exists)\n"
		"NDTEST_IMAGE names the image to attach to.  NDTEST_TAP=IFNAME,IPV4 runs the\n"
		"client on the firmware stubs' IP stack over that TAP device; NDTEST_DGRAM\n"
		"replaces the default datagram size; NDTEST_BIND=IPV4[:PORT] is where the client\n"
		"speaks from; NDTEST_KIND=N the client kind it attaches as (1 BIOS, 2 UEFI);\n"
		"NDTEST_TAP_FAULTS=LOSS,DUP,REORDER (percent)\n"
		"drops, duplicates and delays frames the TAP delivers; NDTEST_TAP_SUMS=1 has the\n"
		"TAP device sum the data it hands the stack (nd_framedev.read_sum).\n");
	exit(2);
}

int main(int argc, char **argv)
{
	const char *sc;

	if (argc < 4)
		usage();
	server = argv[1];
	load_base(argv[2]);
	sc = argv[3];
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (!strcmp(sc, "rw") && argc == 5)
		scenario_rw(argv[4]);
	else if (!strcmp(sc, "faults") && argc == 8)
		scenario_faults(argv[4], (unsigned)atoi(argv[5]), (unsigned)atoi(argv[6]),
				(unsigned)atoi(argv[7]));
	else if (!strcmp(sc, "readahead") && argc == 8)
		scenario_readahead(argv[4], (unsigned)atoi(argv[5]), (unsigned)atoi(argv[6]),
				   (unsigned)atoi(argv[7]));
	else if (!strcmp(sc, "raw") && argc == 4)
		scenario_raw();
	else if (!strcmp(sc, "write") && argc == 10)
		return scenario_write(argv[4], (uint32_t)strtoul(argv[5], 0, 0),
				      (uint32_t)strtoul(argv[6], 0, 0), strtoull(argv[7], 0, 0),
				      (uint32_t)strtoul(argv[8], 0, 0), atoi(argv[9]));
	else if (!strcmp(sc, "check") && argc == 9)
		return scenario_check(argv[4], (uint32_t)strtoul(argv[5], 0, 0),
				      (uint32_t)strtoul(argv[6], 0, 0), strtoull(argv[7], 0, 0),
				      (uint32_t)strtoul(argv[8], 0, 0));
	else if (!strcmp(sc, "attach-status") && argc == 6)
		return scenario_attach_status(argv[4], (uint32_t)strtoul(argv[5], 0, 0));
	else if (!strcmp(sc, "detach") && argc == 6)
		return scenario_detach(argv[4], (uint32_t)strtoul(argv[5], 0, 0));
	else if (!strcmp(sc, "write-status") && argc == 10)
		return scenario_write_status(argv[4], (uint32_t)strtoul(argv[5], 0, 0),
					     (uint32_t)strtoul(argv[6], 0, 0), strtoull(argv[7], 0, 0),
					     (uint32_t)strtoul(argv[8], 0, 0),
					     (uint32_t)strtoul(argv[9], 0, 0));
	else if (!strcmp(sc, "idle") && argc == 7)
		scenario_idle(argv[4], (uint32_t)strtoul(argv[5], 0, 0), (unsigned)atoi(argv[6]));
	else if (!strcmp(sc, "readloop") && argc == 6)
		scenario_readloop(argv[4], (unsigned)atoi(argv[5]));
	else if (!strcmp(sc, "continue") && argc == 5)
		scenario_continue(argv[4]);
	else if (!strcmp(sc, "token") && argc == 9)
		return scenario_token(argv[4], (uint32_t)strtoul(argv[5], 0, 0),
				      (uint32_t)strtoul(argv[6], 0, 0), strtoull(argv[7], 0, 0),
				      (uint32_t)strtoul(argv[8], 0, 0));
	else if (!strcmp(sc, "put-pattern") && argc == 8)
		return scenario_put_pattern(argv[4], (uint32_t)strtoul(argv[5], 0, 0),
					    strtoull(argv[6], 0, 0), (uint32_t)strtoul(argv[7], 0, 0));
	else if (!strcmp(sc, "file-pattern") && argc == 8)
		return scenario_file_pattern(argv[4], (uint32_t)strtoul(argv[5], 0, 0),
					     strtoull(argv[6], 0, 0), (uint32_t)strtoul(argv[7], 0, 0));
	else
		usage();
	if (getenv("NDTEST_TAP_FAULTS")) {
		const struct tapdev_faults *f = tapdev_faults_seen();

		result(f->dropped && f->duplicated && f->reordered, "tap-faults-injected",
		       "frames dropped %lu duplicated %lu reordered %lu", f->dropped, f->duplicated,
		       f->reordered);
		printf("# frames dropped %lu, duplicated %lu, reordered %lu\n", f->dropped,
		       f->duplicated, f->reordered);
	}
	return failures ? 1 : 0;
}
