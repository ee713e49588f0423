/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The SCSI block device an iSCSI session sees (SPC-4/SBC-3, LUN 0 only): its
 * identity (INQUIRY and VPD pages), capacity, mode pages, and READ, WRITE,
 * SYNCHRONIZE CACHE, UNMAP and WRITE SAME on the session's top layer, with
 * the session's write mode (readonly: DATA PROTECT) exactly as over NBD.
 * Every error is CHECK CONDITION with fixed-format sense data.  Nothing here
 * knows about PDUs: iscsi.c hands a task in and sends what comes out.
 */

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include "netdiskd.h"
#include "iscsi.h"
#include "trace.h"

/* sense keys */
#define NOT_READY 0x02
#define MEDIUM_ERROR 0x03
#define HARDWARE_ERROR 0x04
#define ILLEGAL_REQUEST 0x05
#define DATA_PROTECT 0x07
#define MISCOMPARE 0x0e

/* additional sense codes (with qualifier 0 unless said) */
#define ASC_INVALID_OPCODE 0x20
#define ASC_LBA_OUT_OF_RANGE 0x21
#define ASC_INVALID_FIELD_CDB 0x24
#define ASC_LUN_NOT_SUPPORTED 0x25
#define ASC_INVALID_FIELD_PARAM 0x26
#define ASC_WRITE_PROTECTED 0x27
#define ASC_SAVING_NOT_SUPPORTED 0x39
#define ASC_PARAM_LIST_LENGTH 0x1a
#define ASC_WRITE_ERROR 0x0c
#define ASC_READ_ERROR 0x11
#define ASC_NO_SPACE 0x27 /* (with qualifier 7: space allocation failed) */

#define MAX_WRITE_SAME 65536u   /* blocks one WRITE SAME may cover */
#define MAX_UNMAP_DESCS 256u    /* block descriptors in one UNMAP */
#define MAX_UNMAP_BLOCKS (1u << 24)

static uint64_t get_be(const uint8_t *p, int n)
{
	uint64_t v = 0;

	while (n--)
		v = v << 8 | *p++;
	return v;
}

static void put_be(uint8_t *p, uint64_t v, int n)
{
	while (n--) {
		p[n] = (uint8_t)v;
		v >>= 8;
	}
}

void scsi_sense(struct scsi_task *t, uint8_t key, uint8_t asc, uint8_t ascq)
{
	memset(t->sense, 0, sizeof(t->sense));
	t->sense[0] = 0x70;      /* current error, fixed format */
	t->sense[2] = key;
	t->sense[7] = 10;        /* additional sense length */
	t->sense[12] = asc;
	t->sense[13] = ascq;
	t->sense_len = 18;
	t->status = SAM_CHECK_CONDITION;
	t->din_len = 0;
}

static void invalid_field(struct scsi_task *t)
{
	scsi_sense(t, ILLEGAL_REQUEST, ASC_INVALID_FIELD_CDB, 0);
}

/* Copy a reply into the data-in buffer, truncated to the allocation length. */
static void reply(struct scsi_task *t, const void *data, uint32_t len, uint32_t alloc)
{
	if (len > alloc)
		len = alloc;
	memcpy(t->din, data, len < t->din_cap ? len : t->din_cap);
	t->din_len = len;
}

static uint64_t nblocks(const struct scsi_task *t)
{
	return t->ss->img->base->size / SCSI_BLOCK;
}

static int writable(const struct scsi_task *t)
{
	return t->ss->mode != ND_MODE_READONLY;
}

/* UNMAP is offered where holes can be punched in what the client writes: the
 * image itself in direct mode (an overlay would only grow by the zeros). */
static int can_unmap(const struct scsi_task *t)
{
	return t->ss->mode == ND_MODE_DIRECT && t->ss->top && t->ss->top->ops->trim;
}

/* A stable identity for the disk a client sees: its MAC and the image. */
static uint64_t disk_id(const struct scsi_task *t)
{
	uint64_t h = 0xcbf29ce484222325ull;
	const char *n = t->ss->img->name;
	int i;

	for (i = 0; i < 6; i++)
		h = (h ^ t->ss->mac[i]) * 0x100000001b3ull;
	while (*n)
		h = (h ^ (uint8_t)*n++) * 0x100000001b3ull;
	return h;
}

static void space_pad(uint8_t *dst, const char *src, size_t n)
{
	size_t l = strlen(src);

	memset(dst, ' ', n);
	memcpy(dst, src, l < n ? l : n);
}

static void inquiry_std(struct scsi_task *t, uint32_t alloc)
{
	uint8_t d[66] = { 0 };

	d[2] = 0x06;              /* SPC-4 */
	d[3] = 0x12;              /* HiSup, response data format 2 */
	d[4] = sizeof(d) - 5;
	d[7] = 0x02;              /* CmdQue */
	space_pad(d + 8, "NETDISK", 8);
	space_pad(d + 16, t->ss->img->name, 16);
	space_pad(d + 32, "1.0", 4);
	put_be(d + 58, 0x00a0, 2); /* SAM-5 */
	put_be(d + 60, 0x0960, 2); /* iSCSI */
	put_be(d + 62, 0x0460, 2); /* SPC-4 */
	put_be(d + 64, 0x04c0, 2); /* SBC-3 */
	reply(t, d, sizeof(d), alloc);
}

static void inquiry_vpd(struct scsi_task *t, uint8_t page, uint32_t alloc)
{
	static const uint8_t pages[] = { 0x00, 0x80, 0x83, 0xb0, 0xb1, 0xb2 };
	uint8_t d[64] = { 0 };
	char serial[17];
	uint64_t id = disk_id(t);
	uint32_t n;

	snprintf(serial, sizeof(serial), "%016llx", (unsigned long long)id);
	d[1] = page;
	switch (page) {
	case 0x00:
		memcpy(d + 4, pages, sizeof(pages));
		n = sizeof(pages);
		break;
	case 0x80: /* unit serial number */
		memcpy(d + 4, serial, 16);
		n = 16;
		break;
	case 0x83: /* device identification: NAA 6 and a T10 vendor ID, of the LU */
		d[4] = 0x01;          /* binary */
		d[5] = 0x03;          /* LU, NAA */
		d[7] = 16;
		put_be(d + 8, 0x6000000000000000ull | (id >> 4), 8);
		put_be(d + 16, id * 0x9e3779b97f4a7c15ull, 8);
		d[24] = 0x02;         /* ASCII */
		d[25] = 0x01;         /* LU, T10 vendor ID */
		d[27] = 24;
		space_pad(d + 28, "NETDISK", 8);
		memcpy(d + 36, serial, 16);
		n = 48;
		break;
	case 0xb0: /* block limits */
		n = 0x3c;
		d[4] = 0x01;                                   /* WSNZ: WRITE SAME of 0 blocks refused */
		put_be(d + 6, 4096 / SCSI_BLOCK, 2);           /* optimal granularity: 4 KiB */
		put_be(d + 8, SCSI_MAX_XFER / SCSI_BLOCK, 4);  /* maximum transfer length */
		put_be(d + 12, (1u << 20) / SCSI_BLOCK, 4);    /* optimal transfer length */
		if (can_unmap(t)) {
			put_be(d + 20, MAX_UNMAP_BLOCKS, 4);
			put_be(d + 24, MAX_UNMAP_DESCS, 4);
			put_be(d + 28, 4096 / SCSI_BLOCK, 4);
		}
		put_be(d + 36, MAX_WRITE_SAME, 8);
		break;
	case 0xb1: /* block device characteristics: not rotating */
		n = 0x3c;
		put_be(d + 4, 1, 2);
		break;
	case 0xb2: /* logical block provisioning */
		n = 4;
		if (can_unmap(t))
			d[5] = 0x80 | 0x40 | 0x04; /* LBPU, LBPWS, LBPRZ */
		d[6] = can_unmap(t) ? 0x02 : 0x00; /* thin provisioned, or full */
		break;
	default:
		invalid_field(t);
		return;
	}
	put_be(d + 2, n, 2);
	reply(t, d, n + 4, alloc);
}

static void inquiry(struct scsi_task *t)
{
	const uint8_t *c = t->cdb;
	uint32_t alloc = (uint32_t)get_be(c + 3, 2);

	if (c[1] & 0x01)
		inquiry_vpd(t, c[2], alloc);
	else if (c[2])
		invalid_field(t);
	else
		inquiry_std(t, alloc);
}

static void read_capacity10(struct scsi_task *t)
{
	uint8_t d[8];
	uint64_t last = nblocks(t) - 1;

	put_be(d, last > 0xffffffffu ? 0xffffffffu : last, 4);
	put_be(d + 4, SCSI_BLOCK, 4);
	reply(t, d, sizeof(d), sizeof(d));
}

static void read_capacity16(struct scsi_task *t)
{
	uint8_t d[32] = { 0 };

	put_be(d, nblocks(t) - 1, 8);
	put_be(d + 8, SCSI_BLOCK, 4);
	d[13] = 3;                           /* 8 logical blocks a physical one (4 KiB) */
	if (can_unmap(t))
		d[14] = 0x80 | 0x40;         /* LBPME, LBPRZ */
	reply(t, d, sizeof(d), (uint32_t)get_be(t->cdb + 10, 4));
}

/* The mode pages, current values (or with `changeable`, none changeable). */
static uint32_t mode_pages(struct scsi_task *t, uint8_t page, int changeable, uint8_t *d)
{
	uint32_t n = 0;

	if (page == 0x08 || page == 0x3f) { /* caching */
		d[n] = 0x08;
		d[n + 1] = 0x12;
		if (!changeable && writable(t))
			d[n + 2] = 0x04; /* WCE: SYNCHRONIZE CACHE and FUA make writes durable */
		n += 0x14;
	}
	if (page == 0x0a || page == 0x3f) { /* control */
		d[n] = 0x0a;
		d[n + 1] = 0x0a;
		if (!changeable) {
			d[n + 3] = 0x10; /* queue algorithm: unrestricted; QErr 0 */
			put_be(d + n + 8, 0xffff, 2); /* busy timeout: unlimited */
		}
		n += 0x0c;
	}
	return n;
}

static void mode_sense(struct scsi_task *t, int ten)
{
	const uint8_t *c = t->cdb;
	uint8_t d[128] = { 0 };
	int dbd = c[1] & 0x08, pc = c[2] >> 6;
	uint8_t page = c[2] & 0x3f, sub = c[3];
	uint32_t hdr = ten ? 8 : 4, bd = dbd ? 0 : 8, n, alloc;
	uint64_t blocks = nblocks(t);

	alloc = ten ? (uint32_t)get_be(c + 7, 2) : c[4];
	if (pc == 3) {
		scsi_sense(t, ILLEGAL_REQUEST, ASC_SAVING_NOT_SUPPORTED, 0);
		return;
	}
	if ((page != 0x08 && page != 0x0a && page != 0x3f) || (sub && sub != 0xff)) {
		invalid_field(t);
		return;
	}
	if (bd) {
		put_be(d + hdr, blocks > 0xffffffffu ? 0xffffffffu : blocks, 4);
		put_be(d + hdr + 5, SCSI_BLOCK, 3);
	}
	n = hdr + bd + mode_pages(t, page, pc == 1, d + hdr + bd);
	if (ten) {
		put_be(d, n - 2, 2);
		d[3] = (writable(t) ? 0 : 0x80) | 0x10; /* WP, DPOFUA */
		put_be(d + 6, bd, 2);
	} else {
		d[0] = (uint8_t)(n - 1);
		d[2] = (writable(t) ? 0 : 0x80) | 0x10;
		d[3] = (uint8_t)bd;
	}
	reply(t, d, n, alloc);
}

static void report_luns(struct scsi_task *t)
{
	uint8_t d[16] = { 0 };
	uint32_t alloc = (uint32_t)get_be(t->cdb + 6, 4);

	if (t->cdb[2] > 2 || alloc < 16) {
		invalid_field(t);
		return;
	}
	put_be(d, 8, 4); /* one LUN: 0 */
	reply(t, d, sizeof(d), alloc);
}

static void request_sense(struct scsi_task *t)
{
	uint8_t d[18] = { 0x70, 0, 0, 0, 0, 0, 0, 10 };

	if (t->cdb[1] & 0x01) { /* descriptor format: not supported */
		invalid_field(t);
		return;
	}
	reply(t, d, sizeof(d), t->cdb[4]);
}

/* A layer call's failure as sense data (the caller logs it once). */
static void io_error(struct scsi_task *t, int rc, int writing, uint64_t off, uint64_t len)
{
	session_storage_error(t->ss, writing ? "iscsi-write" : "iscsi-read", off, len, rc);
	if (rc == -ENOSPC)
		scsi_sense(t, DATA_PROTECT, ASC_NO_SPACE, 0x07);
	else if (rc == -EROFS || rc == -EPERM)
		scsi_sense(t, DATA_PROTECT, ASC_WRITE_PROTECTED, 0);
	else
		scsi_sense(t, writing ? MEDIUM_ERROR : MEDIUM_ERROR,
			   writing ? ASC_WRITE_ERROR : ASC_READ_ERROR, 0);
}

/* The LBA and block count of a READ/WRITE/VERIFY/SYNC/WRITE SAME CDB. */
static void lba_count(const uint8_t *c, uint64_t *lba, uint64_t *count)
{
	switch (c[0]) {
	case 0x08: case 0x0a: /* (6) */
		*lba = get_be(c + 1, 3) & 0x1fffff;
		*count = c[4] ? c[4] : 256;
		break;
	case 0xa8: case 0xaa: case 0xaf: /* (12) */
		*lba = get_be(c + 2, 4);
		*count = get_be(c + 6, 4);
		break;
	case 0x88: case 0x8a: case 0x8f: case 0x91: case 0x93: /* (16) */
		*lba = get_be(c + 2, 8);
		*count = get_be(c + 10, 4);
		break;
	default: /* (10) */
		*lba = get_be(c + 2, 4);
		*count = get_be(c + 7, 2);
	}
}

/* Is [lba, lba+count) on the disk?  Else sense: LBA out of range. */
static int in_range(struct scsi_task *t, uint64_t lba, uint64_t count)
{
	uint64_t n = nblocks(t);

	if (lba > n || count > n - lba) {
		scsi_sense(t, ILLEGAL_REQUEST, ASC_LBA_OUT_OF_RANGE, 0);
		return 0;
	}
	return 1;
}

static void do_read(struct scsi_task *t)
{
	const uint8_t *c = t->cdb;
	uint64_t lba, count, off, len;
	int rc;

	lba_count(c, &lba, &count);
	if (c[0] != 0x08 && (c[1] >> 5)) { /* RDPROTECT: no protection information */
		invalid_field(t);
		return;
	}
	if (!in_range(t, lba, count))
		return;
	/* Longer than the block limits page says is allowed too (iPXE's UEFI
	 * sanboot reads a loader's whole file in one command): the iSCSI layer
	 * sends it in pieces of din_cap, din_off the piece's start. */
	if (count * SCSI_BLOCK > UINT32_MAX) {
		invalid_field(t);
		return;
	}
	len = count * SCSI_BLOCK;
	t->op = MO_READ;
	t->din_len = (uint32_t)len;
	if (t->din_off >= len)
		return;
	off = lba * SCSI_BLOCK + t->din_off;
	len -= t->din_off;
	if (len > t->din_cap)
		len = t->din_cap; /* the next piece, or more than the initiator expects */
	if (!len)
		return;
	trace_read(t->s, t->ss, off / SCSI_BLOCK, (len + SCSI_BLOCK - 1) / SCSI_BLOCK, "iscsi");
	rc = layer_read(t->ss->top, t->din, len, off);
	if (rc < 0)
		io_error(t, rc, 0, off, len);
	else
		t->bytes = len;
}

/* The checks every writing command makes: write protection first (a read-only
 * client gets DATA PROTECT whatever it asks), then the range. */
static int write_ok(struct scsi_task *t, uint64_t lba, uint64_t count)
{
	if (!writable(t)) {
		scsi_sense(t, DATA_PROTECT, ASC_WRITE_PROTECTED, 0);
		return 0;
	}
	return in_range(t, lba, count);
}

static void do_write(struct scsi_task *t)
{
	const uint8_t *c = t->cdb;
	uint64_t lba, count, off, len;
	int rc, fua = c[0] != 0x0a && (c[1] & 0x08);

	lba_count(c, &lba, &count);
	t->op = MO_WRITE;
	if (c[0] != 0x0a && (c[1] >> 5)) { /* WRPROTECT */
		invalid_field(t);
		return;
	}
	if (!write_ok(t, lba, count))
		return;
	off = lba * SCSI_BLOCK;
	len = count * SCSI_BLOCK;
	if (len > SCSI_MAX_XFER) {
		invalid_field(t);
		return;
	}
	if (len > t->dout_len) /* the initiator sent less (the residual says so): that */
		len = t->dout_len / SCSI_BLOCK * SCSI_BLOCK;
	if (!len)
		return;
	rc = layer_write(t->ss->top, t->dout, len, off);
	if (rc >= 0 && fua)
		rc = layer_flush(t->ss->top);
	if (rc < 0)
		io_error(t, rc, 1, off, len);
	else
		t->bytes = len;
}

static void do_sync(struct scsi_task *t)
{
	uint64_t lba, count;
	int rc;

	lba_count(t->cdb, &lba, &count);
	t->op = MO_FLUSH;
	if (!in_range(t, lba, count))
		return;
	rc = layer_flush(t->ss->top);
	if (rc < 0)
		io_error(t, rc, 1, lba * SCSI_BLOCK, count * SCSI_BLOCK);
}

/* VERIFY: the range; with BYTCHK 01b, the data sent compared with the disk's. */
static void do_verify(struct scsi_task *t)
{
	uint64_t lba, count, len, i;
	uint8_t block[SCSI_BLOCK];
	int bytchk = t->cdb[1] >> 1 & 3, rc;

	lba_count(t->cdb, &lba, &count);
	if ((t->cdb[1] >> 5) || bytchk > 1) { /* VRPROTECT, BYTCHK 10b/11b */
		invalid_field(t);
		return;
	}
	if (!in_range(t, lba, count) || !bytchk)
		return;
	len = count * SCSI_BLOCK;
	if (len > SCSI_MAX_XFER || len > t->dout_len) {
		invalid_field(t);
		return;
	}
	for (i = 0; i < count; i++) {
		rc = layer_read(t->ss->top, block, SCSI_BLOCK, (lba + i) * SCSI_BLOCK);
		if (rc < 0) {
			io_error(t, rc, 0, (lba + i) * SCSI_BLOCK, SCSI_BLOCK);
			return;
		}
		if (memcmp(block, t->dout + i * SCSI_BLOCK, SCSI_BLOCK)) {
			scsi_sense(t, MISCOMPARE, 0x1d, 0);
			return;
		}
	}
}

/* Deallocate through the layer (direct mode: the image's own holes). */
static int trim_blocks(struct scsi_task *t, uint64_t lba, uint64_t count)
{
	int rc = count ? layer_trim(t->ss->top, lba * SCSI_BLOCK, count * SCSI_BLOCK) : 0;

	if (rc < 0)
		io_error(t, rc, 1, lba * SCSI_BLOCK, count * SCSI_BLOCK);
	return rc;
}

static void do_unmap(struct scsi_task *t)
{
	uint32_t plen = (uint32_t)get_be(t->cdb + 7, 2), bdl, i;
	const uint8_t *p = t->dout;

	t->op = MO_TRIM;
	if (!can_unmap(t)) {
		if (!writable(t))
			scsi_sense(t, DATA_PROTECT, ASC_WRITE_PROTECTED, 0);
		else
			scsi_sense(t, ILLEGAL_REQUEST, ASC_INVALID_OPCODE, 0);
		return;
	}
	if (t->cdb[1] & 0x01) { /* ANCHOR */
		invalid_field(t);
		return;
	}
	if (!plen)
		return;
	if (plen < 8 || plen > t->dout_len) {
		scsi_sense(t, ILLEGAL_REQUEST, ASC_PARAM_LIST_LENGTH, 0);
		return;
	}
	bdl = (uint32_t)get_be(p + 2, 2);
	if (bdl > plen - 8 || bdl % 16 || bdl / 16 > MAX_UNMAP_DESCS) {
		scsi_sense(t, ILLEGAL_REQUEST, ASC_INVALID_FIELD_PARAM, 0);
		return;
	}
	for (i = 0; i < bdl / 16; i++) { /* check them all before doing any */
		uint64_t lba = get_be(p + 8 + 16 * i, 8), count = get_be(p + 16 + 16 * i, 4);

		if (count > MAX_UNMAP_BLOCKS) {
			scsi_sense(t, ILLEGAL_REQUEST, ASC_INVALID_FIELD_PARAM, 0);
			return;
		}
		if (!in_range(t, lba, count))
			return;
	}
	for (i = 0; i < bdl / 16; i++)
		if (trim_blocks(t, get_be(p + 8 + 16 * i, 8), get_be(p + 16 + 16 * i, 4)) < 0)
			return;
}

static void do_write_same(struct scsi_task *t)
{
	const uint8_t *c = t->cdb;
	uint64_t lba, count, i;
	uint8_t zero[SCSI_BLOCK] = { 0 };
	const uint8_t *block = t->dout;
	int rc = 0;

	lba_count(c, &lba, &count);
	t->op = MO_WRITE;
	if ((c[1] >> 5) || (c[1] & 0x10) || count == 0 || count > MAX_WRITE_SAME) {
		invalid_field(t); /* WRPROTECT, ANCHOR, 0 blocks (WSNZ), too many */
		return;
	}
	if (!write_ok(t, lba, count))
		return;
	if (c[0] == 0x93 && (c[1] & 0x01)) /* NDOB: no data-out buffer, zeros */
		block = zero;
	else if (t->dout_len < SCSI_BLOCK) {
		invalid_field(t);
		return;
	}
	if (c[1] & 0x08) { /* UNMAP: where the LBP VPD page says so */
		if (!can_unmap(t))
			invalid_field(t);
		else
			trim_blocks(t, lba, count);
		return;
	}
	for (i = 0; i < count && rc >= 0; i++)
		rc = layer_write(t->ss->top, block, SCSI_BLOCK, (lba + i) * SCSI_BLOCK);
	if (rc < 0)
		io_error(t, rc, 1, lba * SCSI_BLOCK, count * SCSI_BLOCK);
	else
		t->bytes = count * SCSI_BLOCK;
}

int64_t scsi_data_out_len(const uint8_t cdb[16])
{
	uint64_t lba, count;

	switch (cdb[0]) {
	case 0x0a: case 0x2a: case 0xaa: case 0x8a:
		lba_count(cdb, &lba, &count);
		return (int64_t)(count * SCSI_BLOCK);
	case 0x2f: case 0xaf: case 0x8f: /* VERIFY: data only with BYTCHK */
		lba_count(cdb, &lba, &count);
		return (cdb[1] >> 1 & 3) == 1 ? (int64_t)(count * SCSI_BLOCK) : 0;
	case 0x41: case 0x93:
		return cdb[0] == 0x93 && (cdb[1] & 0x01) ? 0 : SCSI_BLOCK;
	case 0x42:
		return (int64_t)get_be(cdb + 7, 2);
	case 0x15: case 0x55: /* MODE SELECT: accepted and ignored */
		return cdb[0] == 0x15 ? cdb[4] : (int64_t)get_be(cdb + 7, 2);
	default:
		return -1;
	}
}

/* Commands on a LUN other than 0: INQUIRY says "no device here", REPORT LUNS
 * and REQUEST SENSE work, the rest fail. */
static int other_lun(struct scsi_task *t)
{
	uint8_t d[36] = { 0x7f };

	switch (t->cdb[0]) {
	case 0x12:
		reply(t, d, sizeof(d), (uint32_t)get_be(t->cdb + 3, 2));
		return 1;
	case 0xa0: case 0x03:
		return 0;
	default:
		scsi_sense(t, ILLEGAL_REQUEST, ASC_LUN_NOT_SUPPORTED, 0);
		return 1;
	}
}

void scsi_execute(struct scsi_task *t)
{
	const uint8_t *c = t->cdb;

	t->status = SAM_GOOD;
	t->sense_len = 0;
	t->din_len = 0;
	t->op = MO_OTHER;
	t->bytes = 0;
	if (t->lun && other_lun(t))
		return;
	pthread_rwlock_rdlock(&t->ss->io_lock);
	if (t->ss->ended) { /* the client attached again from its firmware: this disk is gone */
		scsi_sense(t, NOT_READY, 0x3a, 0); /* medium not present */
		pthread_rwlock_unlock(&t->ss->io_lock);
		return;
	}
	switch (c[0]) {
	case 0x00: /* TEST UNIT READY */
	case 0x1b: /* START STOP UNIT */
	case 0x1e: /* PREVENT ALLOW MEDIUM REMOVAL */
	case 0x15: case 0x55: /* MODE SELECT (6/10): nothing is changeable */
		break;
	case 0x03: request_sense(t); break;
	case 0x12: inquiry(t); break;
	case 0x25: read_capacity10(t); break;
	case 0x9e:
		if ((c[1] & 0x1f) == 0x10)
			read_capacity16(t);
		else
			invalid_field(t);
		break;
	case 0x08: case 0x28: case 0xa8: case 0x88: do_read(t); break;
	case 0x0a: case 0x2a: case 0xaa: case 0x8a: do_write(t); break;
	case 0x35: case 0x91: do_sync(t); break;
	case 0x2f: case 0xaf: case 0x8f: do_verify(t); break;
	case 0x1a: mode_sense(t, 0); break;
	case 0x5a: mode_sense(t, 1); break;
	case 0xa0: report_luns(t); break;
	case 0x42: do_unmap(t); break;
	case 0x41: case 0x93: do_write_same(t); break;
	default:
		scsi_sense(t, ILLEGAL_REQUEST, ASC_INVALID_OPCODE, 0);
	}
	if (t->op != MO_READ && t->op != MO_OTHER)
		__atomic_store_n(&t->ss->last_seen, time(NULL), __ATOMIC_RELAXED);
	pthread_rwlock_unlock(&t->ss->io_lock);
}
