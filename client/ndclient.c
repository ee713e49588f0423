/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Portable netdisk client core: sessions, windowed reads, retransmission (freestanding). */

#include "ndclient.h"
#include "sha256.h"
#include "netdisk/boottable.h"

/* The environment provides these, as every freestanding C environment must. */
void *memcpy(void *dst, const void *src, size_t n);
void *memset(void *dst, int c, size_t n);

#define ND_RETRY_REPORT_MS 1000 /* report ND_EV_RETRY once the server is silent this long */

/* The multicast group cache (client/group.h) is built in with -DND_GROUP
 * (the host builds); without it none of its code is compiled here, and
 * group datagrams are ignored like any datagram that answers nothing. */
#ifdef ND_GROUP
#define GROUPS 1
#else
#define GROUPS 0
#endif
#define GROUP_ON(c) (GROUPS && (c)->gh)
#define ND_GROUP_RTO_MIN_MS 200 /* the least RTO of a group member (rto()) */

void nd_client_init(struct nd_client *c, const struct nd_transport *tp,
		    uint8_t *txbuf, uint8_t *rxbuf, uint16_t bufsize)
{
	memset(c, 0, sizeof(*c));
	c->tp = *tp;
	c->txbuf = txbuf;
	c->rxbuf = rxbuf;
	c->cfg.max_dgram = bufsize;
	c->cfg.window = 16;
	c->cfg.rto_min_ms = 50;
	c->cfg.rto_max_ms = 2000;
	c->cfg.give_up_ms = 15000;
	c->next_id = 1;
}

static uint32_t now(struct nd_client *c)
{
	return c->tp.now_ms(c->tp.ctx);
}

static void report(struct nd_client *c, int event, uint32_t arg)
{
	if (c->cfg.event)
		c->cfg.event(c->cfg.event_ctx, event, arg);
}

/* The retransmission timeout from the smoothed round-trip time. */
static uint32_t rto(struct nd_client *c)
{
	uint32_t t = c->srtt_ms ? c->srtt_ms + 4 * c->rttvar_ms : 250;

	if (t < c->cfg.rto_min_ms)
		t = c->cfg.rto_min_ms;
	/* A group member's reads are mostly answered by the group, whose
	 * datagrams give no RTT sample and come as fast as the slowest
	 * sender of the storm: an RTO learnt from unicast replies (a few ms)
	 * turned most of them into unicast repairs of data already on its way. */
	if (GROUP_ON(c) && t < ND_GROUP_RTO_MIN_MS)
		t = ND_GROUP_RTO_MIN_MS;
	if (t > c->cfg.rto_max_ms)
		t = c->cfg.rto_max_ms;
	return t;
}

static uint32_t backoff(struct nd_client *c, uint32_t t)
{
	t *= 2;
	return t > c->cfg.rto_max_ms ? c->cfg.rto_max_ms : t;
}

/* Fold one round-trip sample into srtt/rttvar (only from requests never resent). */
static void rtt_sample(struct nd_client *c, uint32_t sample)
{
	uint32_t err;

	if (!c->srtt_ms) {
		c->srtt_ms = sample ? sample : 1;
		c->rttvar_ms = sample / 2;
		return;
	}
	err = sample > c->srtt_ms ? sample - c->srtt_ms : c->srtt_ms - sample;
	c->rttvar_ms = (3 * c->rttvar_ms + err) / 4;
	c->srtt_ms = (7 * c->srtt_ms + sample) / 8;
	if (!c->srtt_ms)
		c->srtt_ms = 1;
}

/* Progress after silence: tell the environment the server is back. */
static void progress(struct nd_client *c)
{
	if (c->retrying) {
		c->retrying = 0;
		report(c, ND_EV_RECOVERED, 0);
	}
}

/* Silence: report it once it lasts, and say whether it is time to give up. */
static int silent_too_long(struct nd_client *c, uint32_t since)
{
	uint32_t waited = now(c) - since;

	if (waited >= ND_RETRY_REPORT_MS) {
		c->retrying = 1;
		report(c, ND_EV_RETRY, waited);
	}
	return c->cfg.give_up_ms && waited >= c->cfg.give_up_ms;
}

/* Build a request header in txbuf. */
static void put_header(struct nd_client *c, uint8_t op, uint32_t id, uint64_t lba,
		       uint32_t count, uint32_t offset, uint16_t data_len)
{
	struct nd_hdr *h = (struct nd_hdr *)c->txbuf;

	memset(h, 0, sizeof(*h));
	nd_put32(h->magic, ND_MAGIC);
	h->version = ND_VERSION;
	h->opcode = op;
	nd_put32(h->req_id, id);
	nd_put16(h->data_len, data_len);
	memcpy(h->token, c->token, sizeof(h->token));
	nd_put64(h->lba, lba);
	nd_put32(h->count, count);
	nd_put32(h->offset, offset);
}

static int send_tx(struct nd_client *c, unsigned len)
{
	return c->tp.send(c->tp.ctx, c->txbuf, len) < 0 ? ND_E_TRANSPORT : ND_DONE;
}

static int same_token(const uint8_t *a, const uint8_t *b)
{
	unsigned i;

	for (i = 0; i < 16; i++)
		if (a[i] != b[i])
			return 0;
	return 1;
}

/* Is rxbuf (len bytes) a well-formed reply with opcode `op` for this session?
 * Returns the payload length, or -1 for anything else. */
static int valid_reply(struct nd_client *c, int len, uint8_t op)
{
	const struct nd_hdr *h = (const struct nd_hdr *)c->rxbuf;
	uint16_t data_len;

	if (len < ND_HDR_SIZE || nd_get32(h->magic) != ND_MAGIC)
		return -1;
	if (!(h->flags & ND_FLAG_REPLY) || h->opcode != op)
		return -1;
	data_len = nd_get16(h->data_len);
	if ((unsigned)len != ND_HDR_SIZE + (unsigned)data_len)
		return -1;
	if (op != ND_OP_ATTACH && !same_token(h->token, c->token))
		return -1;
	return data_len;
}

static uint32_t reply_id(struct nd_client *c)
{
	return nd_get32(((const struct nd_hdr *)c->rxbuf)->req_id);
}

/* A datagram sent to the multicast group (ND_FLAG_MCAST), never a reply to
 * a request of ours? */
static int is_group(struct nd_client *c, int len)
{
	return len >= ND_HDR_SIZE && (((const struct nd_hdr *)c->rxbuf)->flags & ND_FLAG_MCAST);
}

/* Sends a request again: one datagram for most opcodes, a burst for WRITE. */
typedef int (*send_fn)(struct nd_client *c, void *arg);

/*
 * Send a request and wait for its single reply, retransmitting with backoff.
 * Leaves the reply in rxbuf and returns its payload length, or a negative
 * nd_result.  An error status in the reply is ND_E_STATUS (see last_status).
 */
static int exchange(struct nd_client *c, uint8_t op, uint32_t id, send_fn send, void *arg)
{
	uint32_t start = now(c), sent, wait = rto(c);
	int resent = 0, len, plen, rc;

	/* Reads requested ahead predate this request (a WRITE, say). */
	memset(c->slot, 0, sizeof(c->slot));
	for (;;) {
		rc = send(c, arg);
		if (rc < 0)
			return rc;
		sent = now(c);
		for (;;) {
			uint32_t waited = now(c) - sent;

			if (waited >= wait)
				break;
			len = c->tp.recv(c->tp.ctx, c->rxbuf, c->dgram ? c->dgram : c->cfg.max_dgram,
					 wait - waited);
			if (len < 0)
				return ND_E_TRANSPORT;
			if (len == 0)
				continue;
			if (GROUP_ON(c) && is_group(c, len)) {
				c->gh->take(c, len);
				continue;
			}
			plen = valid_reply(c, len, op);
			if (plen < 0 || reply_id(c) != id) {
				c->stray++;
				continue;
			}
			if (!resent)
				rtt_sample(c, now(c) - sent);
			progress(c);
			c->last_status = nd_get16(((struct nd_hdr *)c->rxbuf)->status);
			return c->last_status == ND_OK ? plen : ND_E_STATUS;
		}
		if (silent_too_long(c, start))
			return ND_E_TIMEOUT;
		resent = 1;
		c->retransmits++;
		wait = backoff(c, wait);
	}
}

/* A request with no data: header plus an optional small payload. */
struct simple_req {
	uint8_t op;
	uint32_t id;
	const void *payload;
	uint16_t len;
};

static int send_simple(struct nd_client *c, void *arg)
{
	struct simple_req *r = arg;

	put_header(c, r->op, r->id, 0, 0, 0, r->len);
	if (r->len)
		memcpy(c->txbuf + ND_HDR_SIZE, r->payload, r->len);
	return send_tx(c, ND_HDR_SIZE + r->len);
}

static int simple(struct nd_client *c, uint8_t op, const void *payload, uint16_t len)
{
	struct simple_req r = { op, c->next_id++, payload, len };

	return exchange(c, op, r.id, send_simple, &r);
}

/* Copy a NUL-terminated name into a NUL-padded field of `size` bytes. */
static void copy_name(char *dst, const char *src, unsigned size)
{
	unsigned i = 0;

	if (src)
		for (; i < size && src[i]; i++)
			dst[i] = src[i];
	for (; i < size; i++)
		dst[i] = 0;
}

static uint16_t min16(uint16_t a, uint16_t b)
{
	return a < b ? a : b;
}

/* Take what the server granted from an ATTACH or session INFO reply. */
static int take_grant(struct nd_client *c, int plen)
{
	const struct nd_attach_rep *r = (const struct nd_attach_rep *)(c->rxbuf + ND_HDR_SIZE);
	uint16_t dgram, chunk, window;
	uint32_t max_sectors;

	if (plen < (int)sizeof(*r))
		return ND_E_PROTO;
	dgram = nd_get16(r->max_dgram);
	chunk = nd_get16(r->chunk);
	window = nd_get16(r->window);
	max_sectors = nd_get32(r->max_sectors);
	if (nd_get32(r->sector_size) != ND_SECTOR_SIZE || dgram < ND_MIN_DGRAM ||
	    dgram > c->cfg.max_dgram || chunk == 0 || chunk > nd_chunk_for_dgram(dgram) ||
	    window == 0 || max_sectors == 0)
		return ND_E_PROTO;
	c->sectors = nd_get64(r->sectors);
	c->mode = r->mode;
	c->dgram = dgram;
	c->chunk = chunk;
	c->window = min16(window, c->cfg.window);
	c->max_sectors = max_sectors;
	c->handoff = nd_get32(r->handoff);
	if (GROUPS) {
		/* A group is taken only as offered in full: address, port and a
		 * block size the cache can hold. */
		memset(c->mc_addr, 0, sizeof(c->mc_addr));
		c->mc_sectors = nd_get16(r->mcast_sectors);
		c->mc_port = nd_get16(r->mcast_port);
		c->mc_hold_ms = nd_get16(r->mcast_hold);
		memcpy(c->mc_stream, r->mcast_stream, sizeof(c->mc_stream));
		if (nd_get32(r->mcast_addr) && c->mc_port && c->mc_sectors &&
		    c->mc_sectors <= ND_MC_MAX_SECTORS && (c->cfg.caps & ND_CAP_MULTICAST))
			memcpy(c->mc_addr, r->mcast_addr, sizeof(c->mc_addr));
	}
	copy_name(c->image, r->image, ND_IMAGE_NAME_LEN);
	c->image[ND_IMAGE_NAME_LEN] = 0;
	return ND_DONE;
}

/* An ATTACH as sent: the request, then the authenticator or zeros. */
struct attach_req {
	uint32_t id;
	const uint8_t *payload; /* ND_ATTACH_REQ_LEN bytes */
};

/*
 * Send the ATTACH; with a site key, sign it (docs/protocol.md, "Site key"):
 * the header carries the server's challenge in its token field (c->token,
 * zeros before the first AUTH reply) and the padding the HMAC over the
 * header and the request.
 */
static int send_attach(struct nd_client *c, void *arg)
{
	struct attach_req *r = arg;
	uint8_t *p = c->txbuf + ND_HDR_SIZE;

	put_header(c, ND_OP_ATTACH, r->id, 0, 0, 0, ND_ATTACH_REQ_LEN);
	memcpy(p, r->payload, ND_ATTACH_REQ_LEN);
	if (c->cfg.key) {
		struct nd_auth_trailer *t = (struct nd_auth_trailer *)(p + ND_AUTH_OFFSET);

		nd_put32(t->magic, ND_AUTH_MAGIC);
		nd_key_id(c->cfg.key, t->key_id);
		nd_hmac_sha256(c->cfg.key, ND_KEY_LEN, c->txbuf, ND_AUTH_SIGNED, t->hmac);
	}
	return send_tx(c, ND_HDR_SIZE + ND_ATTACH_REQ_LEN);
}

void nd_key_id(const uint8_t key[ND_KEY_LEN], uint8_t id[4])
{
	struct nd_sha256 s;
	uint8_t h[ND_SHA256_LEN];

	nd_sha256_init(&s);
	nd_sha256_update(&s, key, ND_KEY_LEN);
	nd_sha256_final(&s, h);
	memcpy(id, h, 4);
}

/* ATTACHes a keyed client sends at most: with no challenge, then signed
 * over the one each AUTH reply carried.  Two signed rounds, so that a
 * challenge gone stale while replies were lost (or a server restarted in
 * between) costs one more round, not the boot; AUTH to both means a wrong
 * key.  (Comparing the challenges would say so sooner, but netdisk.pxe has
 * no bytes to spare.) */
#define ND_AUTH_ROUNDS 3

int nd_attach(struct nd_client *c, const char *image)
{
	/* Padded with zeros to the reply's size: the server never answers an
	 * unvalidated address with more bytes than it sent (docs/protocol.md). */
	union {
		struct nd_attach_req req;
		uint8_t padded[ND_ATTACH_REQ_LEN];
	} u;
	struct nd_attach_req *req = &u.req;
	struct attach_req r = { 0, u.padded };
	unsigned round;
	int plen = ND_E_STATUS;

	if (c->cfg.max_dgram < ND_MIN_DGRAM)
		return ND_E_ARG;
	memset(&u, 0, sizeof(u));
	memcpy(req->mac, c->cfg.mac, sizeof(req->mac));
	req->client_kind = c->cfg.client_kind;
	nd_put16(req->max_dgram, c->cfg.max_dgram);
	nd_put16(req->window, c->cfg.window);
	nd_put32(req->caps, c->cfg.caps);
	nd_put32(req->nonce, c->cfg.nonce);
	copy_name(req->image, image, ND_IMAGE_NAME_LEN);
	memset(c->token, 0, sizeof(c->token)); /* no challenge yet */
	c->dgram = 0;
	c->writes = 0;
	for (round = 0; round < ND_AUTH_ROUNDS; round++) {
		r.id = c->next_id++;
		plen = exchange(c, ND_OP_ATTACH, r.id, send_attach, &r);
		/* AUTH: sign again with the challenge it carries (keyed clients only). */
		if (plen != ND_E_STATUS || c->last_status != ND_ERR_AUTH || !c->cfg.key)
			break;
		memcpy(c->token, ((struct nd_hdr *)c->rxbuf)->token, sizeof(c->token));
	}
	if (plen < 0) {
		memset(c->token, 0, sizeof(c->token));
		return plen;
	}
	memcpy(c->token, ((struct nd_hdr *)c->rxbuf)->token, sizeof(c->token));
	return take_grant(c, plen);
}

int nd_flush(struct nd_client *c)
{
	int plen = simple(c, ND_OP_FLUSH, 0, 0);

	return plen < 0 ? plen : ND_DONE;
}

int nd_ibft(struct nd_client *c, const struct nd_ibft_req *req)
{
	const uint8_t *t = c->rxbuf + ND_HDR_SIZE;
	uint8_t sum = 0;
	int plen = simple(c, ND_OP_IBFT, req, sizeof(*req)), i;

	if (plen < 0)
		return plen;
	/* A whole table: signature, its length the reply's, sum 0. */
	if (plen < 48 || plen > ND_IBFT_MAX || t[0] != 'i' || t[1] != 'B' || t[2] != 'F' ||
	    t[3] != 'T' || (t[4] | t[5] << 8) != plen || t[6] | t[7])
		return ND_E_PROTO;
	for (i = 0; i < plen; i++)
		sum = (uint8_t)(sum + t[i]);
	return sum ? ND_E_PROTO : plen;
}

int nd_detach(struct nd_client *c)
{
	int plen = simple(c, ND_OP_DETACH, 0, 0);

	memset(c->token, 0, sizeof(c->token));
	return plen < 0 ? plen : ND_DONE;
}

/* Most sectors one READ or WRITE may carry: the server's limit, the chunk
 * mask and (for reads) the flow-control window. */
static uint32_t request_sectors(struct nd_client *c, uint16_t chunks)
{
	uint32_t n = ((uint32_t)chunks * c->chunk) / ND_SECTOR_SIZE;

	if (n > c->max_sectors)
		n = c->max_sectors;
	return n ? n : 1;
}

static int check_range(struct nd_client *c, uint64_t lba, uint32_t count)
{
	if (!c->dgram)
		return ND_E_ARG;
	if (lba > c->sectors || count > c->sectors - lba)
		return ND_E_ARG;
	return ND_DONE;
}

static unsigned popcount64(uint64_t v)
{
	unsigned n = 0;

	for (; v; v &= v - 1)
		n++;
	return n;
}

/* Mask with one bit for each of the first n chunks. */
static uint64_t first_chunks(uint32_t n)
{
	return n >= 64 ? ~(uint64_t)0 : (((uint64_t)1 << n) - 1);
}

static uint32_t chunks_in_flight(struct nd_client *c)
{
	uint32_t n = 0;
	unsigned i;

	for (i = 0; i < ND_MAX_INFLIGHT; i++)
		if (c->slot[i].busy)
			n += popcount64(c->slot[i].missing);
	return n;
}

/* (Re)send a READ for the chunks the slot still misses. */
static int send_read(struct nd_client *c, struct nd_slot *s)
{
	put_header(c, ND_OP_READ, s->id, s->lba, s->count, 0, 8);
	if (s->resent) /* a repair: the server answers it by unicast */
		((struct nd_hdr *)c->txbuf)->flags = ND_FLAG_RETRY;
	else if (GROUPS && c->mc_addr[0] && !c->gh)
		/* Offered a group we have not joined (yet: the datagram-size
		 * probe runs before the environment joins; or not at all): the
		 * group's answer would never reach us. */
		((struct nd_hdr *)c->txbuf)->flags = ND_FLAG_UNICAST;
	nd_put64(c->txbuf + ND_HDR_SIZE, s->missing);
	s->sent_ms = now(c);
	return send_tx(c, ND_HDR_SIZE + 8);
}

static struct nd_slot *find_slot(struct nd_client *c, uint32_t id)
{
	unsigned i;

	for (i = 0; i < ND_MAX_INFLIGHT; i++)
		if (c->slot[i].busy && c->slot[i].id == id)
			return &c->slot[i];
	return 0;
}

static struct nd_slot *free_slot(struct nd_client *c)
{
	unsigned i;

	for (i = 0; i < ND_MAX_INFLIGHT; i++)
		if (!c->slot[i].busy)
			return &c->slot[i];
	return 0;
}

/* Sequential state of one nd_read call. */
struct read_job {
	uint64_t lba;     /* next sector to request */
	uint32_t left;    /* sectors not yet requested */
	uint32_t base;    /* byte offset of the next request within the call */
	uint32_t busy;    /* requests in flight */
	nd_put_fn put;
	void *ctx;
};

/* Take what the group cache holds of a slot's missing chunks: 1 if that
 * completed the slot (no RTT sample: the data did not answer it). */
static int group_fill(struct nd_client *c, struct nd_slot *s, struct read_job *j)
{
	s->missing &= ~c->gh->fill(c, s, j->put, j->ctx);
	if (s->missing)
		return 0;
	s->busy = 0;
	j->busy--;
	return 1;
}

/* A group datagram came during a read: cache it, then complete from the
 * cache what the requests in flight still miss.  1 if that made progress,
 * 2 if it only brought sectors new to the cache, 0 if nothing new. */
static int group_progress(struct nd_client *c, int len, struct read_job *j)
{
	uint64_t before;
	unsigned i;
	int got = 0;

	if (!c->gh->take(c, len))
		return 0;
	for (i = 0; i < ND_MAX_INFLIGHT; i++) {
		struct nd_slot *s = &c->slot[i];

		if (!s->busy || s->ahead)
			continue;
		before = s->missing;
		group_fill(c, s, j);
		got |= s->missing != before || !s->busy;
	}
	return got ? 1 : 2;
}

/* Start as many requests as the window and the slots allow: at least one
 * for a job with none in flight, unless it is read ahead. */
static int issue_reads(struct nd_client *c, struct read_job *j, int ahead)
{
	struct nd_slot *s;

	while (j->left && (s = free_slot(c))) {
		uint32_t inflight = chunks_in_flight(c);
		uint32_t room = c->window > inflight ? c->window - inflight : 0;
		uint32_t n;

		if ((j->busy || ahead) && room == 0)
			break;
		n = request_sectors(c, (uint16_t)(room < ND_MAX_CHUNKS ? room : ND_MAX_CHUNKS));
		if (n > j->left)
			n = j->left;
		s->busy = 1;
		s->resent = 0;
		s->ahead = (uint8_t)ahead;
		s->id = c->next_id++;
		s->lba = j->lba;
		s->count = n;
		s->base = j->base;
		s->missing = first_chunks(nd_chunks_for(n * ND_SECTOR_SIZE, c->chunk));
		s->rto_ms = rto(c);
		j->lba += n;
		j->left -= n;
		j->base += n * ND_SECTOR_SIZE;
		j->busy++;
		/* Ask the server only for what the group cache lacks. */
		if (GROUP_ON(c) && !ahead && group_fill(c, s, j))
			continue;
		if (send_read(c, s) < 0)
			return ND_E_TRANSPORT;
	}
	return ND_DONE;
}

/* Take one datagram from rxbuf: 1 if it was new data, 0 if ignored, or an error. */
static int take_data(struct nd_client *c, int len, struct read_job *j)
{
	const struct nd_hdr *h = (const struct nd_hdr *)c->rxbuf;
	struct nd_slot *s;
	uint32_t off, bytes, expect, idx;
	int plen = valid_reply(c, len, ND_OP_READ);

	s = plen < 0 ? 0 : find_slot(c, reply_id(c));
	if (!s || s->ahead)
		return 0; /* read ahead: nowhere to put it yet, the next read asks again */
	if (nd_get16(h->status) != ND_OK) {
		c->last_status = nd_get16(h->status);
		return ND_E_STATUS;
	}
	off = nd_get32(h->offset);
	bytes = s->count * ND_SECTOR_SIZE;
	if (nd_get64(h->lba) != s->lba || nd_get32(h->count) != s->count ||
	    off >= bytes || off % c->chunk)
		return 0;
	idx = off / c->chunk;
	expect = bytes - off < c->chunk ? bytes - off : c->chunk;
	if ((uint32_t)plen != expect || !(s->missing & ((uint64_t)1 << idx)))
		return 0;
	j->put(j->ctx, s->base + off, c->rxbuf + ND_HDR_SIZE, expect);
	s->missing &= ~((uint64_t)1 << idx);
	if (!s->missing) {
		if (!s->resent)
			rtt_sample(c, now(c) - s->sent_ms);
		s->busy = 0;
		j->busy--;
	}
	return 1;
}

/* Milliseconds until the first request in flight times out. */
static uint32_t next_timeout(struct nd_client *c)
{
	uint32_t t = now(c), wait = c->cfg.rto_max_ms;
	unsigned i;

	for (i = 0; i < ND_MAX_INFLIGHT; i++) {
		struct nd_slot *s = &c->slot[i];
		uint32_t age = t - s->sent_ms;

		if (!s->busy || s->ahead) /* nobody waits for it yet */
			continue;
		if (age >= s->rto_ms)
			return 0;
		if (s->rto_ms - age < wait)
			wait = s->rto_ms - age;
	}
	return wait;
}

/* Re-request what is missing from every request whose timeout expired. */
static int resend_expired(struct nd_client *c, uint32_t last_progress)
{
	uint32_t t = now(c);
	unsigned i;

	for (i = 0; i < ND_MAX_INFLIGHT; i++) {
		struct nd_slot *s = &c->slot[i];

		if (!s->busy || s->ahead || t - s->sent_ms < s->rto_ms)
			continue;
		if (silent_too_long(c, last_progress))
			return ND_E_TIMEOUT;
		s->rto_ms = backoff(c, s->rto_ms);
		s->resent = 1;
		c->retransmits++;
		if (send_read(c, s) < 0)
			return ND_E_TRANSPORT;
	}
	return ND_DONE;
}

/* The slot requested ahead for exactly [lba, lba + at most max), or NULL. */
static struct nd_slot *ahead_at(struct nd_client *c, uint64_t lba, uint32_t max)
{
	unsigned i;

	for (i = 0; i < ND_MAX_INFLIGHT; i++)
		if (c->slot[i].busy && c->slot[i].ahead && c->slot[i].lba == lba &&
		    c->slot[i].count <= max)
			return &c->slot[i];
	return 0;
}

/*
 * Start a read with what was requested ahead from its first sector on, in
 * order, and forget every other slot (read ahead for another place, or
 * left by a failed read).  A taken request's timer starts now: its replies
 * have been waiting for us, not late.
 */
static void take_ahead(struct nd_client *c, struct read_job *j)
{
	struct nd_slot *s;
	uint8_t keep = 0;
	unsigned i;

	while ((s = ahead_at(c, j->lba, j->left))) {
		s->ahead = 0;
		s->base = j->base;
		s->sent_ms = now(c);
		s->resent = 1; /* no RTT sample from it */
		keep |= (uint8_t)(1u << (s - c->slot));
		j->lba += s->count;
		j->left -= s->count;
		j->base += s->count * ND_SECTOR_SIZE;
		j->busy++;
		c->ahead_taken += s->count;
	}
	for (i = 0; i < ND_MAX_INFLIGHT; i++)
		if (!(keep & 1u << i))
			memset(&c->slot[i], 0, sizeof(c->slot[i]));
}

int nd_read(struct nd_client *c, uint64_t lba, uint32_t count, nd_put_fn put, void *ctx)
{
	return nd_read_ahead(c, lba, count, 0, put, ctx);
}

int nd_read_ahead(struct nd_client *c, uint64_t lba, uint32_t count, uint32_t ahead,
		  nd_put_fn put, void *ctx)
{
	struct read_job j = { lba, count, 0, 0, put, ctx };
	struct read_job next = { lba + count, ahead, 0, 0, 0, 0 };
	uint32_t last_progress = now(c), queued = 0;
	int rc = check_range(c, lba, count), useful;

	if (rc != ND_DONE)
		return rc;
	if (ahead && check_range(c, next.lba, ahead) != ND_DONE)
		next.left = 0;
	take_ahead(c, &j);
	while (rc == ND_DONE && (j.left || j.busy)) {
		int len;

		rc = issue_reads(c, &j, 0);
		if (rc == ND_DONE && !j.left)
			rc = issue_reads(c, &next, 1);
		if (rc < 0)
			break;
		if (!j.left && !j.busy)
			break; /* the group cache held it all: nothing to wait for */
		len = c->tp.recv(c->tp.ctx, c->rxbuf, c->dgram, next_timeout(c));
		if (len < 0)
			return ND_E_TRANSPORT;
		useful = 0;
		if (GROUP_ON(c) && is_group(c, len)) {
			useful = group_progress(c, len, &j);
			if (useful == 1) {
				last_progress = now(c);
				progress(c);
			}
		} else if (len > 0) {
			rc = take_data(c, len, &j);
			useful = rc == 1;
			if (rc == 1) {
				last_progress = now(c);
				progress(c);
			} else if (rc == 0) {
				c->stray++;
			}
			if (rc > 0)
				rc = ND_DONE;
		}
		/* While datagrams that bring data wait to be read, requests do
		 * not time out (for up to 64 in a row): a client that was slow
		 * to run finds its answers and its group's datagrams queued, and
		 * must not ask again for what is in them.  Strays, duplicates
		 * and floods do not hold a retransmission back. */
		if (useful && ++queued < 64)
			continue;
		queued = 0;
		if (rc == ND_DONE)
			rc = resend_expired(c, last_progress);
	}
	return rc;
}

/* One WRITE request: its chunks are sent as a burst. */
struct write_req {
	uint32_t id;
	uint64_t lba;
	uint32_t count;
	uint32_t base;   /* byte offset of this request within the nd_write call */
	nd_get_fn get;
	void *ctx;
};

static int send_write(struct nd_client *c, void *arg)
{
	struct write_req *w = arg;
	uint32_t bytes = w->count * ND_SECTOR_SIZE, off;

	for (off = 0; off < bytes; off += c->chunk) {
		uint16_t len = (uint16_t)(bytes - off < c->chunk ? bytes - off : c->chunk);

		put_header(c, ND_OP_WRITE, w->id, w->lba, w->count, off, len);
		w->get(w->ctx, w->base + off, c->txbuf + ND_HDR_SIZE, len);
		if (send_tx(c, ND_HDR_SIZE + len) < 0)
			return ND_E_TRANSPORT;
	}
	return ND_DONE;
}

int nd_write(struct nd_client *c, uint64_t lba, uint32_t count, nd_get_fn get, void *ctx)
{
	struct write_req w = { 0, lba, 0, 0, get, ctx };
	int rc = check_range(c, lba, count);

	if (rc == ND_DONE && GROUP_ON(c))
		c->gh->wrote(c, lba, count);

	while (rc == ND_DONE && count) {
		w.count = request_sectors(c, ND_MAX_CHUNKS);
		if (w.count > count)
			w.count = count;
		w.id = c->next_id++;
		rc = exchange(c, ND_OP_WRITE, w.id, send_write, &w);
		if (rc > 0)
			rc = ND_DONE;
		if (rc == ND_DONE)
			c->writes++;
		w.lba += w.count;
		w.base += w.count * ND_SECTOR_SIZE;
		count -= w.count;
	}
	return rc;
}

/* The caller's get() for one piece of an nd_write_pieces call. */
struct piece_get {
	nd_get_fn get;
	void *ctx;
	uint32_t base; /* byte offset of the piece within the call */
};

static void get_in_piece(void *ctx, uint32_t offset, void *data, unsigned len)
{
	struct piece_get *p = ctx;

	p->get(p->ctx, p->base + offset, data, len);
}

int nd_write_pieces(struct nd_client *c, uint64_t lba, uint32_t count, uint32_t piece,
		    nd_get_fn get, void *ctx)
{
	struct piece_get p = { get, ctx, 0 };
	int rc = ND_DONE;

	if (!piece)
		piece = count;
	while (rc == ND_DONE && count) {
		uint32_t n = count < piece ? count : piece;

		rc = nd_write(c, lba, n, get_in_piece, &p);
		lba += n;
		count -= n;
		p.base += n * ND_SECTOR_SIZE;
	}
	return rc;
}

void nd_boot_table(const struct nd_client *c, uint8_t firmware, const struct nd_netfacts *n,
		   struct nd_boot_table *t)
{
	memset(t, 0, sizeof(*t));
	memcpy(t->signature, ND_BT_SIGNATURE, 4);
	t->length[0] = sizeof(*t); /* little-endian, as ACPI headers are */
	t->revision = ND_BT_REVISION;
	memcpy(t->oem_id, ND_BT_OEM_ID, 6);
	memcpy(t->oem_table_id, ND_BT_OEM_TABLE_ID, 8);
	t->version = ND_BT_VERSION;
	t->firmware = firmware;
	t->mode = c->mode;
	t->flags = c->handoff & ND_HANDOFF_PERSONALIZED ? ND_BT_FLAG_PERSONALIZED : 0;
	nd_put32(t->handoff, c->handoff);
	memcpy(t->mac, n->mac, 6);
	memcpy(t->client_ip, n->ip, 4);
	memcpy(t->netmask, n->netmask, 4);
	memcpy(t->gateway, n->gateway, 4);
	memcpy(t->server_ip, n->server, 4);
	nd_put16(t->udp_port, n->port);
	nd_put16(t->nbd_port, n->port);
	memcpy(t->token, c->token, sizeof(t->token));
	nd_put64(t->sectors, c->sectors);
	memcpy(t->image, c->image, sizeof(t->image));
	nd_bt_seal(t);
}

const char *nd_status_text(unsigned status)
{
	switch (status) {
	case ND_OK: return "ok";
	case ND_ERR_VERSION: return "protocol version not supported";
	case ND_ERR_OPCODE: return "unknown request";
	case ND_ERR_SESSION: return "session unknown or ended";
	case ND_ERR_RANGE: return "sector out of range";
	case ND_ERR_DENIED: return "client not allowed";
	case ND_ERR_BUSY: return "busy (image held by a writer, or server full)";
	case ND_ERR_NOIMAGE: return "no such image";
	case ND_ERR_IO: return "server I/O error";
	case ND_ERR_INVAL: return "malformed request";
	case ND_ERR_READONLY: return "read-only session";
	case ND_ERR_NOSPACE: return "server out of disk space";
	case ND_ERR_AUTH: return "the server wants the site key (none or a wrong one: netdisk patch --key)";
	case ND_ERR_PERSONA: return "the server cannot personalize this client";
	default: return "unknown error";
	}
}

const char *nd_status_reason(struct nd_client *c)
{
	/* rxbuf holds max_dgram >= ND_MIN_DGRAM bytes: room for ": ", 127 and a
	 * NUL, the ": " over the header (read already). */
	char *t = (char *)c->rxbuf + ND_HDR_SIZE - 2, *p = t + 2, *end;
	unsigned n = c->last_status == ND_ERR_PERSONA ?
		     nd_get16(((const struct nd_hdr *)c->rxbuf)->data_len) : 0;

	if (!n)
		return "";
	end = p + (n < 127 ? n : 127);
	t[0] = ':', t[1] = ' ';
	for (; p < end; p++)
		if (*p < 0x20 || *p > 0x7e)
			*p = '?';
	*end = 0;
	return t;
}

const char *nd_result_text(int rc)
{
	switch (rc) {
	case ND_DONE: return "done";
	case ND_E_TIMEOUT: return "no answer from the server";
	case ND_E_TRANSPORT: return "the network transport failed to send";
	case ND_E_PROTO: return "the server's answer made no sense";
	case ND_E_ARG: return "bad arguments";
	case ND_E_STATUS: return "the server answered with an error";
	default: return "unknown result";
	}
}
