/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Whole-buffer reads and writes on sockets and pipes, and whole small files. */

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "ndcommon.h"

int nd_read_full(int fd, void *buf, size_t len)
{
	while (len) {
		ssize_t n = read(fd, buf, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n == 0)
			errno = 0;
		if (n <= 0)
			return -1;
		buf = (char *)buf + n;
		len -= (size_t)n;
	}
	return 0;
}

int nd_write_full(int fd, const void *buf, size_t len)
{
	while (len) {
		ssize_t n = write(fd, buf, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n == 0)
			errno = EIO;
		if (n <= 0)
			return -1;
		buf = (const char *)buf + n;
		len -= (size_t)n;
	}
	return 0;
}

char *nd_read_file(const char *path, size_t max, size_t *len)
{
	struct stat st;
	char *b = NULL;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK), e;

	if (fd < 0)
		return NULL;
	if (fstat(fd, &st) < 0)
		goto fail;
	if (!S_ISREG(st.st_mode) || (uint64_t)st.st_size > max) {
		errno = S_ISREG(st.st_mode) ? EFBIG : EINVAL;
		goto fail;
	}
	b = malloc((size_t)st.st_size + 1);
	if (!b)
		goto fail;
	if (nd_read_full(fd, b, (size_t)st.st_size) < 0) {
		if (!errno)
			errno = EIO; /* it shrank under us */
		goto fail;
	}
	b[st.st_size] = 0;
	*len = (size_t)st.st_size;
	close(fd);
	return b;
fail:
	e = errno;
	free(b);
	close(fd);
	errno = e;
	return NULL;
}

int nd_reserve(uint8_t **buf, size_t *cap, size_t len)
{
	uint8_t *p;

	if (len <= *cap)
		return 0;
	p = realloc(*buf, len);
	if (!p)
		return -1;
	*buf = p;
	*cap = len;
	return 0;
}

int nd_readahead_read(struct nd_readahead *r, void *dst, size_t len,
		      ssize_t (*some)(void *ctx, void *buf, size_t len), void *ctx)
{
	while (len) {
		size_t n = r->end - r->start;
		ssize_t got;

		if (!n && len >= r->cap) { /* bulk data: straight in */
			if ((got = some(ctx, dst, len)) < 0)
				return -1;
			dst = (uint8_t *)dst + got;
			len -= (size_t)got;
			continue;
		}
		if (!n) {
			if ((got = some(ctx, r->buf, r->cap)) < 0)
				return -1;
			r->start = 0;
			r->end = (size_t)got;
			continue;
		}
		if (n > len)
			n = len;
		memcpy(dst, r->buf + r->start, n);
		r->start += n;
		dst = (uint8_t *)dst + n;
		len -= n;
	}
	return 0;
}
