/* Host UDP transport for the client core (CLI and tests): the core over a connected UDP socket. */
#ifndef UDP_HOST_H
#define UDP_HOST_H

#include <stddef.h>
#include "ndclient.h"

struct nd_udp_host {
	int fd; /* UDP socket connected to the server */
};

/* Connect to "HOST[:PORT]" ("[V6ADDR]:PORT" for IPv6).  0, or -1 with a
 * message in err. */
int nd_udp_host_open(struct nd_udp_host *u, const char *server, char *err, size_t errlen);

/* Fill a transport that sends and receives through u. */
void nd_udp_host_transport(struct nd_udp_host *u, struct nd_transport *tp);

void nd_udp_host_close(struct nd_udp_host *u);

#endif /* UDP_HOST_H */
