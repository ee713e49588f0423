/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The firmware stubs' own DHCP client (RFC 2131): builds DISCOVER/REQUEST frames, parses replies without reading past them, runs the exchange with retries (freestanding). */

#include "dhcp.h"

void *memcpy(void *dst, const void *src, size_t n);
void *memset(void *dst, int c, size_t n);

#define BOOTP_REQUEST 1
#define BOOTP_REPLY 2
#define BOOTP_LEN 236          /* the fixed header, up to the options */
#define BOOTP_MIN 300          /* what old relays and servers expect at least */
#define COOKIE_LEN 4
#define OFF_XID 4
#define OFF_SECS 8
#define OFF_FLAGS 10
#define OFF_YIADDR 16
#define OFF_SIADDR 20
#define OFF_CHADDR 28
#define OFF_FILE 108
#define FILE_LEN 128
#define OFF_OPTIONS (BOOTP_LEN + COOKIE_LEN)
#define FLAG_BROADCAST 0x8000
#define PORT_SERVER 67
#define PORT_CLIENT 68
#define IP_HLEN 20
#define UDP_HLEN 8
#define HDRS (ND_ETH_HLEN + IP_HLEN + UDP_HLEN)

#define OPT_PAD 0
#define OPT_NETMASK 1
#define OPT_ROUTER 3
#define OPT_VENDOR 43
#define OPT_REQUESTED_IP 50
#define OPT_OVERLOAD 52
#define OPT_MSG_TYPE 53
#define OPT_SERVER_ID 54
#define OPT_PARAMS 55
#define OPT_MAX_SIZE 57
#define OPT_VENDOR_CLASS 60
#define OPT_CLIENT_ID 61
#define OPT_TFTP_SERVER 66
#define OPT_BOOTFILE 67
#define OPT_END 255

static const uint8_t cookie[COOKIE_LEN] = { 99, 130, 83, 99 };

static int same(const uint8_t *a, const uint8_t *b, unsigned n)
{
	while (n--)
		if (*a++ != *b++)
			return 0;
	return 1;
}

/* A dotted IPv4 address, all of s[0..len) or up to a NUL: 0 and ip, or -1
 * with ip untouched. */
static int parse_ipv4(const uint8_t *s, unsigned len, uint8_t ip[4])
{
	unsigned i = 0, part = 0, digits = 0, val = 0;
	uint8_t got[4];

	for (; i <= len; i++) {
		uint8_t c = i < len ? s[i] : 0;

		if (c >= '0' && c <= '9' && digits < 3) {
			val = val * 10 + (c - '0');
			digits++;
		} else if ((c == '.' && part < 3) || (c == 0 && part == 3)) {
			if (!digits || val > 255)
				return -1;
			got[part++] = (uint8_t)val;
			val = digits = 0;
			if (c == 0) { /* the end, or a NUL inside the option */
				memcpy(ip, got, 4);
				return 0;
			}
		} else {
			return -1;
		}
	}
	return -1;
}

/* An image name: printable ASCII up to a NUL or the end, at most
 * ND_DHCP_IMAGE_MAX bytes; anything else is ignored (dst left as it was). */
static void take_name(char *dst, const uint8_t *s, unsigned len)
{
	unsigned n = 0;

	while (n < len && s[n])
		n++;
	if (!n || n > ND_DHCP_IMAGE_MAX)
		return;
	for (len = 0; len < n; len++)
		if (s[len] < 0x21 || s[len] > 0x7e)
			return;
	memcpy(dst, s, n);
	dst[n] = 0;
}

/* An IPv4 address option (the first of a list). */
static void take_ip(uint8_t *dst, const uint8_t *p, unsigned n)
{
	if (n >= 4)
		memcpy(dst, p, 4);
}

/*
 * What a reply named, before the fall-backs are chosen: the candidates
 * for the server and for the image, best first; a zero address or an
 * empty name was not given.
 */
enum { SRV_VENDOR, SRV_TFTP, SRV_SIADDR, SRV_ID, SRV_N };
enum { IMG_VENDOR, IMG_BOOTFILE, IMG_FILE, IMG_N };
struct seen {
	uint8_t server[SRV_N][4];
	char image[IMG_N][ND_DHCP_IMAGE_MAX + 1];
	uint8_t type, overload;
};

/*
 * The options in p[0..len) (vendor: the sub-options of option 43, in the
 * same code/length form).  ND_DHCP_E_OPTION if one runs past len.
 */
static int take_options(const uint8_t *p, unsigned len, int vendor, struct nd_dhcp_lease *l,
			struct seen *s)
{
	unsigned pos = 0, n;
	const uint8_t *d;

	while (pos < len && p[pos] != OPT_END) {
		if (p[pos] == OPT_PAD) {
			pos++;
			continue;
		}
		if (len - pos < 2 || p[pos + 1] > len - pos - 2)
			return ND_DHCP_E_OPTION;
		n = p[pos + 1];
		d = p + pos + 2;
		if (vendor) {
			if (p[pos] == ND_DHCP_SUB_SERVER)
				take_ip(s->server[SRV_VENDOR], d, n);
			else if (p[pos] == ND_DHCP_SUB_PORT && n == 2)
				l->port = nd_get16(d);
			else if (p[pos] == ND_DHCP_SUB_IMAGE)
				take_name(s->image[IMG_VENDOR], d, n);
		} else {
			switch (p[pos]) {
			case OPT_MSG_TYPE:
				if (n == 1)
					s->type = d[0];
				break;
			case OPT_NETMASK:
				take_ip(l->netmask, d, n);
				break;
			case OPT_ROUTER:
				take_ip(l->router, d, n);
				break;
			case OPT_SERVER_ID:
				take_ip(l->server_id, d, n);
				take_ip(s->server[SRV_ID], d, n);
				break;
			case OPT_OVERLOAD:
				if (n == 1)
					s->overload = d[0];
				break;
			case OPT_VENDOR:
				if (take_options(d, n, 1, l, s))
					return ND_DHCP_E_OPTION;
				break;
			case OPT_TFTP_SERVER:
				parse_ipv4(d, n, s->server[SRV_TFTP]);
				break;
			case OPT_BOOTFILE:
				take_name(s->image[IMG_BOOTFILE], d, n);
				break;
			}
		}
		pos += 2 + n;
	}
	return 0;
}

int nd_dhcp_parse(const uint8_t *pkt, unsigned len, uint32_t xid, const uint8_t mac[6],
		  struct nd_dhcp_lease *lease)
{
	struct seen s;
	unsigned i;

	if (len < OFF_OPTIONS)
		return ND_DHCP_E_SHORT;
	if (pkt[0] != BOOTP_REPLY || pkt[1] != 1 || pkt[2] != 6 || nd_get32(pkt + OFF_XID) != xid ||
	    !same(pkt + OFF_CHADDR, mac, 6))
		return ND_DHCP_E_NOT_OURS;
	if (!same(pkt + BOOTP_LEN, cookie, COOKIE_LEN))
		return ND_DHCP_E_COOKIE;
	memset(lease, 0, sizeof(*lease));
	memset(&s, 0, sizeof(s));
	if (take_options(pkt + OFF_OPTIONS, len - OFF_OPTIONS, 0, lease, &s))
		return ND_DHCP_E_OPTION;
	if (s.type < ND_DHCP_DISCOVER || s.type > ND_DHCP_INFORM)
		return ND_DHCP_E_TYPE;
	memcpy(lease->ip, pkt + OFF_YIADDR, 4);
	if ((s.type == ND_DHCP_OFFER || s.type == ND_DHCP_ACK) &&
	    (nd_ip_is_zero(lease->ip) || lease->ip[0] >= 224))
		return ND_DHCP_E_ADDRESS;
	memcpy(s.server[SRV_SIADDR], pkt + OFF_SIADDR, 4);
	if (!(s.overload & 1)) /* option 52: the file field holds options, not a name */
		take_name(s.image[IMG_FILE], pkt + OFF_FILE, FILE_LEN);
	for (i = 0; i < SRV_N - 1 && nd_ip_is_zero(s.server[i]); i++)
		;
	memcpy(lease->server, s.server[i], 4);
	for (i = 0; i < IMG_N - 1 && !s.image[i][0]; i++)
		;
	memcpy(lease->image, s.image[i], sizeof(lease->image));
	return s.type;
}

int nd_dhcp_frame(const uint8_t *frame, unsigned len, const uint8_t mac[6], unsigned *at,
		  unsigned *plen)
{
	static const uint8_t bcast[6] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };
	const uint8_t *ip = frame + ND_ETH_HLEN, *udp;
	unsigned hlen, total, ulen;

	if (len < HDRS || (!same(frame, mac, 6) && !same(frame, bcast, 6)) ||
	    nd_get16(frame + 12) != ND_ETH_P_IP)
		return -1;
	hlen = (ip[0] & 15) * 4u;
	total = nd_get16(ip + 2);
	if (ip[0] >> 4 != 4 || hlen < IP_HLEN || total < hlen + UDP_HLEN ||
	    total > len - ND_ETH_HLEN || ip[9] != 17 || (nd_get16(ip + 6) & 0x3fff) ||
	    nd_ip_checksum(ip, hlen) != 0)
		return -1;
	udp = ip + hlen;
	ulen = nd_get16(udp + 4);
	if (nd_get16(udp) != PORT_SERVER || nd_get16(udp + 2) != PORT_CLIENT || ulen < UDP_HLEN ||
	    ulen > total - hlen || !nd_udp_checksum_ok(ip, udp, ulen))
		return -1;
	*at = ND_ETH_HLEN + hlen + UDP_HLEN;
	*plen = ulen - UDP_HLEN;
	return 0;
}

/* The options every message carries: its type (filled in), the largest
 * reply we take (1472), our vendor class, what we want to hear, and a
 * client identifier (Ethernet, the MAC follows). */
static const uint8_t options[] = {
	OPT_MSG_TYPE, 1, 0,
	OPT_MAX_SIZE, 2, 1472 >> 8, 1472 & 255,
	OPT_VENDOR_CLASS, 7, 'n', 'e', 't', 'd', 'i', 's', 'k',
	OPT_PARAMS, 6, OPT_NETMASK, OPT_ROUTER, OPT_VENDOR, OPT_SERVER_ID, OPT_TFTP_SERVER,
	OPT_BOOTFILE,
	OPT_CLIENT_ID, 7, 1,
};
#define OPT_TYPE_AT 2

/* Ethernet to broadcast (our MAC goes in at 6), IPv4 from 0.0.0.0 to
 * 255.255.255.255 (its checksum goes in at 24), UDP from 68 to 67 without
 * a checksum (allowed over IPv4): every message is BOOTP_MIN long. */
static const uint8_t headers[HDRS] = {
	0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0, 0, 0, ND_ETH_P_IP >> 8, ND_ETH_P_IP & 255,
	0x45, 0, 1, IP_HLEN + UDP_HLEN + BOOTP_MIN - 256, 0, 0, 0, 0, 64, 17, 0, 0,
	0, 0, 0, 0, 255, 255, 255, 255,
	0, PORT_CLIENT, 0, PORT_SERVER, 1, UDP_HLEN + BOOTP_MIN - 256, 0, 0,
};
_Static_assert(UDP_HLEN + BOOTP_MIN >= 256 && IP_HLEN + UDP_HLEN + BOOTP_MIN < 512,
	       "the lengths in headers[] are 1xxh");

unsigned nd_dhcp_build(uint8_t *frame, unsigned size, int type, uint32_t xid,
		       const uint8_t mac[6], uint16_t secs, const struct nd_dhcp_lease *lease)
{
	uint8_t *b = frame + HDRS, *o;
	uint16_t csum;

	if (size < ND_DHCP_FRAME_MAX)
		return 0;
	memcpy(frame, headers, HDRS);
	memcpy(frame + 6, mac, 6);
	csum = nd_ip_checksum(frame + ND_ETH_HLEN, IP_HLEN);
	memcpy(frame + ND_ETH_HLEN + 10, &csum, 2);
	/* BOOTP, then the options: at most 60 bytes, within BOOTP_MIN */
	memset(b, 0, BOOTP_MIN);
	b[0] = BOOTP_REQUEST;
	b[1] = 1; /* Ethernet */
	b[2] = 6;
	nd_put32(b + OFF_XID, xid);
	nd_put16(b + OFF_SECS, secs);
	b[OFF_FLAGS] = FLAG_BROADCAST >> 8; /* we have no address to take a unicast at */
	memcpy(b + OFF_CHADDR, mac, 6);
	memcpy(b + BOOTP_LEN, cookie, COOKIE_LEN);
	o = b + OFF_OPTIONS;
	memcpy(o, options, sizeof(options));
	o[OPT_TYPE_AT] = (uint8_t)type;
	memcpy(o + sizeof(options), mac, 6);
	o += sizeof(options) + 6;
	if (type == ND_DHCP_REQUEST) {
		o[0] = OPT_REQUESTED_IP;
		o[1] = 4;
		memcpy(o + 2, lease->ip, 4);
		o[6] = OPT_SERVER_ID;
		o[7] = 4;
		memcpy(o + 8, lease->server_id, 4);
		o += 12;
	}
	*o = OPT_END;
	return HDRS + BOOTP_MIN;
}

const char *nd_dhcp_type_text(int type)
{
	static const char *const names[] = { "?", "DISCOVER", "OFFER", "REQUEST", "DECLINE",
					     "ACK", "NAK", "RELEASE", "INFORM" };

	return type >= 1 && type <= 8 ? names[type] : names[0];
}

static void report(const struct nd_dhcp_io *io, int what, uint32_t arg)
{
	if (io->event)
		io->event(io->ctx, what, arg);
}

/* Send a DISCOVER or REQUEST; -1 if the device refused it. */
static int send_msg(const struct nd_dhcp_io *io, int type, uint32_t xid, uint32_t started,
		    const struct nd_dhcp_lease *offer)
{
	uint32_t secs = (io->now_ms(io->ctx) - started) / 1000;
	unsigned len = nd_dhcp_build(io->buf, io->size, type, xid, io->dev->mac,
				     (uint16_t)(secs > 0xffff ? 0xffff : secs), offer);

	if (!len)
		return -1;
	report(io, ND_DHCP_EV_SENT, (uint32_t)type);
	return io->dev->transmit(io->dev->ctx, io->buf, len) < 0 ? -1 : 0;
}

/* Wait up to wait_ms for a reply to xid of one of the types wanted (a
 * bit mask of 1 << type): its type with *lease filled, 0 on timeout, or
 * ND_DHCP_E_DEVICE. */
static int wait_reply(const struct nd_dhcp_io *io, uint32_t xid, unsigned wanted,
		      uint32_t wait_ms, struct nd_dhcp_lease *lease)
{
	uint32_t start = io->now_ms(io->ctx);
	unsigned at, plen;
	int len, type;

	while (io->now_ms(io->ctx) - start < wait_ms) {
		len = io->dev->receive(io->dev->ctx);
		if (len < 0)
			return ND_DHCP_E_DEVICE;
		if (len == 0)
			continue;
		if ((unsigned)len > io->size)
			len = (int)io->size; /* cut short: its lengths then do not fit, it is dropped */
		io->dev->read(io->dev->ctx, 0, io->buf, (unsigned)len);
		io->dev->release(io->dev->ctx);
		if (nd_dhcp_frame(io->buf, (unsigned)len, io->dev->mac, &at, &plen))
			continue;
		type = nd_dhcp_parse(io->buf + at, plen, xid, io->dev->mac, lease);
		if (type <= 0)
			continue;
		report(io, ND_DHCP_EV_RECEIVED, (uint32_t)type);
		if (wanted & (1u << type))
			return type;
	}
	return 0;
}

int nd_dhcp_run(const struct nd_dhcp_io *io, struct nd_dhcp_lease *lease)
{
	uint32_t started = io->now_ms(io->ctx), wait = ND_DHCP_FIRST_WAIT_MS, elapsed;
	uint32_t xid = io->seed ^ 0x6e640000u;
	struct nd_dhcp_lease offer;
	int type, requesting = 0;

	if (io->size < ND_DHCP_FRAME_MAX)
		return ND_DHCP_E_DEVICE;
	for (;;) {
		elapsed = io->now_ms(io->ctx) - started;
		if (elapsed >= io->give_up_ms)
			return ND_DHCP_E_TIMEOUT;
		if (wait > io->give_up_ms - elapsed)
			wait = io->give_up_ms - elapsed;
		if (send_msg(io, requesting ? ND_DHCP_REQUEST : ND_DHCP_DISCOVER, xid, started,
			     &offer) == 0) {
			if (requesting)
				type = wait_reply(io, xid, 1u << ND_DHCP_ACK | 1u << ND_DHCP_NAK, wait,
						  lease);
			else
				type = wait_reply(io, xid, 1u << ND_DHCP_OFFER, wait, &offer);
		} else {
			type = 0; /* the device refused the frame: as if it was lost */
		}
		if (type == ND_DHCP_E_DEVICE)
			return type;
		if (type == ND_DHCP_OFFER) {
			requesting = 1; /* ask for it at once, with the first wait again */
			wait = ND_DHCP_FIRST_WAIT_MS;
			continue;
		}
		if (type == ND_DHCP_ACK)
			return 0;
		if (type == ND_DHCP_NAK) {
			requesting = 0; /* the offer is gone: start over */
			xid++;
			wait = ND_DHCP_FIRST_WAIT_MS;
			continue;
		}
		/* Nothing came: the next try waits twice as long; a REQUEST left
		 * unanswered twice starts over. */
		if (requesting && wait >= 2 * ND_DHCP_FIRST_WAIT_MS)
			requesting = 0;
		wait = wait * 2 > ND_DHCP_MAX_WAIT_MS ? ND_DHCP_MAX_WAIT_MS : wait * 2;
		report(io, ND_DHCP_EV_RETRY, wait);
	}
}
