/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The firmware stubs' own Ethernet, ARP, IPv4 (reassembly included) and UDP on a frame device (freestanding). */

#include "ipstack.h"

void *memcpy(void *dst, const void *src, size_t n);
void *memset(void *dst, int c, size_t n);

#define ARP_LEN 28
#define ARP_REQUEST 1
#define ARP_REPLY 2
#define ARP_TRIES 8
#define ARP_WAIT_MS 250
#define IP_HLEN 20
#define IP_MAX_HLEN 60
#define IP_TTL 64
#define IP_PROTO_UDP 17
#define IP_MF 0x2000
#define IP_OFFSET 0x1fff
#define IP_MAX_PAYLOAD (65535 - IP_HLEN)
#define UDP_HLEN 8
#define MTU_MAX 1500         /* what the stack sends; larger NIC MTUs only receive */
#define HDR_MAX (ND_ETH_HLEN + IP_MAX_HLEN + UDP_HLEN)
#define REASM_MS 500         /* a datagram whose fragments take longer is dropped */
/* The largest IP payload reassembled.  A build may bound it by its largest
 * receive buffer (the BIOS stub: -DND_REASM_MAX in bios/build.mk), which
 * shrinks the bitmap; a datagram longer than that is dropped. */
#ifndef ND_REASM_MAX
#define ND_REASM_MAX IP_MAX_PAYLOAD
#endif
#define REASM_WORDS ((ND_REASM_MAX / 8 + 32) / 32) /* bitmap of 8-byte blocks */
#define PORT_BASE 49152      /* local port: one from the dynamic range per boot */

enum { FRAME_NONE = -1, FRAME_FATAL = -2 };

/*
 * The one fragmented datagram being received.  Its data goes straight to
 * the receive buffer of the recv() call (the client core passes the same
 * one every time and reads it only after a whole datagram came), its UDP
 * header, the first 8 bytes of the IP payload, to udp[].
 */
struct reasm {
	uint8_t *buf;
	unsigned size;
	uint8_t udp[UDP_HLEN];
	uint32_t have[REASM_WORDS]; /* 8-byte blocks received */
	uint32_t blocks;      /* how many */
	uint32_t total;       /* IP payload length; 0 until the last fragment came */
	uint64_t sum;         /* ones' complement sum of every byte received */
	uint32_t started_ms;
	uint16_t id;
	uint8_t active;
	uint8_t dropped;      /* too large or malformed: ignore the rest of it */
};

/* Multicast groups (nd_ip_join) are built in with -DND_GROUP, as the group
 * cache is (client/group.h): without it, none of that code. */
#ifdef ND_GROUP
#define GROUPS 1
#else
#define GROUPS 0
#endif

static struct {
	struct nd_framedev *dev;
	uint32_t (*clock_ms)(void *ctx); /* the transport's clock */
	void *clock_ctx;
	uint8_t hop_mac[ND_ETH_ALEN]; /* the server's, or the router's when it is off-link */
	uint8_t ip[4], server[4], hop[4];
	uint16_t port, server_port;
	uint16_t ip_id;
	uint16_t mtu;
	uint8_t hop_known;
	uint8_t stopped;      /* never touch the device again */
	uint8_t joined;       /* a multicast group is joined: */
	uint8_t group[4];     /* its address */
	uint16_t group_port;  /* and port */
	uint8_t hdr[HDR_MAX]; /* the headers of the frame being looked at */
	uint8_t tx[ND_ETH_HLEN + MTU_MAX];
	struct reasm ra;
} net;

static int ip_eq(const uint8_t *a, const uint8_t *b)
{
	return a[0] == b[0] && a[1] == b[1] && a[2] == b[2] && a[3] == b[3];
}

static uint32_t now_ms(void)
{
	return net.clock_ms(net.clock_ctx);
}

/*
 * Ones' complement sum of len bytes starting at an even offset of the
 * summed data, in the machine's byte order (RFC 1071): sums of pieces add
 * up, and storing the folded result as a native 16-bit word gives network
 * order on the wire.
 */
static uint64_t sum_bytes(uint64_t sum, const uint8_t *p, unsigned len)
{
	uint32_t w;
	uint16_t h;

	/* __builtin_memcpy: a plain load even where memcpy is not a builtin
	 * (bios/).  Two 8-byte loads a round: under an emulator every load
	 * and loop test counts, and this sum covers every byte of a long read
	 * (32-bit halves summed in 64 bits cannot overflow). */
	for (; len >= 16; p += 16, len -= 16) {
		uint64_t a, b;

		__builtin_memcpy(&a, p, 8);
		__builtin_memcpy(&b, p + 8, 8);
		sum += (a & 0xffffffff) + (a >> 32) + (b & 0xffffffff) + (b >> 32);
	}
	for (; len >= 4; p += 4, len -= 4) {
		__builtin_memcpy(&w, p, 4);
		sum += w;
	}
	if (len >= 2) {
		__builtin_memcpy(&h, p, 2);
		sum += h;
		p += 2;
		len -= 2;
	}
	if (len)
		sum += *p; /* the odd last byte is the high half of a network-order word */
	return sum;
}

static uint16_t fold(uint64_t sum)
{
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)sum;
}

/* The UDP pseudo-header's sum: addresses, protocol and UDP length. */
static uint64_t pseudo_sum(const uint8_t *src, const uint8_t *dst, uint16_t udp_len)
{
	uint8_t ph[12];

	memcpy(ph, src, 4);
	memcpy(ph + 4, dst, 4);
	ph[8] = 0;
	ph[9] = IP_PROTO_UDP;
	nd_put16(ph + 10, udp_len);
	return sum_bytes(0, ph, sizeof(ph));
}

static void put_eth(uint8_t *f, const uint8_t *dst, uint16_t type)
{
	memcpy(f, dst, ND_ETH_ALEN);
	memcpy(f + ND_ETH_ALEN, net.dev->mac, ND_ETH_ALEN);
	nd_put16(f + 12, type);
}

/* Hand the frame built in net.tx to the device; a frame it refuses is lost. */
static void transmit(unsigned len)
{
	if (len < ND_ETH_MIN_FRAME) {
		memset(net.tx + len, 0, ND_ETH_MIN_FRAME - len);
		len = ND_ETH_MIN_FRAME;
	}
	net.dev->transmit(net.dev->ctx, net.tx, len);
}

static void send_arp(uint16_t op, const uint8_t *eth_dst, const uint8_t *tha, const uint8_t *tpa)
{
	uint8_t *a = net.tx + ND_ETH_HLEN;

	put_eth(net.tx, eth_dst, ND_ETH_P_ARP);
	nd_put16(a, 1); /* Ethernet */
	nd_put16(a + 2, ND_ETH_P_IP);
	a[4] = ND_ETH_ALEN;
	a[5] = 4;
	nd_put16(a + 6, op);
	memcpy(a + 8, net.dev->mac, ND_ETH_ALEN);
	memcpy(a + 14, net.ip, 4);
	memcpy(a + 18, tha, ND_ETH_ALEN);
	memcpy(a + 24, tpa, 4);
	transmit(ND_ETH_HLEN + ARP_LEN);
}

/* Learn the next hop's address from anything it says; answer who asks for ours. */
static void take_arp(const uint8_t *a, unsigned len)
{
	if (len < ARP_LEN || nd_get16(a) != 1 || nd_get16(a + 2) != ND_ETH_P_IP || a[4] != ND_ETH_ALEN ||
	    a[5] != 4)
		return;
	if (ip_eq(a + 14, net.hop)) {
		memcpy(net.hop_mac, a + 8, ND_ETH_ALEN);
		net.hop_known = 1;
	}
	if (nd_get16(a + 6) == ARP_REQUEST && ip_eq(a + 24, net.ip))
		send_arp(ARP_REPLY, a + 8, a + 8, a + 14);
}

/* Is a UDP header that of a whole datagram of len bytes to our port from
 * the server's, with at most size bytes of data? */
static int udp_for_us(const uint8_t *udp, uint32_t len, unsigned size)
{
	return len >= UDP_HLEN && nd_get16(udp + 4) == len && nd_get16(udp) == net.server_port &&
	       (nd_get16(udp + 2) == net.port ||
		(GROUPS && net.joined && nd_get16(udp + 2) == net.group_port)) &&
	       len - UDP_HLEN <= size;
}

/* The UDP checksum, given the sum of the datagram's bytes; a zero checksum
 * means the sender computed none (RFC 768). */
static int udp_sum_ok(const uint8_t *ip, const uint8_t *udp, uint32_t len, uint64_t sum)
{
	return !(udp[6] | udp[7]) || fold(sum + pseudo_sum(ip + 12, ip + 16, (uint16_t)len)) == 0xffff;
}

/* Copy len bytes from frame offset at to dst: their ones' complement sum. */
static uint64_t read_summed(unsigned at, uint8_t *dst, unsigned len)
{
	if (net.dev->read_sum)
		return net.dev->read_sum(net.dev->ctx, at, dst, len);
	net.dev->read(net.dev->ctx, at, dst, len);
	return sum_bytes(0, dst, len);
}

/* A datagram in one frame: its data read straight into buf, once its
 * header says it is for us. */
static int take_udp(const uint8_t *ip, unsigned hlen, uint32_t len, uint8_t *buf, unsigned size)
{
	const uint8_t *udp = ip + hlen;
	unsigned n = len - UDP_HLEN;

	if (!udp_for_us(udp, len, size))
		return 0;
	if (net.ra.buf == buf)
		net.ra.active = 0; /* its data is being overwritten */
	if (!udp_sum_ok(ip, udp, len, sum_bytes(0, udp, UDP_HLEN) +
					      read_summed(ND_ETH_HLEN + hlen + UDP_HLEN, buf, n)))
		return 0;
	return (int)n;
}

static void reasm_start(uint16_t id, uint8_t *buf, unsigned size, uint32_t now)
{
	struct reasm *r = &net.ra;

	/* Only the blocks a datagram of this size can have; no others are looked at. */
	unsigned words = ((size + UDP_HLEN + 7) / 8 + 31) / 32;

	memset(r->have, 0, (words < REASM_WORDS ? words : REASM_WORDS) * sizeof(r->have[0]));
	r->buf = buf;
	r->size = size;
	r->blocks = 0;
	r->total = 0;
	r->sum = 0;
	r->started_ms = now;
	r->id = id;
	r->active = 1;
	r->dropped = 0;
}

/* Bits [first, end) of one 32-bit bitmap word (end - first <= 32). */
static uint32_t bits(uint32_t first, uint32_t end)
{
	uint32_t n = end - first;

	return (n == 32 ? ~0u : (1u << n) - 1) << (first & 31);
}

/* Record blocks [first, end) as received; 0, recording nothing, if any
 * of them already was (a duplicate or an overlapping fragment). */
static int mark_blocks(uint32_t first, uint32_t end)
{
	uint32_t *have = net.ra.have;
	uint32_t b, stop;

	for (b = first; b < end; b = stop) {
		stop = (b | 31) + 1 < end ? (b | 31) + 1 : end;
		if (have[b / 32] & bits(b, stop))
			return 0;
	}
	for (b = first; b < end; b = stop) {
		stop = (b | 31) + 1 < end ? (b | 31) + 1 : end;
		have[b / 32] |= bits(b, stop);
	}
	net.ra.blocks += end - first;
	return 1;
}

/* Copy IP payload bytes [off, off + n) of the frame (found at frame offset
 * at) to where they belong and add them to the datagram's sum. */
static void reasm_copy(unsigned at, uint32_t off, uint32_t n)
{
	struct reasm *r = &net.ra;
	uint32_t head = off < UDP_HLEN ? (n < UDP_HLEN - off ? n : UDP_HLEN - off) : 0;

	if (head) {
		net.dev->read(net.dev->ctx, at, r->udp + off, head);
		r->sum += sum_bytes(0, r->udp + off, head);
	}
	if (n > head)
		r->sum += read_summed(at + head, r->buf + off + head - UDP_HLEN, n - head);
}

/*
 * One fragment of a datagram.  Only one datagram is reassembled at a time:
 * a fragment of another one, or the time limit, drops what was gathered.
 * Nothing is returned until every byte of the datagram is there exactly
 * once, so a lost or duplicated fragment costs a retransmission, never
 * wrong data.
 */
static int take_fragment(const uint8_t *ip, unsigned hlen, uint32_t total, uint8_t *buf,
			 unsigned size)
{
	struct reasm *r = &net.ra;
	uint16_t frag = nd_get16(ip + 6);
	uint32_t off = (uint32_t)(frag & IP_OFFSET) * 8, n = total - hlen, end = off + n;
	uint32_t now = now_ms();

	if (!r->active || r->id != nd_get16(ip + 4) || r->buf != buf || r->size != size ||
	    now - r->started_ms > REASM_MS)
		reasm_start(nd_get16(ip + 4), buf, size, now);
	if (r->dropped)
		return 0;
	if (!n || end > size + UDP_HLEN || end > ND_REASM_MAX || ((frag & IP_MF) && n % 8) ||
	    (!(frag & IP_MF) && r->total && r->total != end) || (r->total && end > r->total)) {
		r->dropped = 1;
		return 0;
	}
	if (!mark_blocks(off / 8, (end + 7) / 8))
		return 0;
	if (!(frag & IP_MF))
		r->total = end;
	reasm_copy(ND_ETH_HLEN + hlen, off, n);
	if (!r->total || r->blocks != (r->total + 7) / 8)
		return 0;
	r->active = 0;
	if (!udp_for_us(r->udp, r->total, size) || !udp_sum_ok(ip, r->udp, r->total, r->sum))
		return 0;
	return (int)(r->total - UDP_HLEN);
}

/* An IPv4 packet (headers in net.hdr, len bytes after the Ethernet header):
 * a datagram from the server to us, whole or in fragments. */
static int take_ipv4(unsigned len, uint8_t *buf, unsigned size)
{
	const uint8_t *ip = net.hdr + ND_ETH_HLEN;
	unsigned hlen, total;

	if (len < IP_HLEN || ip[0] >> 4 != 4)
		return 0;
	hlen = (ip[0] & 15) * 4u;
	total = nd_get16(ip + 2);
	if (hlen < IP_HLEN || total < hlen || total > len || ip[9] != IP_PROTO_UDP ||
	    !ip_eq(ip + 12, net.server) ||
	    !(ip_eq(ip + 16, net.ip) || (GROUPS && net.joined && ip_eq(ip + 16, net.group))) ||
	    fold(sum_bytes(0, ip, hlen)) != 0xffff)
		return 0;
	if (nd_get16(ip + 6) & (IP_MF | IP_OFFSET))
		return take_fragment(ip, hlen, total, buf, size);
	return take_udp(ip, hlen, total - hlen, buf, size);
}

static int for_us(const uint8_t *f)
{
	const uint8_t *m = net.dev->mac;

	return (f[0] == m[0] && f[1] == m[1] && f[2] == m[2] && f[3] == m[3] && f[4] == m[4] &&
		f[5] == m[5]) || (f[0] & f[1] & f[2] & f[3] & f[4] & f[5]) == 0xff ||
	       (GROUPS && net.joined && f[0] == 0x01 && f[1] == 0x00 && f[2] == 0x5e &&
		f[3] == (net.group[1] & 0x7f) && f[4] == net.group[2] && f[5] == net.group[3]);
}

/* Act on one frame of len bytes: a datagram's length (in buf) or 0. */
static int take_frame_of(unsigned len, uint8_t *buf, unsigned size)
{
	net.dev->read(net.dev->ctx, 0, net.hdr, len < HDR_MAX ? len : HDR_MAX);
	if (len < ND_ETH_HLEN || !for_us(net.hdr))
		return 0; /* another station's: the NIC may be promiscuous */
	switch (nd_get16(net.hdr + 12)) {
	case ND_ETH_P_ARP:
		take_arp(net.hdr + ND_ETH_HLEN, len - ND_ETH_HLEN < ARP_LEN ? len - ND_ETH_HLEN : ARP_LEN);
		return 0;
	case ND_ETH_P_IP:
		return take_ipv4(len - ND_ETH_HLEN, buf, size);
	default:
		return 0;
	}
}

/* Take one frame from the device and act on it: a datagram's length (in
 * buf), 0 when the frame completed none, FRAME_NONE when none was
 * waiting, FRAME_FATAL when the device failed. */
static int take_frame(uint8_t *buf, unsigned size)
{
	int len = net.dev->receive(net.dev->ctx);
	int got;

	if (len < 0)
		return FRAME_FATAL;
	if (!len)
		return FRAME_NONE;
	got = take_frame_of((unsigned)len, buf, size);
	net.dev->release(net.dev->ctx);
	return got;
}

/* The IP header of a packet carrying payload bytes [off, off + n) of datagram id. */
static void put_ip(uint8_t *ip, uint16_t id, uint32_t off, uint32_t n, int more)
{
	uint16_t csum;

	ip[0] = 0x45;
	ip[1] = 0;
	nd_put16(ip + 2, (uint16_t)(IP_HLEN + n));
	nd_put16(ip + 4, id);
	nd_put16(ip + 6, (uint16_t)((more ? IP_MF : 0) | off / 8));
	ip[8] = IP_TTL;
	ip[9] = IP_PROTO_UDP;
	nd_put16(ip + 10, 0);
	memcpy(ip + 12, net.ip, 4);
	memcpy(ip + 16, net.server, 4);
	csum = (uint16_t)~fold(sum_bytes(0, ip, IP_HLEN));
	memcpy(ip + 10, &csum, 2);
}

/*
 * A datagram to the server, in IP fragments when it does not fit a frame
 * (the stubs keep their writes within one frame, since some networks drop
 * fragments: QEMU's user network among them).  A frame the device refuses
 * counts as lost: the client core retransmits.
 */
static int ip_send(void *ctx, const void *buf, unsigned len)
{
	const uint8_t *data = buf;
	uint8_t udp[UDP_HLEN], *payload = net.tx + ND_ETH_HLEN + IP_HLEN;
	uint32_t total = UDP_HLEN + len, per = (net.mtu - IP_HLEN) & ~7u, off, n;
	uint16_t csum, id = net.ip_id++;

	if (net.stopped)
		return -1;
	if (total > IP_MAX_PAYLOAD)
		return -1;
	nd_put16(udp, net.port);
	nd_put16(udp + 2, net.server_port);
	nd_put16(udp + 4, (uint16_t)total);
	nd_put16(udp + 6, 0);
	csum = (uint16_t)~fold(pseudo_sum(net.ip, net.server, (uint16_t)total) +
			       sum_bytes(sum_bytes(0, udp, UDP_HLEN), data, len));
	if (!csum)
		csum = 0xffff; /* zero would mean "no checksum" */
	memcpy(udp + 6, &csum, 2);
	for (off = 0; off < total; off += n) {
		n = total - off + IP_HLEN <= net.mtu ? total - off : per;
		put_eth(net.tx, net.hop_mac, ND_ETH_P_IP);
		put_ip(net.tx + ND_ETH_HLEN, id, off, n, off + n < total);
		if (off == 0) {
			memcpy(payload, udp, UDP_HLEN);
			memcpy(payload + UDP_HLEN, data, n - UDP_HLEN);
		} else {
			memcpy(payload, data + off - UDP_HLEN, n);
		}
		transmit(ND_ETH_HLEN + IP_HLEN + n);
	}
	return 0;
}

/* Frames are taken as long as they are waiting, even past wait_ms, so a
 * poll (wait_ms 0) still gathers a datagram whose fragments are all here. */
static int ip_recv(void *ctx, void *buf, unsigned size, uint32_t wait_ms)
{
	uint32_t start = now_ms();
	int got;

	for (;;) {
		if (net.stopped)
			return -1;
		got = take_frame(buf, size);
		if (got > 0)
			return got;
		if (got == FRAME_FATAL) {
			net.stopped = 1;
			return -1;
		}
		if (got == FRAME_NONE && now_ms() - start >= wait_ms)
			return 0;
	}
}

/* Ask for the next hop's MAC address until it answers. */
static int resolve_hop(void)
{
	static const uint8_t broadcast[ND_ETH_ALEN] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };
	static const uint8_t unknown[ND_ETH_ALEN];
	unsigned try;
	uint32_t start;
	uint8_t none;

	for (try = 0; try < ARP_TRIES && !net.hop_known; try++) {
		send_arp(ARP_REQUEST, broadcast, unknown, net.hop);
		start = now_ms();
		while (!net.hop_known && now_ms() - start < ARP_WAIT_MS)
			if (take_frame(&none, 0) == FRAME_FATAL)
				return 0;
	}
	return net.hop_known;
}

static int on_link(const struct nd_ipconf *c)
{
	unsigned i;

	for (i = 0; i < 4; i++)
		if ((c->server[i] ^ c->ip[i]) & c->netmask[i])
			return 0;
	return 1;
}

int nd_ip_open(struct nd_framedev *dev, const struct nd_ipconf *conf, struct nd_transport *tp)
{
	const uint8_t *hop = conf->server;

	if (dev->mtu < ND_DEFAULT_DGRAM + IP_HLEN + UDP_HLEN || nd_ip_is_zero(conf->ip) ||
	    nd_ip_is_zero(conf->server))
		return ND_IP_E_ARG;
	memset(&net, 0, sizeof(net));
	if (!on_link(conf) && !nd_ip_is_zero(conf->gateway))
		hop = conf->gateway;
	net.dev = dev;
	net.clock_ms = tp->now_ms;
	net.clock_ctx = tp->ctx;
	net.mtu = dev->mtu < MTU_MAX ? dev->mtu : MTU_MAX;
	memcpy(net.ip, conf->ip, 4);
	memcpy(net.server, conf->server, 4);
	memcpy(net.hop, hop, 4);
	net.server_port = conf->server_port;
	net.port = (uint16_t)(PORT_BASE + conf->seed % (65536 - PORT_BASE));
	net.ip_id = (uint16_t)(conf->seed >> 16);
	if (!resolve_hop())
		return ND_IP_E_ARP;
	tp->send = ip_send;
	tp->recv = ip_recv;
	return ND_IP_OK;
}

#ifdef ND_GROUP
/* An IGMPv2 message (RFC 2236) of `type` about the joined group, to `to`:
 * IP with the Router Alert option, TTL 1, to the group's Ethernet address. */
static void send_igmp(uint8_t type, const uint8_t *to)
{
	uint8_t *ip = net.tx + ND_ETH_HLEN, *igmp = ip + 24;
	uint8_t mac[ND_ETH_ALEN] = { 0x01, 0x00, 0x5e, (uint8_t)(to[1] & 0x7f), to[2], to[3] };
	uint16_t csum;

	put_eth(net.tx, mac, ND_ETH_P_IP);
	memset(ip, 0, 24 + 8);
	ip[0] = 0x46; /* version 4, 6 words: one of options */
	nd_put16(ip + 2, 24 + 8);
	nd_put16(ip + 4, net.ip_id++);
	ip[8] = 1;
	ip[9] = 2; /* IGMP */
	memcpy(ip + 12, net.ip, 4);
	memcpy(ip + 16, to, 4);
	ip[20] = 0x94; /* Router Alert, 4 bytes, value 0 */
	ip[21] = 4;
	csum = (uint16_t)~fold(sum_bytes(0, ip, 24));
	memcpy(ip + 10, &csum, 2);
	igmp[0] = type;
	memcpy(igmp + 4, net.group, 4);
	csum = (uint16_t)~fold(sum_bytes(0, igmp, 8));
	memcpy(igmp + 2, &csum, 2);
	transmit(ND_ETH_HLEN + 24 + 8);
}

int nd_ip_join(const uint8_t group[4], uint16_t port)
{
	if (net.stopped || (group[0] & 0xf0) != 0xe0 || !port)
		return ND_IP_E_ARG;
	memcpy(net.group, group, 4);
	net.group_port = port;
	net.joined = 1;
	send_igmp(0x16, group); /* membership report, v2 */
	send_igmp(0x16, group); /* twice, as RFC 2236 advises for unsolicited reports */
	return ND_IP_OK;
}

void nd_ip_leave(void)
{
	static const uint8_t all_routers[4] = { 224, 0, 0, 2 };

	if (!net.joined || net.stopped)
		return;
	send_igmp(0x17, all_routers); /* leave group */
	net.joined = 0;
}
#endif

uint16_t nd_ip_checksum(const void *data, unsigned len)
{
	return (uint16_t)~fold(sum_bytes(0, data, len));
}

int nd_udp_checksum_ok(const uint8_t *ip, const uint8_t *udp, unsigned len)
{
	return udp_sum_ok(ip, udp, len, sum_bytes(0, udp, len));
}

void nd_ip_stop(void)
{
	net.stopped = 1;
}

const uint8_t *nd_ip_next_hop(void)
{
	return net.hop;
}
