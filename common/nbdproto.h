/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The NBD protocol (fixed newstyle handshake, simple replies) as netdiskd's
 * NBD server (server/nbd.c) and the Linux agent's handshake
 * (linux/agent/nbd.c) speak it; values from the NBD protocol document. */
#ifndef ND_NBDPROTO_H
#define ND_NBDPROTO_H

#define NBD_MAGIC 0x4e42444d41474943ull       /* "NBDMAGIC" */
#define NBD_OPT_MAGIC 0x49484156454f5054ull   /* "IHAVEOPT" */
#define NBD_REP_MAGIC 0x3e889045565a9ull
#define NBD_REQUEST_MAGIC 0x25609513u
#define NBD_SIMPLE_REPLY_MAGIC 0x67446698u

/* Handshake flags (server) and client flags. */
#define NBD_FLAG_FIXED_NEWSTYLE 0x1
#define NBD_FLAG_NO_ZEROES 0x2
#define NBD_FLAG_C_FIXED_NEWSTYLE 0x1
#define NBD_FLAG_C_NO_ZEROES 0x2

enum { NBD_OPT_EXPORT_NAME = 1, NBD_OPT_ABORT = 2, NBD_OPT_LIST = 3, NBD_OPT_STARTTLS = 5,
       NBD_OPT_INFO = 6, NBD_OPT_GO = 7 };
enum { NBD_REP_ACK = 1, NBD_REP_SERVER = 2, NBD_REP_INFO = 3 };
#define NBD_REP_ERR_UNSUP 0x80000001u
#define NBD_REP_ERR_POLICY 0x80000002u
#define NBD_REP_ERR_INVALID 0x80000003u
#define NBD_REP_ERR_UNKNOWN 0x80000006u
#define NBD_REP_ERR_TLS_REQD 0x80000005u
enum { NBD_INFO_EXPORT = 0, NBD_INFO_NAME = 1, NBD_INFO_BLOCK_SIZE = 3 };
/* netdisk's own: the session's write-cache setting as text (docs/protocol.md);
 * sent only to a client that asks for it in NBD_OPT_GO/INFO. */
#define NBD_INFO_ND_WRITE_CACHE 0x4e44
/* ... and the image version the session reads: u32 version number, u64 id
 * (changes whenever the content under the session's own overlay does), the
 * image name (docs/protocol.md).  The agent's persistent disk tier checks it. */
#define NBD_INFO_ND_IMAGE 0x4e45

/* Transmission flags of an export. */
#define NBD_FLAG_HAS_FLAGS (1 << 0)
#define NBD_FLAG_READ_ONLY (1 << 1)
#define NBD_FLAG_SEND_FLUSH (1 << 2)
#define NBD_FLAG_SEND_FUA (1 << 3)
#define NBD_FLAG_SEND_TRIM (1 << 5)
#define NBD_FLAG_SEND_WRITE_ZEROES (1 << 6)
#define NBD_FLAG_CAN_MULTI_CONN (1 << 8)

enum { NBD_CMD_READ = 0, NBD_CMD_WRITE = 1, NBD_CMD_DISC = 2, NBD_CMD_FLUSH = 3,
       NBD_CMD_TRIM = 4, NBD_CMD_WRITE_ZEROES = 6 };
#define NBD_CMD_FLAG_FUA (1 << 0)

/* Error values in replies. */
enum { NBD_EPERM = 1, NBD_EIO = 5, NBD_ENOMEM = 12, NBD_EINVAL = 22, NBD_ENOSPC = 28,
       NBD_ENOTSUP = 95 };

#endif /* ND_NBDPROTO_H */
