/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Portable netdisk client core: sessions, windowed reads, retransmission (freestanding). */
#ifndef NDCLIENT_H
#define NDCLIENT_H

/*
 * The same source is compiled for real mode (bios/), UEFI (efi/) and the host
 * (cli/, tests/, linux/).  It needs only <stdint.h>, <stddef.h> and the
 * environment's memcpy/memset.  Everything that touches a network, a clock or
 * the caller's memory goes through the callbacks below, so firmware code stays
 * a thin layer of PXE, INT 13h or BlockIo calls.
 */

#include <stddef.h>
#include <stdint.h>
#include "netdisk/proto.h"

/* Results of the nd_* calls: 0 or a negative code. */
enum nd_result {
	ND_DONE = 0,
	ND_E_TIMEOUT = -1,  /* gave up waiting for the server */
	ND_E_TRANSPORT = -2, /* the transport failed to send */
	ND_E_PROTO = -3,    /* the server answered with nonsense */
	ND_E_ARG = -4,      /* bad arguments from the caller */
	ND_E_STATUS = -5,   /* the server answered with an error: see last_status */
};

/* How a client moves datagrams and tells time. */
struct nd_transport {
	void *ctx;
	/* Send one datagram to the server.  0 on success, negative on failure. */
	int (*send)(void *ctx, const void *buf, unsigned len);
	/* Wait up to wait_ms for one datagram from the server: its length,
	 * 0 if none came, negative on a fatal error.  wait_ms 0 polls once. */
	int (*recv)(void *ctx, void *buf, unsigned size, uint32_t wait_ms);
	/* A millisecond clock; only differences are used, so it may wrap. */
	uint32_t (*now_ms)(void *ctx);
};

/* Events reported to the environment so it can show what is happening. */
enum nd_event {
	ND_EV_RETRY = 1,     /* no answer yet; arg = milliseconds waited so far */
	ND_EV_RECOVERED = 2, /* the server answers again after ND_EV_RETRY */
	/* From the stub policy (policy.h): */
	ND_EV_PROBE_LOST = 3,   /* the granted datagrams got lost; arg = ladder step tried next */
	ND_EV_SESSION_LOST = 4, /* the server lost the session; arg = enum nd_recovery */
	ND_EV_REATTACHED = 5,   /* a new session replaces the lost one (new token) */
};

/* Where read data goes and write data comes from: offset is the byte offset
 * within the nd_read/nd_write call.  Firmware copies to/from far memory here. */
typedef void (*nd_put_fn)(void *ctx, uint32_t offset, const void *data, unsigned len);
typedef void (*nd_get_fn)(void *ctx, uint32_t offset, void *data, unsigned len);

#define ND_MAX_INFLIGHT 4 /* READ requests one client keeps in flight */

struct nd_client;
struct nd_slot;
struct nd_group;

/*
 * The multicast group cache's entry points (client/group.h sets them with
 * nd_group_attach).  The core calls them only through these pointers, so a
 * build without multicast (the stubs today) links none of that code.
 */
struct nd_group_hooks {
	/* rxbuf holds a datagram of len bytes flagged ND_FLAG_MCAST: check it
	 * and cache it.  1 if it brought sectors new to the cache. */
	int (*take)(struct nd_client *c, int len);
	/* Hand to put() every chunk of the slot still missing that the cache
	 * holds whole; returns those chunks' mask. */
	uint64_t (*fill)(struct nd_client *c, struct nd_slot *s, nd_put_fn put, void *ctx);
	/* The client writes [lba, lba + count): never take it from the group. */
	void (*wrote)(struct nd_client *c, uint64_t lba, uint32_t count);
};

/* One READ request in flight. */
struct nd_slot {
	uint32_t id;       /* request id */
	uint64_t lba;      /* first sector */
	uint32_t count;    /* sectors */
	uint32_t base;     /* byte offset of this request within the nd_read call */
	uint64_t missing;  /* chunks not yet received (bit i = chunk i) */
	uint32_t sent_ms;  /* when it was last sent */
	uint32_t rto_ms;   /* its current retransmission timeout */
	uint8_t busy;      /* slot in use */
	uint8_t resent;    /* retransmitted at least once (no RTT sample) */
	uint8_t ahead;     /* requested ahead: no nd_read has taken it yet */
};

/* Settings the environment fills before nd_attach; nd_client_init sets defaults. */
struct nd_config {
	uint8_t mac[6];          /* this client's hardware address */
	uint8_t client_kind;     /* enum nd_client_kind */
	uint16_t max_dgram;      /* largest datagram this client can receive */
	uint16_t window;         /* data datagrams it can absorb in flight */
	uint32_t caps;           /* ND_CAP_* */
	uint32_t nonce;          /* random per boot */
	const uint8_t *key;      /* the site key (ND_KEY_LEN bytes), or NULL: ATTACH unkeyed */
	uint32_t rto_min_ms;     /* smallest retransmission timeout */
	uint32_t rto_max_ms;     /* largest retransmission timeout (backoff cap) */
	uint32_t give_up_ms;     /* stop retrying after this long; 0 = never */
	void (*event)(void *ctx, int event, uint32_t arg); /* may be NULL */
	void *event_ctx;
};

/* A client session. */
struct nd_client {
	struct nd_transport tp;
	struct nd_config cfg;
	uint8_t *txbuf;          /* cfg.max_dgram bytes, supplied by the environment */
	uint8_t *rxbuf;          /* cfg.max_dgram bytes, supplied by the environment */
	uint8_t token[16];       /* session token from ATTACH */
	uint32_t next_id;        /* next request id */
	/* What the server granted at ATTACH. */
	uint64_t sectors;
	uint8_t mode;
	uint16_t window;
	uint16_t chunk;
	uint16_t dgram;
	uint32_t max_sectors;
	uint32_t handoff;        /* ND_HANDOFF_*: e.g. the server personalized this view */
	char image[ND_IMAGE_NAME_LEN + 1];
	/* The multicast group ATTACH offered (docs/protocol.md, "Multicast"). */
	uint8_t mc_addr[4];      /* IPv4 group, 0.0.0.0: none offered */
	uint16_t mc_port;
	uint16_t mc_sectors;     /* sectors per group block */
	uint16_t mc_hold_ms;     /* the server's hold-back of a group block (ATTACH) */
	uint8_t mc_stream[8];    /* the stream every group datagram must carry */
	const struct nd_group_hooks *gh; /* the group cache in use, or NULL */
	struct nd_group *group;
	/* Retransmission state (Jacobson/Karels, in milliseconds). */
	uint32_t srtt_ms;
	uint32_t rttvar_ms;
	uint8_t retrying;        /* an ND_EV_RETRY was reported and not yet cleared */
	uint16_t last_status;    /* status of the last error reply */
	struct nd_slot slot[ND_MAX_INFLIGHT];
	/* Counters, for benchmarks and tests. */
	uint32_t retransmits;
	uint32_t stray;          /* datagrams that matched nothing in flight */
	uint32_t ahead_taken;    /* sectors a read found already requested ahead */
	uint32_t writes;         /* WRITEs the server acknowledged in this session */
};

/* Set defaults (window, timeouts, datagram size) and attach buffers. */
void nd_client_init(struct nd_client *c, const struct nd_transport *tp,
		    uint8_t *txbuf, uint8_t *rxbuf, uint16_t bufsize);

/* Open a session on `image` (NULL or "" lets the server choose). */
int nd_attach(struct nd_client *c, const char *image);

/* Read `count` sectors at `lba`; data is handed to put() as it arrives. */
int nd_read(struct nd_client *c, uint64_t lba, uint32_t count, nd_put_fn put, void *ctx);

/*
 * nd_read, and once its own requests are out, also request the `ahead`
 * sectors that follow it (as many as the window has room for): the next
 * call of a sequential reader, whose replies then arrive while the caller
 * works on this call's data.  They wait in the transport (a NIC's receive
 * ring) until a read starting right after this one takes them over.  A
 * read elsewhere or any other request drops them, and their replies are
 * then ignored, so data written in between is never read stale.  Only for
 * a transport that keeps datagrams while nobody polls it.
 */
int nd_read_ahead(struct nd_client *c, uint64_t lba, uint32_t count, uint32_t ahead,
		  nd_put_fn put, void *ctx);

/* Write `count` sectors at `lba`; returns once the server acknowledged all. */
int nd_write(struct nd_client *c, uint64_t lba, uint32_t count, nd_get_fn get, void *ctx);

/* nd_write, one call per piece of at most `piece` sectors (0: one call),
 * for a transport that cannot send what one nd_write would: datagrams it
 * would have to fragment, bursts longer than its transmit ring. */
int nd_write_pieces(struct nd_client *c, uint64_t lba, uint32_t count, uint32_t piece,
		    nd_get_fn get, void *ctx);

/* Make every acknowledged write durable on the server. */
int nd_flush(struct nd_client *c);

/* End the session. */
int nd_detach(struct nd_client *c);

/* Ask for the session's iBFT (ND_OP_IBFT; the server sets ND_HANDOFF_ISCSI
 * when it has one) with the NIC's facts: its length, the table checked
 * (signature, length, checksum) at c->rxbuf + ND_HDR_SIZE until the next
 * request; or an nd_result code (ND_E_STATUS: the server refused). */
int nd_ibft(struct nd_client *c, const struct nd_ibft_req *req);

/* Where a client is on the network, for the boot table.  Addresses are IPv4
 * in network order; NBD is served on the same port number over TCP. */
struct nd_netfacts {
	uint8_t mac[6];
	uint8_t ip[4];
	uint8_t netmask[4];
	uint8_t gateway[4];
	uint8_t server[4];
	uint16_t port;
};

struct nd_boot_table;

/* Fill and seal the boot table (docs/handoff.md) that hands this session to
 * the OS; firmware is ND_BT_FW_BIOS, ND_BT_FW_EFI or 0 for a host tool. */
void nd_boot_table(const struct nd_client *c, uint8_t firmware, const struct nd_netfacts *n,
		   struct nd_boot_table *t);

/* Short English text for an nd_status code (for messages on screen). */
const char *nd_status_text(unsigned status);
/* The reason text the last error reply carried (ND_ERR_PERSONA) as ": TEXT",
 * made printable and NUL-terminated in rxbuf; "" if none (to print after
 * nd_status_text).  Valid until the next request. */
const char *nd_status_reason(struct nd_client *c);

/* The 4-byte id of a site key (the first bytes of its SHA-256), as the ATTACH
 * authenticator carries it: the server tells the site key from the admin key. */
void nd_key_id(const uint8_t key[ND_KEY_LEN], uint8_t id[4]);

/* Short English text for an nd_result code. */
const char *nd_result_text(int rc);

#endif /* NDCLIENT_H */
