/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Listening sockets for netdiskd: UDP for the netdisk protocol, TCP for NBD. */

#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include "netdiskd.h"
#include "udp_host.h"

/* A socket of `socktype` bound to "ADDR:PORT"; the fd, or -1 with err set. */
int listen_socket(const char *listen, int socktype, char *err, size_t errlen)
{
	struct addrinfo hints = { 0 }, *ai;
	char host[256], port[8];
	unsigned portnum;
	int fd, rc, one = 1;

	if (nd_split_hostport(listen, host, sizeof(host), &portnum, ND_DEFAULT_PORT) < 0) {
		snprintf(err, errlen, "bad listen address '%s' (want ADDR:PORT)", listen);
		return -1;
	}
	snprintf(port, sizeof(port), "%u", portnum);
	hints.ai_socktype = socktype;
	hints.ai_flags = AI_PASSIVE | AI_NUMERICHOST;
	rc = getaddrinfo(host, port, &hints, &ai);
	if (rc) {
		snprintf(err, errlen, "bad listen address '%s': %s", listen, gai_strerror(rc));
		return -1;
	}
	fd = socket(ai->ai_family, socktype | SOCK_CLOEXEC, 0);
	if (fd >= 0)
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (fd < 0 || bind(fd, ai->ai_addr, ai->ai_addrlen) < 0) {
		snprintf(err, errlen, "cannot listen on %s (%s): %s", listen,
			 socktype == SOCK_DGRAM ? "UDP" : "TCP", strerror(errno));
		if (fd >= 0)
			close(fd);
		fd = -1;
	}
	freeaddrinfo(ai);
	return fd;
}
