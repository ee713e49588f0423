/* SPDX-License-Identifier: GPL-2.0-or-later */
/* What the server fuzzers share: a netdiskd serving a 1 MiB volatile image,
 * and a byte stream fed to a connection handler (NBD, iSCSI) over a
 * socketpair, with the answers read and dropped. */
#ifndef FUZZ_SERVER_H
#define FUZZ_SERVER_H

#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include "netdiskd.h"

/* Make the image (image_path: a mkstemp template) and open the server on it,
 * as image "fuzz"; exits on failure. */
static inline void fuzz_server_open(struct server *srv, char *image_path)
{
	char err[512];
	int fd = mkstemp(image_path);

	if (fd < 0 || ftruncate(fd, 1 << 20) < 0) {
		perror("fuzz setup");
		exit(1);
	}
	close(fd);
	signal(SIGPIPE, SIG_IGN); /* as netdiskd does: a peer gone only fails the write */
	config_defaults(&srv->cfg);
	if (config_add_image(&srv->cfg, "fuzz", image_path, ND_MODE_VOLATILE, err, sizeof(err)) ||
	    config_check(&srv->cfg, err, sizeof(err)) || server_open_images(srv, err, sizeof(err)) ||
	    server_state_init(srv, err, sizeof(err))) {
		fprintf(stderr, "fuzz setup: %s\n", err);
		exit(1);
	}
	pthread_rwlock_init(&srv->lock, NULL);
}

struct fuzz_feed {
	int fd;
	const uint8_t *pre, *data; /* a prologue, then the input */
	size_t prelen, len;
};

static inline void fuzz_write_all(int fd, const uint8_t *p, size_t len)
{
	while (len) {
		ssize_t n = write(fd, p, len);

		if (n <= 0)
			return;
		p += n;
		len -= (size_t)n;
	}
}

/* The client side: the prologue and the input, then close our half. */
static inline void *fuzz_writer(void *arg)
{
	struct fuzz_feed *f = arg;

	fuzz_write_all(f->fd, f->pre, f->prelen);
	fuzz_write_all(f->fd, f->data, f->len);
	shutdown(f->fd, SHUT_WR);
	return NULL;
}

/* And read whatever the server answers, so it never blocks on a full socket. */
static inline void *fuzz_drainer(void *arg)
{
	static __thread uint8_t buf[1 << 16];
	int fd = *(int *)arg;

	while (read(fd, buf, sizeof(buf)) > 0)
		;
	return NULL;
}

/* Serve pre + data as one connection from 127.0.0.1 on this thread. */
static inline void fuzz_feed_stream(struct server *srv, const uint8_t *pre, size_t prelen,
			     const uint8_t *data, size_t size,
			     void (*serve)(struct server *, int, const struct sockaddr_storage *))
{
	struct sockaddr_storage sa = { 0 };
	struct sockaddr_in *in = (struct sockaddr_in *)&sa;
	struct fuzz_feed f = { 0 };
	pthread_t w, d;
	int sv[2];

	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0)
		return;
	in->sin_family = AF_INET;
	in->sin_addr.s_addr = htonl(0x7f000001);
	f.fd = sv[1];
	f.pre = pre;
	f.prelen = prelen;
	f.data = data;
	f.len = size;
	pthread_create(&w, NULL, fuzz_writer, &f);
	pthread_create(&d, NULL, fuzz_drainer, &sv[1]);
	serve(srv, sv[0], &sa); /* closes sv[0] */
	pthread_join(w, NULL);
	pthread_join(d, NULL);
	close(sv[1]);
}

#endif
