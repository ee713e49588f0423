/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Host UDP transport for the client core (CLI and tests): the core over a connected UDP socket. */

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include "ndcommon.h"
#include "udp_host.h"

#define RCVBUF_BYTES (8 << 20) /* room for several windows of large datagrams */

int nd_udp_host_open(struct nd_udp_host *u, const char *server, char *err, size_t errlen)
{
	struct addrinfo hints = { 0 }, *ai;
	char host[256], port[8];
	unsigned portnum;
	int rc, size = RCVBUF_BYTES;

	if (nd_split_hostport(server, host, sizeof(host), &portnum, ND_DEFAULT_PORT) < 0) {
		snprintf(err, errlen, "bad server address '%s' (want HOST[:PORT])", server);
		return -1;
	}
	u->joined = 0;
	u->gfd = -1;
	u->group_foreign_src = 0;
	snprintf(port, sizeof(port), "%u", portnum);
	hints.ai_socktype = SOCK_DGRAM;
	rc = getaddrinfo(host, port, &hints, &ai);
	if (rc) {
		snprintf(err, errlen, "cannot resolve '%s': %s", host, gai_strerror(rc));
		return -1;
	}
	u->fd = socket(ai->ai_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (u->fd < 0 || connect(u->fd, ai->ai_addr, ai->ai_addrlen) < 0) {
		snprintf(err, errlen, "cannot reach %s: %s", server, strerror(errno));
		if (u->fd >= 0)
			close(u->fd);
		freeaddrinfo(ai);
		return -1;
	}
	freeaddrinfo(ai);
	setsockopt(u->fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof(size));
	setsockopt(u->fd, SOL_SOCKET, SO_SNDBUF, &size, sizeof(size));
	return 0;
}

static int host_send(void *ctx, const void *buf, unsigned len)
{
	struct nd_udp_host *u = ctx;

	/* ECONNREFUSED only says an earlier datagram found no server: retry covers it. */
	if (send(u->fd, buf, len, 0) < 0 && errno != ECONNREFUSED && errno != ENOBUFS)
		return -1;
	return 0;
}

/* One datagram from the group socket, if one waits and the server sent it:
 * its length, 0 if none, -1 on a fatal error. */
static int group_recv(struct nd_udp_host *u, void *buf, unsigned size)
{
	struct sockaddr_storage from, peer;
	socklen_t flen, plen;
	ssize_t n;

	for (;;) {
		flen = sizeof(from);
		n = recvfrom(u->gfd, buf, size, MSG_DONTWAIT, (struct sockaddr *)&from, &flen);
		if (n < 0)
			return errno == EAGAIN || errno == EINTR ? 0 : -1;
		plen = sizeof(peer);
		if (getpeername(u->fd, (struct sockaddr *)&peer, &plen) == 0 && plen == flen &&
		    !memcmp(&peer, &from, flen))
			return (int)n;
		u->group_foreign_src++; /* anyone may send to a group: only the server counts */
	}
}

static int host_recv(void *ctx, void *buf, unsigned size, uint32_t wait_ms)
{
	struct nd_udp_host *u = ctx;
	struct pollfd p[2] = { { u->fd, POLLIN, 0 }, { u->joined ? u->gfd : -1, POLLIN, 0 } };
	ssize_t n;

	for (;;) {
		n = recv(u->fd, buf, size, MSG_DONTWAIT);
		if (n >= 0)
			return (int)n;
		if (errno == EINTR || errno == ECONNREFUSED)
			continue;
		if (errno != EAGAIN)
			return -1;
		if (u->joined && (n = group_recv(u, buf, size)) != 0)
			return (int)n;
		if (!wait_ms)
			return 0;
		if (poll(p, 2, (int)wait_ms) == 0)
			return 0;
		wait_ms = 0; /* one wait; then take what arrived, or report none */
	}
}

int nd_udp_host_join(struct nd_udp_host *u, const uint8_t addr[4], uint16_t port, char *err,
		     size_t errlen)
{
	struct sockaddr_in self, g = { .sin_family = AF_INET };
	socklen_t len = sizeof(self);
	struct ip_mreqn mr;
	int one = 1, size = RCVBUF_BYTES;
	char a[INET_ADDRSTRLEN];

	memset(&mr, 0, sizeof(mr));
	memcpy(&g.sin_addr, addr, 4);
	g.sin_port = htons(port);
	inet_ntop(AF_INET, addr, a, sizeof(a));
	if (getsockname(u->fd, (struct sockaddr *)&self, &len) < 0 || self.sin_family != AF_INET) {
		snprintf(err, errlen, "multicast group %s:%u: the server is not reached over IPv4", a,
			 port);
		return -1;
	}
	mr.imr_multiaddr = g.sin_addr;
	mr.imr_address = self.sin_addr; /* the interface toward the server */
	u->gfd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (u->gfd < 0 ||
	    setsockopt(u->gfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    bind(u->gfd, (struct sockaddr *)&g, sizeof(g)) < 0 ||
	    setsockopt(u->gfd, IPPROTO_IP, IP_ADD_MEMBERSHIP, &mr, sizeof(mr)) < 0) {
		snprintf(err, errlen, "multicast group %s:%u: socket/bind/IP_ADD_MEMBERSHIP: %s", a,
			 port, strerror(errno));
		if (u->gfd >= 0)
			close(u->gfd);
		u->gfd = -1;
		return -1;
	}
	setsockopt(u->gfd, SOL_SOCKET, SO_RCVBUF, &size, sizeof(size));
	memcpy(u->group, addr, 4);
	memcpy(u->local, &self.sin_addr, 4);
	u->joined = 1;
	return 0;
}

void nd_udp_host_leave(struct nd_udp_host *u)
{
	struct ip_mreqn mr;

	if (!u->joined)
		return;
	memset(&mr, 0, sizeof(mr));
	memcpy(&mr.imr_multiaddr, u->group, 4);
	memcpy(&mr.imr_address, u->local, 4);
	if (setsockopt(u->gfd, IPPROTO_IP, IP_DROP_MEMBERSHIP, &mr, sizeof(mr)) < 0)
		fprintf(stderr, "netdisk: leaving the multicast group: setsockopt "
			"IP_DROP_MEMBERSHIP: %s\n", strerror(errno));
	close(u->gfd);
	u->gfd = -1;
	u->joined = 0;
}

static uint32_t host_now_ms(void *ctx)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint32_t)(ts.tv_sec * 1000u + ts.tv_nsec / 1000000);
}

void nd_udp_host_transport(struct nd_udp_host *u, struct nd_transport *tp)
{
	tp->ctx = u;
	tp->send = host_send;
	tp->recv = host_recv;
	tp->now_ms = host_now_ms;
}

void nd_udp_host_close(struct nd_udp_host *u)
{
	nd_udp_host_leave(u);
	if (u->fd >= 0)
		close(u->fd);
	u->fd = -1;
}
