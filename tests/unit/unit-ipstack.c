/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Unit tests of the stubs' own IPv4/UDP (client/ipstack.c) on a scripted
 * frame device: crafted Ethernet frames from the server (fragments in and out
 * of order, duplicated, missing, corrupted) must yield each datagram whole
 * and exactly once, or nothing.
 */

#include <string.h>
#include "ipstack.h"
#include "unit.h"

#define FRAMES 64

static const uint8_t our_mac[6] = { 2, 0, 0, 0, 0, 2 }, server_mac[6] = { 2, 0, 0, 0, 0, 1 };
static const uint8_t our_ip[4] = { 10, 9, 0, 2 }, server_ip[4] = { 10, 9, 0, 1 };
#define SERVER_PORT 10809

static struct {
	uint8_t frame[FRAMES][1600];
	unsigned len[FRAMES];
	unsigned head, n;
	int current;           /* the frame receive() took, or -1 */
	uint16_t our_port;     /* learnt from what the stack sends */
	uint32_t clock;
	uint8_t last_tx[1600]; /* the last frame the stack sent */
	unsigned last_tx_len;
} dev;

static void queue_frame(const uint8_t *f, unsigned len)
{
	unsigned at = (dev.head + dev.n) % FRAMES;

	if (dev.n == FRAMES)
		return;
	memcpy(dev.frame[at], f, len);
	dev.len[at] = len;
	dev.n++;
}

/* The stack sends: answer ARP requests, note our UDP port. */
static int fd_transmit(void *ctx, const void *frame, unsigned len)
{
	const uint8_t *f = frame;
	uint8_t r[60] = { 0 };

	memcpy(dev.last_tx, f, len < sizeof(dev.last_tx) ? len : sizeof(dev.last_tx));
	dev.last_tx_len = len;
	if (len >= 42 && f[12] == 0x08 && f[13] == 0x06 && f[21] == 1) {
		memcpy(r, our_mac, 6);
		memcpy(r + 6, server_mac, 6);
		r[12] = 0x08, r[13] = 0x06, r[15] = 1, r[16] = 0x08, r[18] = 6, r[19] = 4, r[21] = 2;
		memcpy(r + 22, server_mac, 6);
		memcpy(r + 28, server_ip, 4);
		memcpy(r + 32, our_mac, 6);
		memcpy(r + 38, our_ip, 4);
		queue_frame(r, 60);
	} else if (len >= 42 && f[12] == 0x08 && f[13] == 0x00) {
		dev.our_port = (uint16_t)(f[34] << 8 | f[35]);
	}
	return 0;
}

static int fd_receive(void *ctx)
{
	if (!dev.n)
		return 0;
	dev.current = (int)dev.head;
	dev.head = (dev.head + 1) % FRAMES;
	dev.n--;
	return (int)dev.len[dev.current];
}

static void fd_read(void *ctx, unsigned offset, void *dst, unsigned len)
{
	memcpy(dst, dev.frame[dev.current] + offset, len);
}

static void fd_release(void *ctx)
{
	dev.current = -1;
}

static uint32_t clock_ms(void *ctx)
{
	return dev.clock++; /* every look at the clock moves it on */
}

static uint16_t csum(const uint8_t *p, unsigned len, uint32_t sum)
{
	unsigned i;

	for (i = 0; i + 1 < len; i += 2)
		sum += (uint32_t)p[i] << 8 | p[i + 1];
	if (len & 1)
		sum += (uint32_t)p[len - 1] << 8;
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)~sum;
}

/*
 * The frames of one UDP datagram of len payload bytes from the server to us,
 * IP id `id`, cut into fragments of at most `per` IP payload bytes (a
 * multiple of 8): into frames[], their lengths into lens[]; the count.
 */
static unsigned craft(const uint8_t *payload, unsigned len, uint16_t id, unsigned per,
		      uint8_t frames[][1600], unsigned *lens)
{
	static uint8_t udp[70000];
	unsigned total = 8 + len, off, n, k = 0;
	uint8_t ph[12];
	uint32_t sum = 0;
	uint16_t c;

	udp[0] = SERVER_PORT >> 8, udp[1] = SERVER_PORT & 255;
	udp[2] = (uint8_t)(dev.our_port >> 8), udp[3] = (uint8_t)dev.our_port;
	udp[4] = (uint8_t)(total >> 8), udp[5] = (uint8_t)total, udp[6] = udp[7] = 0;
	memcpy(udp + 8, payload, len);
	memcpy(ph, server_ip, 4);
	memcpy(ph + 4, our_ip, 4);
	ph[8] = 0, ph[9] = 17, ph[10] = (uint8_t)(total >> 8), ph[11] = (uint8_t)total;
	for (unsigned i = 0; i < 12; i += 2)
		sum += (uint32_t)ph[i] << 8 | ph[i + 1];
	c = csum(udp, total, sum);
	udp[6] = (uint8_t)(c >> 8), udp[7] = (uint8_t)c;
	for (off = 0; off < total; off += n, k++) {
		uint8_t *f = frames[k], *ip = f + 14;
		int more;

		n = total - off > per ? per : total - off;
		more = off + n < total;
		memset(f, 0, 60);
		memcpy(f, our_mac, 6);
		memcpy(f + 6, server_mac, 6);
		f[12] = 0x08, f[13] = 0x00;
		ip[0] = 0x45;
		ip[2] = (uint8_t)((20 + n) >> 8), ip[3] = (uint8_t)(20 + n);
		ip[4] = (uint8_t)(id >> 8), ip[5] = (uint8_t)id;
		ip[6] = (uint8_t)((more ? 0x20 : 0) | (off / 8) >> 8), ip[7] = (uint8_t)(off / 8);
		ip[8] = 64, ip[9] = 17;
		memcpy(ip + 12, server_ip, 4);
		memcpy(ip + 16, our_ip, 4);
		c = csum(ip, 20, 0);
		ip[10] = (uint8_t)(c >> 8), ip[11] = (uint8_t)c;
		memcpy(ip + 20, udp + off, n);
		lens[k] = 14 + 20 + n < 60 ? 60 : 14 + 20 + n;
	}
	return k;
}

static struct nd_framedev fdev = {
	.mac = { 2, 0, 0, 0, 0, 2 },
	.mtu = 1500,
	.transmit = fd_transmit,
	.receive = fd_receive,
	.read = fd_read,
	.release = fd_release,
};

static uint8_t payload[8000], got[8000];
static uint8_t frames[16][1600];
static unsigned lens[16];

/* Feed frames in the order given by `order` (indexes, -1 ends) and receive:
 * the datagram's length, 0 if none came. */
static int feed(struct nd_transport *tp, const int *order, unsigned size)
{
	int rc, total = 0;

	for (; *order >= 0; order++)
		queue_frame(frames[*order], lens[*order]);
	memset(got, 0, sizeof(got));
	while ((rc = tp->recv(tp->ctx, got, size, 5)) > 0)
		total = total ? -1 : rc; /* a second datagram is a failure too */
	return total;
}

/* Is the last frame sent an IGMPv2 message of `type` for 239.255.78.1 to
 * `to`: multicast MAC, Router Alert, TTL 1, both checksums right? */
static int igmp_sent(uint8_t type, const uint8_t *to)
{
	const uint8_t *f = dev.last_tx, *ip = f + 14, *igmp = ip + 24;
	const uint8_t mac[6] = { 0x01, 0x00, 0x5e, (uint8_t)(to[1] & 0x7f), to[2], to[3] };

	return dev.last_tx_len >= 14 + 32 && !memcmp(f, mac, 6) && f[12] == 0x08 && f[13] == 0 &&
	       ip[0] == 0x46 && ip[8] == 1 && ip[9] == 2 && !memcmp(ip + 12, our_ip, 4) &&
	       !memcmp(ip + 16, to, 4) && ip[20] == 0x94 && ip[21] == 4 && csum(ip, 24, 0) == 0 &&
	       igmp[0] == type && !memcmp(igmp + 4, "\xef\xff\x4e\x01", 4) && csum(igmp, 8, 0) == 0;
}

/* Turn frames[0] (a whole datagram from craft) into one to group .g:port. */
static void to_group(uint8_t g, uint16_t port)
{
	uint8_t *f = frames[0], *ip = f + 14, *udp = ip + 20;
	uint16_t c;

	memcpy(f, "\x01\x00\x5e\x7f\x4e", 5);
	f[5] = g;
	memcpy(ip + 16, "\xef\xff\x4e", 3);
	ip[19] = g;
	ip[10] = ip[11] = 0;
	c = csum(ip, 20, 0);
	ip[10] = (uint8_t)(c >> 8), ip[11] = (uint8_t)c;
	udp[2] = (uint8_t)(port >> 8), udp[3] = (uint8_t)port;
	udp[6] = udp[7] = 0; /* no UDP checksum */
}

/* Multicast: the IGMP join and leave, and the group's datagrams taken only
 * while joined, only for that group and port. */
static void group_checks(struct nd_transport *tp)
{
	static const uint8_t group[4] = { 239, 255, 78, 1 }, routers[4] = { 224, 0, 0, 2 };
	int rc;

	rc = nd_ip_join(group, 10810);
	check_that(rc == ND_IP_OK && igmp_sent(0x16, group), "ip-join-sends-igmp-report",
		   "rc %d, last frame %u bytes", rc, dev.last_tx_len);
	craft(payload, 1000, 20, 1480, frames, lens);
	to_group(1, 10810);
	rc = feed(tp, (const int[]){ 0, -1 }, sizeof(got));
	check_that(rc == 1000 && !memcmp(got, payload, 1000), "ip-group-datagram-taken", "got %d", rc);
	craft(payload, 1000, 21, 1480, frames, lens);
	to_group(2, 10810);
	rc = feed(tp, (const int[]){ 0, -1 }, sizeof(got));
	check_that(rc == 0, "ip-other-group-ignored", "got %d", rc);
	craft(payload, 1000, 22, 1480, frames, lens);
	to_group(1, 10811);
	rc = feed(tp, (const int[]){ 0, -1 }, sizeof(got));
	check_that(rc == 0, "ip-group-other-port-ignored", "got %d", rc);
	nd_ip_leave();
	check_that(igmp_sent(0x17, routers), "ip-leave-sends-igmp-leave", "last frame %u bytes",
		   dev.last_tx_len);
	craft(payload, 1000, 23, 1480, frames, lens);
	to_group(1, 10810);
	rc = feed(tp, (const int[]){ 0, -1 }, sizeof(got));
	check_that(rc == 0, "ip-group-ignored-after-leave", "got %d", rc);
}

void unit_ipstack(void)
{
	struct nd_ipconf conf = { .server_port = SERVER_PORT, .seed = 12345 };
	struct nd_transport tp = { .now_ms = clock_ms };
	unsigned i, n;
	int rc;

	for (i = 0; i < sizeof(payload); i++)
		payload[i] = (uint8_t)(i * 7 + (i >> 8));
	memcpy(conf.ip, our_ip, 4);
	memcpy(conf.netmask, "\xff\xff\xff\x00", 4);
	memcpy(conf.server, server_ip, 4);
	dev.current = -1;
	rc = nd_ip_open(&fdev, &conf, &tp);
	if (!check_that(rc == ND_IP_OK, "ip-open-resolves-arp", "nd_ip_open: %d", rc))
		return;
	tp.send(tp.ctx, "hello", 5); /* our port, as the server would learn it */

	n = craft(payload, 1000, 1, 1480, frames, lens);
	rc = feed(&tp, (const int[]){ 0, -1 }, sizeof(got));
	check_that(n == 1 && rc == 1000 && !memcmp(got, payload, 1000), "ip-whole-datagram",
		   "%u frames, got %d", n, rc);

	n = craft(payload, 4000, 2, 1480, frames, lens);
	rc = feed(&tp, (const int[]){ 0, 1, 2, -1 }, sizeof(got));
	check_that(n == 3 && rc == 4000 && !memcmp(got, payload, 4000), "ip-fragments-in-order",
		   "%u frames, got %d", n, rc);

	n = craft(payload, 4000, 3, 1480, frames, lens);
	rc = feed(&tp, (const int[]){ 2, 0, 1, -1 }, sizeof(got));
	check_that(rc == 4000 && !memcmp(got, payload, 4000), "ip-fragments-out-of-order",
		   "got %d", rc);

	n = craft(payload, 4000, 4, 1480, frames, lens);
	rc = feed(&tp, (const int[]){ 0, 1, 1, 2, 2, -1 }, sizeof(got));
	check_that(rc == 4000 && !memcmp(got, payload, 4000), "ip-duplicate-fragments-once",
		   "got %d", rc);

	/* A fragment missing: nothing; then the next datagram comes whole. */
	n = craft(payload, 4000, 5, 1480, frames, lens);
	rc = feed(&tp, (const int[]){ 0, 2, -1 }, sizeof(got));
	check_that(rc == 0, "ip-missing-fragment-nothing", "got %d", rc);
	n = craft(payload + 1, 3000, 6, 1480, frames, lens);
	rc = feed(&tp, (const int[]){ 1, 0, 2, -1 }, sizeof(got));
	check_that(rc == 3000 && !memcmp(got, payload + 1, 3000), "ip-next-datagram-after-loss",
		   "got %d", rc);

	/* A corrupted byte in the middle fragment: the UDP checksum drops it. */
	n = craft(payload, 4000, 7, 1480, frames, lens);
	frames[1][14 + 20 + 100] ^= 0x40;
	rc = feed(&tp, (const int[]){ 0, 1, 2, -1 }, sizeof(got));
	check_that(rc == 0, "ip-corrupt-fragment-dropped", "got %d", rc);

	/* A bad IP header checksum: the frame is ignored. */
	n = craft(payload, 1000, 8, 1480, frames, lens);
	frames[0][14 + 10] ^= 1;
	rc = feed(&tp, (const int[]){ 0, -1 }, sizeof(got));
	check_that(rc == 0, "ip-bad-header-checksum-dropped", "got %d", rc);

	/* Overlapping fragments (the second repeats 8 bytes of the first): dropped, not mixed. */
	n = craft(payload, 2000, 9, 1480, frames, lens);
	{
		uint8_t *ip = frames[1] + 14;
		unsigned off = 1480 - 8;

		/* Rewrite fragment 1 to start 8 bytes earlier, with other bytes there. */
		memmove(ip + 20 + 8, ip + 20, lens[1] - 34);
		memset(ip + 20, 0xee, 8);
		ip[2] = (uint8_t)((20 + 528 + 8) >> 8), ip[3] = (uint8_t)(20 + 528 + 8);
		ip[6] = (uint8_t)(off / 8 >> 8), ip[7] = (uint8_t)(off / 8);
		ip[10] = ip[11] = 0;
		{
			uint16_t c = csum(ip, 20, 0);

			ip[10] = (uint8_t)(c >> 8), ip[11] = (uint8_t)c;
		}
		lens[1] += 8;
	}
	rc = feed(&tp, (const int[]){ 0, 1, -1 }, sizeof(got));
	check_that(rc == 0 || (rc == 2000 && !memcmp(got, payload, 2000)),
		   "ip-overlap-never-mixed", "got %d bytes, %s", rc,
		   rc > 0 ? "not the datagram sent" : "");

	/* Larger than the caller's buffer: not delivered, nothing written past it. */
	n = craft(payload, 4000, 10, 1480, frames, lens);
	rc = feed(&tp, (const int[]){ 0, 1, 2, -1 }, 2000);
	check_that(rc == 0, "ip-too-large-for-buffer-dropped", "got %d", rc);

	group_checks(&tp);
}
