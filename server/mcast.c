/* SPDX-License-Identifier: GPL-2.0-or-later */
/* netdiskd's multicast: a group per image, membership from ATTACH, and the rule that sends a READ's data to the group or to its client. */

/*
 * The rule (docs/protocol.md, "Multicast"), for a READ from a session that
 * joined its image's group:
 *   - a retransmission (ND_FLAG_RETRY) is a repair: always unicast;
 *   - so is a READ with ND_FLAG_UNICAST: its client was offered the group
 *     but has not joined it yet (the stubs' datagram-size probe comes
 *     before their join);
 *   - a session whose own overlay holds data in the range, or that an NBD
 *     connection uses (the OS took over), gets unicast;
 *   - `multicast = always`: every other READ goes to the group;
 *   - `multicast = auto`: it goes to the group when another session asked
 *     for an overlapping range within the last `multicast-window` ms;
 *   - a block the group carried within the last `multicast-resend` ms
 *     (default 500; per sector, so half a block sent does not hold back
 *     its other half) is not sent again: every member keeps a block it got
 *     at least that long (the ATTACH reply says how long, mcast_hold, and
 *     the client core stretches its cache timeout to it; a block read is
 *     kept, not freed), so it has the block or lost it and repairs by
 *     unicast; a READ all of whose blocks the group carried gets no answer
 *     at all.  With the old client rule ("a block read is freed") a block
 *     read twice within the hold waited for a repair: a lone client took
 *     11.8 s instead of 6.15 s, 32 clients 24-148 s (docs/lab.md);
 *   - above `multicast-rate` (a token bucket, charged only for the blocks
 *     that actually go: 32 members asking for one block cost one send)
 *     the READ is answered by unicast, which reaches only the client's
 *     port of the switch.
 * Group datagrams carry the bytes of one image version in blocks of
 * `sectors` sectors aligned to that size, so every listener can cache them.
 * Sessions pinned to different versions of one image share its group
 * address but not its stream: the stream id names the version, a client
 * keeps only datagrams of its own stream, and the tables below are kept per
 * version, so one version's block never stands in for another's.
 */

#include <arpa/inet.h>
#include <errno.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include "netdiskd.h"

/* What each group remembers, in direct-mapped tables (a collision only
 * forgets): who last asked for each region of the image (the auto rule),
 * and when the group last carried each block. */
#define ASKED 16384
#define REGION 64    /* sectors */
#define SENT 16384

struct mc_group {
	uint32_t addr;             /* host order */
	uint8_t stream[8];
	unsigned members, peak;
	unsigned long long bytes;  /* sent to the group, headers included */
	uint32_t seq;              /* req_id of its datagrams, for captures */
	struct { uint64_t region; uint32_t who; unsigned vnum; int64_t ms; } asked[ASKED];
					/* region + 1, token fingerprint, version */
	struct { uint64_t block; unsigned vnum; uint32_t mask; int64_t ms; } sent[SENT];
					/* block + 1, version, its sectors sent, when last */
};

struct mcast_state {
	struct mc_group *g;        /* one per image, in config order */
	unsigned sectors;          /* per group datagram */
	double tokens;             /* rate cap: bytes that may go now */
	int64_t bucket_ms;
	uint8_t hdr[ND_MAX_CHUNKS][ND_HDR_SIZE];
	struct iovec iov[ND_MAX_CHUNKS][2];
};

void mcast_config_defaults(struct mcast_config *m)
{
	memset(m, 0, sizeof(*m));
	m->mode = MCAST_OFF;
	m->group_base = 0xEFFF4E01u; /* 239.255.78.1, administratively scoped */
	m->group_count = 256;
	m->port = ND_DEFAULT_PORT + 1;
	m->ttl = 1;
	m->rate_mbit = 400;
	m->window_ms = 500;
	m->resend_ms = 500;
	m->dgram = ND_HDR_SIZE + 2 * ND_SECTOR_SIZE; /* 1072: one frame on a 1500-byte MTU */
}

static int uint_in(const char *v, unsigned lo, unsigned hi, unsigned *out)
{
	char *end;
	unsigned long n;

	errno = 0;
	n = strtoul(v, &end, 10);
	if (errno || !*v || *end || v[0] == '-' || n < lo || n > hi)
		return -1;
	*out = (unsigned)n;
	return 0;
}

/* ADDR[/PREFIX] inside 224.0.0.0/4. */
static int parse_groups(struct mcast_config *m, const char *v)
{
	char a[32];
	const char *slash = strchr(v, '/');
	unsigned prefix = 32;
	struct in_addr in;
	uint32_t base;

	if (snprintf(a, sizeof(a), "%.*s", slash ? (int)(slash - v) : (int)strlen(v), v) >= (int)sizeof(a))
		return -1;
	if (inet_pton(AF_INET, a, &in) != 1 || (slash && uint_in(slash + 1, 4, 32, &prefix) < 0))
		return -1;
	base = ntohl(in.s_addr);
	if ((base >> 28) != 0xE || prefix < 4)
		return -1;
	m->group_base = base;
	m->group_count = prefix >= 32 ? 1 : 1u << (32 - prefix);
	if (m->group_count > 1u << 16)
		m->group_count = 1u << 16;
	return 0;
}

int mcast_config_key(struct mcast_config *m, const char *k, const char *v, char *err, size_t errlen)
{
	if (!strcmp(k, "multicast")) {
		if (!strcmp(v, "off"))
			m->mode = MCAST_OFF;
		else if (!strcmp(v, "auto"))
			m->mode = MCAST_AUTO;
		else if (!strcmp(v, "always"))
			m->mode = MCAST_ALWAYS;
		else
			return snprintf(err, errlen, "multicast must be off, auto or always, not"), -1;
	} else if (!strcmp(k, "multicast-group")) {
		if (parse_groups(m, v) < 0)
			return snprintf(err, errlen, "multicast-group must be an IPv4 multicast "
					"ADDR[/PREFIX] (224.0.0.0/4), not"), -1;
	} else if (!strcmp(k, "multicast-port")) {
		if (uint_in(v, 1, 65535, &m->port) < 0)
			return snprintf(err, errlen, "multicast-port must be 1..65535, not"), -1;
	} else if (!strcmp(k, "multicast-ttl")) {
		if (uint_in(v, 1, 255, &m->ttl) < 0)
			return snprintf(err, errlen, "multicast-ttl must be 1..255, not"), -1;
	} else if (!strcmp(k, "multicast-rate")) {
		if (uint_in(v, 1, 100000, &m->rate_mbit) < 0)
			return snprintf(err, errlen, "multicast-rate must be 1..100000 Mbit/s, not"), -1;
	} else if (!strcmp(k, "multicast-window")) {
		if (uint_in(v, 1, 60000, &m->window_ms) < 0)
			return snprintf(err, errlen, "multicast-window must be 1..60000 ms, not"), -1;
	} else if (!strcmp(k, "multicast-resend")) {
		if (uint_in(v, 0, 60000, &m->resend_ms) < 0)
			return snprintf(err, errlen, "multicast-resend must be 0..60000 ms, not"), -1;
	} else if (!strcmp(k, "multicast-datagram")) {
		if (uint_in(v, ND_HDR_SIZE + ND_SECTOR_SIZE,
			    ND_HDR_SIZE + ND_MC_MAX_SECTORS * ND_SECTOR_SIZE, &m->dgram) < 0)
			return snprintf(err, errlen, "multicast-datagram must be %u..%u bytes, not",
					ND_HDR_SIZE + ND_SECTOR_SIZE,
					ND_HDR_SIZE + ND_MC_MAX_SECTORS * ND_SECTOR_SIZE), -1;
	} else if (!strcmp(k, "multicast-interface")) {
		if (snprintf(m->iface, sizeof(m->iface), "%s", v) >= (int)sizeof(m->iface))
			return snprintf(err, errlen, "multicast-interface too long:"), -1;
	} else {
		return 0;
	}
	return 1;
}

static int64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static const char *mode_name(int mode)
{
	return mode == MCAST_ALWAYS ? "always" : mode == MCAST_AUTO ? "auto" : "off";
}

static void addr_text(uint32_t a, char *out, size_t len)
{
	struct in_addr in = { htonl(a) };

	inet_ntop(AF_INET, &in, out, (socklen_t)len);
}

/* IP_MULTICAST_TTL, _LOOP and _IF on the UDP socket: group datagrams leave
 * from the server's own port, so clients can tell them by their source. */
static int socket_options(struct server *s, char *err, size_t errlen)
{
	const struct mcast_config *m = &s->cfg.mc;
	struct sockaddr_in self;
	socklen_t len = sizeof(self);
	struct ip_mreqn mr;
	int ttl = (int)m->ttl, loop = 1;

	memset(&mr, 0, sizeof(mr));
	if (getsockname(s->udp_fd, (struct sockaddr *)&self, &len) < 0 || self.sin_family != AF_INET) {
		nd_log(ND_LOG_WARN, "multicast needs an IPv4 listen address; %s is not: multicast off",
		       s->cfg.listen);
		return 1;
	}
	if (m->iface[0] && inet_pton(AF_INET, m->iface, &mr.imr_address) != 1) {
		mr.imr_ifindex = (int)if_nametoindex(m->iface);
		if (!mr.imr_ifindex) {
			snprintf(err, errlen, "multicast-interface %s: if_nametoindex: %s", m->iface,
				 strerror(errno));
			return -1;
		}
	} else if (!m->iface[0]) {
		mr.imr_address = self.sin_addr; /* INADDR_ANY: the routing table chooses */
	}
	if (setsockopt(s->udp_fd, IPPROTO_IP, IP_MULTICAST_TTL, &ttl, sizeof(ttl)) < 0 ||
	    setsockopt(s->udp_fd, IPPROTO_IP, IP_MULTICAST_LOOP, &loop, sizeof(loop)) < 0 ||
	    setsockopt(s->udp_fd, IPPROTO_IP, IP_MULTICAST_IF, &mr, sizeof(mr)) < 0) {
		snprintf(err, errlen, "multicast: setsockopt IP_MULTICAST_TTL/LOOP/IF%s%s: %s",
			 m->iface[0] ? " " : "", m->iface, strerror(errno));
		return -1;
	}
	return 0;
}

/* 64 bits of FNV-1a over the image's identity and this run's key: a stream
 * changes when the image file does, and with every server start. */
static void stream_id(const struct image *im, uint64_t key, uint8_t out[8])
{
	uint64_t h = 14695981039346656037ull, parts[3] = { im->base->size, layer_version(im->base), key };
	const uint8_t *p;
	size_t i;

	for (i = 0; im->name[i]; i++)
		h = (h ^ (uint8_t)im->name[i]) * 1099511628211ull;
	for (p = (const uint8_t *)parts, i = 0; i < sizeof(parts); i++)
		h = (h ^ p[i]) * 1099511628211ull;
	if (!h)
		h = 1;
	nd_put64(out, h);
}

/* The stream of version `vnum` of group g's image: the image's stream with
 * the version number folded in (numbers are never reused in a store). */
static void version_stream(const struct mc_group *g, unsigned vnum, uint8_t out[8])
{
	uint64_t h = nd_get64(g->stream);
	unsigned i;

	for (i = 0; i < 4; i++)
		h = (h ^ (uint8_t)(vnum >> (8 * i))) * 1099511628211ull;
	if (!h)
		h = 1;
	nd_put64(out, h);
}

int mcast_open(struct server *s, char *err, size_t errlen)
{
	const struct mcast_config *m = &s->cfg.mc;
	struct mcast_state *mc;
	uint64_t key = 0;
	int i, rc;

	s->mc = NULL;
	if (m->mode == MCAST_OFF)
		return 0;
	if (s->udp_fd >= 0 && (rc = socket_options(s, err, errlen)) != 0)
		return rc < 0 ? -1 : 0;
	mc = calloc(1, sizeof(*mc));
	if (mc)
		mc->g = calloc((size_t)s->cfg.nimages, sizeof(*mc->g));
	if (!mc || !mc->g) {
		free(mc);
		snprintf(err, errlen, "multicast: out of memory");
		return -1;
	}
	if (getrandom(&key, sizeof(key), 0) < 0)
		key = (uint64_t)mono_ms() ^ (uint64_t)time(NULL) << 20;
	mc->sectors = (m->dgram - ND_HDR_SIZE) / ND_SECTOR_SIZE;
	mc->tokens = m->rate_mbit * 125000.0 / 10;
	mc->bucket_ms = mono_ms();
	for (i = 0; i < s->cfg.nimages; i++) {
		struct mc_group *g = &mc->g[i];
		char a[INET_ADDRSTRLEN];

		g->addr = m->group_base + (uint32_t)i % m->group_count;
		stream_id(&s->cfg.images[i], key, g->stream);
		addr_text(g->addr, a, sizeof(a));
		log_msg("multicast group of image %s: %s:%u, %s, %u sectors a datagram, ttl %u, "
			"cap %u Mbit/s", s->cfg.images[i].name, a, m->port, mode_name(m->mode),
			mc->sectors, m->ttl, m->rate_mbit);
	}
	s->mc = mc;
	return 0;
}

void mcast_close(struct server *s)
{
	if (!s->mc)
		return;
	free(s->mc->g);
	free(s->mc);
	s->mc = NULL;
}

static struct mc_group *group_of(const struct server *s, const struct session *ss)
{
	return s->mc && ss->mc_group ? &s->mc->g[ss->mc_group - 1] : NULL;
}

void mcast_join(struct server *s, struct session *ss, const struct nd_attach_req *req)
{
	struct mcast_state *mc = s->mc;
	struct mc_group *g;
	const char *why = NULL;
	char a[INET_ADDRSTRLEN], mac[18];
	int idx;

	if (!mc || ss->mc_group || !(nd_get32(req->caps) & ND_CAP_MULTICAST))
		return;
	nd_mac_format(ss->mac, mac);
	if (ss->addr.ss_family != AF_INET)
		why = "it is not an IPv4 client";
	else if (nd_get16(req->max_dgram) < ND_HDR_SIZE + mc->sectors * ND_SECTOR_SIZE)
		why = "its datagrams are smaller than the group's";
	else if (ss->mode == ND_MODE_DIRECT)
		why = "it writes the image directly";
	else if (ss->persona) /* the group carries the version's blocks, not its own */
		why = "its view is personalized";
	else if (layer_own_data(ss->own, 0, ss->img->base->size))
		why = "its overlay holds writes of an earlier boot";
	if (why) {
		log_msg("multicast not offered, %s: mac=%s session=%08x image=%s", why, mac,
			nd_token_fingerprint(ss->token), ss->img->name);
		return;
	}
	idx = (int)(ss->img - s->cfg.images);
	g = &mc->g[idx];
	ss->mc_group = idx + 1;
	if (++g->members > g->peak)
		g->peak = g->members;
	addr_text(g->addr, a, sizeof(a));
	log_msg("multicast join: mac=%s session=%08x ip=%s group=%s:%u image=%s clients=%u", mac,
		nd_token_fingerprint(ss->token), ss->peer, a, s->cfg.mc.port, ss->img->name,
		g->members);
}

void mcast_describe(const struct server *s, struct session *ss, struct nd_attach_rep *r)
{
	const struct mc_group *g = group_of(s, ss);

	if (!g)
		return;
	nd_put32(r->mcast_addr, g->addr);
	nd_put16(r->mcast_port, (uint16_t)s->cfg.mc.port);
	nd_put16(r->mcast_sectors, (uint16_t)s->mc->sectors);
	version_stream(g, ss->vnum, r->mcast_stream);
	nd_put16(r->mcast_hold, (uint16_t)s->cfg.mc.resend_ms);
	ss->mc_hold_ms = s->cfg.mc.resend_ms;
}

void mcast_leave(struct server *s, struct session *ss, const char *why)
{
	struct mc_group *g = group_of(s, ss);
	char a[INET_ADDRSTRLEN], mac[18];

	if (!g)
		return;
	ss->mc_group = 0;
	g->members--;
	addr_text(g->addr, a, sizeof(a));
	nd_mac_format(ss->mac, mac);
	log_msg("multicast leave, %s: mac=%s session=%08x group=%s:%u image=%s clients=%u", why, mac,
		nd_token_fingerprint(ss->token), a, s->cfg.mc.port, ss->img->name, g->members);
}

/* auto: did another session ask for part of [lba, lba+count) lately (to
 * REGION sectors)?  Either way `who` is now the last to ask for it. */
static int others_asked(struct mc_group *g, uint32_t who, unsigned vnum, uint64_t lba,
			uint32_t count, int64_t now, unsigned window_ms)
{
	uint64_t r, last = (lba + count - 1) / REGION;
	int any = 0;

	for (r = lba / REGION; r <= last; r++) {
		unsigned i = (unsigned)(r % ASKED);

		if (g->asked[i].region == r + 1 && g->asked[i].who != who &&
		    g->asked[i].vnum == vnum && now - g->asked[i].ms <= (int64_t)window_ms)
			any = 1;
		g->asked[i].region = r + 1;
		g->asked[i].who = who;
		g->asked[i].vnum = vnum;
		g->asked[i].ms = now;
	}
	return any;
}

/* The rate cap: may `bytes` go to the group now? */
static int bucket_take(struct mcast_state *mc, unsigned rate_mbit, unsigned bytes, int64_t now)
{
	double rate = rate_mbit * 125000.0, burst = rate / 10; /* 100 ms of the cap */

	mc->tokens += (double)(now - mc->bucket_ms) * rate / 1000;
	mc->bucket_ms = now;
	if (mc->tokens > burst)
		mc->tokens = burst;
	if (mc->tokens < bytes)
		return 0;
	mc->tokens -= bytes;
	return 1;
}

/* Is any chunk of bytes [from, to) of the request in the mask `want`? */
static int wanted(uint64_t want, uint32_t from, uint32_t to, uint16_t chunk)
{
	uint32_t i;

	for (i = from / chunk; i <= (to - 1) / chunk && i < 64; i++)
		if (want & (uint64_t)1 << i)
			return 1;
	return 0;
}

/* Did the group carry sectors [first, first + n) of `block` of version
 * vnum within the hold?  With `mark`, if not, they go now: the block's
 * entry takes them, and its time is now (every member that gets this
 * datagram keeps the whole block from now on, group.c).  Kept per sector:
 * a block half sent for one request is not held back from a request for
 * its other half. */
static int sent_lately(struct mc_group *g, unsigned vnum, uint64_t block, unsigned first,
		       unsigned n, int64_t now, unsigned hold_ms, int mark)
{
	unsigned i = (unsigned)(block % SENT);
	uint32_t mask = (n >= 32 ? 0xFFFFFFFFu : ((uint32_t)1 << n) - 1) << first;
	int live = g->sent[i].block == block + 1 && g->sent[i].vnum == vnum &&
		   now - g->sent[i].ms <= (int64_t)hold_ms;

	if (live && (g->sent[i].mask & mask) == mask)
		return 1;
	if (!mark)
		return 0;
	if (live) {
		g->sent[i].mask |= mask;
	} else {
		g->sent[i].block = block + 1;
		g->sent[i].vnum = vnum;
		g->sent[i].mask = mask;
	}
	g->sent[i].ms = now;
	return 0;
}

/* The group datagrams for a READ, sent in batches, but for blocks the group
 * carried lately.  With `dry`, nothing is sent or marked: the bytes that
 * would go (headers included), for the rate cap. */
static unsigned send_group(struct server *s, struct mc_group *g, unsigned vnum, uint64_t lba,
			   uint32_t count, uint64_t want, uint16_t chunk, const uint8_t *data,
			   int64_t now, unsigned hold_ms, int dry)
{
	struct mcast_state *mc = s->mc;
	struct sockaddr_in to = { .sin_family = AF_INET };
	uint64_t at = lba, end = lba + count;
	uint8_t stream[8];
	unsigned n = 0, bytes = 0;

	version_stream(g, vnum, stream);
	to.sin_addr.s_addr = htonl(g->addr);
	to.sin_port = htons((uint16_t)s->cfg.mc.port);
	while (at < end) {
		uint64_t stop = (at / mc->sectors + 1) * mc->sectors;
		uint32_t from = (uint32_t)(at - lba) * ND_SECTOR_SIZE, sectors;
		struct nd_hdr *h = (struct nd_hdr *)mc->hdr[n];

		if (stop > end)
			stop = end;
		sectors = (uint32_t)(stop - at);
		if (!wanted(want, from, from + sectors * ND_SECTOR_SIZE, chunk)) {
			/* not asked for */
		} else if (sent_lately(g, vnum, at / mc->sectors, (unsigned)(at % mc->sectors),
				       sectors, now, hold_ms, !dry)) {
			if (!dry)
				s->stats.mc_dedup++;
		} else if (dry) {
			bytes += ND_HDR_SIZE + sectors * ND_SECTOR_SIZE;
		} else {
			memset(h, 0, sizeof(*h));
			nd_put32(h->magic, ND_MAGIC);
			h->version = ND_VERSION;
			h->opcode = ND_OP_READ;
			h->flags = ND_FLAG_REPLY | ND_FLAG_MCAST;
			nd_put32(h->req_id, ++g->seq);
			nd_put16(h->data_len, (uint16_t)(sectors * ND_SECTOR_SIZE));
			memcpy(h->token, stream, sizeof(stream));
			nd_put64(h->lba, at);
			nd_put32(h->count, sectors);
			mc->iov[n][0].iov_base = h;
			mc->iov[n][0].iov_len = ND_HDR_SIZE;
			mc->iov[n][1].iov_base = (void *)(data + from);
			mc->iov[n][1].iov_len = sectors * ND_SECTOR_SIZE;
			g->bytes += ND_HDR_SIZE + sectors * ND_SECTOR_SIZE;
			s->stats.tx_multicast += ND_HDR_SIZE + sectors * ND_SECTOR_SIZE;
			s->stats.tx_mc_datagrams++;
			if (++n == ND_MAX_CHUNKS) {
				s->send(s, mc->iov, n, (struct sockaddr *)&to, sizeof(to));
				n = 0;
			}
		}
		at = stop;
	}
	if (n)
		s->send(s, mc->iov, n, (struct sockaddr *)&to, sizeof(to));
	return bytes;
}

int mcast_read(struct server *s, struct session *ss, const struct nd_hdr *h, uint64_t want,
	       const uint8_t *data)
{
	struct mc_group *g = group_of(s, ss);
	const struct mcast_config *m = &s->cfg.mc;
	uint64_t lba = nd_get64(h->lba);
	uint32_t count = nd_get32(h->count), who = nd_token_fingerprint(ss->token), bytes;
	unsigned hold;
	int64_t now;
	int go;

	if (!g)
		return 0;
	if (h->flags & ND_FLAG_RETRY) {
		s->stats.repairs++;
		return 0;
	}
	if (ss->nbd_conns ||
	    layer_own_data(ss->own, lba * ND_SECTOR_SIZE, (uint64_t)count * ND_SECTOR_SIZE))
		return 0;
	now = mono_ms();
	go = others_asked(g, who, ss->vnum, lba, count, now, m->window_ms) ||
	     m->mode == MCAST_ALWAYS;
	/* A member that has not joined yet reads by unicast, but what it asks
	 * for counts for the others (auto). */
	if (!go || (h->flags & ND_FLAG_UNICAST))
		return 0;
	/* The cap counts what goes out: a READ whose blocks the group carried
	 * lately costs nothing (32 members asking at once are one send). */
	/* A member keeps blocks for the hold its ATTACH announced: a longer
	 * one since (a reload) must not hold back what it may have dropped. */
	hold = ss->mc_hold_ms && ss->mc_hold_ms < m->resend_ms ? ss->mc_hold_ms : m->resend_ms;
	bytes = send_group(s, g, ss->vnum, lba, count, want, ss->chunk, data, now, hold, 1);
	if (bytes && !bucket_take(s->mc, m->rate_mbit, bytes, now)) {
		s->stats.mc_capped++;
		return 0;
	}
	send_group(s, g, ss->vnum, lba, count, want, ss->chunk, data, now, hold, 0);
	s->stats.mc_reads++;
	return 1;
}

void mcast_stats_text(const struct server *s, char *out, size_t outlen)
{
	size_t used;
	int i;

	used = (size_t)snprintf(out, outlen, "unicast_bytes=%llu multicast_bytes=%llu "
				"multicast_datagrams=%lu multicast_reads=%lu multicast_not_resent=%lu "
				"repairs=%lu multicast_capped=%lu", s->stats.tx_unicast,
				s->stats.tx_multicast, s->stats.tx_mc_datagrams, s->stats.mc_reads,
				s->stats.mc_dedup, s->stats.repairs, s->stats.mc_capped);
	for (i = 0; s->mc && i < s->cfg.nimages && used < outlen; i++) {
		const struct mc_group *g = &s->mc->g[i];
		char a[INET_ADDRSTRLEN];

		addr_text(g->addr, a, sizeof(a));
		used += (size_t)snprintf(out + used, outlen - used, " group_%s=%s:%u,clients=%u,peak=%u",
					 s->cfg.images[i].name, a, s->cfg.mc.port, g->members, g->peak);
	}
}

void mcast_group_text(const struct server *s, const struct session *ss, char *out, size_t outlen)
{
	const struct mc_group *g = group_of(s, ss);
	char a[INET_ADDRSTRLEN];

	if (!g) {
		snprintf(out, outlen, "-");
		return;
	}
	addr_text(g->addr, a, sizeof(a));
	snprintf(out, outlen, "%s:%u", a, s->cfg.mc.port);
}

unsigned mcast_group_members(const struct server *s, int image, unsigned *peak)
{
	const struct mc_group *g = s->mc && image < s->cfg.nimages ? &s->mc->g[image] : NULL;

	*peak = g ? g->peak : 0;
	return g ? g->members : 0;
}
