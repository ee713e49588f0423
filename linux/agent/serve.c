/* SPDX-License-Identifier: GPL-2.0-or-later */
/* netdisk-attach as the block server (issue #17): the kernel's NBD driver gets one
 * end of a socketpair (as qemu-nbd -c does), the agent answers its requests
 * from the write-redirection chain (tiers.c), several at a time, each worker
 * with its own NBD TCP connection to netdiskd on the session, and takes
 * redirect/status requests on a control socket. */

#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>
#include <dirent.h>
#include <arpa/inet.h>
#include "netdisk/proto.h"
#include "agent.h"
#include "nbdproto.h"
#include "ndcommon.h"
#include "tiers.h"

#define WORKERS 4
#define REQ_MAX (2u << 20)
#define INLINE_MAX (64u << 10) /* max_sectors_kb is set to 1024; the kernel's default is 1280 */

/* One NBD connection to netdiskd; reconnects and retries on its own. */
struct upstream {
	const struct target *tg;
	int fd;
	uint64_t handle;
};

struct worker {
	pthread_t thread;
	pthread_cond_t go;
	int busy;
	uint16_t type;
	uint8_t handle[8];
	uint64_t off;
	uint32_t len;
	uint8_t *buf;      /* REQ_MAX, preallocated */
	uint8_t *scratch;  /* one block */
	struct upstream up;
};

static struct {
	struct chain chain;
	int sock;          /* our end of the socketpair */
	pthread_mutex_t lock; /* workers' busy flags */
	pthread_cond_t idle;
	pthread_mutex_t reply_lock;
	struct worker w[WORKERS];
	struct worker inl;    /* the reader's own, for requests it serves inline */
	unsigned index;
	uint64_t size;
	int ready_fd;
} S;

static void up_close(struct upstream *u)
{
	if (u->fd >= 0)
		close(u->fd);
	u->fd = -1;
}

static void up_connect(struct upstream *u)
{
	char err[256];
	unsigned wait = 1, tries = 0;
	uint64_t size;
	uint16_t flags;

	while (u->fd < 0) {
		u->fd = nbd_open(u->tg, &size, &flags, err, sizeof(err));
		if (u->fd >= 0) {
			if (tries)
				say("reconnected to the server (%s)", u->tg->shown);
			return;
		}
		if (tries++ % 10 == 0)
			say("%s; retrying (I/O to the server waits)", err);
		sleep(wait);
		if (wait < 4)
			wait *= 2;
	}
}

/* One request to the server; retried over a new connection until answered. */
static int up_request(struct upstream *u, uint16_t type, uint64_t off, uint32_t len,
		      void *buf)
{
	for (;;) {
		uint8_t req[28], rep[16];
		uint32_t error;

		up_connect(u);
		nd_put32(req, NBD_REQUEST_MAGIC);
		nd_put16(req + 4, 0);
		nd_put16(req + 6, type);
		nd_put64(req + 8, ++u->handle);
		nd_put64(req + 16, off);
		nd_put32(req + 24, len);
		if (nd_write_full(u->fd, req, sizeof(req)) ||
		    (type == NBD_CMD_WRITE && nd_write_full(u->fd, buf, len)) ||
		    nd_read_full(u->fd, rep, sizeof(rep)) || nd_get32(rep) != NBD_SIMPLE_REPLY_MAGIC ||
		    nd_get64(rep + 8) != u->handle) {
			say("lost the server connection; reconnecting");
			up_close(u);
			continue;
		}
		error = nd_get32(rep + 4);
		if (error)
			return -(int)error;
		if (type == NBD_CMD_READ && nd_read_full(u->fd, buf, len)) {
			up_close(u);
			continue;
		}
		return 0;
	}
}

static int srv_read(void *ctx, uint64_t off, uint32_t len, void *buf)
{
	return up_request(ctx, NBD_CMD_READ, off, len, buf);
}

static int srv_write(void *ctx, uint64_t off, uint32_t len, const void *buf)
{
	return up_request(ctx, NBD_CMD_WRITE, off, len, (void *)buf);
}

static int srv_flush(void *ctx)
{
	return up_request(ctx, NBD_CMD_FLUSH, 0, 0, NULL);
}

static const struct chain_server srv_ops = { srv_read, srv_write, srv_flush };

static void warn_fill(const char *msg)
{
	say("%s", msg);
}

static void reply(const uint8_t handle[8], int err, const void *data, uint32_t len)
{
	uint8_t rep[16];

	nd_put32(rep, NBD_SIMPLE_REPLY_MAGIC);
	nd_put32(rep + 4, (uint32_t)err);
	memcpy(rep + 8, handle, 8);
	pthread_mutex_lock(&S.reply_lock);
	if (nd_write_full(S.sock, rep, sizeof(rep)) || (data && len && nd_write_full(S.sock, data, len)))
		say("cannot answer the kernel: %s", strerror(errno));
	pthread_mutex_unlock(&S.reply_lock);
}

static int nbd_errno(int rc)
{
	switch (-rc) {
	case 0: return 0;
	case ENOSPC: return NBD_ENOSPC;
	case EINVAL: return NBD_EINVAL;
	case EPERM: case EROFS: return NBD_EPERM;
	case ENOMEM: return NBD_ENOMEM;
	default: return NBD_EIO;
	}
}

/* At most one "write cache full" message a second: a retrying writer must not flood the console. */
static int enospc_say(void)
{
	static time_t last;
	time_t now = time(NULL);
	int yes;

	pthread_mutex_lock(&S.lock);
	yes = now != last;
	last = now;
	pthread_mutex_unlock(&S.lock);
	return yes;
}

/* Run one request and answer it. */
static void handle(struct worker *w)
{
	int rc;

	switch (w->type) {
	case NBD_CMD_READ:
		rc = chain_read(&S.chain, &w->up, w->off, w->len, w->buf);
		reply(w->handle, nbd_errno(rc), rc ? NULL : w->buf, w->len);
		break;
	case NBD_CMD_WRITE:
		rc = chain_write(&S.chain, &w->up, w->off, w->len, w->buf, w->scratch);
		if (rc == -ENOSPC && enospc_say())
			say("write cache full: a %u-byte write at %llu fails (no room in %s)",
			    w->len, (unsigned long long)w->off, chain_target_name(S.chain.target));
		reply(w->handle, nbd_errno(rc), NULL, 0);
		break;
	case NBD_CMD_FLUSH:
		reply(w->handle, nbd_errno(chain_flush(&S.chain, &w->up)), NULL, 0);
		break;
	default:
		reply(w->handle, NBD_EINVAL, NULL, 0);
	}
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;

	for (;;) {
		pthread_mutex_lock(&S.lock);
		while (!w->busy)
			pthread_cond_wait(&w->go, &S.lock);
		pthread_mutex_unlock(&S.lock);
		handle(w);
		pthread_mutex_lock(&S.lock);
		w->busy = 0;
		pthread_cond_signal(&S.idle);
		pthread_mutex_unlock(&S.lock);
	}
	return NULL;
}

static struct worker *idle_worker(void)
{
	struct worker *w = NULL;
	int i;

	pthread_mutex_lock(&S.lock);
	for (;;) {
		for (i = 0; i < WORKERS && !w; i++)
			if (!S.w[i].busy)
				w = &S.w[i];
		if (w)
			break;
		pthread_cond_wait(&S.idle, &S.lock);
	}
	pthread_mutex_unlock(&S.lock);
	return w;
}

/* Read the kernel's requests and hand them to idle workers; returns on NBD_CMD_DISC. */
static void reader_loop(void)
{
	uint8_t req[28];

	for (;;) {
		struct worker *w;
		uint32_t len;
		uint16_t type;

		if (nd_read_full(S.sock, req, sizeof(req)) || nd_get32(req) != NBD_REQUEST_MAGIC) {
			say("the kernel's NBD socket closed or spoke garbage; stop serving");
			return;
		}
		type = nd_get16(req + 6);
		len = nd_get32(req + 24);
		if (type == NBD_CMD_DISC) {
			say("the kernel disconnected /dev/nbd%u", S.index);
			return;
		}
		/* A small request the local tiers answer alone is served right here:
		 * handing it to a worker would cost more than the request. */
		if (len <= INLINE_MAX &&
		    ((type == NBD_CMD_WRITE && chain_target(&S.chain) != TGT_SERVER) ||
		     (type == NBD_CMD_READ && chain_is_local(&S.chain, nd_get64(req + 16), len)))) {
			struct worker *r = &S.inl;

			if (type == NBD_CMD_WRITE && nd_read_full(S.sock, r->buf, len)) {
				say("the kernel's NBD socket closed mid-request; stop serving");
				return;
			}
			r->type = type;
			memcpy(r->handle, req + 8, 8);
			r->off = nd_get64(req + 16);
			r->len = len;
			handle(r);
			continue;
		}
		w = idle_worker();
		if (len > REQ_MAX) {
			/* Never with max_sectors_kb at 1024; drain and refuse. */
			uint8_t sink[4096];
			uint32_t left = type == NBD_CMD_WRITE ? len : 0;

			while (left) {
				uint32_t n = left < sizeof(sink) ? left : (uint32_t)sizeof(sink);

				if (nd_read_full(S.sock, sink, n))
					return;
				left -= n;
			}
			say("refused a %u-byte request (more than %u)", len, REQ_MAX);
			reply(req + 8, NBD_EINVAL, NULL, 0);
			continue;
		}
		if (type == NBD_CMD_WRITE && nd_read_full(S.sock, w->buf, len)) {
			say("the kernel's NBD socket closed mid-request; stop serving");
			return;
		}
		pthread_mutex_lock(&S.lock);
		w->type = type;
		memcpy(w->handle, req + 8, 8);
		w->off = nd_get64(req + 16);
		w->len = len;
		w->busy = 1;
		pthread_cond_signal(&w->go);
		pthread_mutex_unlock(&S.lock);
	}
}

/* --- the disk tier's device: /PATH, LABEL=L (ext2/3/4 label), PARTLABEL=L --- */

static int label_matches(const char *dev, const char *spec)
{
	char path[300], line[256], label[17];
	int found = 0;

	if (!strncmp(spec, "PARTLABEL=", 10)) {
		FILE *f;

		snprintf(path, sizeof(path), "/sys/class/block/%s/uevent", dev);
		f = fopen(path, "r");
		while (f && fgets(line, sizeof(line), f))
			if (!strncmp(line, "PARTNAME=", 9)) {
				line[strcspn(line, "\n")] = 0;
				found = !strcmp(line + 9, spec + 10);
			}
		if (f)
			fclose(f);
		return found;
	}
	{
		uint8_t sb[2];
		int fd;

		snprintf(path, sizeof(path), "/dev/%s", dev);
		fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			return 0;
		if (pread(fd, sb, 2, 1080) == 2 && sb[0] == 0x53 && sb[1] == 0xef &&
		    pread(fd, label, 16, 1144) == 16) {
			label[16] = 0;
			found = !strcmp(label, spec + 6);
		}
		close(fd);
	}
	return found;
}

/* Size the disk tier on fd (*bytes: what lies after its first MiB): a
 * device as it is, a file grown (sparse) to the disk's size, and a
 * persistent tier's map, so it never fills before the disk does.  0, or -1
 * with a message. */
static int disk_size(int fd, const char *path, int persistent, uint64_t *bytes)
{
	struct stat st;
	uint64_t want;

	if (fstat(fd, &st) < 0) {
		say("write cache: fstat %s: %s", path, strerror(errno));
		return -1;
	}
	if (S_ISBLK(st.st_mode)) {
		uint64_t dev = 0;

		if (ioctl(fd, BLKGETSIZE64, &dev) < 0 || dev <= TIER_DISK_DATA + TIER_BLOCK) {
			say("write cache: %s: too small or BLKGETSIZE64 failed: %s", path, strerror(errno));
			return -1;
		}
		*bytes = dev - TIER_DISK_DATA;
		return 0;
	}
	if (!S_ISREG(st.st_mode)) {
		say("write cache: %s is neither a block device nor a file", path);
		return -1;
	}
	want = S.size;
	if (persistent)
		want += (uint64_t)pt_map_pages((uint32_t)(S.size / TIER_BLOCK + 1)) * PT_PAGE;
	if ((uint64_t)st.st_size < TIER_DISK_DATA + want &&
	    ftruncate(fd, (off_t)(TIER_DISK_DATA + want)) < 0) {
		say("write cache: ftruncate %s: %s", path, strerror(errno));
		return -1;
	}
	*bytes = want;
	return 0;
}

/* At boot (initramfs: /dev and /sys are ours): the disk tier's device by
 * /PATH, LABEL= or PARTLABEL=; fills path.  The fd, or -1 with a message. */
static int disk_open(const char *spec, char *path, size_t pathlen)
{
	int fd;

	if (spec[0] == '/') {
		snprintf(path, pathlen, "%s", spec);
	} else {
		struct dirent *d;
		DIR *dir = NULL;
		int tries;

		path[0] = 0;
		for (tries = 0; tries < 50 && !path[0]; tries++) { /* disks may still appear */
			dir = opendir("/sys/class/block");
			while (dir && (d = readdir(dir)))
				if (d->d_name[0] != '.' && strncmp(d->d_name, "nbd", 3) &&
				    label_matches(d->d_name, spec)) {
					snprintf(path, pathlen, "/dev/%.100s", d->d_name);
					break;
				}
			if (dir)
				closedir(dir);
			if (!path[0])
				usleep(100000);
		}
		if (!path[0]) {
			say("write cache: no disk with %s", spec);
			return -1;
		}
	}
	fd = open(path, O_RDWR | O_CLOEXEC);
	if (fd < 0)
		say("write cache: open %s: %s", path, strerror(errno));
	return fd;
}

/* Add the volatile disk tier on fd (ours from then on).  0 or -errno. */
static int add_disk_fd(int fd, const char *path)
{
	uint64_t bytes;
	int rc;

	if (disk_size(fd, path, 0, &bytes) < 0) {
		close(fd);
		return -EINVAL;
	}
	/* Volatile use overwrites where a persistent tier's map was: its header goes. */
	rc = disk_forget_persistent(fd);
	if (rc < 0)
		say("write cache: %s: pread/pwrite of a persistent tier's header: %s", path,
		    strerror(-rc));
	else if (rc > 0)
		say("write cache: %s held a persistent write cache; used as a volatile one now, "
		    "its blocks are dropped", path);
	rc = chain_add_disk(&S.chain, fd, bytes, path);
	if (rc) {
		close(fd);
		return rc;
	}
	say("write cache: disk tier on %s, %llu MiB (volatile)", path,
	    (unsigned long long)(bytes >> 20));
	return 0;
}

/*
 * Add the persistent disk tier on fd (ours from then on): kept if it was
 * written over the image version the server serves now, else reset, saying
 * why on the console.  0 or -errno.
 */
static int add_persistent_fd(int fd, const char *path)
{
	struct pt_header want;
	char msg[600];
	uint64_t bytes;
	int rc;

	if (disk_size(fd, path, 1, &bytes) < 0) {
		close(fd);
		return -EINVAL;
	}
	memset(&want, 0, sizeof(want));
	if (nbd_image.have) {
		snprintf(want.image, sizeof(want.image), "%s", nbd_image.name);
		want.vnum = nbd_image.vnum;
		want.image_id = nbd_image.id;
	} else {
		/* Nothing to check it against: never reused (a random id matches no header). */
		say("write cache: the server does not say which image version it serves; the "
		    "persistent disk tier on %s starts empty", path);
		snprintf(want.image, sizeof(want.image), "(unknown)");
		want.image_id = ((uint64_t)getpid() << 32) ^ (uint64_t)time(NULL);
	}
	rc = chain_add_disk_persistent(&S.chain, fd, bytes + TIER_DISK_DATA, path, &want, msg,
				       sizeof(msg));
	if (rc) {
		say("write cache: no persistent disk tier on %s: %s", path,
		    rc == -EEXIST ? "there is one already" : rc == -EINVAL ? "too small"
		    : msg[0] ? msg : strerror(-rc));
		close(fd);
		return rc;
	}
	say("write cache: persistent disk tier on %s, %llu MiB: %s", path,
	    (unsigned long long)((uint64_t)S.chain.t[TGT_DISK].nslots * TIER_BLOCK >> 20), msg);
	return 0;
}

static int add_disk_tier(const char *spec, int persistent)
{
	char path[128];
	int fd = disk_open(spec, path, sizeof(path));

	if (fd < 0)
		return -ENOENT;
	return persistent ? add_persistent_fd(fd, path) : add_disk_fd(fd, path);
}

/* --- the control socket: abstract "netdisk-attach.N", root only --- */

static socklen_t ctl_address(struct sockaddr_un *sa, unsigned index)
{
	memset(sa, 0, sizeof(*sa));
	sa->sun_family = AF_UNIX;
	return (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 +
			   (size_t)snprintf(sa->sun_path + 1, sizeof(sa->sun_path) - 1,
					    "netdisk-attach.%u", index));
}

/* Read a request and the descriptor sent with it, if any (*fdp, else -1). */
static ssize_t recv_request(int fd, char *buf, size_t len, int *fdp)
{
	union {
		struct cmsghdr h;
		char space[CMSG_SPACE(sizeof(int))];
	} u;
	struct iovec iov = { buf, len };
	struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = &u,
			    .msg_controllen = sizeof(u) };
	struct cmsghdr *cm;
	ssize_t n = recvmsg(fd, &m, MSG_CMSG_CLOEXEC);

	*fdp = -1;
	for (cm = n >= 0 ? CMSG_FIRSTHDR(&m) : NULL; cm; cm = CMSG_NXTHDR(&m, cm))
		if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_RIGHTS &&
		    cm->cmsg_len == CMSG_LEN(sizeof(int)))
			memcpy(fdp, CMSG_DATA(cm), sizeof(int));
	return n;
}

static void ctl_handle(int fd)
{
	char line[256], out[512], err[160];
	struct ucred cr;
	socklen_t crlen = sizeof(cr);
	struct ctl_cmd c;
	ssize_t n;
	int rc, passed = -1;

	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &crlen) < 0 || cr.uid != 0) {
		dprintf(fd, "error: root only\n");
		return;
	}
	n = recv_request(fd, line, sizeof(line), &passed);
	if (n <= 0)
		return;
	if (ctl_parse(line, (size_t)n, &c, err, sizeof(err)) < 0) {
		dprintf(fd, "error: %s\n", err);
		return;
	}
	if (c.cmd == CTL_REDIRECT) {
		rc = 0;
		/* The path means the caller's file system, not ours (we live in the
		 * initramfs): the caller opens it and passes the descriptor. */
		if (c.target == TGT_DISK && c.path[0] && !S.chain.t[TGT_DISK].present) {
			rc = passed >= 0 ? add_disk_fd(passed, c.path) : -EBADF;
			passed = -1;
		}
		else if (c.target == TGT_DISK && c.path[0] &&
			 strcmp(c.path, S.chain.t[TGT_DISK].name))
			rc = -EEXIST;
		if (rc == 0)
			rc = chain_redirect(&S.chain, c.target);
		if (rc) {
			if (passed >= 0)
				close(passed);
			dprintf(fd, "error: redirect %s: %s\n", chain_target_name(c.target),
				rc == -ENOENT ? "no such tier (give disk:PATH)"
				: rc == -EBADF ? "give disk:/PATH (LABEL= works at boot only)"
					      : rc == -EEXIST ? "another disk tier is in use"
							      : strerror(-rc));
			return;
		}
		say("write cache: writes now go to %s", chain_target_name(c.target));
	}
	if (passed >= 0)
		close(passed);
	chain_status(&S.chain, out, sizeof(out));
	dprintf(fd, "ok %s\n", out);
}

static void *ctl_main(void *arg)
{
	int lfd = (int)(intptr_t)arg;

	for (;;) {
		int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);

		if (fd < 0) {
			if (errno != EINTR)
				sleep(1);
			continue;
		}
		ctl_handle(fd);
		close(fd);
	}
	return NULL;
}

/* Send the request; "redirect disk:PATH" goes with PATH opened here (O_CREAT
 * for a file), since only the caller sees the booted system's files. */
static int send_request(int fd, const char *request)
{
	union {
		struct cmsghdr h;
		char space[CMSG_SPACE(sizeof(int))];
	} u;
	char line[300];
	struct iovec iov = { line, 0 };
	struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1 };
	int disk = -1, rc;

	iov.iov_len = (size_t)snprintf(line, sizeof(line), "%s\n", request);
	if (iov.iov_len >= sizeof(line))
		return -1;
	if (!strncmp(request, "redirect disk:/", 15)) {
		disk = open(request + 14, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
		if (disk < 0) {
			fprintf(stderr, "netdisk-attach: open %s: %s\n", request + 14, strerror(errno));
			return -1;
		}
		memset(&u, 0, sizeof(u));
		m.msg_control = &u;
		m.msg_controllen = sizeof(u);
		CMSG_FIRSTHDR(&m)->cmsg_level = SOL_SOCKET;
		CMSG_FIRSTHDR(&m)->cmsg_type = SCM_RIGHTS;
		CMSG_FIRSTHDR(&m)->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(CMSG_FIRSTHDR(&m)), &disk, sizeof(int));
	}
	rc = sendmsg(fd, &m, MSG_NOSIGNAL) == (ssize_t)iov.iov_len ? 0 : -1;
	if (disk >= 0)
		close(disk);
	return rc;
}

int ctl_request(unsigned index, const char *request)
{
	struct sockaddr_un sa;
	socklen_t salen = ctl_address(&sa, index);
	char out[600];
	ssize_t n;
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, salen) < 0) {
		fprintf(stderr, "netdisk-attach: connect to the agent of /dev/nbd%u: %s "
			"(not serving with a write cache?)\n", index, strerror(errno));
		return 1;
	}
	if (send_request(fd, request) < 0 || shutdown(fd, SHUT_WR) < 0) {
		fprintf(stderr, "netdisk-attach: write to the agent: %s\n", strerror(errno));
		return 1;
	}
	n = read(fd, out, sizeof(out) - 1);
	close(fd);
	if (n <= 0) {
		fprintf(stderr, "netdisk-attach: no answer from the agent\n");
		return 1;
	}
	out[n] = 0;
	fputs(out, strncmp(out, "ok ", 3) ? stderr : stdout);
	return strncmp(out, "ok ", 3) ? 1 : 0;
}

static void set_max_sectors(unsigned index)
{
	char path[80];
	int fd;

	snprintf(path, sizeof(path), "/sys/block/nbd%u/queue/max_sectors_kb", index);
	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0 || write(fd, "1024", 4) != 4)
		say("cannot set %s: %s (requests over %u KiB are refused)", path, strerror(errno),
		    REQ_MAX >> 10);
	if (fd >= 0)
		close(fd);
}

int serve_setup(const struct target *tg, const struct wc_config *wc, uint64_t size,
		unsigned index)
{
	int i, rc;

	S.index = index;
	S.size = size;
	pthread_mutex_init(&S.lock, NULL);
	pthread_mutex_init(&S.reply_lock, NULL);
	pthread_cond_init(&S.idle, NULL);
	chain_init(&S.chain, size, &srv_ops, warn_fill);
	if (wc->ram_bytes) {
		rc = chain_add_ram(&S.chain, wc->ram_bytes);
		if (rc) {
			say("write cache: no RAM tier of %llu MiB: %s",
			    (unsigned long long)(wc->ram_bytes >> 20), strerror(-rc));
			return -1;
		}
		say("write cache: RAM tier %llu MiB", (unsigned long long)(wc->ram_bytes >> 20));
	}
	if (wc->disk[0] && add_disk_tier(wc->disk, wc->disk_persistent) < 0 && wc->target == TGT_DISK)
		return -1;
	if (chain_redirect(&S.chain, wc->target) < 0)
		return -1;
	for (i = 0; i <= WORKERS; i++) {
		struct worker *w = i < WORKERS ? &S.w[i] : &S.inl;

		w->buf = mmap(NULL, REQ_MAX + TIER_BLOCK, PROT_READ | PROT_WRITE,
			      MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (w->buf == MAP_FAILED) {
			say("mmap of request buffers failed: %s", strerror(errno));
			return -1;
		}
		w->scratch = w->buf + REQ_MAX;
		w->up.tg = tg;
		w->up.fd = -1;
		pthread_cond_init(&w->go, NULL);
	}
	return 0;
}

static void *scan_main(void *arg)
{
	(void)arg;
	scan_partitions(S.index);
	if (write(S.ready_fd, "1", 1) < 0)
		say("cannot tell the initramfs we are ready: %s", strerror(errno));
	close(S.ready_fd);
	return NULL;
}

/* Serve /dev/nbdN: connect it to our socketpair, start the workers and the
 * control socket, scan partitions (then a byte on ready_fd) and the calling
 * thread reads requests until the kernel disconnects. */
int serve_run(uint64_t size, uint16_t flags, unsigned index, int ready_fd)
{
	struct sockaddr_un sa;
	socklen_t salen;
	pthread_t ctl, scan;
	char err[256];
	int sv[2], lfd, i;

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) {
		say("socketpair failed: %s", strerror(errno));
		return -1;
	}
	S.sock = sv[1];
	for (i = 0; i < WORKERS; i++)
		if (pthread_create(&S.w[i].thread, NULL, worker_main, &S.w[i])) {
			say("pthread_create failed");
			return -1;
		}
	lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	salen = ctl_address(&sa, index);
	if (lfd < 0 || bind(lfd, (struct sockaddr *)&sa, salen) < 0 || listen(lfd, 4) < 0 ||
	    pthread_create(&ctl, NULL, ctl_main, (void *)(intptr_t)lfd))
		say("no control socket: %s", strerror(errno));
	/* Only what the chain does: no trim, write-zeroes, FUA or multi-connection. */
	flags &= NBD_FLAG_HAS_FLAGS | NBD_FLAG_READ_ONLY | NBD_FLAG_SEND_FLUSH;
	/* Timeout 0: requests wait for us (we reconnect to the server ourselves). */
	if (genl_nbd_connect(index, sv[0], size, flags, 0, 0, err, sizeof(err)) < 0) {
		say("%s", err);
		return -1;
	}
	close(sv[0]);
	set_max_sectors(index);
	S.ready_fd = ready_fd;
	if (pthread_create(&scan, NULL, scan_main, NULL)) /* partitions are read through us */
		say("pthread_create failed");
	reader_loop();
	return 0;
}
