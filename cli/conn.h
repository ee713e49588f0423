/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The CLI's connection to a server, shared by its commands (netdisk.c) and the storm simulator (storm.c). */
#ifndef ND_CLI_CONN_H
#define ND_CLI_CONN_H

#include <stddef.h>
#include <stdint.h>
#include "ndclient.h"
#include "group.h"
#include "udp_host.h"

/* Options shared by every command that talks to a server. */
struct opts {
	const char *image;
	uint8_t mac[6];
	int have_mac;
	unsigned dgram;
	unsigned window;
	unsigned timeout_s;
	int detach;           /* end the session when done */
	int multicast;        /* offer to take READ data from a multicast group */
	size_t mc_cache;      /* bytes of group cache */
	unsigned mc_timeout_ms; /* a cached group block lives this long */
	int shared_group;     /* the group cache, but no group socket: the caller
			       * (storm --one-process) feeds group datagrams itself */
	const uint8_t *key;   /* --key: sign ATTACH with this site (or admin) key, or NULL */
};

/* Everything a connected command holds. */
struct conn {
	struct nd_udp_host udp;
	struct nd_client c;
	uint8_t *tx, *rx;
	int detach;
	struct nd_group group;  /* the multicast group cache, if joined */
	void *cache;
};

void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
unsigned long long parse_number(const char *what, const char *s);
const char *err_text(struct nd_client *c, int rc);
double seconds_now(void);
/* Open, attach (and join the group with o->multicast); dies on failure. */
void connect_server(struct conn *k, const char *server, const struct opts *o);
/* Leave the group, detach (unless --keep), close. */
void disconnect(struct conn *k);

/* netdisk storm (storm.c). */
struct storm_opts {
	unsigned clients;
	int no_times;         /* replay as fast as possible */
	double speed;         /* replay the trace's times this many times faster */
	const char *verify;   /* image file to compare every read with */
	int one_process;      /* clients are threads sharing one group socket */
};
int cmd_storm(const char *server, const char *trace, const struct storm_opts *so,
	      const struct opts *o);

#endif
