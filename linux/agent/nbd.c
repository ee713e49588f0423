/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The client side of the NBD handshake: connect, OPT_GO, and the export's size and flags. */

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include "netdisk/proto.h"
#include "agent.h"
#include "nbdproto.h"
#include "ndcommon.h"

char nbd_write_cache[WC_TEXT_MAX + 1];
struct nbd_image nbd_image;

/* Send OPT_GO for the export (asking for the session's write-cache setting
 * and image version) and read replies up to the ACK. */
static int go(int fd, const char *name, const char *shown, uint64_t *size, uint16_t *flags,
	      char *err, size_t errlen)
{
	uint8_t opt[16 + 4 + 128 + 6], rep[20], data[256];
	uint32_t n = (uint32_t)strlen(name);
	int have_export = 0;

	nd_put64(opt, NBD_OPT_MAGIC);
	nd_put32(opt + 8, NBD_OPT_GO);
	nd_put32(opt + 12, 4 + n + 6);
	nd_put32(opt + 16, n);
	memcpy(opt + 20, name, n);
	nd_put16(opt + 20 + n, 2);
	nd_put16(opt + 22 + n, NBD_INFO_ND_WRITE_CACHE);
	nd_put16(opt + 24 + n, NBD_INFO_ND_IMAGE);
	nbd_write_cache[0] = 0;
	memset(&nbd_image, 0, sizeof(nbd_image));
	if (nd_write_full(fd, opt, 26 + n))
		return -1;
	for (;;) {
		uint32_t type, len;

		if (nd_read_full(fd, rep, sizeof(rep)) || nd_get64(rep) != NBD_REP_MAGIC)
			return -1;
		type = nd_get32(rep + 12);
		len = nd_get32(rep + 16);
		if (len > sizeof(data) || nd_read_full(fd, data, len))
			return -1;
		if (type & 0x80000000u) {
			snprintf(err, errlen, "server refused export %s (NBD error 0x%x)", shown, type);
			return -1;
		}
		if (type == NBD_REP_INFO && len >= 12 && nd_get16(data) == NBD_INFO_EXPORT) {
			*size = nd_get64(data + 2);
			*flags = nd_get16(data + 10);
			have_export = 1;
		}
		if (type == NBD_REP_INFO && len >= 2 && nd_get16(data) == NBD_INFO_ND_WRITE_CACHE &&
		    len - 2 <= WC_TEXT_MAX) {
			memcpy(nbd_write_cache, data + 2, len - 2);
			nbd_write_cache[len - 2] = 0;
		}
		if (type == NBD_REP_INFO && len >= 14 && nd_get16(data) == NBD_INFO_ND_IMAGE &&
		    len - 14 < sizeof(nbd_image.name)) {
			nbd_image.vnum = nd_get32(data + 2);
			nbd_image.id = nd_get64(data + 6);
			memcpy(nbd_image.name, data + 14, len - 14);
			nbd_image.name[len - 14] = 0;
			nbd_image.have = 1;
		}
		if (type == NBD_REP_ACK)
			return have_export ? 0 : -1;
	}
}

int nbd_open(const struct target *tg, uint64_t *size, uint16_t *flags, char *err, size_t errlen)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	uint8_t hello[18], cflags[4];
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;

	sa.sin_addr = tg->server;
	sa.sin_port = htons(tg->nbd_port);
	snprintf(err, errlen, "NBD handshake with %s:%u failed", inet_ntoa(tg->server),
		 tg->nbd_port);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		snprintf(err, errlen, "cannot connect to %s:%u: %s", inet_ntoa(tg->server),
			 tg->nbd_port, strerror(errno));
		goto fail;
	}
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (nd_read_full(fd, hello, sizeof(hello)) || nd_get64(hello) != NBD_MAGIC ||
	    nd_get64(hello + 8) != NBD_OPT_MAGIC || !(nd_get16(hello + 16) & NBD_FLAG_FIXED_NEWSTYLE))
		goto fail;
	nd_put32(cflags, NBD_FLAG_C_FIXED_NEWSTYLE | NBD_FLAG_C_NO_ZEROES);
	if (nd_write_full(fd, cflags, 4) ||
	    go(fd, tg->export_name, tg->shown, size, flags, err, errlen))
		goto fail;
	return fd;
fail:
	if (fd >= 0)
		close(fd);
	return -1;
}
