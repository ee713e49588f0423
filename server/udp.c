/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The UDP protocol handler: one datagram in, replies out; never trusts a byte. */

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <time.h>
#include "netdiskd.h"
#include "trace.h"

/* Replies to one request, built in place and sent as one batch. */
struct replies {
	struct iovec iov[ND_MAX_CHUNKS][2];
	uint8_t hdr[ND_MAX_CHUNKS][ND_HDR_SIZE];
	unsigned n;
};

void format_peer(const struct sockaddr *sa, char *out, size_t outlen)
{
	char ip[INET6_ADDRSTRLEN] = "?";
	unsigned port = 0;

	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)sa;

		inet_ntop(AF_INET, &in->sin_addr, ip, sizeof(ip));
		port = ntohs(in->sin_port);
	} else if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;

		inet_ntop(AF_INET6, &in6->sin6_addr, ip, sizeof(ip));
		port = ntohs(in6->sin6_port);
	}
	snprintf(out, outlen, "%s:%u", ip, port);
}

/* Add a reply datagram echoing the request header `req`. */
static void add_reply(struct replies *r, const struct nd_hdr *req, unsigned status,
		      const void *data, unsigned len, uint32_t offset)
{
	struct nd_hdr *h = (struct nd_hdr *)r->hdr[r->n];

	memcpy(h, req, sizeof(*h));
	h->version = ND_VERSION;
	h->flags = ND_FLAG_REPLY;
	h->reserved = 0;
	nd_put16(h->status, (uint16_t)status);
	nd_put16(h->data_len, (uint16_t)len);
	nd_put32(h->offset, offset);
	r->iov[r->n][0].iov_base = h;
	r->iov[r->n][0].iov_len = ND_HDR_SIZE;
	r->iov[r->n][1].iov_base = (void *)data;
	r->iov[r->n][1].iov_len = len;
	r->n++;
}

/* Everything a handler needs about the request in hand. */
struct request {
	struct server *s;
	const struct nd_hdr *h;
	const uint8_t *data;   /* payload */
	unsigned data_len;
	const struct sockaddr *from;
	socklen_t fromlen;
	uint8_t payload[sizeof(struct nd_attach_rep)]; /* a reply's small payload */
	uint8_t table[ND_IBFT_MAX]; /* an ND_OP_IBFT reply's payload */
	struct replies out;
	struct session *ss;    /* its session, once found */
	uint64_t moved;        /* bytes it read or wrote (metrics) */
	int again;             /* an ATTACH answered after its layer was built ... */
	int again_auth;        /* ... and what auth_check said of it when it came */
};

static void error_reply(struct request *q, unsigned status)
{
	metrics_error(q->s, q->ss, MT_UDP, status);
	add_reply(&q->out, q->h, status, NULL, 0, 0);
}

/* Fill an attach reply from a session (ATTACH and session INFO). */
static void describe(const struct server *s, struct session *ss, struct nd_attach_rep *r)
{
	memset(r, 0, sizeof(*r));
	nd_put64(r->sectors, ss->img->base->size / ND_SECTOR_SIZE);
	nd_put32(r->sector_size, ND_SECTOR_SIZE);
	r->mode = (uint8_t)ss->mode;
	nd_put16(r->window, ss->window);
	nd_put16(r->chunk, ss->chunk);
	nd_put16(r->max_dgram, ss->dgram);
	nd_put32(r->max_sectors, ss->max_sectors);
	memcpy(r->image, ss->img->name, strnlen(ss->img->name, sizeof(r->image)));
	if (ss->persona)
		nd_put32(r->handoff, ND_HANDOFF_PERSONALIZED |
			 (uint32_t)(ss->persona_id << ND_HANDOFF_LAYER_SHIFT));
	if (s->cfg.iscsi_listen[0] &&
	    takeover_of(&s->cfg, config_client((struct config *)&s->cfg, ss->mac), ss->img) ==
		    TAKEOVER_ISCSI)
		nd_put32(r->handoff, nd_get32(r->handoff) | ND_HANDOFF_ISCSI);
	mcast_describe(s, ss, r);
}

/* Put the reason of an ND_ERR_PERSONA refusal into its reply's payload: at
 * most 127 printable bytes (docs/protocol.md), so never more than the padded
 * ATTACH it answers. */
static void persona_reason(struct request *q, const char *why)
{
	uint8_t *t = q->payload;
	unsigned n = 0;

	for (; why[n] && n < 127 && n < sizeof(q->payload); n++)
		t[n] = why[n] >= 0x20 && why[n] < 0x7f ? (uint8_t)why[n] : '?';
	if (!n)
		return;
	nd_put16(((struct nd_hdr *)q->out.hdr[0])->data_len, (uint16_t)n);
	q->out.iov[0][1].iov_base = t;
	q->out.iov[0][1].iov_len = n;
}

/* Say why short ATTACHes are refused, at most every 10 s (they come in floods). */
static void log_short_attach(struct request *q)
{
	static time_t last;
	time_t now = time(NULL);
	char peer[64];

	if (now - last < 10)
		return;
	last = now;
	format_peer(q->from, peer, sizeof(peer));
	log_msg("attach refused, a request of %u bytes is shorter than the %zu-byte reply "
		"(clients pad ATTACH, docs/protocol.md; %lu so far): ip=%s",
		ND_HDR_SIZE + q->data_len, ND_HDR_SIZE + sizeof(struct nd_attach_rep),
		q->s->stats.short_attach, peer);
}

/* An ATTACH whose layer a worker builds (persona.c), kept to be answered
 * then: the datagram and where it came from. */
struct deferred {
	int auth;              /* AUTH_*: its site-key check, passed when it came */
	struct sockaddr_storage from;
	socklen_t fromlen;
	size_t len;
	uint8_t pkt[];
};

static void handle(struct server *s, const uint8_t *pkt, size_t len, const struct sockaddr *from,
		   socklen_t fromlen, int again, int again_auth);

/* persona.c's worker, under the server lock, once the layer is built: the
 * ATTACH again, which now finds it (or its refusal) and is answered. */
static void attach_again(struct server *s, void *arg)
{
	struct deferred *d = arg;

	handle(s, d->pkt, d->len, (const struct sockaddr *)&d->from, d->fromlen, 1, d->auth);
	free(d);
}

/* Keep the ATTACH for attach_again.  The client retransmits it meanwhile:
 * the latest one from the address of the first is the one answered, and a
 * retransmission after the answer gets the same session (the nonce rule).
 * An ATTACH of the MAC from elsewhere meanwhile is not kept (the first
 * address wins, as without a build: mac-binding); it is answered by the
 * rules of the session table once it comes again after the build. */
static void defer_attach(struct request *q, const struct nd_attach_req *req, int auth)
{
	const struct deferred *old = persona_deferred(q->s, req->mac);
	struct deferred *d;
	char a[64], b[64];

	if (old) {
		format_peer((const struct sockaddr *)&old->from, a, sizeof(a));
		format_peer(q->from, b, sizeof(b));
		if (strcmp(a, b))
			return;
	}
	if (q->fromlen > sizeof(d->from) || !(d = malloc(sizeof(*d) + ND_HDR_SIZE + q->data_len)))
		return; /* the client's retransmission after the build is answered */
	d->auth = auth; /* (its challenge may be stale by the time it is answered) */
	memcpy(&d->from, q->from, q->fromlen);
	d->fromlen = q->fromlen;
	d->len = ND_HDR_SIZE + q->data_len;
	memcpy(d->pkt, q->h, ND_HDR_SIZE);
	memcpy(d->pkt + ND_HDR_SIZE, q->data, q->data_len);
	persona_defer(q->s, req->mac, attach_again, d);
}

/*
 * ATTACH comes from an address nobody has validated yet, so its reply must not
 * be bigger than the request (no amplification): clients pad the request to
 * the reply's size.  A source sending too many is not answered at all.
 */
static void do_attach(struct request *q)
{
	const struct nd_attach_req *req = (const struct nd_attach_req *)q->data;
	struct nd_attach_rep *rep = (struct nd_attach_rep *)q->payload;
	struct session *ss;
	unsigned status = ND_OK;
	int auth = AUTH_NONE;

	if (!q->again && !attach_rate_ok(q->s, q->from))
		return;
	if (q->data_len < sizeof(*req) || nd_get16(req->max_dgram) < ND_MIN_DGRAM) {
		error_reply(q, ND_ERR_INVAL);
		return;
	}
	if (q->data_len < ND_ATTACH_REQ_LEN) {
		q->s->stats.short_attach++;
		log_short_attach(q);
		error_reply(q, ND_ERR_INVAL);
		return;
	}
	if (q->again) {
		auth = q->again_auth; /* checked when it first came */
	} else if (q->s->auth) {
		uint8_t challenge[16];
		const char *why;

		auth = auth_check(q->s, (const uint8_t *)q->h, q->from, challenge, &why);
		if (auth < 0 || (auth == AUTH_NONE && auth_site_required(q->s))) {
			/* AUTH, header-only, its token the challenge to sign: a keyed
			 * client signs again; anyone else is refused (and counted). */
			if (auth != -2) {
				q->s->stats.auth_refused++;
				auth_log_refusal(q->s, q->from, req->mac, why);
			}
			error_reply(q, ND_ERR_AUTH);
			memcpy(((struct nd_hdr *)q->out.hdr[0])->token, challenge, 16);
			return;
		}
	}
	ss = session_attach(q->s, req, q->from, q->fromlen, auth, &status);
	if (!ss && status == ND_PERSONA_PENDING) {
		defer_attach(q, req, auth);
		return; /* no reply yet: it comes when the layer is built */
	}
	if (!ss) {
		error_reply(q, status);
		if (status == ND_ERR_PERSONA) /* the reason (no longer than the padded request) */
			persona_reason(q, q->s->refusal);
		return;
	}
	mcast_join(q->s, ss, req);
	describe(q->s, ss, rep);
	add_reply(&q->out, q->h, ND_OK, rep, sizeof(*rep), 0);
	memcpy(((struct nd_hdr *)q->out.hdr[0])->token, ss->token, 16);
}

static void do_info(struct request *q, struct session *ss)
{
	struct nd_attach_rep *rep = (struct nd_attach_rep *)q->payload;
	struct nd_server_info *info = (struct nd_server_info *)q->payload;

	if (ss) {
		describe(q->s, ss, rep);
		add_reply(&q->out, q->h, ND_OK, rep, sizeof(*rep), 0);
		return;
	}
	if (q->data_len < sizeof(*info)) { /* no session: as ATTACH, no reply bigger than its request */
		error_reply(q, ND_ERR_INVAL);
		return;
	}
	memset(info, 0, sizeof(*info));
	info->version_min = ND_VERSION;
	info->version_max = ND_VERSION;
	nd_put32(info->sessions, q->s->nsessions);
	snprintf(info->server, sizeof(info->server), "netdiskd %d", ND_VERSION);
	add_reply(&q->out, q->h, ND_OK, info, sizeof(*info), 0);
}

/* ND_OP_IBFT: the session's iBFT, built from the stub's NIC facts, for a
 * session whose takeover is iscsi.  Served, like READ, only to the
 * session's own address, in one datagram within its negotiated size. */
static void do_ibft(struct request *q, struct session *ss)
{
	struct nd_ibft_req req;
	char why[160], mac[ND_MAC_STRLEN + 1];
	int n;

	nd_mac_format(ss->mac, mac);
	if (q->data_len < sizeof(req)) {
		error_reply(q, ND_ERR_INVAL);
		return;
	}
	memcpy(&req, q->data, sizeof(req));
	n = ibft_for_session(q->s, ss, &req, q->table, sizeof(q->table), why, sizeof(why));
	if (n >= 0 && (unsigned)n + ND_HDR_SIZE > ss->dgram) {
		snprintf(why, sizeof(why), "the %d-byte iBFT exceeds the session's %u-byte datagrams",
			 n, ss->dgram);
		n = -1;
	}
	if (n < 0) {
		log_msg("ibft refused: %s: mac=%s session=%08x", why, mac,
			nd_token_fingerprint(ss->token));
		error_reply(q, ND_ERR_DENIED);
		return;
	}
	log_msg("ibft sent: %d bytes, mac=%s session=%08x", n, mac, nd_token_fingerprint(ss->token));
	add_reply(&q->out, q->h, ND_OK, q->table, (unsigned)n, 0);
}

/* Is [lba, lba+count) inside the image and within the session's limits? */
static int in_range(const struct session *ss, uint64_t lba, uint32_t count)
{
	uint64_t sectors = ss->img->base->size / ND_SECTOR_SIZE;

	return count > 0 && count <= ss->max_sectors && lba < sectors && count <= sectors - lba;
}

static void do_read(struct request *q, struct session *ss)
{
	uint64_t lba = nd_get64(q->h->lba), want = ~(uint64_t)0;
	uint32_t count = nd_get32(q->h->count), bytes, off;
	unsigned i;
	int rc;

	if (!in_range(ss, lba, count)) {
		error_reply(q, ND_ERR_RANGE);
		return;
	}
	if (q->data_len >= 8)
		want = nd_get64(q->data);
	bytes = count * ND_SECTOR_SIZE;
	if (q->h->flags & ND_FLAG_RETRY)
		metrics_retransmit(ss);
	trace_read(q->s, ss, lba, count, "udp");
	if ((rc = layer_read(ss->top, q->s->iobuf, bytes, lba * ND_SECTOR_SIZE)) < 0) {
		session_storage_error(ss, "read", lba * ND_SECTOR_SIZE, bytes, rc);
		error_reply(q, ND_ERR_IO);
		return;
	}
	q->moved = bytes;
	if (mcast_read(q->s, ss, q->h, want, q->s->iobuf))
		return; /* its data went to the group: the client takes it from there */
	for (i = 0, off = 0; off < bytes; i++, off += ss->chunk) {
		uint32_t len = bytes - off < ss->chunk ? bytes - off : ss->chunk;

		if (want & ((uint64_t)1 << i))
			add_reply(&q->out, q->h, ND_OK, q->s->iobuf + off, len, off);
	}
}

/* The status for a failed write or flush (-errno): out of space has its own. */
static unsigned write_status(int rc)
{
	return rc == -ENOSPC || rc == -EDQUOT ? ND_ERR_NOSPACE : ND_ERR_IO;
}

/*
 * WRITE fragments.  Request ids grow per session and a client has one WRITE
 * outstanding, so: fragments of the current id apply (idempotently), a newer
 * id starts a new write, an older id is a delayed duplicate and is dropped.
 */
static void do_write(struct request *q, struct session *ss)
{
	const struct nd_hdr *h = q->h;
	uint64_t lba = nd_get64(h->lba);
	uint32_t id = nd_get32(h->req_id), count = nd_get32(h->count), off = nd_get32(h->offset);
	uint32_t bytes = count * ND_SECTOR_SIZE, idx, nchunks;
	uint64_t bit;
	int rc;

	if (!in_range(ss, lba, count)) {
		error_reply(q, ND_ERR_RANGE);
		return;
	}
	if (ss->mode == ND_MODE_READONLY) {
		error_reply(q, ND_ERR_READONLY);
		return;
	}
	if (off >= bytes || off % ss->chunk ||
	    q->data_len != (bytes - off < ss->chunk ? bytes - off : ss->chunk)) {
		error_reply(q, ND_ERR_INVAL);
		return;
	}
	if (ss->write_valid && nd_id_newer(ss->write_id, id)) {
		q->s->stats.stale_writes++;
		return;
	}
	if (!ss->write_valid || id != ss->write_id) {
		ss->write_valid = 1;
		ss->write_done = 0;
		ss->write_id = id;
		ss->write_lba = lba;
		ss->write_count = count;
		ss->write_got = 0;
	} else if (ss->write_lba != lba || ss->write_count != count) {
		error_reply(q, ND_ERR_INVAL);
		return;
	}
	idx = off / ss->chunk;
	bit = (uint64_t)1 << idx;
	nchunks = nd_chunks_for(bytes, ss->chunk);
	if (ss->write_done) {
		metrics_retransmit(ss);
		if (idx == 0) /* the client resent the whole write: ack it again */
			add_reply(&q->out, h, ND_OK, NULL, 0, 0);
		return;
	}
	if (!(ss->write_got & bit)) {
		if ((rc = layer_write(ss->top, q->data, q->data_len, lba * ND_SECTOR_SIZE + off)) < 0) {
			session_storage_error(ss, "write", lba * ND_SECTOR_SIZE + off, q->data_len, rc);
			ss->write_valid = 0;
			error_reply(q, write_status(rc));
			return;
		}
		ss->write_got |= bit;
		q->moved = q->data_len;
	} else {
		metrics_retransmit(ss); /* a fragment it had already */
	}
	if (ss->write_got == (nchunks >= 64 ? ~(uint64_t)0 : ((uint64_t)1 << nchunks) - 1)) {
		ss->write_done = 1;
		add_reply(&q->out, h, ND_OK, NULL, 0, 0);
	}
}

static void do_flush(struct request *q, struct session *ss)
{
	int rc = layer_flush(ss->top);

	if (rc < 0) {
		session_storage_error(ss, "flush", 0, 0, rc);
		error_reply(q, write_status(rc));
	} else {
		add_reply(&q->out, q->h, ND_OK, NULL, 0, 0);
	}
}

static int zero_token(const uint8_t *t)
{
	unsigned i;

	for (i = 0; i < 16; i++)
		if (t[i])
			return 0;
	return 1;
}

/* Say once per session that its token came from elsewhere (a client that
 * moved must attach again; anything else is somebody else's doing). */
static void log_wrong_peer(struct session *ss, const struct sockaddr *from)
{
	char peer[64], mac[18];

	if (ss->wrong_peer_logged)
		return;
	ss->wrong_peer_logged = 1;
	format_peer(from, peer, sizeof(peer));
	nd_mac_format(ss->mac, mac);
	log_msg("request refused, the session is served only to %s, where it attached; "
		"answered SESSION (not logged again for this session): ip=%s session=%08x mac=%s",
		ss->addrlen ? ss->peer : "its NBD connections", peer,
		nd_token_fingerprint(ss->token), mac);
}

/* Requests that need a session. */
static void dispatch_session(struct request *q, struct session *ss)
{
	uint64_t t0 = metrics_now_ns();
	int op = q->h->opcode == ND_OP_READ ? MO_READ : q->h->opcode == ND_OP_WRITE ? MO_WRITE
		 : q->h->opcode == ND_OP_FLUSH ? MO_FLUSH : MO_OTHER;

	q->ss = ss;
	__atomic_store_n(&ss->last_seen, time(NULL), __ATOMIC_RELAXED);
	ss->used = 1;
	if (nd_log_enabled(ND_LOG_DEBUG))
		nd_log(ND_LOG_DEBUG, "request op=%u id=%u image=%s ip=%s len=%u", q->h->opcode,
		       nd_get32(q->h->req_id), ss->img->name, ss->peer, q->data_len);
	switch (q->h->opcode) {
	case ND_OP_INFO:
		do_info(q, ss);
		break;
	case ND_OP_READ:
		do_read(q, ss);
		break;
	case ND_OP_WRITE:
		do_write(q, ss);
		break;
	case ND_OP_FLUSH:
		do_flush(q, ss);
		break;
	case ND_OP_IBFT:
		do_ibft(q, ss);
		break;
	case ND_OP_DETACH:
		add_reply(&q->out, q->h, ND_OK, NULL, 0, 0);
		metrics_request(q->s, NULL, MT_UDP, MO_OTHER, 0, metrics_now_ns() - t0);
		session_end(q->s, ss, "detached");
		return; /* ss is gone */
	}
	metrics_request(q->s, ss, MT_UDP, op, q->moved, metrics_now_ns() - t0);
}

void handle_datagram(struct server *s, const uint8_t *pkt, size_t len,
		     const struct sockaddr *from, socklen_t fromlen)
{
	s->stats.datagrams++;
	handle(s, pkt, len, from, fromlen, 0, 0);
}

static void handle(struct server *s, const uint8_t *pkt, size_t len, const struct sockaddr *from,
		   socklen_t fromlen, int again, int again_auth)
{
	struct request q;
	struct session *ss;

	q.h = (const struct nd_hdr *)pkt;
	if (len < ND_HDR_SIZE || nd_get32(q.h->magic) != ND_MAGIC || (q.h->flags & ND_FLAG_REPLY) ||
	    ND_HDR_SIZE + (size_t)nd_get16(q.h->data_len) != len) {
		s->stats.malformed++;
		return;
	}
	q.s = s;
	q.data = pkt + ND_HDR_SIZE;
	q.data_len = nd_get16(q.h->data_len);
	q.from = from;
	q.fromlen = fromlen;
	q.out.n = 0;
	q.ss = NULL;
	q.moved = 0;
	q.again = again;
	q.again_auth = again_auth;
	if (q.h->version != ND_VERSION) {
		error_reply(&q, ND_ERR_VERSION);
	} else if (q.h->opcode == ND_OP_ATTACH) {
		do_attach(&q);
	} else if (q.h->opcode == ND_OP_INFO && zero_token(q.h->token)) {
		do_info(&q, NULL);
	} else if (q.h->opcode < ND_OP_DETACH || q.h->opcode > ND_OP_IBFT) {
		error_reply(&q, ND_ERR_OPCODE);
	} else if (!(ss = session_find(s, q.h->token))) {
		s->stats.bad_session++;
		error_reply(&q, ND_ERR_SESSION);
	} else if (!session_from_peer(ss, from, fromlen)) {
		/* A session answers only where it attached from: anything else gets
		 * the header-only SESSION error (never more than it sent), so a
		 * token cannot aim replies at a third party. */
		s->stats.wrong_peer++;
		log_wrong_peer(ss, from);
		error_reply(&q, ND_ERR_SESSION);
	} else {
		dispatch_session(&q, ss);
	}
	if (q.out.n) {
		unsigned i;

		for (i = 0; i < q.out.n; i++)
			s->stats.tx_unicast += q.out.iov[i][0].iov_len + q.out.iov[i][1].iov_len;
		s->send(s, q.out.iov, q.out.n, from, fromlen);
	}
}
