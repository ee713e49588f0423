/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The iSCSI target (RFC 7143): its listener and connections (iscsi.c), its
 * login and text negotiation (iscsi_login.c) and the SCSI block device each
 * session sees (iscsi_scsi.c), over netdiskd's sessions and layers. */
#ifndef NETDISKD_ISCSI_H
#define NETDISKD_ISCSI_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#define ISCSI_DEFAULT_PORT 3260
#define ISCSI_DEFAULT_PREFIX "iqn.2026-01.org.netdisk"

struct server;
struct session;

/* Is `name` an iSCSI name (iqn., eui., naa.; with `prefix`, a target name
 * prefix to which ":IMAGE" is appended)?  0 or -1. */
int iscsi_name_check(const char *name, int prefix);

/* Open the iscsi-listen socket and its accept thread (nothing when the key is
 * not set); 0, or -1 with err. */
int iscsi_open(struct server *s, char *err, size_t errlen);
/* Stop accepting, end every connection and wait up to wait_s seconds for
 * their threads: 0, or -1 when some still run. */
int iscsi_shutdown(struct server *s, unsigned wait_s);
/* Serve one connected initiator on this thread until it goes; closes fd
 * (the fuzzer's entry point). */
void iscsi_serve(struct server *s, int fd, const struct sockaddr_storage *sa);

/* CRC32C (Castagnoli) as iSCSI digests use it: crc starts at 0. */
uint32_t iscsi_crc32c(uint32_t crc, const void *buf, size_t len);

/* ---- iscsi_scsi.c: the SCSI block device over a session ---- */

#define SCSI_BLOCK 512u               /* logical block size */
#define SCSI_MAX_XFER (8u << 20)      /* largest WRITE; a READ's piece (block limits VPD) */

/* SCSI status codes */
#define SAM_GOOD 0x00
#define SAM_CHECK_CONDITION 0x02
#define SAM_BUSY 0x08
#define SAM_TASK_SET_FULL 0x28

/* One command: the CDB in, data out (WRITE's) and data in (READ's) buffers. */
struct scsi_task {
	struct server *s;
	struct session *ss;      /* its session: layers, mode, image */
	uint64_t lun;            /* the LUN field as sent (only LUN 0 exists) */
	const uint8_t *cdb;      /* 16 bytes */
	const uint8_t *dout;     /* data the initiator sent */
	uint32_t dout_len;
	uint8_t *din;            /* room for data to the initiator */
	uint32_t din_cap;
	uint32_t din_len;        /* set: the data the command returns (may exceed din_cap) */
	uint32_t din_off;        /* READ: din holds the command's data from this byte on */
	uint8_t status;          /* set: SAM_* */
	uint8_t sense[18];       /* set: fixed-format sense with CHECK CONDITION */
	uint32_t sense_len;
	int op;                  /* set: enum metric_op for the counters */
	uint64_t bytes;          /* set: bytes read or written */
};

/* How many bytes of data the CDB will send the target (WRITE's data), -1 for
 * a CDB that sends none: the iSCSI layer collects that much. */
int64_t scsi_data_out_len(const uint8_t cdb[16]);
/* Execute the command (takes the session's io_lock itself). */
void scsi_execute(struct scsi_task *t);
/* Fill in fixed-format sense data: key, additional sense code and qualifier. */
void scsi_sense(struct scsi_task *t, uint8_t key, uint8_t asc, uint8_t ascq);

#endif
