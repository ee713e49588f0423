/* The bottom layer: a raw disk image file read (and, in direct mode, written) in place. */

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>
#include "layer.h"

struct file_layer {
	struct layer l;
	int fd;
	int writable;
};

int pread_flags(int fd, void *buf, size_t len, uint64_t off, int flags)
{
	while (len) {
		struct iovec iov = { buf, len };
		ssize_t n = preadv2(fd, &iov, 1, (off_t)off, flags & LAYER_NOWAIT ? RWF_NOWAIT : 0);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0) {
			/* Past the end of a sparse or short file: zeros. */
			memset(buf, 0, len);
			return 0;
		}
		buf = (char *)buf + n;
		len -= (size_t)n;
		off += (uint64_t)n;
	}
	return 0;
}

int pread_full(int fd, void *buf, size_t len, uint64_t off)
{
	return pread_flags(fd, buf, len, off, 0);
}

int pwrite_full(int fd, const void *buf, size_t len, uint64_t off)
{
	while (len) {
		ssize_t n = pwrite(fd, buf, len, (off_t)off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n < 0 ? -errno : -EIO;
		buf = (const char *)buf + n;
		len -= (size_t)n;
		off += (uint64_t)n;
	}
	return 0;
}

static int file_read(struct layer *l, void *buf, size_t len, uint64_t off, int flags)
{
	return pread_flags(((struct file_layer *)l)->fd, buf, len, off, flags);
}

static int file_write(struct layer *l, const void *buf, size_t len, uint64_t off)
{
	struct file_layer *f = (struct file_layer *)l;

	return f->writable ? pwrite_full(f->fd, buf, len, off) : -EROFS;
}

static int file_flush(struct layer *l)
{
	struct file_layer *f = (struct file_layer *)l;

	if (!f->writable)
		return 0;
	return fdatasync(f->fd) < 0 ? -errno : 0;
}

static int file_trim(struct layer *l, uint64_t off, size_t len)
{
	struct file_layer *f = (struct file_layer *)l;

	if (!f->writable)
		return -EROFS;
	if (fallocate(f->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)off, (off_t)len) < 0)
		return -errno;
	return 0;
}

/* The image file's modification time: it moves when anything rewrites the image. */
static uint64_t file_version(struct layer *l)
{
	struct stat st;

	if (fstat(((struct file_layer *)l)->fd, &st) < 0)
		return 0;
	return (uint64_t)st.st_mtim.tv_sec * 1000000000u + (uint64_t)st.st_mtim.tv_nsec;
}

static void file_close(struct layer *l)
{
	close(((struct file_layer *)l)->fd);
	free(l);
}

static const struct layer_ops file_ops = {
	.read = file_read,
	.write = file_write,
	.flush = file_flush,
	.trim = file_trim,
	.version = file_version,
	.close = file_close,
};

struct layer *file_layer_open(const char *path, int writable, char *err, size_t errlen)
{
	struct file_layer *f;
	struct stat st;
	uint64_t size = 0;
	int fd = open(path, (writable ? O_RDWR : O_RDONLY) | O_CLOEXEC);

	if (fd < 0) {
		snprintf(err, errlen, "cannot open image %s: %s", path, strerror(errno));
		return NULL;
	}
	if (fstat(fd, &st) < 0 || (!S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode))) {
		snprintf(err, errlen, "image %s must be a regular file or a block device", path);
		close(fd);
		return NULL;
	}
	if (S_ISBLK(st.st_mode) && ioctl(fd, BLKGETSIZE64, &size) < 0) {
		snprintf(err, errlen, "cannot size block device %s: ioctl BLKGETSIZE64: %s", path,
			 strerror(errno));
		close(fd);
		return NULL;
	}
	if (S_ISREG(st.st_mode))
		size = (uint64_t)st.st_size;
	if (size < 512 || size % 512) {
		snprintf(err, errlen, "image %s must be whole 512-byte sectors (it has %llu bytes)",
			 path, (unsigned long long)size);
		close(fd);
		return NULL;
	}
	f = calloc(1, sizeof(*f));
	if (!f) {
		snprintf(err, errlen, "out of memory");
		close(fd);
		return NULL;
	}
	f->l.ops = &file_ops;
	f->l.size = size;
	f->fd = fd;
	f->writable = writable;
	return &f->l;
}
