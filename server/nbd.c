/* SPDX-License-Identifier: GPL-2.0-or-later */
/* NBD (fixed newstyle) over TCP, sharing netdiskd's images, sessions and overlays. */

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>
#include "nbd.h"
#include "nbdproto.h"
#include "ndcommon.h"
#include "trace.h"

/*
 * Export names:
 *   NAME               an image, in the mode the config gives it; the client's
 *                      identity (for overlays and policy) is a MAC made from
 *                      its IPv4 address, 02:4e:a:b:c:d
 *   session:TOKEN      continue an existing session (32 hex digits): how the
 *                      Linux agent takes over the session a firmware stub used
 * Only simple replies are used: the kernel's NBD driver speaks nothing else.
 */

#define MAX_OPTION_LEN 4096
#define MAX_REQUEST (32u << 20) /* largest READ/WRITE accepted */

/*
 * Transmission serves several requests of a connection at once, as nbdkit
 * does.  Up to MAX_WORKERS threads take turns: whoever holds read_lock reads
 * the next request (and its WRITE data), lets go of the lock, then serves the
 * request and replies.  Replies thus go out in any order, as NBD allows (the
 * handle tells the client which is which).  Small READs already in the page
 * cache are served by the reading worker itself: handing the stream to another
 * thread would cost more than they do.  Requests hold their session's io_lock
 * shared (so the session's layers stay open) and never the server lock: a
 * FLUSH's fsync holds up nobody else's reads.  A FLUSH covers every write
 * replied to before it was sent, as each write is in the layer before its reply.
 */
#define MAX_WORKERS 8              /* threads serving one connection */
#define INFLIGHT_BYTES MAX_REQUEST /* request data one connection holds at once, at most */
#define KEEP_BUF (1u << 20)        /* a worker keeps a buffer this big between requests */
#define INLINE_MAX (64u << 10)     /* largest READ served without letting go of read_lock */

/*
 * Limits against clients that hold resources without using them: a handshake
 * must end within nbd-handshake-timeout, a connection with no request for
 * nbd-idle-timeout is closed, and a request's data (or a reply) that makes no
 * progress for nbd-io-timeout ends the connection.  Request data buffered by
 * all connections together stays within nbd-memory: a request waits up to
 * nbd-io-timeout for room, then is refused with ENOMEM.  Requests over
 * SMALL_REQUEST may use only three quarters of it, so that clients holding
 * big half-sent WRITEs cannot starve everybody's small reads.
 */
#define SMALL_REQUEST (1u << 20)

static pthread_mutex_t budget_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t budget_freed = PTHREAD_COND_INITIALIZER;
static size_t budget_used;         /* request data charged by every connection */

struct request {
	uint16_t flags, type;
	uint8_t handle[8];
	uint64_t off;
	uint32_t len;
	uint32_t charge;           /* its share of INFLIGHT_BYTES and of nbd-memory */
	uint32_t refused;          /* an NBD error to answer without doing it, or 0 */
};

struct worker {
	struct conn *c;
	pthread_t thread;
	uint8_t *buf;              /* a request's data, grown as requests need */
	size_t buf_size;
};

struct conn {
	struct server *s;
	int fd;
	char peer[64];
	uint8_t mac[6];            /* identity for export-name attaches */
	int no_zeroes;
	struct session *ss;        /* the session in transmission */
	char wcache[WC_TEXT_MAX + 1]; /* its write-cache setting, copied at open */
	unsigned vnum;             /* the image version it reads ... */
	uint64_t image_id;         /* ... and that version's id, copied at open */
	pthread_mutex_t read_lock; /* the request stream, and what follows up to `done` */
	uint8_t in[4096];          /* requests read ahead: small ones come many to a read() */
	struct nd_readahead ra;    /* ... over in */
	struct worker workers[MAX_WORKERS]; /* [0] is the connection's own thread */
	unsigned nworkers;
	int done;                  /* the stream ended: workers return after their request */
	unsigned waiting;          /* (atomic) workers waiting to read a request */
	int failed;                /* (atomic) a reply failed or the session ended */
	pthread_mutex_t mem_lock;  /* inflight */
	pthread_cond_t mem_freed;
	size_t inflight;           /* bytes charged by the requests being served */
	pthread_mutex_t send_lock; /* one reply at a time on fd */
	struct conn *next_open;    /* in open_conns */
	/* Time limits of reads from fd: set by whoever reads (the handshake, then
	 * the worker holding read_lock). */
	struct io_limit lim;
	char why[160];             /* why the export was refused, for the client */
	struct sockaddr_storage sa; /* the client's address */
	int counted;               /* in the per-address count (addr_conn_take) */
	void *tls;                 /* the TLS session after STARTTLS (tls.c), or NULL */
	char tls_id[160];          /* its client identity: psk:NAME, x509:DN */
};

/* Every connection being served, so that shutdown can end them and wait for
 * their threads before the sessions and layers they use are freed. */
static pthread_mutex_t open_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t all_closed = PTHREAD_COND_INITIALIZER;
static struct conn *open_conns;

/* Room for a request of len bytes in w->buf. */
static int reserve(struct worker *w, size_t len)
{
	return nd_reserve(&w->buf, &w->buf_size, len);
}

static void conn_expect(struct conn *c, const char *what, const char *key, unsigned secs,
			int stall)
{
	io_expect(&c->lim, what, key, secs, stall);
}

/* Wait until fd has input or the current limit runs out (-1, lim.timed_out set). */
static int wait_input(struct conn *c)
{
	if (c->tls && tls_pending(c->tls))
		return 0; /* (bytes TLS decrypted already are not seen by poll) */
	return io_wait(&c->lim, c->fd);
}

/* Some bytes from fd (at most len) within the current limit; how many, or -1
 * at the end of the stream, on an error or when time ran out. */
static ssize_t conn_read_some(struct conn *c, void *buf, size_t len)
{
	for (;;) {
		ssize_t n;

		if (wait_input(c) < 0)
			return -1;
		if (c->tls)
			return (n = tls_recv(c->tls, buf, len)) > 0 ? n : -1;
		n = read(c->fd, buf, len);
		if (n < 0 && errno == EINTR)
			continue;
		return n > 0 ? n : -1;
	}
}

/* All len bytes from fd within the current limit; 0 or -1. */
static int conn_read(struct conn *c, void *buf, size_t len)
{
	while (len) {
		ssize_t n = conn_read_some(c, buf, len);

		if (n < 0)
			return -1;
		buf = (uint8_t *)buf + n;
		len -= (size_t)n;
	}
	return 0;
}

/* All len bytes to the client, through TLS once it is on. */
static int conn_write(struct conn *c, const void *buf, size_t len)
{
	return c->tls ? tls_send_all(c->tls, buf, len) : nd_write_full(c->fd, buf, len);
}

/* Send an option reply with `len` bytes of data. */
static int opt_reply(struct conn *c, uint32_t opt, uint32_t type, const void *data, uint32_t len)
{
	uint8_t h[20];

	nd_put64(h, NBD_REP_MAGIC);
	nd_put32(h + 8, opt);
	nd_put32(h + 12, type);
	nd_put32(h + 16, len);
	return conn_write(c, h, sizeof(h)) || (len && conn_write(c, data, len)) ? -1 : 0;
}

#define PERSONA_WAIT_S 60 /* an NBD client waits this long for its personalization */

/* Find or make the session an export name stands for, under the server lock.
 * Returns an NBD_REP_ERR_* code, or 0 with c->ss set and counted. */
static uint32_t open_export(struct conn *c, const char *name)
{
	struct server *s = c->s;
	struct session *ss;
	uint32_t err = 0;

	pthread_rwlock_wrlock(&s->lock);
	if (s->cfg.nbd_exports == NBD_EXPORTS_OFF) {
		err = NBD_REP_ERR_POLICY;
		ss = NULL;
		snprintf(c->why, sizeof(c->why), "NBD exports are off on this server (nbd-exports)");
	} else if (!strncmp(name, "session:", 8)) {
		int policy;

		ss = session_continue(s, name + 8, &c->sa, &policy, c->why, sizeof(c->why));
		if (!ss)
			err = policy ? NBD_REP_ERR_POLICY : NBD_REP_ERR_UNKNOWN;
	} else if (s->cfg.nbd_exports == NBD_EXPORTS_SESSIONS) {
		err = NBD_REP_ERR_POLICY;
		ss = NULL;
		snprintf(c->why, sizeof(c->why), "only session:TOKEN exports are served "
			 "(nbd-exports = sessions)");
	} else {
		unsigned status = ND_OK;
		int tries, auth;

		if (strlen(name) > ND_IMAGE_NAME_LEN)
			err = NBD_REP_ERR_UNKNOWN;
		/* A TLS client proved a PSK or a certificate the admins gave out:
		 * with admin-key set, that is what direct mode over NBD needs. */
		auth = c->tls ? AUTH_ADMIN : AUTH_NONE;
		ss = err ? NULL : session_attach_nbd(s, c->mac, name, c->peer, auth, &status);
		/* Its personalization layer is being built by a worker: wait for
		 * it without the server lock (other clients go on), then again. */
		for (tries = 0; !ss && status == ND_PERSONA_PENDING && tries < 3; tries++) {
			pthread_rwlock_unlock(&s->lock);
			persona_wait(s, c->mac, PERSONA_WAIT_S);
			pthread_rwlock_wrlock(&s->lock);
			ss = session_attach_nbd(s, c->mac, name, c->peer, auth, &status);
		}
		if (!ss && status == ND_PERSONA_PENDING)
			snprintf(s->refusal, sizeof(s->refusal), "its personalization layer is "
				 "still being built; try again");
		if (!err && !ss)
			err = status == ND_ERR_NOIMAGE ? NBD_REP_ERR_UNKNOWN : NBD_REP_ERR_POLICY;
		if (!ss && s->refusal[0])
			snprintf(c->why, sizeof(c->why), "%s", s->refusal);
	}
	if (ss) {
		ss->nbd_conns++;
		c->ss = ss;
		snprintf(c->wcache, sizeof(c->wcache), "%s", session_write_cache(s, ss));
		c->vnum = ss->vnum;
		c->image_id = session_image_id(ss);
	}
	pthread_rwlock_unlock(&s->lock);
	return err;
}

/* Release the session when the connection ends. */
static void close_export(struct conn *c)
{
	if (c->ss)
		session_conn_put(c->s, c->ss);
	c->ss = NULL;
}

static uint16_t transmission_flags(const struct session *ss)
{
	uint16_t f = NBD_FLAG_HAS_FLAGS | NBD_FLAG_SEND_FLUSH | NBD_FLAG_SEND_FUA |
		     NBD_FLAG_SEND_WRITE_ZEROES | NBD_FLAG_CAN_MULTI_CONN;

	if (ss->mode == ND_MODE_READONLY)
		f |= NBD_FLAG_READ_ONLY;
	if (ss->mode == ND_MODE_DIRECT)
		f |= NBD_FLAG_SEND_TRIM; /* holes can be punched in the image itself */
	return f;
}

static int send_list(struct conn *c)
{
	int i;

	for (i = 0; i < c->s->cfg.nimages; i++) {
		const char *name = c->s->cfg.images[i].name;
		uint8_t data[4 + NAME_MAX_LEN];
		uint32_t n = (uint32_t)strlen(name);

		nd_put32(data, n);
		memcpy(data + 4, name, n);
		if (opt_reply(c, NBD_OPT_LIST, NBD_REP_SERVER, data, 4 + n))
			return -1;
	}
	return opt_reply(c, NBD_OPT_LIST, NBD_REP_ACK, NULL, 0);
}

/* Did the client list `type` among the information requests of INFO/GO? */
static int info_requested(const uint8_t *reqs, unsigned n, uint16_t type)
{
	unsigned i;

	for (i = 0; i < n; i++)
		if (nd_get16(reqs + 2 * i) == type)
			return 1;
	return 0;
}

/* NBD_OPT_INFO and NBD_OPT_GO: 1 when GO succeeded (transmission starts). */
static int info_or_go(struct conn *c, uint32_t opt, const uint8_t *data, uint32_t len)
{
	uint8_t info[14];
	char name[MAX_OPTION_LEN + 1];
	uint32_t nlen, err;
	unsigned nreqs;

	if (len < 6 || (nlen = nd_get32(data)) > len - 6)
		return opt_reply(c, opt, NBD_REP_ERR_INVALID, NULL, 0);
	nreqs = nd_get16(data + 4 + nlen);
	if (len != 6 + nlen + 2 * nreqs)
		return opt_reply(c, opt, NBD_REP_ERR_INVALID, NULL, 0);
	memcpy(name, data + 4, nlen);
	name[nlen] = 0;
	err = open_export(c, name);
	if (err) /* the reason, for clients that show it (nbdinfo does) */
		return opt_reply(c, opt, err, c->why, (uint32_t)strlen(c->why));
	nd_put16(info, NBD_INFO_EXPORT);
	nd_put64(info + 2, c->ss->img->base->size);
	nd_put16(info + 10, transmission_flags(c->ss));
	if (opt_reply(c, opt, NBD_REP_INFO, info, 12))
		return -1;
	if (info_requested(data + 6 + nlen, nreqs, NBD_INFO_BLOCK_SIZE)) {
		nd_put16(info, NBD_INFO_BLOCK_SIZE);
		nd_put32(info + 2, 1);            /* any byte range works */
		nd_put32(info + 6, 4096);         /* the overlay block size */
		nd_put32(info + 10, MAX_REQUEST);
		if (opt_reply(c, opt, NBD_REP_INFO, info, 14))
			return -1;
	}
	if (info_requested(data + 6 + nlen, nreqs, NBD_INFO_ND_WRITE_CACHE) && c->wcache[0]) {
		uint8_t wc[2 + WC_TEXT_MAX];
		uint32_t n = (uint32_t)strlen(c->wcache);

		nd_put16(wc, NBD_INFO_ND_WRITE_CACHE);
		memcpy(wc + 2, c->wcache, n);
		if (opt_reply(c, opt, NBD_REP_INFO, wc, 2 + n))
			return -1;
	}
	if (info_requested(data + 6 + nlen, nreqs, NBD_INFO_ND_IMAGE)) {
		uint8_t im[14 + NAME_MAX_LEN];
		uint32_t n = (uint32_t)strlen(c->ss->img->name);

		nd_put16(im, NBD_INFO_ND_IMAGE);
		nd_put32(im + 2, c->vnum);
		nd_put64(im + 6, c->image_id);
		memcpy(im + 14, c->ss->img->name, n);
		if (opt_reply(c, opt, NBD_REP_INFO, im, 14 + n))
			return -1;
	}
	if (opt_reply(c, opt, NBD_REP_ACK, NULL, 0))
		return -1;
	if (opt == NBD_OPT_GO)
		return 1;
	close_export(c);
	return 0;
}

/* NBD_OPT_EXPORT_NAME: no option reply; the export facts, or a closed connection. */
static int export_name(struct conn *c, const uint8_t *data, uint32_t len)
{
	uint8_t reply[10 + 124] = { 0 };
	char name[MAX_OPTION_LEN + 1];

	memcpy(name, data, len);
	name[len] = 0;
	if (open_export(c, name))
		return -1;
	nd_put64(reply, c->ss->img->base->size);
	nd_put16(reply + 8, transmission_flags(c->ss));
	return conn_write(c, reply, c->no_zeroes ? 10 : sizeof(reply)) ? -1 : 1;
}

/* NBD_OPT_STARTTLS: 0 when TLS is on (or refused by an option reply), -1 if
 * a reply could not be sent, -2 when the TLS handshake failed. */
static int start_tls(struct conn *c, uint32_t len)
{
	char why[200];

	if (!tls_enabled())
		return opt_reply(c, NBD_OPT_STARTTLS, NBD_REP_ERR_UNSUP, NULL, 0);
	if (c->tls || len)
		return opt_reply(c, NBD_OPT_STARTTLS, NBD_REP_ERR_INVALID, NULL, 0);
	if (opt_reply(c, NBD_OPT_STARTTLS, NBD_REP_ACK, NULL, 0))
		return -1;
	c->tls = tls_accept(c->fd, c->s->cfg.nbd_handshake_timeout * 1000, c->tls_id,
			    sizeof(c->tls_id), why, sizeof(why));
	if (!c->tls) {
		snprintf(c->why, sizeof(c->why), "%s", why);
		return -2;
	}
	return 0;
}

/* The handshake: 1 when an export is chosen, -1 to drop the connection. */
static int handshake(struct conn *c)
{
	uint8_t hello[18], cflags[4], opt_hdr[16];
	static __thread uint8_t data[MAX_OPTION_LEN];

	nd_put64(hello, NBD_MAGIC);
	nd_put64(hello + 8, NBD_OPT_MAGIC);
	nd_put16(hello + 16, NBD_FLAG_FIXED_NEWSTYLE | NBD_FLAG_NO_ZEROES);
	if (nd_write_full(c->fd, hello, sizeof(hello)) || conn_read(c, cflags, 4))
		return -1;
	if (!(nd_get32(cflags) & NBD_FLAG_C_FIXED_NEWSTYLE))
		return -1;
	c->no_zeroes = !!(nd_get32(cflags) & NBD_FLAG_C_NO_ZEROES);
	for (;;) {
		uint32_t opt, len;
		int rc;

		if (conn_read(c, opt_hdr, sizeof(opt_hdr)) || nd_get64(opt_hdr) != NBD_OPT_MAGIC)
			return -1;
		opt = nd_get32(opt_hdr + 8);
		len = nd_get32(opt_hdr + 12);
		if (len > MAX_OPTION_LEN)
			return -1; /* nothing sane is this long; do not read it */
		if (conn_read(c, data, len))
			return -1;
		if (!c->tls && c->s->cfg.nbd_tls == NBD_TLS_REQUIRE && opt != NBD_OPT_STARTTLS &&
		    opt != NBD_OPT_ABORT) {
			snprintf(c->why, sizeof(c->why), "TLS is required (nbd-tls = require)");
			if (opt == NBD_OPT_EXPORT_NAME)
				return -1; /* no way to answer it with an error */
			if (opt_reply(c, opt, NBD_REP_ERR_TLS_REQD, c->why, (uint32_t)strlen(c->why)))
				return -1;
			continue;
		}
		switch (opt) {
		case NBD_OPT_STARTTLS:
			rc = start_tls(c, len);
			if (rc == -2)
				return -1;
			break;
		case NBD_OPT_EXPORT_NAME:
			return export_name(c, data, len);
		case NBD_OPT_ABORT:
			opt_reply(c, opt, NBD_REP_ACK, NULL, 0);
			return -1;
		case NBD_OPT_LIST:
			rc = len ? opt_reply(c, opt, NBD_REP_ERR_INVALID, NULL, 0) : send_list(c);
			break;
		case NBD_OPT_INFO:
		case NBD_OPT_GO:
			rc = info_or_go(c, opt, data, len);
			if (rc == 1)
				return 1;
			break;
		default:
			rc = opt_reply(c, opt, NBD_REP_ERR_UNSUP, NULL, 0);
		}
		if (rc < 0)
			return -1;
	}
}

/* One reply, header and data in one go; under send_lock, so replies never interleave. */
static int simple_reply(struct conn *c, const uint8_t *handle, uint32_t error,
			const void *data, uint32_t len)
{
	uint8_t h[16];
	struct iovec iov[2] = { { h, sizeof(h) }, { (void *)data, len } };
	size_t left = sizeof(h) + len;
	int rc = 0;

	nd_put32(h, NBD_SIMPLE_REPLY_MAGIC);
	nd_put32(h + 4, error);
	memcpy(h + 8, handle, 8);
	pthread_mutex_lock(&c->send_lock);
	if (c->tls) {
		rc = tls_send2(c->tls, h, sizeof(h), data, len);
		pthread_mutex_unlock(&c->send_lock);
		return rc;
	}
	while (left) {
		ssize_t n = writev(c->fd, iov, len ? 2 : 1);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			rc = -1;
			break;
		}
		left -= (size_t)n;
		if (left && (size_t)n >= iov[0].iov_len) {
			n -= (ssize_t)iov[0].iov_len;
			iov[0].iov_len = 0;
			iov[1].iov_base = (char *)iov[1].iov_base + n;
			iov[1].iov_len -= (size_t)n;
		} else if (left) {
			iov[0].iov_base = (char *)iov[0].iov_base + n;
			iov[0].iov_len -= (size_t)n;
		}
	}
	pthread_mutex_unlock(&c->send_lock);
	return rc;
}

static uint32_t errno_to_nbd(int err)
{
	switch (err) {
	case -EROFS: case -EPERM: return NBD_EPERM;
	case -ENOSPC: return NBD_ENOSPC;
	case -ENOMEM: return NBD_ENOMEM;
	case -EINVAL: return NBD_EINVAL;
	default: return NBD_EIO;
	}
}

/* Zeros written through the layer stack, so overlays see them as writes. */
static int write_zeroes(struct layer *top, uint64_t off, uint32_t len)
{
	static const uint8_t zeros[65536];

	while (len) {
		uint32_t n = len < sizeof(zeros) ? len : sizeof(zeros);
		int rc = layer_write(top, zeros, n, off);

		if (rc < 0)
			return rc;
		off += n;
		len -= n;
	}
	return 0;
}

/* Does the range lie within the export (and within MAX_REQUEST)? */
static int in_range(const struct conn *c, uint64_t off, uint32_t len)
{
	uint64_t size = c->ss->img->base->size;

	return len <= MAX_REQUEST && off <= size && len <= size - off;
}

/* A READ in the session's boot trace, in whole sectors. */
static void trace_nbd(struct conn *c, const struct request *r)
{
	uint64_t first = r->off / ND_SECTOR_SIZE;

	trace_read(c->s, c->ss, first, (r->off + r->len + ND_SECTOR_SIZE - 1) / ND_SECTOR_SIZE - first,
		   "nbd");
}

/* Stop reading requests: `how` is SHUT_RD to still send the replies under way,
 * SHUT_RDWR when the client cannot be answered any more.  The reader, blocked
 * in read(), sees the end of the stream. */
static void conn_fail(struct conn *c, int how)
{
	__atomic_store_n(&c->failed, 1, __ATOMIC_RELAXED);
	shutdown(c->fd, how);
}

/* Count a request done (under the session's io_lock: the session is alive). */
static void count_request(struct conn *c, const struct request *r, uint32_t error, uint64_t ns)
{
	int op = r->type == NBD_CMD_READ ? MO_READ :
		 r->type == NBD_CMD_WRITE || r->type == NBD_CMD_WRITE_ZEROES ? MO_WRITE :
		 r->type == NBD_CMD_FLUSH ? MO_FLUSH : r->type == NBD_CMD_TRIM ? MO_TRIM : MO_OTHER;
	unsigned status = error == NBD_ENOSPC ? ND_ERR_NOSPACE : error == NBD_EPERM ? ND_ERR_READONLY :
			  error == NBD_EINVAL ? ND_ERR_INVAL : error == NBD_ENOTSUP ? ND_ERR_OPCODE :
			  ND_ERR_IO;

	metrics_request(c->s, c->ss, MT_NBD, op,
			!error && (op == MO_READ || op == MO_WRITE) ? r->len : 0, ns);
	if (error)
		metrics_error(c->s, c->ss, MT_NBD, status);
}

/* Do one request, under its session's io_lock; its NBD error code.  *ended says
 * the session ended under us (the client rebooted). */
static uint32_t do_request(struct conn *c, const struct request *r, uint8_t *buf, int *ended)
{
	struct session *ss = c->ss;
	uint64_t t0 = metrics_now_ns();
	uint32_t error = 0;
	int rc = 0;

	pthread_rwlock_rdlock(&ss->io_lock);
	*ended = ss->ended;
	/* Reads leave last_seen alone (the open connection keeps the session live). */
	if (r->type != NBD_CMD_READ)
		__atomic_store_n(&ss->last_seen, time(NULL), __ATOMIC_RELAXED);
	switch (*ended ? -1 : r->type) {
	case -1:
		error = NBD_EIO;
		break;
	case NBD_CMD_READ:
		if (!in_range(c, r->off, r->len))
			error = NBD_EINVAL;
		else if (trace_nbd(c, r), (rc = layer_read(ss->top, buf, r->len, r->off)) < 0)
			error = errno_to_nbd(rc);
		break;
	case NBD_CMD_WRITE:
	case NBD_CMD_WRITE_ZEROES:
		if (ss->mode == ND_MODE_READONLY)
			error = NBD_EPERM;
		else if (!in_range(c, r->off, r->len))
			error = r->off + r->len > ss->img->base->size ? NBD_ENOSPC : NBD_EINVAL;
		else if ((rc = r->type == NBD_CMD_WRITE ? layer_write(ss->top, buf, r->len, r->off)
						       : write_zeroes(ss->top, r->off, r->len)) < 0 ||
			 ((r->flags & NBD_CMD_FLAG_FUA) && (rc = layer_flush(ss->top)) < 0))
			error = errno_to_nbd(rc);
		break;
	case NBD_CMD_FLUSH:
		if ((rc = layer_flush(ss->top)) < 0)
			error = errno_to_nbd(rc);
		break;
	case NBD_CMD_TRIM:
		if (ss->mode != ND_MODE_DIRECT)
			error = NBD_ENOTSUP;
		else if (!in_range(c, r->off, r->len))
			error = NBD_EINVAL;
		else if ((rc = layer_trim(ss->top, r->off, r->len)) < 0)
			error = errno_to_nbd(rc);
		break;
	default:
		error = NBD_EINVAL;
	}
	if (nd_log_enabled(ND_LOG_DEBUG))
		nd_log(ND_LOG_DEBUG, "nbd request type=%u offset=%llu len=%u image=%s ip=%s error=%u",
		       r->type, (unsigned long long)r->off, r->len, ss->img->name, c->peer, error);
	if (rc < 0) /* only the layer calls set rc: a storage error */
		session_storage_error(ss, r->type == NBD_CMD_READ ? "nbd-read" :
				      r->type == NBD_CMD_FLUSH ? "nbd-flush" :
				      r->type == NBD_CMD_TRIM ? "nbd-trim" : "nbd-write",
				      r->off, r->len, rc);
	count_request(c, r, error, metrics_now_ns() - t0);
	pthread_rwlock_unlock(&ss->io_lock);
	return error;
}

/* Do one request and reply to it.  A reply that cannot be sent, or a session
 * that ended, ends the connection. */
static void serve_request(struct conn *c, const struct request *r, uint8_t *buf)
{
	int ended = 0;
	uint32_t error = r->refused ? r->refused : do_request(c, r, buf, &ended);

	if (simple_reply(c, r->handle, error, buf, r->type == NBD_CMD_READ && !error ? r->len : 0) < 0)
		conn_fail(c, SHUT_RDWR);
	else if (ended)
		conn_fail(c, SHUT_RD);
}

/* len bytes of the request stream, through the read-ahead buffer.  Under read_lock. */
static ssize_t read_some_cb(void *c, void *buf, size_t len)
{
	return conn_read_some(c, buf, len);
}

static int stream_read(struct conn *c, void *dst, size_t len)
{
	return nd_readahead_read(&c->ra, dst, len, read_some_cb, c);
}

/* Hold `charge` bytes of the connection's budget, waiting for other workers to
 * give theirs back: this bounds what one connection makes the server buffer. */
static void charge_conn(struct conn *c, uint32_t charge)
{
	pthread_mutex_lock(&c->mem_lock);
	while (c->inflight && c->inflight + charge > INFLIGHT_BYTES)
		pthread_cond_wait(&c->mem_freed, &c->mem_lock);
	c->inflight += charge;
	pthread_mutex_unlock(&c->mem_lock);
}

static void release_conn(struct conn *c, uint32_t charge)
{
	pthread_mutex_lock(&c->mem_lock);
	c->inflight -= charge;
	pthread_cond_signal(&c->mem_freed);
	pthread_mutex_unlock(&c->mem_lock);
}

/* Then the server-wide budget, nbd-memory: wait up to nbd-io-timeout for room.
 * 0, or -1 (nothing charged) when there was none. */
static int charge_bytes(struct conn *c, uint32_t charge)
{
	size_t total = (size_t)c->s->cfg.nbd_memory_mib << 20;
	size_t limit = charge > SMALL_REQUEST ? total - total / 4 : total;
	struct timespec until;
	int rc = 0, ok;

	charge_conn(c, charge);
	if (!charge)
		return 0;
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += c->s->cfg.nbd_io_timeout;
	pthread_mutex_lock(&budget_lock);
	while (budget_used + charge > limit && rc == 0)
		rc = pthread_cond_timedwait(&budget_freed, &budget_lock, &until);
	ok = budget_used + charge <= limit;
	if (ok)
		budget_used += charge;
	pthread_mutex_unlock(&budget_lock);
	if (!ok)
		release_conn(c, charge);
	return ok ? 0 : -1;
}

static void release_bytes(struct conn *c, uint32_t charge)
{
	if (!charge)
		return;
	pthread_mutex_lock(&budget_lock);
	budget_used -= charge;
	pthread_cond_broadcast(&budget_freed);
	pthread_mutex_unlock(&budget_lock);
	release_conn(c, charge);
}

/* Read and drop len bytes of the stream (a refused WRITE's data). */
static int skip_data(struct conn *c, uint32_t len)
{
	uint8_t junk[16384];

	while (len) {
		uint32_t n = len < sizeof(junk) ? len : (uint32_t)sizeof(junk);

		if (stream_read(c, junk, n))
			return -1;
		len -= n;
	}
	return 0;
}

/* A request found no room in nbd-memory in time: say so (once a second at most). */
static void log_no_room(struct conn *c, const struct request *r)
{
	static int64_t last;
	static unsigned quiet;
	int64_t now = mono_now_ms();

	if (now - __atomic_load_n(&last, __ATOMIC_RELAXED) < 1000) {
		__atomic_add_fetch(&quiet, 1, __ATOMIC_RELAXED);
		return;
	}
	__atomic_store_n(&last, now, __ATOMIC_RELAXED);
	log_msg("nbd request refused ip=%s: %s of %u bytes found no room for %u s in the "
		"server-wide limit on request data (nbd-memory = %u MiB); ENOMEM (and %u more "
		"since the last report)", c->peer, r->type == NBD_CMD_WRITE ? "WRITE" : "READ",
		r->len, c->s->cfg.nbd_io_timeout, c->s->cfg.nbd_memory_mib,
		__atomic_exchange_n(&quiet, 0, __ATOMIC_RELAXED));
}

/* Read one request, and its WRITE data into w->buf.  Under read_lock.  -1 ends
 * the connection: the client left or disconnected, broke the protocol, or we
 * ran out of memory. */
static int read_request(struct conn *c, struct worker *w, struct request *r)
{
	uint8_t h[28];

	conn_expect(c, "a request", "nbd-idle-timeout", c->s->cfg.nbd_idle_timeout, 0);
	if (__atomic_load_n(&c->failed, __ATOMIC_RELAXED) || stream_read(c, h, sizeof(h)) ||
	    nd_get32(h) != NBD_REQUEST_MAGIC)
		return -1;
	conn_expect(c, "request data", "nbd-io-timeout", c->s->cfg.nbd_io_timeout, 1);
	r->flags = nd_get16(h + 4);
	r->type = nd_get16(h + 6);
	memcpy(r->handle, h + 8, 8);
	r->off = nd_get64(h + 16);
	r->len = nd_get32(h + 24);
	if (r->type == NBD_CMD_DISC)
		return -1;
	if (r->type == NBD_CMD_WRITE && r->len > MAX_REQUEST)
		return -1; /* its data cannot be skipped sensibly: drop the client */
	r->charge = r->type == NBD_CMD_WRITE ||
		    (r->type == NBD_CMD_READ && in_range(c, r->off, r->len)) ? r->len : 0;
	r->refused = 0;
	if (charge_bytes(c, r->charge) < 0) {
		log_no_room(c, r);
		r->charge = 0;
		r->refused = NBD_ENOMEM;
		return r->type == NBD_CMD_WRITE ? skip_data(c, r->len) : 0;
	}
	if (reserve(w, r->charge) < 0 ||
	    (r->type == NBD_CMD_WRITE && stream_read(c, w->buf, r->len))) {
		release_bytes(c, r->charge);
		return -1;
	}
	return 0;
}

/* A small READ whose data is all in the page cache: serve it at once,
 * holding read_lock.  0 when it was served. */
static int serve_cached(struct conn *c, struct worker *w, const struct request *r)
{
	uint64_t t0 = metrics_now_ns();
	int rc;

	if (r->type != NBD_CMD_READ || r->refused || r->len > INLINE_MAX ||
	    !in_range(c, r->off, r->len))
		return -1;
	pthread_rwlock_rdlock(&c->ss->io_lock);
	/* An ended session (its layers gone) takes the usual path to its EIO. */
	rc = c->ss->ended ? -1 : layer_read_cached(c->ss->top, w->buf, r->len, r->off);
	if (rc >= 0) {
		trace_nbd(c, r);
		count_request(c, r, 0, metrics_now_ns() - t0);
	}
	pthread_rwlock_unlock(&c->ss->io_lock);
	if (rc < 0)
		return -1;
	if (simple_reply(c, r->handle, 0, w->buf, r->len) < 0)
		conn_fail(c, SHUT_RDWR);
	return 0;
}

/* A request is done: its bytes go back to the budget, and a big buffer to the system. */
static void finish_request(struct conn *c, struct worker *w, const struct request *r)
{
	release_bytes(c, r->charge);
	if (w->buf_size > KEEP_BUF) {
		free(w->buf);
		w->buf = NULL;
		w->buf_size = 0;
	}
}

static void *worker_main(void *arg);

/* No other worker waits to read the next request while this one serves its
 * own: start one more, up to MAX_WORKERS.  Under read_lock. */
static void maybe_add_worker(struct conn *c)
{
	struct worker *w;

	if (c->nworkers == MAX_WORKERS || __atomic_load_n(&c->waiting, __ATOMIC_RELAXED))
		return;
	w = &c->workers[c->nworkers];
	w->c = c;
	if (!pthread_create(&w->thread, NULL, worker_main, w))
		c->nworkers++;
}

/* Take turns reading requests and serve them, until the stream ends. */
static void *worker_main(void *arg)
{
	struct worker *w = arg;
	struct conn *c = w->c;
	struct request r;
	int got;

	for (;;) {
		__atomic_add_fetch(&c->waiting, 1, __ATOMIC_RELAXED);
		pthread_mutex_lock(&c->read_lock);
		__atomic_sub_fetch(&c->waiting, 1, __ATOMIC_RELAXED);
		while ((got = !c->done && read_request(c, w, &r) == 0) && serve_cached(c, w, &r) == 0)
			finish_request(c, w, &r);
		if (got)
			maybe_add_worker(c);
		else
			c->done = 1;
		pthread_mutex_unlock(&c->read_lock);
		if (!got)
			return NULL;
		serve_request(c, &r, w->buf);
		finish_request(c, w, &r);
	}
}

/* Serve requests until the stream ends; every reply is sent (or failed) on return. */
static void transmission(struct conn *c)
{
	unsigned i;

	c->workers[0].c = c;
	c->nworkers = 1;
	worker_main(&c->workers[0]);
	for (i = 1; i < c->nworkers; i++)
		pthread_join(c->workers[i].thread, NULL);
}

static void conn_register(struct conn *c)
{
	pthread_mutex_lock(&open_lock);
	c->next_open = open_conns;
	open_conns = c;
	pthread_mutex_unlock(&open_lock);
}

/* Off the list before its fd is closed: shutdown must never touch a reused fd. */
static void conn_unregister(struct conn *c)
{
	struct conn **p;

	pthread_mutex_lock(&open_lock);
	for (p = &open_conns; *p != c; p = &(*p)->next_open)
		;
	*p = c->next_open;
	if (!open_conns)
		pthread_cond_broadcast(&all_closed);
	pthread_mutex_unlock(&open_lock);
}

static void conn_free(struct conn *c)
{
	unsigned i;

	conn_unregister(c);
	tls_close(c->tls);
	close(c->fd);
	__atomic_sub_fetch(&c->s->nbd_open, 1, __ATOMIC_RELAXED);
	if (c->counted)
		addr_conn_give((const struct sockaddr *)&c->sa);
	for (i = 0; i < MAX_WORKERS; i++)
		free(c->workers[i].buf);
	pthread_mutex_destroy(&c->read_lock);
	pthread_mutex_destroy(&c->mem_lock);
	pthread_cond_destroy(&c->mem_freed);
	pthread_mutex_destroy(&c->send_lock);
	free(c);
}

static void *conn_main(void *arg)
{
	struct conn *c = arg;
	char mac[18];

	conn_expect(c, "the handshake to end", "nbd-handshake-timeout",
		    c->s->cfg.nbd_handshake_timeout, 0);
	if (handshake(c) == 1) {
		nd_mac_format(c->ss->mac, mac);
		log_msg("nbd connect mac=%s ip=%s tls=%s image=%s", mac, c->peer,
			c->tls ? c->tls_id : "no", c->ss->img->name);
		transmission(c);
		log_msg("nbd disconnect mac=%s ip=%s image=%s%s", mac, c->peer, c->ss->img->name,
			c->lim.timed_out ? " (timed out)" : "");
	} else if (c->why[0]) {
		log_msg("nbd export refused ip=%s: %s", c->peer, c->why);
	}
	if (c->lim.timed_out)
		log_msg("nbd connection ip=%s closed: no %s within %u s (%s)", c->peer,
			c->lim.awaiting, c->lim.secs, c->lim.key);
	close_export(c);
	conn_free(c);
	return NULL;
}

/* The identity a plain NBD client gets: 02:4e + its IPv4 address. */
static void peer_mac(const struct sockaddr_storage *sa, uint8_t mac[6])
{
	mac[0] = 0x02;
	mac[1] = 0x4e;
	if (sa->ss_family == AF_INET)
		memcpy(mac + 2, &((const struct sockaddr_in *)sa)->sin_addr, 4);
	else
		memcpy(mac + 2, (const uint8_t *)&((const struct sockaddr_in6 *)sa)->sin6_addr + 12, 4);
}

static struct conn *conn_new(struct server *s, int fd, const struct sockaddr_storage *sa)
{
	struct conn *c = calloc(1, sizeof(*c));
	struct timeval send_limit = { (time_t)s->cfg.nbd_io_timeout, 0 };

	if (!c)
		return NULL;
	c->s = s;
	c->fd = fd;
	c->sa = *sa;
	c->ra.buf = c->in;
	c->ra.cap = sizeof(c->in);
	/* A client that does not take its replies must not hold threads for ever. */
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &send_limit, sizeof(send_limit));
	pthread_mutex_init(&c->read_lock, NULL);
	pthread_mutex_init(&c->mem_lock, NULL);
	pthread_cond_init(&c->mem_freed, NULL);
	pthread_mutex_init(&c->send_lock, NULL);
	__atomic_add_fetch(&s->nbd_open, 1, __ATOMIC_RELAXED);
	format_peer((const struct sockaddr *)sa, c->peer, sizeof(c->peer));
	peer_mac(sa, c->mac);
	conn_register(c);
	return c;
}

void nbd_serve(struct server *s, int fd, const struct sockaddr_storage *sa)
{
	struct conn *c = conn_new(s, fd, sa);

	if (c)
		conn_main(c);
	else
		close(fd);
}

static struct refusals refusals = { "nbd", PTHREAD_MUTEX_INITIALIZER, 0, 0, NULL };

int nbd_accept(struct server *s, int listen_fd)
{
	struct sockaddr_storage sa;
	socklen_t salen = sizeof(sa);
	struct conn *c;
	char peer[64];
	int fd = accept4(listen_fd, (struct sockaddr *)&sa, &salen, SOCK_CLOEXEC), one = 1;

	if (fd < 0)
		return errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM
		       ? errno : 0;
	format_peer((const struct sockaddr *)&sa, peer, sizeof(peer));
	if (!tcp_admit(s, &refusals, __atomic_load_n(&s->nbd_open, __ATOMIC_RELAXED) +
		       __atomic_load_n(&s->iscsi_open, __ATOMIC_RELAXED), &sa, peer)) {
		close(fd);
		return 0;
	}
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	c = conn_new(s, fd, &sa);
	if (!c) {
		addr_conn_give((const struct sockaddr *)&sa);
		close(fd);
		return 0;
	}
	c->counted = 1;
	if (tcp_spawn(conn_main, c)) {
		tcp_refused(&refusals, peer, "cannot start a thread for it");
		conn_free(c);
	}
	return 0;
}

int nbd_shutdown(unsigned wait_s)
{
	struct timespec until;
	struct conn *c;
	int rc = 0;

	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += wait_s;
	pthread_mutex_lock(&open_lock);
	for (c = open_conns; c; c = c->next_open)
		shutdown(c->fd, SHUT_RDWR);
	while (open_conns && rc == 0)
		rc = pthread_cond_timedwait(&all_closed, &open_lock, &until);
	rc = open_conns ? -1 : 0;
	pthread_mutex_unlock(&open_lock);
	return rc;
}

int nbd_listen(const char *listen_addr, char *err, size_t errlen)
{
	int fd = listen_socket(listen_addr, SOCK_STREAM, err, errlen);

	if (fd >= 0 && listen(fd, 64) < 0) {
		snprintf(err, errlen, "cannot listen for NBD on %s: %s", listen_addr, strerror(errno));
		close(fd);
		return -1;
	}
	return fd;
}
