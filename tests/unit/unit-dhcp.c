/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Unit tests of the stubs' DHCP client (client/dhcp.c): the frames it sends,
 * the replies it parses (which server and image win, what is refused), and
 * the exchange against a scripted server on a frame device with a fake
 * clock: lost messages, backoff, a NAK, no server at all.
 */

#include <stdlib.h>
#include <string.h>
#include "dhcp.h"
#include "unit.h"

static const uint8_t our_mac[6] = { 2, 0, 0, 0, 0, 7 }, srv_mac[6] = { 2, 0, 0, 0, 0, 1 };
#define XID 0x11223344u

/* A DHCP reply payload under construction: BOOTP header, cookie, options. */
struct reply {
	uint8_t b[576];
	unsigned len;
};

static void reply_start(struct reply *r, uint32_t xid, const uint8_t *yiaddr, const uint8_t *siaddr)
{
	memset(r, 0, sizeof(*r));
	r->b[0] = 2, r->b[1] = 1, r->b[2] = 6;
	nd_put32(r->b + 4, xid);
	if (yiaddr)
		memcpy(r->b + 16, yiaddr, 4);
	if (siaddr)
		memcpy(r->b + 20, siaddr, 4);
	memcpy(r->b + 28, our_mac, 6);
	r->b[236] = 99, r->b[237] = 130, r->b[238] = 83, r->b[239] = 99;
	r->len = 240;
}

static void opt(struct reply *r, uint8_t code, const void *data, uint8_t n)
{
	r->b[r->len] = code;
	r->b[r->len + 1] = n;
	memcpy(r->b + r->len + 2, data, n);
	r->len += 2u + n;
}

static void opt_type(struct reply *r, uint8_t type)
{
	opt(r, 53, &type, 1);
}

static void opt_end(struct reply *r)
{
	r->b[r->len++] = 255;
}

static const uint8_t yi[4] = { 10, 0, 2, 15 }, si[4] = { 10, 0, 2, 4 }, sid[4] = { 10, 0, 2, 2 };
static const uint8_t mask[4] = { 255, 255, 255, 0 }, vsrv[4] = { 192, 168, 7, 7 };

/* Replies without option 43: which server and image win. */
static const struct {
	const char *name;
	const uint8_t *siaddr;
	const char *o66;   /* option 66, if any */
	int o66_nul;       /* with a NUL inside the option */
	const char *o67;   /* option 67, if any */
	int overload;      /* option 52: the file field holds options */
	uint8_t server;    /* last byte of the server chosen */
	const char *image;
} falls[] = {
	{ "dhcp-option-66-67", si, "10.0.2.66", 1, "bootfile", 0, 66, "bootfile" },
	{ "dhcp-siaddr-and-file", si, "tftp.example", 0, NULL, 0, 4, "fromfile" },
	{ "dhcp-server-id-last", NULL, NULL, 0, NULL, 1, 2, "" },
};

static void test_parse(void)
{
	struct nd_dhcp_lease l;
	struct reply r;
	unsigned i;
	uint8_t vendor[32] = { 1, 4, 192, 168, 7, 7, 2, 2, 0x2a, 0x39, 3, 5, 'w', 'i', 'n', '1', '0' };
	int rc;

	/* Everything named: option 43 wins for server, port and image. */
	reply_start(&r, XID, yi, si);
	memcpy(r.b + 108, "fromfile", 8);
	opt_type(&r, ND_DHCP_OFFER);
	opt(&r, 1, mask, 4);
	opt(&r, 3, sid, 4);
	opt(&r, 54, sid, 4);
	opt(&r, 66, "10.0.2.66", 9);
	opt(&r, 67, "bootfile", 8);
	opt(&r, 43, vendor, 17);
	opt_end(&r);
	rc = nd_dhcp_parse(r.b, r.len, XID, our_mac, &l);
	check_that(rc == ND_DHCP_OFFER && !memcmp(l.ip, yi, 4) && !memcmp(l.netmask, mask, 4) &&
			   !memcmp(l.router, sid, 4) && !memcmp(l.server_id, sid, 4),
		   "dhcp-parse-offer", "rc %d", rc);
	check_that(!memcmp(l.server, vsrv, 4) && l.port == 10809 && !strcmp(l.image, "win10"),
		   "dhcp-option-43-wins", "server %u.%u.%u.%u port %u image '%s'", l.server[0],
		   l.server[1], l.server[2], l.server[3], l.port, l.image);

	/* Without option 43, the fall-backs in turn. */
	for (i = 0; i < sizeof(falls) / sizeof(falls[0]); i++) {
		reply_start(&r, XID, yi, falls[i].siaddr);
		memcpy(r.b + 108, "fromfile", 8);
		opt_type(&r, ND_DHCP_ACK);
		opt(&r, 54, sid, 4);
		if (falls[i].o66)
			opt(&r, 66, falls[i].o66, (uint8_t)strlen(falls[i].o66) + falls[i].o66_nul);
		if (falls[i].o67)
			opt(&r, 67, falls[i].o67, (uint8_t)strlen(falls[i].o67));
		if (falls[i].overload)
			opt(&r, 52, "\001", 1);
		opt_end(&r);
		rc = nd_dhcp_parse(r.b, r.len, XID, our_mac, &l);
		check_that(rc == ND_DHCP_ACK && l.server[3] == falls[i].server && !l.port &&
				   !strcmp(l.image, falls[i].image),
			   falls[i].name, "rc %d server .%u image '%s'", rc, l.server[3], l.image);
	}

	/* Refused: an option running past the end, a truncated packet, no
	 * cookie, another xid or client, no type, an OFFER without address. */
	reply_start(&r, XID, yi, si);
	opt_type(&r, ND_DHCP_ACK);
	r.b[r.len++] = 67;
	r.b[r.len++] = 20;
	memcpy(r.b + r.len, "short", 5);
	r.len += 5;
	rc = nd_dhcp_parse(r.b, r.len, XID, our_mac, &l);
	check_that(rc == ND_DHCP_E_OPTION, "dhcp-option-past-end-refused", "rc %d", rc);
	reply_start(&r, XID, yi, si);
	opt(&r, 43, "\001\011abcd", 6); /* a sub-option longer than option 43 */
	opt_type(&r, ND_DHCP_ACK);
	rc = nd_dhcp_parse(r.b, r.len, XID, our_mac, &l);
	check_that(rc == ND_DHCP_E_OPTION, "dhcp-sub-option-past-end-refused", "rc %d", rc);
	rc = nd_dhcp_parse(r.b, 200, XID, our_mac, &l);
	check_that(rc == ND_DHCP_E_SHORT, "dhcp-short-refused", "rc %d", rc);
	reply_start(&r, XID, yi, si);
	opt_type(&r, ND_DHCP_ACK);
	r.b[236] = 0;
	rc = nd_dhcp_parse(r.b, r.len, XID, our_mac, &l);
	check_that(rc == ND_DHCP_E_COOKIE, "dhcp-no-cookie-refused", "rc %d", rc);
	r.b[236] = 99;
	rc = nd_dhcp_parse(r.b, r.len, XID + 1, our_mac, &l);
	check_that(rc == ND_DHCP_E_NOT_OURS, "dhcp-other-xid-ignored", "rc %d", rc);
	rc = nd_dhcp_parse(r.b, r.len, XID, srv_mac, &l);
	check_that(rc == ND_DHCP_E_NOT_OURS, "dhcp-other-client-ignored", "rc %d", rc);
	reply_start(&r, XID, yi, si);
	opt_end(&r);
	rc = nd_dhcp_parse(r.b, r.len, XID, our_mac, &l);
	check_that(rc == ND_DHCP_E_TYPE, "dhcp-no-type-refused", "rc %d", rc);
	reply_start(&r, XID, NULL, si);
	opt_type(&r, ND_DHCP_OFFER);
	rc = nd_dhcp_parse(r.b, r.len, XID, our_mac, &l);
	check_that(rc == ND_DHCP_E_ADDRESS, "dhcp-offer-without-address-refused", "rc %d", rc);
}

/* The scripted server: answers what the client sends on the frame device. */
static struct {
	uint32_t clock;
	uint8_t rx[1600];
	unsigned rx_len;
	int have_rx;
	unsigned drop;          /* lose this many of the client's next messages */
	int nak_first;          /* answer the first REQUEST with a NAK */
	int silent;             /* no server at all */
	unsigned sent[9];       /* messages the client sent, by type */
	uint32_t sent_at[16];   /* when each DISCOVER went out */
	unsigned discovers;
	uint8_t last_req_ip[4], last_req_sid[4];
} sv;

static uint32_t fake_now(void *ctx)
{
	return sv.clock++; /* every look at the clock moves it a millisecond on */
}

/* Wrap a reply payload in Ethernet, IPv4 and UDP from the server to us. */
static void queue_reply(const struct reply *r)
{
	uint8_t *f = sv.rx, *ip = f + 14, *udp = ip + 20;
	uint16_t csum;

	memset(f, 0, 42);
	memcpy(f, our_mac, 6);
	memcpy(f + 6, srv_mac, 6);
	f[12] = 0x08;
	ip[0] = 0x45;
	nd_put16(ip + 2, (uint16_t)(28 + r->len));
	ip[8] = 64;
	ip[9] = 17;
	memcpy(ip + 12, sid, 4);
	memcpy(ip + 16, yi, 4);
	csum = nd_ip_checksum(ip, 20);
	memcpy(ip + 10, &csum, 2);
	nd_put16(udp, 67);
	nd_put16(udp + 2, 68);
	nd_put16(udp + 4, (uint16_t)(8 + r->len));
	memcpy(udp + 8, r->b, r->len);
	sv.rx_len = 42 + r->len;
	sv.have_rx = 1;
}

/* Find option code in the options of a BOOTP request b of len bytes. */
static const uint8_t *find_opt(const uint8_t *b, unsigned len, uint8_t code)
{
	unsigned pos = 240;

	while (pos + 2 <= len && b[pos] != 255) {
		if (b[pos] == code)
			return b + pos + 2;
		pos += b[pos] ? 2u + b[pos + 1] : 1;
	}
	return NULL;
}

static int sv_transmit(void *ctx, const void *frame, unsigned len)
{
	const uint8_t *f = frame, *b = f + 42, *t, *o;
	struct reply r;
	uint32_t xid;

	if (len < 42 + 244 || f[23] != 17 || nd_get16(f + 36) != 67 || !(t = find_opt(b, len - 42, 53)))
		return 0;
	if (*t < 9)
		sv.sent[*t]++;
	if (*t == ND_DHCP_DISCOVER && sv.discovers < 16)
		sv.sent_at[sv.discovers++] = sv.clock;
	if (sv.silent)
		return 0;
	if (sv.drop) {
		sv.drop--;
		return 0;
	}
	xid = nd_get32(b + 4);
	reply_start(&r, xid, yi, si);
	if (*t == ND_DHCP_DISCOVER) {
		opt_type(&r, ND_DHCP_OFFER);
	} else if (*t == ND_DHCP_REQUEST) {
		if ((o = find_opt(b, len - 42, 50)))
			memcpy(sv.last_req_ip, o, 4);
		if ((o = find_opt(b, len - 42, 54)))
			memcpy(sv.last_req_sid, o, 4);
		if (sv.nak_first) {
			sv.nak_first = 0;
			opt_type(&r, ND_DHCP_NAK);
		} else {
			opt_type(&r, ND_DHCP_ACK);
			opt(&r, 1, mask, 4);
		}
	} else {
		return 0;
	}
	opt(&r, 54, sid, 4);
	opt_end(&r);
	queue_reply(&r);
	return 0;
}

static int sv_receive(void *ctx)
{
	return sv.have_rx ? (int)sv.rx_len : 0;
}

static void sv_read(void *ctx, unsigned offset, void *dst, unsigned len)
{
	memcpy(dst, sv.rx + offset, len);
}

static void sv_release(void *ctx)
{
	sv.have_rx = 0;
}

static int run(struct nd_dhcp_lease *l, uint32_t give_up_ms)
{
	static uint8_t buf[1600];
	struct nd_framedev dev = { .mtu = 1500, .transmit = sv_transmit, .receive = sv_receive,
				   .read = sv_read, .release = sv_release };
	struct nd_dhcp_io io = { .dev = &dev, .now_ms = fake_now, .buf = buf, .size = sizeof(buf),
				 .seed = 42, .give_up_ms = give_up_ms };

	memcpy(dev.mac, our_mac, 6);
	return nd_dhcp_run(&io, l);
}

static void test_run(void)
{
	struct nd_dhcp_lease l;
	int rc;

	memset(&sv, 0, sizeof(sv));
	rc = run(&l, 60000);
	check_that(rc == 0 && !memcmp(l.ip, yi, 4) && !memcmp(l.netmask, mask, 4) &&
			   !memcmp(l.server, si, 4) && sv.sent[ND_DHCP_DISCOVER] == 1 &&
			   sv.sent[ND_DHCP_REQUEST] == 1,
		   "dhcp-run-discover-offer-request-ack", "rc %d, %u DISCOVER %u REQUEST", rc,
		   sv.sent[ND_DHCP_DISCOVER], sv.sent[ND_DHCP_REQUEST]);
	check_that(!memcmp(sv.last_req_ip, yi, 4) && !memcmp(sv.last_req_sid, sid, 4),
		   "dhcp-request-names-offer-and-server", "asked for .%u from .%u", sv.last_req_ip[3],
		   sv.last_req_sid[3]);

	/* Two DISCOVERs lost: sent again after 1 s, then 2 s. */
	memset(&sv, 0, sizeof(sv));
	sv.drop = 2;
	rc = run(&l, 60000);
	check_that(rc == 0 && sv.discovers == 3, "dhcp-run-lost-discover-retried", "rc %d, %u DISCOVER",
		   rc, sv.discovers);
	check_that(sv.discovers == 3 && sv.sent_at[1] - sv.sent_at[0] >= 1000 &&
			   sv.sent_at[1] - sv.sent_at[0] < 1100 && sv.sent_at[2] - sv.sent_at[1] >= 2000 &&
			   sv.sent_at[2] - sv.sent_at[1] < 2100,
		   "dhcp-run-backoff-doubles", "DISCOVERs at %u, %u, %u ms", sv.sent_at[0],
		   sv.sent_at[1], sv.sent_at[2]);

	/* A NAK: start over with a DISCOVER. */
	memset(&sv, 0, sizeof(sv));
	sv.nak_first = 1;
	rc = run(&l, 60000);
	check_that(rc == 0 && sv.sent[ND_DHCP_DISCOVER] == 2 && sv.sent[ND_DHCP_REQUEST] == 2,
		   "dhcp-run-nak-starts-over", "rc %d, %u DISCOVER %u REQUEST", rc,
		   sv.sent[ND_DHCP_DISCOVER], sv.sent[ND_DHCP_REQUEST]);

	/* No server: give up once the time is over, having tried a bounded number of times. */
	memset(&sv, 0, sizeof(sv));
	sv.silent = 1;
	rc = run(&l, 30000);
	check_that(rc == ND_DHCP_E_TIMEOUT && sv.clock >= 30000 && sv.clock < 31000 &&
			   sv.discovers >= 4 && sv.discovers <= 8,
		   "dhcp-run-gives-up-in-time", "rc %d after %u ms, %u DISCOVER", rc, sv.clock,
		   sv.discovers);
}

static void test_build(void)
{
	uint8_t f[ND_DHCP_FRAME_MAX];
	struct nd_dhcp_lease l;
	unsigned len;
	const uint8_t *vc;

	memset(&l, 0, sizeof(l));
	len = nd_dhcp_build(f, sizeof(f), ND_DHCP_DISCOVER, XID, our_mac, 3, &l);
	vc = len ? find_opt(f + 42, len - 42, 60) : NULL;
	check_that(len >= 42 + 300 && f[0] == 0xff && !memcmp(f + 6, our_mac, 6) &&
			   nd_ip_checksum(f + 14, 20) == 0 && nd_get16(f + 34) == 68 &&
			   nd_get16(f + 36) == 67 && f[42] == 1 && nd_get32(f + 46) == XID &&
			   nd_get16(f + 50) == 3 && !memcmp(f + 42 + 28, our_mac, 6) && vc &&
			   vc[-1] == 7 && !memcmp(vc, "netdisk", 7),
		   "dhcp-discover-frame", "len %u", len);
	check_that(nd_dhcp_build(f, 100, ND_DHCP_DISCOVER, XID, our_mac, 0, &l) == 0,
		   "dhcp-build-refuses-small-buffer", "built into 100 bytes");
}

void unit_dhcp(void)
{
	test_parse();
	test_build();
	test_run();
}
