/* SPDX-License-Identifier: GPL-2.0-or-later */
/* netdisk wire protocol, version 1: the one definition of every datagram (freestanding). */
#ifndef NETDISK_PROTO_H
#define NETDISK_PROTO_H

/*
 * This header is shared by the real-mode BIOS stub (gcc -m16 -ffreestanding),
 * the UEFI stub (gnu-efi), the server and the host tools.  It uses nothing but
 * <stdint.h>, which every freestanding compiler provides.
 *
 * Every multi-byte field on the wire is big-endian (network byte order).  The
 * structures below hold wire bytes: read and write their fields only through
 * nd_get16/32/64 and nd_put16/32/64.  docs/protocol.md is the prose version.
 */

#include <stdint.h>

#define ND_MAGIC 0x4E44534Bu /* "NDSK" */
#define ND_VERSION 1
#define ND_DEFAULT_PORT 10809 /* UDP for this protocol, TCP for NBD */
#define ND_SECTOR_SIZE 512

#define ND_HDR_SIZE 48
#define ND_DEFAULT_DGRAM 1472 /* largest UDP payload in a 1500-byte Ethernet frame */
#define ND_MIN_DGRAM 576      /* smallest datagram size a client may ask for */
#define ND_MAX_DGRAM 65024    /* largest datagram size ever negotiated */
#define ND_MAX_CHUNKS 64      /* data datagrams one READ/WRITE may span (mask width) */
#define ND_IMAGE_NAME_LEN 64  /* NUL-padded image/export name field */

/* Opcodes (header.opcode).  A reply carries the request's opcode and ND_FLAG_REPLY. */
enum nd_opcode {
	ND_OP_ATTACH = 1, /* open a session on an image */
	ND_OP_DETACH = 2, /* end a session */
	ND_OP_INFO = 3,   /* server or session information; also a keep-alive */
	ND_OP_READ = 4,   /* read sectors; answered by a burst of data datagrams */
	ND_OP_WRITE = 5,  /* write sectors; sent as a burst of data datagrams */
	ND_OP_FLUSH = 6,  /* make every acknowledged write durable */
	ND_OP_IBFT = 7,   /* the session's iBFT, built by the server (ND_HANDOFF_ISCSI) */
};

/* Header flags (header.flags). */
#define ND_FLAG_REPLY 0x01 /* datagram goes server -> client */
#define ND_FLAG_MCAST 0x02 /* with REPLY: READ data the server sent to a multicast group */
#define ND_FLAG_RETRY 0x04 /* in a READ: a retransmission (the server repairs by unicast) */
#define ND_FLAG_UNICAST 0x08 /* in a READ: answer by unicast (offered a group, not in it yet) */

/* Most sectors one multicast group datagram carries (its present-mask width). */
#define ND_MC_MAX_SECTORS 32

/* Status codes (header.status), meaningful in replies. */
enum nd_status {
	ND_OK = 0,
	ND_ERR_VERSION = 1,  /* unsupported version; reply carries the server's */
	ND_ERR_OPCODE = 2,   /* unknown opcode */
	ND_ERR_SESSION = 3,  /* unknown or ended session token */
	ND_ERR_RANGE = 4,    /* LBA/count outside the image or over the limits */
	ND_ERR_DENIED = 5,   /* client not allowed (allow-list, no image for it) */
	ND_ERR_BUSY = 6,     /* image held by a direct-mode writer, or writer refused */
	ND_ERR_NOIMAGE = 7,  /* the named image does not exist */
	ND_ERR_IO = 8,       /* server-side I/O error */
	ND_ERR_INVAL = 9,    /* malformed request */
	ND_ERR_READONLY = 10, /* write to a read-only session */
	ND_ERR_NOSPACE = 11, /* the server has no space left for this session's writes */
	ND_ERR_AUTH = 12,    /* ATTACH needs the site key: header.token carries a challenge */
	ND_ERR_PERSONA = 13  /* ATTACH: this client's personalization cannot be built; the
				reply's payload may carry the reason (text, no NUL) */
};

/* Write modes (attach reply .mode). */
enum nd_mode {
	ND_MODE_DIRECT = 1,     /* writes go into the image; one writer at a time */
	ND_MODE_VOLATILE = 2,   /* per-client overlay, discarded at the next ATTACH */
	ND_MODE_PERSISTENT = 3, /* per-client overlay kept across reboots */
	ND_MODE_READONLY = 4,   /* reads only; writes get ND_ERR_READONLY */
};

/* A write mode's name, as the server's --mode and config file spell it (host
 * tools parse it back with nd_mode_parse, common/ndcommon.h). */
static inline const char *nd_mode_text(unsigned mode)
{
	switch (mode) {
	case ND_MODE_DIRECT: return "direct";
	case ND_MODE_VOLATILE: return "volatile";
	case ND_MODE_PERSISTENT: return "persistent";
	case ND_MODE_READONLY: return "readonly";
	default: return "unknown";
	}
}

/* Who is attaching (attach request .client_kind), for logs and policy. */
enum nd_client_kind {
	ND_KIND_UNKNOWN = 0,
	ND_KIND_BIOS = 1,
	ND_KIND_EFI = 2,
	ND_KIND_LINUX = 3,
	ND_KIND_TOOL = 4,
};

/* Client capability bits (attach request .caps). */
#define ND_CAP_MULTICAST 0x00000001u /* can receive READ data by multicast */
#define ND_CAP_BOOT_TABLE 0x00000002u /* publishes the boot table (docs/handoff.md) */
#define ND_CAP_IBFT 0x00000004u       /* publishes an iBFT when told to (ND_OP_IBFT) */

/* Every datagram starts with this header. */
struct nd_hdr {
	uint8_t magic[4];   /* ND_MAGIC */
	uint8_t version;    /* ND_VERSION */
	uint8_t opcode;     /* enum nd_opcode */
	uint8_t flags;      /* ND_FLAG_* */
	uint8_t reserved;   /* zero */
	uint8_t req_id[4];  /* chosen by the client, echoed; increases per session */
	uint8_t status[2];  /* enum nd_status (replies) */
	uint8_t data_len[2]; /* payload bytes after the header */
	uint8_t token[16];  /* session token; zero for ATTACH and server INFO */
	uint8_t lba[8];     /* first sector of the request */
	uint8_t count[4];   /* sectors in the request */
	uint8_t offset[4];  /* byte offset of this datagram's payload in the request */
} __attribute__((packed));

/* ATTACH request payload. */
struct nd_attach_req {
	uint8_t mac[6];        /* client hardware address */
	uint8_t client_kind;   /* enum nd_client_kind */
	uint8_t reserved0;
	uint8_t max_dgram[2];  /* largest datagram the client can receive */
	uint8_t window[2];     /* data datagrams the client can absorb in flight */
	uint8_t caps[4];       /* ND_CAP_* */
	uint8_t nonce[4];      /* random per boot: makes a retried ATTACH idempotent */
	uint8_t reserved1[4];
	char image[ND_IMAGE_NAME_LEN]; /* requested image, or empty for the server's choice */
} __attribute__((packed));

/* ATTACH request payload as sent: the request, zero-padded to the reply's
 * size, so an ATTACH reply is never bigger than its request (no amplification). */
#define ND_ATTACH_REQ_LEN 128

/*
 * The site-key authenticator (docs/protocol.md, "Site key"): the last 40
 * bytes of the padded ATTACH, where an unkeyed client sends zeros.  The
 * request's header.token carries the challenge the server sent in its AUTH
 * reply (zeros on the first try).  hmac is HMAC-SHA256 with the site key
 * over the datagram's first ND_AUTH_SIGNED bytes: the header (challenge
 * included), the 88-byte request, magic and key_id.
 */
#define ND_AUTH_MAGIC 0x4E44414Bu /* "NDAK" */
#define ND_AUTH_OFFSET 88         /* of the trailer in the ATTACH payload */
#define ND_AUTH_SIGNED (ND_HDR_SIZE + ND_AUTH_OFFSET + 8)
#define ND_KEY_LEN 32             /* a site key is 32 bytes (64 hex digits) */

struct nd_auth_trailer {
	uint8_t magic[4];   /* ND_AUTH_MAGIC */
	uint8_t key_id[4];  /* first 4 bytes of SHA-256(key): which key (site or admin) */
	uint8_t hmac[32];
} __attribute__((packed));

/* ATTACH reply payload; also the INFO reply for a session. */
struct nd_attach_rep {
	uint8_t sectors[8];     /* image size in sectors */
	uint8_t sector_size[4]; /* always ND_SECTOR_SIZE in version 1 */
	uint8_t mode;           /* enum nd_mode */
	uint8_t reserved0;
	uint8_t window[2];      /* data datagrams the client may have in flight */
	uint8_t chunk[2];       /* payload bytes in each data datagram but the last */
	uint8_t max_dgram[2];   /* negotiated datagram size */
	uint8_t max_sectors[4]; /* most sectors one READ or WRITE may ask for */
	uint8_t reserved1[8];
	uint8_t mcast_addr[4];  /* IPv4 multicast group READ data may come from, 0 = none */
	uint8_t mcast_port[2];  /* its UDP port */
	uint8_t mcast_sectors[2]; /* sectors per group block: no group datagram spans two */
	uint8_t handoff[4];     /* ND_HANDOFF_*: the session's view is personalized, ... */
	uint8_t mcast_stream[8]; /* the group stream's identity (image and its version): every
				  * group datagram carries it in token[0..7], zeros after */
	uint8_t mcast_hold[2];  /* ms the server holds back a block it sent to the group: a member
				 * keeps every group block at least this long after it came
				 * (0: an older server; the member's own timeout applies) */
	uint8_t reserved3[10];
	char image[ND_IMAGE_NAME_LEN]; /* name of the image attached */
} __attribute__((packed));

/* The handoff word of the ATTACH (and session INFO) reply. */
#define ND_HANDOFF_PERSONALIZED 0x00000001u /* bit 0: the server personalized this view */
#define ND_HANDOFF_ISCSI 0x00000002u        /* bit 1: the OS takes over by iSCSI (takeover =
						     * iscsi): ask ND_OP_IBFT for the iBFT */
#define ND_HANDOFF_LAYER_SHIFT 8            /* bits 8..31: its layer id (24 bits of it) */

/*
 * ND_OP_IBFT request payload: what the stub knows of the NIC the OS will
 * take the disk over on.  The reply's payload is a whole iBFT (netdisk/ibft.h),
 * checksum included, at most ND_IBFT_MAX bytes: the stub only copies it.
 * Addresses IPv4 in network order, pci_bdf big-endian (bus << 8 | dev << 3 | fn).
 */
struct nd_ibft_req {
	uint8_t ip[4];
	uint8_t server[4];   /* the address the stub reaches netdiskd at */
	uint8_t netmask[4];
	uint8_t gateway[4];  /* 0 = none */
	uint8_t dhcp[4];     /* the DHCP server that gave the address, 0 = none */
	uint8_t dns[4];      /* 0 = none */
	uint8_t mac[6];
	uint8_t pci_bdf[2];  /* the NIC's PCI location, 0 = unknown */
} __attribute__((packed));

#define ND_IBFT_MAX 1024 /* bytes of an iBFT the server sends and the stubs keep */

/* INFO reply payload without a session: what the server speaks. */
struct nd_server_info {
	uint8_t version_min;
	uint8_t version_max;
	uint8_t reserved[2];
	uint8_t sessions[4];  /* sessions open */
	char server[24];      /* "netdiskd <version>" */
} __attribute__((packed));

_Static_assert(sizeof(struct nd_hdr) == ND_HDR_SIZE, "header is 48 bytes");
_Static_assert(sizeof(struct nd_attach_req) == 88, "attach request is 88 bytes");
_Static_assert(sizeof(struct nd_attach_rep) == 128, "attach reply is 128 bytes");
_Static_assert(sizeof(struct nd_server_info) == 32, "server info is 32 bytes");
_Static_assert(sizeof(struct nd_ibft_req) == 32, "iBFT request is 32 bytes");
_Static_assert(ND_ATTACH_REQ_LEN == sizeof(struct nd_attach_rep), "ATTACH is padded to its reply");
_Static_assert(ND_AUTH_OFFSET + sizeof(struct nd_auth_trailer) == ND_ATTACH_REQ_LEN,
	       "the authenticator fills the ATTACH padding");

/* Explicit big-endian accessors: no alignment or host byte-order assumptions. */
static inline uint16_t nd_get16(const uint8_t *p)
{
	return (uint16_t)((p[0] << 8) | p[1]);
}

static inline uint32_t nd_get32(const uint8_t *p)
{
	return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) |
	       ((uint32_t)p[2] << 8) | p[3];
}

static inline uint64_t nd_get64(const uint8_t *p)
{
	return ((uint64_t)nd_get32(p) << 32) | nd_get32(p + 4);
}

static inline void nd_put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static inline void nd_put32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

static inline void nd_put64(uint8_t *p, uint64_t v)
{
	nd_put32(p, (uint32_t)(v >> 32));
	nd_put32(p + 4, (uint32_t)v);
}

/*
 * What logs and screens show instead of a session token (the session's only
 * capability, never shown): 32 bits of FNV-1a over it, printed as 8 hex
 * digits.  It tells sessions apart and matches a stub's screen to the
 * server's log without revealing anything that opens the session.
 */
static inline uint32_t nd_token_fingerprint(const uint8_t token[16])
{
	uint32_t h = 2166136261u;
	unsigned i;

	for (i = 0; i < 16; i++)
		h = (h ^ token[i]) * 16777619u;
	return h;
}

/* Request ids compare as serial numbers, so they may wrap around. */
static inline int nd_id_newer(uint32_t a, uint32_t b)
{
	return (int32_t)(a - b) > 0;
}

/* Chunk payload for a negotiated datagram size: what the header leaves. */
static inline uint16_t nd_chunk_for_dgram(uint16_t dgram)
{
	return (uint16_t)(dgram - ND_HDR_SIZE);
}

/* Data datagrams a request of `bytes` spans with `chunk`-byte payloads. */
static inline uint32_t nd_chunks_for(uint32_t bytes, uint16_t chunk)
{
	return (bytes + chunk - 1) / chunk;
}

#endif /* NETDISK_PROTO_H */
