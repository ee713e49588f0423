/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The iSCSI target (RFC 7143) over netdiskd's sessions: the iscsi-listen
 * socket and its accept thread, a thread per connection (as NBD has, under
 * the same limits: max-sessions, nbd-per-address, nbd-connect-rate, and the
 * nbd-*-timeout keys), PDU framing with optional CRC32C digests, and the full
 * feature phase: SCSI commands with immediate, unsolicited and R2T-solicited
 * data, Data-In with status, NOP, task management, logout.  Login and text
 * negotiation are iscsi_login.c's, the SCSI device iscsi_scsi.c's.
 *
 * A connection serves its PDUs in order on its own thread; a WRITE waiting for
 * its data does not hold up other commands (it waits in c->tasks).  One
 * connection per session (MaxConnections=1), ErrorRecoveryLevel 0: any
 * protocol error ends the connection, and the initiator logs in again.
 */

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>
#include "netdiskd.h"
#include "iscsi_conn.h"

static pthread_t accept_thread;
static volatile int accept_stop;
static pthread_mutex_t open_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t all_closed = PTHREAD_COND_INITIALIZER;
static struct iconn *open_conns;
static size_t write_bytes; /* WRITE data all connections hold (atomic): within nbd-memory */

/* ---- CRC32C ---- */

static uint32_t crc_table[256];
static pthread_once_t crc_once = PTHREAD_ONCE_INIT;

static void crc_init(void)
{
	for (uint32_t i = 0; i < 256; i++) {
		uint32_t c = i;

		for (int k = 0; k < 8; k++)
			c = c & 1 ? (c >> 1) ^ 0x82f63b78u : c >> 1;
		crc_table[i] = c;
	}
}

#if defined(__x86_64__)
__attribute__((target("sse4.2"))) static uint32_t crc_hw(uint32_t crc, const uint8_t *p, size_t len)
{
	uint64_t c = crc;

	for (; len >= 8; p += 8, len -= 8) {
		uint64_t v;

		memcpy(&v, p, 8);
		c = __builtin_ia32_crc32di(c, v);
	}
	crc = (uint32_t)c;
	while (len--)
		crc = __builtin_ia32_crc32qi(crc, *p++);
	return crc;
}
#endif

uint32_t iscsi_crc32c(uint32_t crc, const void *buf, size_t len)
{
	const uint8_t *p = buf;

	crc = ~crc;
#if defined(__x86_64__)
	if (__builtin_cpu_supports("sse4.2"))
		return ~crc_hw(crc, p, len);
#endif
	pthread_once(&crc_once, crc_init);
	while (len--)
		crc = crc_table[(crc ^ *p++) & 0xff] ^ (crc >> 8);
	return ~crc;
}

/* Digests go on the wire least significant byte first (as Linux and libiscsi do). */
static void put_digest(uint8_t *p, uint32_t crc)
{
	p[0] = (uint8_t)crc;
	p[1] = (uint8_t)(crc >> 8);
	p[2] = (uint8_t)(crc >> 16);
	p[3] = (uint8_t)(crc >> 24);
}

static uint32_t get_digest(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* ---- names ---- */

int iscsi_name_check(const char *name, int prefix)
{
	size_t n = strlen(name), i;

	if (n < 5 || n > 223 || (strncasecmp(name, "iqn.", 4) && strncasecmp(name, "eui.", 4) &&
				 strncasecmp(name, "naa.", 4)))
		return -1;
	for (i = 0; i < n; i++) {
		char ch = name[i];

		if (prefix ? !((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
			       strchr(".-:", ch))
			   : (ch <= ' ' || ch >= 0x7f || strchr(",=", ch)))
			return -1;
	}
	return prefix && name[n - 1] == ':' ? -1 : 0;
}

/* ---- reading and sending PDUs ---- */

static void expect(struct iconn *c, const char *what, const char *key, unsigned secs, int stall)
{
	io_expect(&c->lim, what, key, secs, stall);
}

/* Sends what replies were held back: setting TCP_NODELAY again pushes the
 * socket's pending bytes out at once (tcp(7)). */
static void uncork(struct iconn *c)
{
	int one = 1;

	if (!c->corked)
		return;
	c->corked = 0;
	setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

/* Some bytes from fd into buf (at most len) within the current limit: how
 * many, or -1 (end, error, time out). */
static ssize_t read_some(void *arg, void *buf, size_t len)
{
	struct iconn *c = arg;

	uncork(c);
	for (;;) {
		ssize_t n;

		if (io_wait(&c->lim, c->fd) < 0)
			return -1;
		n = read(c->fd, buf, len);
		if (n < 0 && errno == EINTR)
			continue;
		return n > 0 ? n : -1;
	}
}

/* All len bytes within the current limit, through the read-ahead buffer; 0,
 * or -1 (end, error, time out). */
static int read_all(struct iconn *c, void *buf, size_t len)
{
	return nd_readahead_read(&c->ra, buf, len, read_some, c);
}

/* Read the next PDU: its header into c->bhs, its data segment into c->data.
 * -1 ends the connection (c->why says why when it was the initiator's fault). */
int iconn_read_pdu(struct iconn *c)
{
	uint8_t ahs[1024], dig[4], pad[4];
	uint32_t ahslen, padded;

	if (read_all(c, c->bhs, BHS_LEN))
		return -1;
	if (c->full_feature) /* (a login keeps its one deadline) */
		expect(c, "the rest of a PDU", "nbd-io-timeout", c->io_s, 1);
	ahslen = c->bhs[4] * 4u;
	c->dlen = (uint32_t)c->bhs[5] << 16 | (uint32_t)c->bhs[6] << 8 | c->bhs[7];
	if (ahslen && read_all(c, ahs, ahslen))
		return -1;
	if (c->hdigest) { /* the digest covers the header and its AHS */
		uint32_t crc = iscsi_crc32c(iscsi_crc32c(0, c->bhs, BHS_LEN), ahs, ahslen);

		if (read_all(c, dig, 4))
			return -1;
		if (crc != get_digest(dig)) {
			snprintf(c->why, sizeof(c->why), "header digest error");
			return -1;
		}
	}
	if (c->dlen > OUR_MAX_RECV) {
		snprintf(c->why, sizeof(c->why), "a data segment of %u bytes, over our "
			 "MaxRecvDataSegmentLength %u", c->dlen, OUR_MAX_RECV);
		return -1;
	}
	padded = (c->dlen + 3) & ~3u;
	if (c->dlen && (read_all(c, c->data, c->dlen) ||
			(padded > c->dlen && read_all(c, pad, padded - c->dlen))))
		return -1;
	if (c->dlen && c->ddigest) { /* over the data and its padding */
		uint32_t crc = iscsi_crc32c(iscsi_crc32c(0, c->data, c->dlen), pad, padded - c->dlen);

		if (read_all(c, dig, 4))
			return -1;
		if (crc != get_digest(dig)) {
			snprintf(c->why, sizeof(c->why), "data digest error");
			return -1;
		}
	}
	return 0;
}

/* Send a PDU: the header (its DataSegmentLength set here) and len bytes of
 * data, padded, with the digests in force.  0 or -1. */
int iconn_send(struct iconn *c, uint8_t *bhs, const void *data, uint32_t len)
{
	static const uint8_t zero[4];
	uint8_t hd[4], dd[4];
	uint32_t pad = (4 - (len & 3)) & 3;
	struct iovec iov[5];
	int n = 0, more;

	bhs[4] = 0;
	bhs[5] = (uint8_t)(len >> 16);
	bhs[6] = (uint8_t)(len >> 8);
	bhs[7] = (uint8_t)len;
	iov[n++] = (struct iovec){ bhs, BHS_LEN };
	if (c->hdigest) {
		put_digest(hd, iscsi_crc32c(0, bhs, BHS_LEN));
		iov[n++] = (struct iovec){ hd, 4 };
	}
	if (len) {
		iov[n++] = (struct iovec){ (void *)data, len };
		if (pad)
			iov[n++] = (struct iovec){ (void *)zero, pad };
		if (c->ddigest) {
			uint32_t crc = iscsi_crc32c(iscsi_crc32c(0, data, len), zero, pad);

			put_digest(dd, crc);
			iov[n++] = (struct iovec){ dd, 4 };
		}
	}
	/* While the initiator's next requests are already read ahead, replies
	 * go with MSG_MORE: the kernel packs them into full segments, and the
	 * last one (nothing read ahead) or the next read (uncork) sends them.
	 * A guest under QEMU takes one interrupt for many replies instead of
	 * one each (bench/vm-iscsi.sh). */
	more = c->ra.end > c->ra.start;
	while (n) {
		struct msghdr msg = { .msg_iov = iov, .msg_iovlen = (size_t)n };
		ssize_t w = sendmsg(c->fd, &msg, MSG_NOSIGNAL | (more ? MSG_MORE : 0));

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		while (n && (size_t)w >= iov[0].iov_len) {
			w -= (ssize_t)iov[0].iov_len;
			memmove(iov, iov + 1, sizeof(iov[0]) * (size_t)--n);
		}
		if (n) {
			iov[0].iov_base = (uint8_t *)iov[0].iov_base + w;
			iov[0].iov_len -= (size_t)w;
		}
	}
	c->corked = more;
	return 0;
}

/* ---- the full feature phase ---- */

void iconn_numbers(struct iconn *c, uint8_t *bhs, int adv)
{
	nd_put32(bhs + 24, adv ? c->statsn++ : c->statsn);
	nd_put32(bhs + 28, c->expcmdsn);
	nd_put32(bhs + 32, c->expcmdsn + CMD_WINDOW - 1);
}

/* Serial number arithmetic (RFC 1982), 32 bits. */
static int sn_lt(uint32_t a, uint32_t b)
{
	return a != b && (int32_t)(a - b) < 0;
}

int iconn_cmdsn(struct iconn *c)
{
	uint32_t sn = nd_get32(c->bhs + 24);

	if (c->bhs[0] & 0x40) /* immediate: outside the order */
		return 1;
	/* Out of the window (a duplicate, or beyond MaxCmdSN): silently ignored. */
	if (sn_lt(sn, c->expcmdsn) || sn_lt(c->expcmdsn + CMD_WINDOW - 1, sn))
		return 0;
	c->expcmdsn = sn + 1;
	return 1;
}

/* Reject a PDU (its header goes back as data); reason per RFC 7143 11.17.1. */
static int send_reject(struct iconn *c, uint8_t reason)
{
	uint8_t h[BHS_LEN] = { OP_REJECT, 0x80, reason }, copy[BHS_LEN];

	memcpy(copy, c->bhs, BHS_LEN);
	nd_put32(h + 16, 0xffffffffu);
	iconn_numbers(c, h, 1);
	return iconn_send(c, h, copy, BHS_LEN);
}

/* The SCSI Response PDU: status, sense data, residuals against the EDTL. */
static int send_response(struct iconn *c, uint32_t itt, const struct scsi_task *t, uint32_t edtl,
			 uint32_t moved)
{
	uint8_t h[BHS_LEN] = { OP_SCSI_RSP, 0x80, 0x00, t->status }, sense[2 + 18];
	uint32_t len = 0;

	if (moved < edtl) {
		h[1] |= 0x02; /* underflow */
		nd_put32(h + 44, edtl - moved);
	} else if (moved > edtl) {
		h[1] |= 0x04; /* overflow */
		nd_put32(h + 44, moved - edtl);
	}
	nd_put32(h + 16, itt);
	iconn_numbers(c, h, 1);
	if (t->status == SAM_CHECK_CONDITION && t->sense_len) {
		nd_put16(sense, (uint16_t)t->sense_len);
		memcpy(sense + 2, t->sense, t->sense_len);
		len = 2 + t->sense_len;
	}
	return iconn_send(c, h, sense, len);
}

/* The command's data in Data-In PDUs of at most the initiator's
 * MaxRecvDataSegmentLength, in sequences of MaxBurstLength, the status in the
 * last one.  A READ longer than the buffer (t->din_cap, SCSI_MAX_XFER at
 * most) is read a piece at a time: scsi_execute again with din_off on, the
 * PDUs numbered on across pieces; a piece that fails ends the command with a
 * SCSI Response carrying its sense after the data already sent. */
static int send_data_in(struct iconn *c, uint32_t itt, uint64_t lun, struct scsi_task *t,
			uint32_t edtl)
{
	uint32_t total = t->din_len < edtl ? t->din_len : edtl, off = 0, datasn = 0;
	uint32_t piece = t->din_cap;

	if (total > piece && t->op != MO_READ)
		total = piece; /* only a READ can be read again further on */
	while (off < total) {
		uint8_t h[BHS_LEN] = { OP_DATA_IN };
		uint32_t n = total - off, burst_left = c->max_burst - off % c->max_burst;

		if (off == t->din_off + piece) { /* this piece is sent: read the next */
			uint64_t t0 = metrics_now_ns();

			t->din_off = off;
			t->bytes = 0;
			scsi_execute(t);
			metrics_request(c->s, c->ss, MT_ISCSI, t->op, t->bytes, metrics_now_ns() - t0);
			if (t->status != SAM_GOOD) {
				metrics_error(c->s, c->ss, MT_ISCSI, ND_ERR_IO);
				return send_response(c, itt, t, edtl, off);
			}
		}
		if (n > c->max_send)
			n = c->max_send;
		if (n > burst_left)
			n = burst_left;
		if (n > t->din_off + piece - off)
			n = t->din_off + piece - off;
		nd_put64(h + 8, lun);
		nd_put32(h + 16, itt);
		nd_put32(h + 20, 0xffffffffu);
		nd_put32(h + 36, datasn++);
		nd_put32(h + 40, off);
		if (off + n == total) {
			h[1] = 0x80 | 0x01; /* F, S: the status comes with the last data */
			h[3] = t->status;
			if (t->din_len < edtl) {
				h[1] |= 0x02;
				nd_put32(h + 44, edtl - t->din_len);
			} else if (t->din_len > edtl) {
				h[1] |= 0x04;
				nd_put32(h + 44, t->din_len - edtl);
			}
			iconn_numbers(c, h, 1);
		} else {
			if (n == burst_left)
				h[1] = 0x80; /* the end of a sequence */
			iconn_numbers(c, h, 0);
		}
		if (iconn_send(c, h, t->din + (off - t->din_off), n))
			return -1;
		off += n;
	}
	return 0;
}

/* Room for a command's data in: at least what the initiator expects, at most
 * the largest transfer.  0 or -1. */
static int din_reserve(struct iconn *c, uint32_t edtl)
{
	return nd_reserve(&c->din, &c->din_cap,
			  edtl < 4096 ? 4096 : edtl > SCSI_MAX_XFER ? SCSI_MAX_XFER : edtl);
}

/* Run a command with its data and answer it; -1 when the answer could not go. */
static int execute(struct iconn *c, uint32_t itt, uint64_t lun, const uint8_t *cdb,
		   const uint8_t *dout, uint32_t dout_len, uint32_t edtl, int reading)
{
	struct scsi_task t = { 0 };
	uint64_t t0 = metrics_now_ns();
	unsigned status;
	int64_t want;

	t.s = c->s;
	t.ss = c->ss;
	t.lun = lun;
	t.cdb = cdb;
	t.dout = dout;
	t.dout_len = dout_len;
	if (din_reserve(c, reading ? edtl : 0) < 0) {
		t.status = SAM_BUSY;
	} else {
		t.din = c->din;
		t.din_cap = reading ? (uint32_t)(edtl < c->din_cap ? edtl : c->din_cap) : 0;
		scsi_execute(&t);
	}
	metrics_request(c->s, c->ss, MT_ISCSI, t.op, t.bytes, metrics_now_ns() - t0);
	if (t.status != SAM_GOOD) {
		status = t.sense[2] == 0x07 ? ND_ERR_READONLY : t.sense[2] == 0x05 ? ND_ERR_INVAL
										   : ND_ERR_IO;
		metrics_error(c->s, c->ss, MT_ISCSI, status);
	}
	if (nd_log_enabled(ND_LOG_DEBUG))
		nd_log(ND_LOG_DEBUG, "iscsi command op=%02x itt=%08x edtl=%u status=%u sense=%x/%02x "
		       "image=%s ip=%s", cdb[0], itt, edtl, t.status, t.sense[2], t.sense[12],
		       c->ss->img->name, c->peer);
	if (t.status == SAM_GOOD && reading && t.din_len && edtl)
		return send_data_in(c, itt, lun, &t, edtl);
	/* Residuals: what the CDB asked to move against what the initiator expected. */
	if (!reading)
		want = scsi_data_out_len(cdb);
	return send_response(c, itt, &t, edtl, reading ? t.din_len : want >= 0 ? (uint32_t)want
									: dout_len);
}

static struct wtask *task_find(struct iconn *c, uint32_t itt)
{
	for (unsigned i = 0; i < MAX_TASKS; i++)
		if (c->tasks[i].used && c->tasks[i].itt == itt)
			return &c->tasks[i];
	return NULL;
}

static void task_free(struct iconn *c, struct wtask *w)
{
	if (w->buf) {
		c->pending_bytes -= w->edtl;
		__atomic_sub_fetch(&write_bytes, w->edtl, __ATOMIC_RELAXED);
	}
	free(w->buf);
	memset(w, 0, sizeof(*w));
}

/* Ask for the next burst of a WRITE's data. */
static int send_r2t(struct iconn *c, struct wtask *w)
{
	uint8_t h[BHS_LEN] = { OP_R2T, 0x80 };
	uint32_t len = w->edtl - w->got;

	if (len > c->max_burst)
		len = c->max_burst;
	w->ttt = c->next_ttt++;
	if (w->ttt == 0xffffffffu)
		w->ttt = c->next_ttt++;
	w->r2t_end = w->got + len;
	w->datasn = 0;
	nd_put64(h + 8, w->lun);
	nd_put32(h + 16, w->itt);
	nd_put32(h + 20, w->ttt);
	iconn_numbers(c, h, 0);
	nd_put32(h + 36, w->r2tsn++);
	nd_put32(h + 40, w->got);
	nd_put32(h + 44, len);
	return iconn_send(c, h, NULL, 0);
}

/* A WRITE whose unsolicited data (if any) is in: run it if complete, else
 * solicit the rest.  -1 ends the connection. */
static int task_progress(struct iconn *c, struct wtask *w)
{
	int rc;

	if (w->unsolicited)
		return 0;
	if (w->got < w->edtl && !w->fail_status)
		return w->ttt == 0xffffffffu || w->got >= w->r2t_end ? send_r2t(c, w) : 0;
	if (w->fail_status) {
		struct scsi_task t = { .status = w->fail_status };

		if (w->fail_sense[0])
			scsi_sense(&t, w->fail_sense[0], w->fail_sense[1], w->fail_sense[2]);
		rc = send_response(c, w->itt, &t, w->edtl, 0);
	} else {
		rc = execute(c, w->itt, w->lun, w->cdb, w->buf, w->got, w->edtl, 0);
	}
	task_free(c, w);
	return rc;
}

/* A data segment for a WRITE at `off`: in order only (DataPDUInOrder). */
static int task_data(struct iconn *c, struct wtask *w, uint32_t off, const uint8_t *d, uint32_t n)
{
	if (off != w->got || n > w->edtl - off) {
		snprintf(c->why, sizeof(c->why), "data at offset %u (+%u) for task %08x, "
			 "expected offset %u of %u", off, n, w->itt, w->got, w->edtl);
		return -1;
	}
	if (w->buf)
		memcpy(w->buf + off, d, n);
	w->got += n;
	return 0;
}

static int scsi_command(struct iconn *c)
{
	const uint8_t *h = c->bhs;
	uint32_t itt = nd_get32(h + 16), edtl = nd_get32(h + 20);
	uint64_t lun = nd_get64(h + 8);
	int writing = h[1] & 0x20, reading = h[1] & 0x40;
	struct wtask *w;
	unsigned i;

	if (c->discovery) {
		snprintf(c->why, sizeof(c->why), "a SCSI command in a discovery session");
		return -1;
	}
	if (!iconn_cmdsn(c))
		return 0;
	if (writing && reading) { /* bidirectional commands: none exists here (their data,
				   * if any follows, finds no task and is dropped) */
		struct scsi_task t = { 0 };

		scsi_sense(&t, 0x05, 0x24, 0);
		return send_response(c, itt, &t, edtl, 0);
	}
	if (!writing || !edtl)
		return execute(c, itt, lun, h + 32, c->data, c->dlen, edtl, reading);
	/* Data comes: immediate (here), unsolicited (Data-Out, TTT ffffffff), then R2T'd. */
	if (task_find(c, itt)) {
		snprintf(c->why, sizeof(c->why), "task tag %08x used twice", itt);
		return -1;
	}
	for (w = NULL, i = 0; i < MAX_TASKS && !w; i++)
		if (!c->tasks[i].used)
			w = &c->tasks[i];
	if (!w) {
		snprintf(c->why, sizeof(c->why), "more than %u WRITEs waiting for data", MAX_TASKS);
		return -1;
	}
	w->used = 1;
	w->itt = itt;
	w->edtl = edtl;
	w->lun = lun;
	memcpy(w->cdb, h + 32, 16);
	w->ttt = 0xffffffffu;
	if (edtl > SCSI_MAX_XFER + SCSI_BLOCK)
		w->fail_status = SAM_CHECK_CONDITION; /* its data is read and dropped */
	else if (c->pending_bytes + edtl > 4 * (size_t)SCSI_MAX_XFER ||
		 __atomic_add_fetch(&write_bytes, edtl, __ATOMIC_RELAXED) >
			 (size_t)c->memory_mib << 20) {
		/* this connection's share, or every connection's (nbd-memory), is full */
		if (c->pending_bytes + edtl <= 4 * (size_t)SCSI_MAX_XFER)
			__atomic_sub_fetch(&write_bytes, edtl, __ATOMIC_RELAXED);
		w->fail_status = SAM_TASK_SET_FULL;
	} else if (!(w->buf = malloc(edtl))) {
		__atomic_sub_fetch(&write_bytes, edtl, __ATOMIC_RELAXED);
		w->fail_status = SAM_BUSY;
	} else {
		c->pending_bytes += edtl;
	}
	if (c->dlen && (!c->immediate_data || task_data(c, w, 0, c->data, c->dlen))) {
		if (!c->why[0])
			snprintf(c->why, sizeof(c->why), "immediate data, not negotiated");
		return -1;
	}
	w->unsolicited = !c->initial_r2t && !(h[1] & 0x80) && w->got < edtl &&
			 w->got < c->first_burst;
	return task_progress(c, w);
}

/* A Data-Out out of sequence: one before it was lost (RFC 7143, 7.8).  At
 * ErrorRecoveryLevel 0 the task ends with CHECK CONDITION, ABORTED COMMAND,
 * "protocol service CRC error", once the sequence's last PDU is in (7.7);
 * the connection and its other tasks go on, and the write is not made. */
static void datasn_error(struct iconn *c, struct wtask *w, uint32_t datasn)
{
	log_msg("iscsi ip=%s initiator=%s: Data-Out of task %08x with DataSN %u, expected %u: "
		"the WRITE fails", c->peer, c->initiator, w->itt, datasn, w->datasn);
	w->fail_status = SAM_CHECK_CONDITION;
	w->fail_sense[0] = 0x0b;
	w->fail_sense[1] = 0x47;
	w->fail_sense[2] = 0x05;
}

static int data_out(struct iconn *c)
{
	const uint8_t *h = c->bhs;
	uint32_t itt = nd_get32(h + 16), ttt = nd_get32(h + 20), datasn = nd_get32(h + 36);
	uint32_t off = nd_get32(h + 40);
	struct wtask *w = task_find(c, itt);

	if (!w)
		return 0; /* an aborted task's data: dropped */
	if (ttt != (w->unsolicited ? 0xffffffffu : w->ttt)) {
		snprintf(c->why, sizeof(c->why), "Data-Out for task %08x with TTT %08x, expected %08x",
			 itt, ttt, w->unsolicited ? 0xffffffffu : w->ttt);
		send_reject(c, 0x04);
		return -1;
	}
	if (datasn != w->datasn && !w->fail_status)
		datasn_error(c, w, datasn);
	w->datasn++;
	if (task_data(c, w, off, c->data, c->dlen))
		return -1;
	if (!(h[1] & 0x80))
		return 0;
	/* The end of a sequence: unsolicited data, or an R2T's burst. */
	if (w->unsolicited) {
		w->unsolicited = 0;
		w->datasn = 0;
	} else if (w->got != w->r2t_end) {
		snprintf(c->why, sizeof(c->why), "R2T burst of task %08x ended at %u, not %u", itt,
			 w->got, w->r2t_end);
		return -1;
	}
	return task_progress(c, w);
}

static int nop_out(struct iconn *c)
{
	uint8_t h[BHS_LEN] = { OP_NOP_IN, 0x80 };
	uint32_t itt = nd_get32(c->bhs + 16);

	if (!iconn_cmdsn(c) || itt == 0xffffffffu)
		return 0; /* no answer wanted (or a reply to a ping of ours) */
	memcpy(h + 8, c->bhs + 8, 8);
	nd_put32(h + 16, itt);
	nd_put32(h + 20, 0xffffffffu);
	iconn_numbers(c, h, 1);
	return iconn_send(c, h, c->data, c->dlen < c->max_send ? c->dlen : c->max_send);
}

/* Task management: tasks here are WRITEs waiting for data (the rest ran). */
static int task_mgmt(struct iconn *c)
{
	uint8_t h[BHS_LEN] = { OP_TMF_RSP, 0x80 };
	uint8_t fn = c->bhs[1] & 0x7f, resp = 0;
	uint64_t lun = nd_get64(c->bhs + 8);
	uint32_t ref = nd_get32(c->bhs + 20);
	struct wtask *w;
	unsigned i;

	if (!iconn_cmdsn(c))
		return 0;
	switch (fn) {
	case 1: /* ABORT TASK */
		if ((w = task_find(c, ref)))
			task_free(c, w);
		else
			resp = 1; /* task does not exist: it ran already (PDUs come in order) */
		break;
	case 2: case 4: case 5: /* ABORT TASK SET, CLEAR TASK SET, LUN RESET */
		if (lun) {
			resp = 2;
			break;
		}
		/* fall through */
	case 6: /* TARGET WARM RESET */
		for (i = 0; i < MAX_TASKS; i++)
			if (c->tasks[i].used)
				task_free(c, &c->tasks[i]);
		break;
	case 8: /* TASK REASSIGN: ErrorRecoveryLevel 0 */
		resp = 4;
		break;
	default:
		resp = 5; /* not supported (CLEAR ACA, TARGET COLD RESET) */
	}
	h[2] = resp;
	nd_put32(h + 16, nd_get32(c->bhs + 16));
	iconn_numbers(c, h, 1);
	return iconn_send(c, h, NULL, 0);
}

/* Logout: answer and close (1). */
static int logout(struct iconn *c)
{
	uint8_t h[BHS_LEN] = { OP_LOGOUT_RSP, 0x80 };
	uint8_t reason = c->bhs[1] & 0x7f;

	iconn_cmdsn(c);
	h[2] = reason == 2 ? 2 : 0; /* removing for recovery: not supported at ERL 0 */
	nd_put32(h + 16, nd_get32(c->bhs + 16));
	iconn_numbers(c, h, 1);
	iconn_send(c, h, NULL, 0);
	snprintf(c->why, sizeof(c->why), "logout");
	return 1;
}

/* Serve PDUs until the initiator logs out or the connection ends. */
static void full_feature(struct iconn *c)
{
	int rc = 0;

	while (rc == 0) {
		expect(c, "a PDU", "nbd-idle-timeout", c->idle_s, 0);
		if (iconn_read_pdu(c))
			break;
		switch (c->bhs[0] & 0x3f) {
		case OP_NOP_OUT: rc = nop_out(c); break;
		case OP_SCSI_CMD: rc = scsi_command(c); break;
		case OP_TMF_REQ: rc = task_mgmt(c); break;
		case OP_TEXT_REQ: rc = iscsi_text(c); break;
		case OP_DATA_OUT: rc = data_out(c); break;
		case OP_LOGOUT_REQ: rc = logout(c); break;
		case OP_SNACK: /* ErrorRecoveryLevel 0: no SNACK */
			rc = send_reject(c, 0x05) ? -1 : 0;
			break;
		default:
			snprintf(c->why, sizeof(c->why), "opcode 0x%02x in the full feature phase",
				 c->bhs[0] & 0x3f);
			send_reject(c, 0x04);
			rc = -1;
		}
		if (c->ss && __atomic_load_n(&c->ss->ended, __ATOMIC_RELAXED) && rc == 0) {
			snprintf(c->why, sizeof(c->why), "its session ended (the client attached "
				 "again)");
			rc = -1;
		}
	}
}

/* ---- connections ---- */

void iconn_reinstate(struct iconn *c)
{
	pthread_mutex_lock(&open_lock);
	for (struct iconn *o = open_conns; o; o = o->next_open)
		if (o != c && o->full_feature && !memcmp(o->isid, c->isid, 6) &&
		    !strcasecmp(o->initiator, c->initiator) && !strcmp(o->target, c->target))
			shutdown(o->fd, SHUT_RDWR);
	pthread_mutex_unlock(&open_lock);
}

/* A connection's state, with the limits in force now (a reload changes those
 * of later connections).  Under the server lock, shared. */
static struct iconn *conn_new(struct server *s, int fd, const struct sockaddr_storage *sa)
{
	struct iconn *c = calloc(1, sizeof(*c));
	struct timeval send_limit = { (time_t)s->cfg.nbd_io_timeout, 0 };
	struct sockaddr_storage local;
	socklen_t ll = sizeof(local);

	if (!c || !(c->data = malloc(OUR_MAX_RECV + 4))) {
		free(c);
		return NULL;
	}
	c->s = s;
	c->fd = fd;
	c->sa = *sa;
	c->ra.buf = c->in;
	c->ra.cap = sizeof(c->in);
	c->handshake_s = s->cfg.nbd_handshake_timeout;
	c->idle_s = s->cfg.nbd_idle_timeout;
	c->io_s = s->cfg.nbd_io_timeout;
	c->memory_mib = s->cfg.nbd_memory_mib;
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &send_limit, sizeof(send_limit));
	format_peer((const struct sockaddr *)sa, c->peer, sizeof(c->peer));
	if (getsockname(fd, (struct sockaddr *)&local, &ll) == 0 &&
	    (local.ss_family == AF_INET || local.ss_family == AF_INET6))
		format_peer((const struct sockaddr *)&local, c->portal, sizeof(c->portal));
	else
		snprintf(c->portal, sizeof(c->portal), "%s", s->cfg.iscsi_listen);
	c->max_send = 8192;
	c->max_burst = 262144;
	c->first_burst = 65536;
	c->initial_r2t = 1;
	c->immediate_data = 1;
	c->next_ttt = 1;
	pthread_mutex_lock(&open_lock);
	c->next_open = open_conns;
	open_conns = c;
	__atomic_add_fetch(&s->iscsi_open, 1, __ATOMIC_RELAXED);
	pthread_mutex_unlock(&open_lock);
	return c;
}

static void conn_free(struct iconn *c)
{
	struct iconn **p;

	pthread_mutex_lock(&open_lock);
	for (p = &open_conns; *p != c; p = &(*p)->next_open)
		;
	*p = c->next_open;
	__atomic_sub_fetch(&c->s->iscsi_open, 1, __ATOMIC_RELAXED);
	if (!open_conns)
		pthread_cond_broadcast(&all_closed);
	pthread_mutex_unlock(&open_lock);
	for (unsigned i = 0; i < MAX_TASKS; i++)
		if (c->tasks[i].used)
			task_free(c, &c->tasks[i]);
	if (c->ss)
		session_conn_put(c->s, c->ss);
	close(c->fd);
	if (c->counted)
		addr_conn_give((const struct sockaddr *)&c->sa);
	free(c->text_out);
	free(c->din);
	free(c->data);
	free(c);
}

/* A target name as logs show it: a session target's token (the session's
 * only credential) replaced by its fingerprint, as NBD's logs do. */
static const char *log_target(const char *target, char *out, size_t len)
{
	const char *t = strstr(target, ":session:");
	uint8_t tok[16];
	unsigned i;

	if (!t)
		return target;
	t += 9;
	for (i = 0; i < 16 && strlen(t) == 32; i++)
		if (sscanf(t + 2 * i, "%2hhx", &tok[i]) != 1)
			break;
	if (i == 16)
		snprintf(out, len, "%.*s%08x", (int)(t - target), target, nd_token_fingerprint(tok));
	else
		snprintf(out, len, "%.*s?", (int)(t - target), target);
	return out;
}

static void conn_run(struct iconn *c)
{
	char mac[18] = "-", target[400];

	expect(c, "the login to end", "nbd-handshake-timeout", c->handshake_s, 0);
	if (iconn_read_pdu(c) == 0 && iscsi_login(c) == 1) {
		if (c->ss)
			nd_mac_format(c->ss->mac, mac);
		log_msg("iscsi login initiator=%s ip=%s target=%s%s mac=%s digests=%s/%s",
			c->initiator, c->peer,
			c->discovery ? "(discovery)" : log_target(c->target, target, sizeof(target)),
			c->chap.secret[0] ? " chap=yes" : "", mac, c->hdigest ? "crc32c" : "none",
			c->ddigest ? "crc32c" : "none");
		full_feature(c);
		log_msg("iscsi logout initiator=%s ip=%s target=%s (%s)", c->initiator, c->peer,
			c->discovery ? "(discovery)" : log_target(c->target, target, sizeof(target)),
			c->lim.timed_out ? "timed out" : c->why[0] ? c->why : "connection closed");
	} else if (c->why[0] || c->lim.timed_out) {
		log_msg("iscsi login refused initiator=%s ip=%s target=%s: %s",
			c->initiator[0] ? c->initiator : "-", c->peer,
			c->target[0] ? log_target(c->target, target, sizeof(target)) : "-",
			c->lim.timed_out ? "timed out" : c->why);
	}
	if (c->lim.timed_out)
		log_msg("iscsi connection ip=%s closed: no %s within %u s (%s)", c->peer,
			c->lim.awaiting, c->lim.secs, c->lim.key);
}

void iscsi_serve(struct server *s, int fd, const struct sockaddr_storage *sa)
{
	struct iconn *c;

	pthread_rwlock_rdlock(&s->lock);
	c = conn_new(s, fd, sa);
	pthread_rwlock_unlock(&s->lock);

	if (!c) {
		close(fd);
		return;
	}
	conn_run(c);
	conn_free(c);
}

static void *conn_main(void *arg)
{
	struct iconn *c = arg;

	conn_run(c);
	conn_free(c);
	return NULL;
}

static struct refusals refusals = { "iscsi", PTHREAD_MUTEX_INITIALIZER, 0, 0, NULL };

static void accept_one(struct server *s)
{
	struct sockaddr_storage sa;
	socklen_t salen = sizeof(sa);
	struct iconn *c;
	char peer[64];
	int fd = accept4(s->iscsi_fd, (struct sockaddr *)&sa, &salen, SOCK_CLOEXEC), one = 1;

	if (fd < 0) {
		if (errno == EMFILE || errno == ENFILE || errno == ENOMEM || errno == ENOBUFS)
			usleep(100000); /* the pending connection keeps the listener readable */
		return;
	}
	format_peer((const struct sockaddr *)&sa, peer, sizeof(peer));
	/* The limits are the configuration's, which a reload changes under the lock. */
	pthread_rwlock_rdlock(&s->lock);
	if (!tcp_admit(s, &refusals, __atomic_load_n(&s->iscsi_open, __ATOMIC_RELAXED) +
		       __atomic_load_n(&s->nbd_open, __ATOMIC_RELAXED), &sa, peer)) {
		pthread_rwlock_unlock(&s->lock);
		close(fd);
		return;
	}
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	c = conn_new(s, fd, &sa);
	pthread_rwlock_unlock(&s->lock);
	if (!c) {
		addr_conn_give((const struct sockaddr *)&sa);
		close(fd);
		return;
	}
	c->counted = 1;
	if (tcp_spawn(conn_main, c)) {
		tcp_refused(&refusals, peer, "cannot start a thread for it");
		conn_free(c);
	}
}

static void *accept_main(void *arg)
{
	struct server *s = arg;
	struct pollfd p = { s->iscsi_fd, POLLIN, 0 };

	while (!__atomic_load_n(&accept_stop, __ATOMIC_RELAXED))
		if (poll(&p, 1, 200) > 0 && (p.revents & POLLIN))
			accept_one(s);
	return NULL;
}

int iscsi_open(struct server *s, char *err, size_t errlen)
{
	s->iscsi_fd = -1;
	if (!s->cfg.iscsi_listen[0])
		return 0;
	s->iscsi_fd = listen_socket(s->cfg.iscsi_listen, SOCK_STREAM, err, errlen);
	if (s->iscsi_fd < 0)
		return -1;
	if (listen(s->iscsi_fd, 64) < 0 || pthread_create(&accept_thread, NULL, accept_main, s)) {
		snprintf(err, errlen, "iscsi-listen %s: cannot listen: %s", s->cfg.iscsi_listen,
			 strerror(errno));
		close(s->iscsi_fd);
		s->iscsi_fd = -1;
		return -1;
	}
	log_msg("iSCSI target on %s: %s:IMAGE, %s:session:TOKEN", s->cfg.iscsi_listen,
		s->cfg.iscsi_prefix, s->cfg.iscsi_prefix);
	return 0;
}

int iscsi_shutdown(struct server *s, unsigned wait_s)
{
	struct timespec until;
	int rc = 0;

	if (s->iscsi_fd < 0)
		return 0;
	__atomic_store_n(&accept_stop, 1, __ATOMIC_RELAXED);
	pthread_join(accept_thread, NULL);
	close(s->iscsi_fd);
	s->iscsi_fd = -1;
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += wait_s;
	pthread_mutex_lock(&open_lock);
	for (struct iconn *c = open_conns; c; c = c->next_open)
		shutdown(c->fd, SHUT_RDWR);
	while (open_conns && rc == 0)
		rc = pthread_cond_timedwait(&all_closed, &open_lock, &until);
	rc = open_conns ? -1 : 0;
	pthread_mutex_unlock(&open_lock);
	return rc;
}
