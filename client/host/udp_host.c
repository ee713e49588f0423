/* Host UDP transport for the client core (CLI and tests): the core over a connected UDP socket. */

#include <errno.h>
#include <netdb.h>
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

static int host_recv(void *ctx, void *buf, unsigned size, uint32_t wait_ms)
{
	struct nd_udp_host *u = ctx;
	struct pollfd p = { u->fd, POLLIN, 0 };
	ssize_t n;

	for (;;) {
		n = recv(u->fd, buf, size, MSG_DONTWAIT);
		if (n >= 0)
			return (int)n;
		if (errno == EINTR || errno == ECONNREFUSED)
			continue;
		if (errno != EAGAIN)
			return -1;
		if (!wait_ms)
			return 0;
		if (poll(&p, 1, (int)wait_ms) == 0)
			return 0;
		wait_ms = 0; /* one wait; then take what arrived, or report none */
	}
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
	if (u->fd >= 0)
		close(u->fd);
	u->fd = -1;
}
