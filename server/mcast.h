/* SPDX-License-Identifier: GPL-2.0-or-later */
/* netdiskd's multicast: config keys, groups per image, the unicast-or-group rule per READ. */
#ifndef MCAST_H
#define MCAST_H

#include <stddef.h>
#include <stdint.h>
#include "netdisk/proto.h"

enum mcast_mode { MCAST_OFF = 0, MCAST_AUTO = 1, MCAST_ALWAYS = 2 };

/* The multicast keys of the config file (docs/server.md, "Multicast"). */
struct mcast_config {
	int mode;             /* enum mcast_mode */
	uint32_t group_base;  /* first group address of the range (host order) */
	unsigned group_count; /* addresses in the range */
	unsigned port;        /* UDP port of every group */
	unsigned ttl;         /* IP_MULTICAST_TTL */
	unsigned rate_mbit;   /* cap on multicast bytes a second (Mbit/s) */
	unsigned window_ms;   /* auto: overlapping READs this close together go to the group */
	unsigned resend_ms;   /* a block the group carried this recently is not sent again */
	unsigned dgram;       /* largest group datagram; sectors per datagram follow from it */
	char iface[64];       /* IP_MULTICAST_IF: an interface name or IPv4 address; "" = routing */
};

struct server;
struct session;
struct nd_attach_req;
struct nd_attach_rep;

void mcast_config_defaults(struct mcast_config *m);
/* A global config key: 1 if it is a multicast key and was set, 0 if it is not
 * one, -1 with a message in err if its value is wrong. */
int mcast_config_key(struct mcast_config *m, const char *k, const char *v, char *err, size_t errlen);

/* Groups for every image and the send options on the UDP socket; after
 * the images are open.  0, or -1 with a message. */
int mcast_open(struct server *s, char *err, size_t errlen);
void mcast_close(struct server *s);

/* ATTACH: a client that can take multicast (caps) joins its image's group
 * when the server multicasts and may use it (logged). */
void mcast_join(struct server *s, struct session *ss, const struct nd_attach_req *req);
/* The group fields of an ATTACH or session INFO reply (zero for a non-member). */
void mcast_describe(const struct server *s, struct session *ss, struct nd_attach_rep *r);
/* The session ends or stops using the group (logged once). */
void mcast_leave(struct server *s, struct session *ss, const char *why);

/*
 * READ of `count` sectors at `lba` (`data`: what layer_read gave, the base
 * image's bytes for a member) with chunk mask `want`: 1 if its data went to
 * the group instead of the client, 0 to answer by unicast.
 */
int mcast_read(struct server *s, struct session *ss, const struct nd_hdr *h, uint64_t want,
	       const uint8_t *data);

/* Unicast reply bytes, counted by the UDP handler. */
void mcast_count_unicast(struct server *s, unsigned long long bytes);

/* The session's group as "ADDR:PORT", or "-" when it is in none (status). */
void mcast_group_text(const struct server *s, const struct session *ss, char *out, size_t outlen);
/* Members of image number `image`'s group now, and its peak (metrics). */
unsigned mcast_group_members(const struct server *s, int image, unsigned *peak);
/* The counters for the exit line: "unicast_bytes=... multicast_bytes=..." */
void mcast_stats_text(const struct server *s, char *out, size_t outlen);

#endif /* MCAST_H */
