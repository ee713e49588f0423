/* SPDX-License-Identifier: GPL-2.0-or-later */
/* libFuzzer harness: any byte stream as an NBD client, from the handshake into transmission. */

#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include "nbd.h"
#include "netdiskd.h"

static struct server srv;
static char image_path[] = "/tmp/netdisk-fuzz-nbd.XXXXXX";

struct feed {
	int fd;
	const uint8_t *data;
	size_t len;
};

/* The client side: send the input, then close our half. */
static void *writer(void *arg)
{
	struct feed *f = arg;
	size_t off = 0;

	while (off < f->len) {
		ssize_t n = write(f->fd, f->data + off, f->len - off);

		if (n <= 0)
			break;
		off += (size_t)n;
	}
	shutdown(f->fd, SHUT_WR);
	return NULL;
}

/* And read whatever the server answers, so it never blocks on a full socket. */
static void *drainer(void *arg)
{
	static __thread uint8_t buf[1 << 16];
	int fd = *(int *)arg;

	while (read(fd, buf, sizeof(buf)) > 0)
		;
	return NULL;
}

static void teardown(void)
{
	server_close(&srv);
	unlink(image_path);
}

static void setup(void)
{
	char err[512];
	int fd = mkstemp(image_path);

	if (fd < 0 || ftruncate(fd, 1 << 20) < 0) {
		perror("fuzz setup");
		exit(1);
	}
	close(fd);
	config_defaults(&srv.cfg);
	if (config_add_image(&srv.cfg, "fuzz", image_path, ND_MODE_VOLATILE, err, sizeof(err)) ||
	    config_check(&srv.cfg, err, sizeof(err)) || server_open_images(&srv, err, sizeof(err)) ||
	    server_state_init(&srv, err, sizeof(err))) {
		fprintf(stderr, "fuzz setup: %s\n", err);
		exit(1);
	}
	pthread_rwlock_init(&srv.lock, NULL);
	atexit(teardown);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct sockaddr_storage sa = { 0 };
	struct sockaddr_in *in = (struct sockaddr_in *)&sa;
	pthread_t w, d;
	struct feed f;
	int sv[2];

	if (!srv.cfg.nimages)
		setup();
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0)
		return 0;
	in->sin_family = AF_INET;
	in->sin_addr.s_addr = htonl(0x7f000001);
	f.fd = sv[1];
	f.data = data;
	f.len = size;
	pthread_create(&w, NULL, writer, &f);
	pthread_create(&d, NULL, drainer, &sv[1]);
	nbd_serve(&srv, sv[0], &sa); /* closes sv[0] */
	pthread_join(w, NULL);
	pthread_join(d, NULL);
	close(sv[1]);
	return 0;
}
