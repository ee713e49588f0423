/* SPDX-License-Identifier: GPL-2.0-or-later */
/* One iSCSI connection's state, shared by iscsi.c (PDUs, full feature phase)
 * and iscsi_login.c (login, text negotiation, CHAP, SendTargets).  Internal
 * to those two files. */
#ifndef NETDISKD_ISCSI_CONN_H
#define NETDISKD_ISCSI_CONN_H

#include <stdint.h>
#include <sys/socket.h>
#include "iscsi.h"
#include "iscsi_chap.h"
#include "netdiskd.h"

#define BHS_LEN 48
#define OUR_MAX_RECV (256u << 10)  /* MaxRecvDataSegmentLength we declare */
#define OUR_MAX_BURST (1u << 20)   /* MaxBurstLength at most */
#define OUR_FIRST_BURST (256u << 10)
#define CMD_WINDOW 32u             /* commands the initiator may have queued (MaxCmdSN) */
#define MAX_TASKS (2 * CMD_WINDOW) /* WRITEs waiting for their data */
#define LOGIN_TEXT_MAX 65536u      /* login or text keys, across continued PDUs */

/* opcodes, initiator to target */
#define OP_NOP_OUT 0x00
#define OP_SCSI_CMD 0x01
#define OP_TMF_REQ 0x02
#define OP_LOGIN_REQ 0x03
#define OP_TEXT_REQ 0x04
#define OP_DATA_OUT 0x05
#define OP_LOGOUT_REQ 0x06
#define OP_SNACK 0x10
/* target to initiator */
#define OP_NOP_IN 0x20
#define OP_SCSI_RSP 0x21
#define OP_TMF_RSP 0x22
#define OP_LOGIN_RSP 0x23
#define OP_TEXT_RSP 0x24
#define OP_DATA_IN 0x25
#define OP_LOGOUT_RSP 0x26
#define OP_R2T 0x31
#define OP_REJECT 0x3f

/* A WRITE (or other data-out command) collecting its data. */
struct wtask {
	int used;
	uint32_t itt, edtl;
	uint64_t lun;
	uint8_t cdb[16];
	uint8_t *buf;          /* edtl bytes, or NULL: data dropped (status below) */
	uint32_t got;          /* bytes received, in order */
	uint32_t r2t_end;      /* end of the burst the outstanding R2T asked for */
	uint32_t ttt;          /* of the outstanding R2T; 0xffffffff while unsolicited */
	uint32_t r2tsn;
	uint32_t datasn;       /* the DataSN the next Data-Out of this sequence carries */
	int unsolicited;       /* unsolicited data may still come */
	uint8_t fail_status;   /* SAM status to answer instead of executing, or 0 */
	uint8_t fail_sense[3]; /* its sense key, ASC, ASCQ (CHECK CONDITION), or zeros */
};

struct iconn {
	struct server *s;
	int fd;
	char peer[64];
	struct sockaddr_storage sa;
	char portal[96];        /* the address the initiator reached, "IP:PORT" ([IPv6]) */
	/* negotiated (login) */
	int hdigest, ddigest;   /* CRC32C on headers, on data (from the full feature phase) */
	int want_hdigest, want_ddigest;
	uint32_t max_send;      /* the initiator's MaxRecvDataSegmentLength */
	uint32_t max_burst, first_burst;
	int initial_r2t, immediate_data;
	/* the session */
	int discovery;
	int full_feature;
	char initiator[224];
	char target[256];       /* the TargetName logged in to */
	uint8_t isid[6];
	uint16_t tsih;
	struct session *ss;     /* a normal session's netdisk session */
	struct iscsi_chap chap; /* what this login must pass ("" secret: no CHAP) */
	uint32_t statsn, expcmdsn;
	uint8_t in[16384];      /* bytes read ahead of the PDU being read */
	struct nd_readahead ra; /* ... over in */
	int corked;             /* replies held back (MSG_MORE) while requests wait in ra */
	/* the PDU just read */
	uint8_t bhs[BHS_LEN];
	uint8_t *data;          /* its data segment (OUR_MAX_RECV bytes of room) */
	uint32_t dlen;
	/* writes waiting for data */
	struct wtask tasks[MAX_TASKS];
	size_t pending_bytes;
	uint32_t next_ttt;
	/* a text reply sent in parts (C bit) */
	char *text_out;
	uint32_t text_len, text_off, text_ttt;
	/* data-in */
	uint8_t *din;
	size_t din_cap;
	struct io_limit lim;    /* time limits of reads */
	unsigned handshake_s, idle_s, io_s, memory_mib; /* nbd-*-timeout, nbd-memory at connect */
	char why[200];          /* why the login failed or the connection ended, for the log */
	struct iconn *next_open;
	int counted;            /* in the per-address count (addr_conn_take) */
};

/* iscsi.c */
int iconn_send(struct iconn *c, uint8_t *bhs, const void *data, uint32_t len);
int iconn_read_pdu(struct iconn *c);
/* StatSN, ExpCmdSN, MaxCmdSN into a response header (advancing StatSN if `adv`). */
void iconn_numbers(struct iconn *c, uint8_t *bhs, int adv);
/* Non-immediate commands advance ExpCmdSN: is this one in the window? */
int iconn_cmdsn(struct iconn *c);
/* End older connections of the same initiator, ISID and target (reinstatement). */
void iconn_reinstate(struct iconn *c);

/* iscsi_login.c */
/* The login phase, from the first Login Request (already read): 1 when the
 * full feature phase starts, -1 to close (c->why says why). */
int iscsi_login(struct iconn *c);
/* A Text Request in the full feature phase (SendTargets); -1 to close. */
int iscsi_text(struct iconn *c);

#endif
