/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Host UDP transport for the client core (CLI and tests): the core over a connected UDP socket. */
#ifndef UDP_HOST_H
#define UDP_HOST_H

#include <stddef.h>
#include "ndclient.h"

struct nd_udp_host {
	int fd; /* UDP socket connected to the server */
	/* The multicast group, once joined (nd_udp_host_join). */
	int joined;
	int gfd;                 /* bound to the group's address and port */
	uint8_t group[4];
	uint8_t local[4];        /* the interface address it was joined on */
	unsigned long group_foreign_src; /* group datagrams not from the server: dropped */
};

/* Connect to "HOST[:PORT]" ("[V6ADDR]:PORT" for IPv6).  0, or -1 with a
 * message in err. */
int nd_udp_host_open(struct nd_udp_host *u, const char *server, char *err, size_t errlen);

/* Fill a transport that sends and receives through u. */
void nd_udp_host_transport(struct nd_udp_host *u, struct nd_transport *tp);

/* Join the IPv4 multicast group ADDR:PORT (IP_ADD_MEMBERSHIP) on the
 * interface that reaches the server; its datagrams then come through the
 * transport's recv, those not from the server's address and port dropped.
 * 0, or -1 with a message naming the call and errno. */
int nd_udp_host_join(struct nd_udp_host *u, const uint8_t addr[4], uint16_t port, char *err,
		     size_t errlen);

/* Leave the group (IP_DROP_MEMBERSHIP); nd_udp_host_close does it too. */
void nd_udp_host_leave(struct nd_udp_host *u);

void nd_udp_host_close(struct nd_udp_host *u);

#endif /* UDP_HOST_H */
