/* SPDX-License-Identifier: GPL-2.0-or-later */
/* libFuzzer harness: any byte stream as an iSCSI initiator, from the login into
 * the full feature phase.  The first byte chooses a prologue: a valid login to
 * the image (odd), a discovery login (2 set), or none, so that the fuzzer
 * reaches SCSI commands, Data-Out, R2T, task management and text requests
 * without having to find a login first. */

#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include "iscsi.h"
#include "netdiskd.h"

static struct server srv;
static char image_path[] = "/tmp/netdisk-fuzz-iscsi.XXXXXX";

struct feed {
	int fd;
	const uint8_t *pre, *data;
	size_t prelen, len;
};

static void write_all(int fd, const uint8_t *p, size_t len)
{
	while (len) {
		ssize_t n = write(fd, p, len);

		if (n <= 0)
			return;
		p += n;
		len -= (size_t)n;
	}
}

/* The initiator side: the prologue, the input, then close our half. */
static void *writer(void *arg)
{
	struct feed *f = arg;

	write_all(f->fd, f->pre, f->prelen);
	write_all(f->fd, f->data, f->len);
	shutdown(f->fd, SHUT_WR);
	return NULL;
}

/* Read whatever the target answers, so it never blocks on a full socket. */
static void *drainer(void *arg)
{
	static __thread uint8_t buf[1 << 16];
	int fd = *(int *)arg;

	while (read(fd, buf, sizeof(buf)) > 0)
		;
	return NULL;
}

/* A Login Request going straight to the full feature phase, with keys. */
static size_t login_pdu(uint8_t *out, const char *keys, size_t klen)
{
	size_t padded = (klen + 3) & ~(size_t)3;

	memset(out, 0, 48 + padded);
	out[0] = 0x43;               /* Login Request, immediate */
	out[1] = 0x80 | 1 << 2 | 3;  /* T, CSG operational, NSG full feature */
	out[5] = (uint8_t)(klen >> 16);
	out[6] = (uint8_t)(klen >> 8);
	out[7] = (uint8_t)klen;
	out[8] = 0x80;               /* ISID */
	memcpy(out + 48, keys, klen);
	return 48 + padded;
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
	signal(SIGPIPE, SIG_IGN); /* as netdiskd does: a peer gone only fails the write */
	config_defaults(&srv.cfg);
	srv.cfg.nbd_handshake_timeout = 1;
	srv.cfg.nbd_idle_timeout = 1;
	srv.cfg.nbd_io_timeout = 1;
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
	static const char normal[] =
		"InitiatorName=iqn.2000-01.org.fuzz:one\0SessionType=Normal\0"
		"TargetName=" ISCSI_DEFAULT_PREFIX ":fuzz\0InitialR2T=No\0ImmediateData=Yes\0"
		"MaxRecvDataSegmentLength=4096\0MaxBurstLength=16384\0FirstBurstLength=8192\0";
	static const char discovery[] =
		"InitiatorName=iqn.2000-01.org.fuzz:one\0SessionType=Discovery\0"
		"MaxRecvDataSegmentLength=512\0";
	struct sockaddr_storage sa = { 0 };
	struct sockaddr_in *in = (struct sockaddr_in *)&sa;
	uint8_t pre[48 + 512];
	pthread_t w, d;
	struct feed f = { 0 };
	int sv[2];

	if (!srv.cfg.nimages)
		setup();
	if (size && (data[0] & 1))
		f.prelen = login_pdu(pre, normal, sizeof(normal) - 1);
	else if (size && (data[0] & 2))
		f.prelen = login_pdu(pre, discovery, sizeof(discovery) - 1);
	if (size) {
		data++;
		size--;
	}
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0)
		return 0;
	in->sin_family = AF_INET;
	in->sin_addr.s_addr = htonl(0x7f000001);
	f.fd = sv[1];
	f.pre = pre;
	f.data = data;
	f.len = size;
	pthread_create(&w, NULL, writer, &f);
	pthread_create(&d, NULL, drainer, &sv[1]);
	iscsi_serve(&srv, sv[0], &sa); /* closes sv[0] */
	pthread_join(w, NULL);
	pthread_join(d, NULL);
	close(sv[1]);
	return 0;
}
