/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The kernel NBD driver over generic netlink: connect, reconfigure, and link-dead events. */

#include <errno.h>
#include <linux/genetlink.h>
#include <linux/nbd-netlink.h>
#include <linux/netlink.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include "agent.h"

#define BLOCK_SIZE 512

/* A netlink message being built. */
struct msg {
	union {
		struct nlmsghdr nh;
		char buf[4096];
	} u;
};

static void msg_init(struct msg *m, uint16_t type, uint8_t cmd, uint8_t version)
{
	struct genlmsghdr *g;

	memset(m, 0, sizeof(*m));
	m->u.nh.nlmsg_len = NLMSG_LENGTH(GENL_HDRLEN);
	m->u.nh.nlmsg_type = type;
	m->u.nh.nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK;
	g = NLMSG_DATA(&m->u.nh);
	g->cmd = cmd;
	g->version = version;
}

static struct nlattr *put_attr(struct msg *m, uint16_t type, const void *data, uint16_t len)
{
	struct nlattr *a = (struct nlattr *)(m->u.buf + NLMSG_ALIGN(m->u.nh.nlmsg_len));

	a->nla_type = type;
	a->nla_len = (uint16_t)(NLA_HDRLEN + len);
	if (len)
		memcpy((char *)a + NLA_HDRLEN, data, len);
	m->u.nh.nlmsg_len = NLMSG_ALIGN(m->u.nh.nlmsg_len) + NLA_ALIGN(a->nla_len);
	return a;
}

static void put_u32(struct msg *m, uint16_t type, uint32_t v)
{
	put_attr(m, type, &v, sizeof(v));
}

static void put_u64(struct msg *m, uint16_t type, uint64_t v)
{
	put_attr(m, type, &v, sizeof(v));
}

/* A nested attribute: open it, add to it, then close it to fix its length. */
static struct nlattr *nest_open(struct msg *m, uint16_t type)
{
	return put_attr(m, type | NLA_F_NESTED, NULL, 0);
}

static void nest_close(struct msg *m, struct nlattr *a)
{
	a->nla_len = (uint16_t)(m->u.buf + m->u.nh.nlmsg_len - (char *)a);
}

static int genl_socket(void)
{
	struct sockaddr_nl sa = { .nl_family = AF_NETLINK };
	int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_GENERIC);

	if (fd >= 0 && bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

/* Send m and read the answer into reply (when given) and the ACK.  0 or -errno. */
static int transact(int fd, struct msg *m, struct msg *reply)
{
	struct msg in;

	if (send(fd, m, m->u.nh.nlmsg_len, 0) < 0)
		return -errno;
	for (;;) {
		ssize_t n = recv(fd, &in, sizeof(in), 0);
		struct nlmsghdr *h;

		if (n < 0)
			return -errno;
		for (h = &in.u.nh; NLMSG_OK(h, (unsigned)n); h = NLMSG_NEXT(h, n)) {
			if (h->nlmsg_type == NLMSG_ERROR) {
				const struct nlmsgerr *e = NLMSG_DATA(h);

				return e->error;
			}
			if (reply)
				memcpy(reply, h, h->nlmsg_len < sizeof(*reply) ? h->nlmsg_len
									: sizeof(*reply));
		}
	}
}

/* Walk the attributes in [start, start+len), calling fn on each. */
static void each_attr(const char *start, int len, void (*fn)(const struct nlattr *, void *),
		      void *arg)
{
	const struct nlattr *a = (const struct nlattr *)start;

	while (len >= NLA_HDRLEN && a->nla_len >= NLA_HDRLEN && a->nla_len <= len) {
		fn(a, arg);
		len -= NLA_ALIGN(a->nla_len);
		a = (const struct nlattr *)((const char *)a + NLA_ALIGN(a->nla_len));
	}
}

static const char *attr_data(const struct nlattr *a)
{
	return (const char *)a + NLA_HDRLEN;
}

struct family {
	uint16_t id;
	uint32_t mcgrp;
};

static void mcast_group(const struct nlattr *a, void *arg)
{
	struct family *f = arg;
	const struct nlattr *x = (const struct nlattr *)attr_data(a);
	int len = a->nla_len - NLA_HDRLEN, named = 0;
	uint32_t id = 0;

	while (len >= NLA_HDRLEN && x->nla_len >= NLA_HDRLEN && x->nla_len <= len) {
		if ((x->nla_type & NLA_TYPE_MASK) == CTRL_ATTR_MCAST_GRP_NAME)
			named = !strcmp(attr_data(x), NBD_GENL_MCAST_GROUP_NAME);
		if ((x->nla_type & NLA_TYPE_MASK) == CTRL_ATTR_MCAST_GRP_ID)
			memcpy(&id, attr_data(x), 4);
		len -= NLA_ALIGN(x->nla_len);
		x = (const struct nlattr *)((const char *)x + NLA_ALIGN(x->nla_len));
	}
	if (named)
		f->mcgrp = id;
}

static void family_attr(const struct nlattr *a, void *arg)
{
	struct family *f = arg;

	if ((a->nla_type & NLA_TYPE_MASK) == CTRL_ATTR_FAMILY_ID)
		memcpy(&f->id, attr_data(a), 2);
	if ((a->nla_type & NLA_TYPE_MASK) == CTRL_ATTR_MCAST_GROUPS)
		each_attr(attr_data(a), a->nla_len - NLA_HDRLEN, mcast_group, f);
}

/* The "nbd" generic netlink family (nbd.ko must be loaded). */
static int resolve(int fd, struct family *f, char *err, size_t errlen)
{
	struct msg m, reply;
	int rc;

	msg_init(&m, GENL_ID_CTRL, CTRL_CMD_GETFAMILY, 1);
	put_attr(&m, CTRL_ATTR_FAMILY_NAME, NBD_GENL_FAMILY_NAME, sizeof(NBD_GENL_FAMILY_NAME));
	memset(&reply, 0, sizeof(reply));
	memset(f, 0, sizeof(*f));
	rc = transact(fd, &m, &reply);
	if (rc == 0)
		each_attr(reply.u.buf + NLMSG_LENGTH(GENL_HDRLEN),
			  (int)reply.u.nh.nlmsg_len - NLMSG_LENGTH(GENL_HDRLEN), family_attr, f);
	if (!f->id) {
		snprintf(err, errlen, "the kernel has no NBD driver (modprobe nbd): %s",
			 strerror(rc ? -rc : ENOENT));
		return -1;
	}
	return 0;
}

static void put_socket(struct msg *m, int sock)
{
	struct nlattr *socks = nest_open(m, NBD_ATTR_SOCKETS), *item = nest_open(m, NBD_SOCK_ITEM);

	put_u32(m, NBD_SOCK_FD, (uint32_t)sock);
	nest_close(m, item);
	nest_close(m, socks);
}

/* A netlink socket with the nbd family resolved; the fd, or -1 with err set. */
static int genl_open(struct family *f, char *err, size_t errlen)
{
	int fd = genl_socket();

	if (fd < 0) {
		snprintf(err, errlen, "no generic netlink socket: %s", strerror(errno));
		return -1;
	}
	if (resolve(fd, f, err, errlen) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

/* Send one NBD command and wait for the kernel's answer; 0 or -1 with err set. */
static int nbd_command(int fd, struct msg *m, const char *what, unsigned index, char *err,
		       size_t errlen)
{
	int rc = transact(fd, m, NULL);

	close(fd);
	if (rc < 0)
		snprintf(err, errlen, "NBD %s of /dev/nbd%u failed: %s", what, index, strerror(-rc));
	return rc < 0 ? -1 : 0;
}

int genl_nbd_connect(unsigned index, int sock, uint64_t size, uint16_t flags,
		     unsigned timeout_s, unsigned dead_timeout_s, char *err, size_t errlen)
{
	struct family f;
	struct msg m;
	int fd = genl_open(&f, err, errlen);

	if (fd < 0)
		return -1;
	msg_init(&m, f.id, NBD_CMD_CONNECT, 1);
	put_u32(&m, NBD_ATTR_INDEX, index);
	put_u64(&m, NBD_ATTR_SIZE_BYTES, size);
	put_u64(&m, NBD_ATTR_BLOCK_SIZE_BYTES, BLOCK_SIZE);
	put_u64(&m, NBD_ATTR_SERVER_FLAGS, flags);
	put_u64(&m, NBD_ATTR_TIMEOUT, timeout_s);
	put_u64(&m, NBD_ATTR_DEAD_CONN_TIMEOUT, dead_timeout_s);
	put_socket(&m, sock);
	return nbd_command(fd, &m, "connect", index, err, errlen);
}

int genl_nbd_reconfigure(unsigned index, int sock, int timeout_s, int dead_timeout_s, char *err,
			 size_t errlen)
{
	struct family f;
	struct msg m;
	int fd = genl_open(&f, err, errlen);

	if (fd < 0)
		return -1;
	msg_init(&m, f.id, NBD_CMD_RECONFIGURE, 1);
	put_u32(&m, NBD_ATTR_INDEX, index);
	if (timeout_s >= 0)
		put_u64(&m, NBD_ATTR_TIMEOUT, (uint64_t)timeout_s);
	if (dead_timeout_s >= 0)
		put_u64(&m, NBD_ATTR_DEAD_CONN_TIMEOUT, (uint64_t)dead_timeout_s);
	if (sock >= 0)
		put_socket(&m, sock);
	return nbd_command(fd, &m, "reconfigure", index, err, errlen);
}

struct dead_match {
	unsigned index;
	int hit;
};

static void dead_attr(const struct nlattr *a, void *arg)
{
	struct dead_match *d = arg;
	uint32_t idx;

	if ((a->nla_type & NLA_TYPE_MASK) == NBD_ATTR_INDEX) {
		memcpy(&idx, attr_data(a), 4);
		d->hit = idx == d->index;
	}
}

/* The family id genl_nbd_watch resolved: what link-dead events carry. */
static uint16_t watched_family;

int genl_nbd_watch(char *err, size_t errlen)
{
	struct family f;
	int fd = genl_open(&f, err, errlen);

	if (fd < 0)
		return -1;
	if (!f.mcgrp ||
	    setsockopt(fd, SOL_NETLINK, NETLINK_ADD_MEMBERSHIP, &f.mcgrp, sizeof(f.mcgrp)) < 0) {
		close(fd);
		snprintf(err, errlen, "cannot listen for NBD link events: setsockopt "
			 "NETLINK_ADD_MEMBERSHIP: %s", f.mcgrp ? strerror(errno) : "no group");
		return -1;
	}
	watched_family = f.id;
	return fd;
}

/* Whether the messages in in (n bytes) say device `index` lost its connection. */
static int dead_event(struct msg *in, ssize_t n, unsigned index)
{
	struct nlmsghdr *h;

	for (h = &in->u.nh; NLMSG_OK(h, (unsigned)n); h = NLMSG_NEXT(h, n)) {
		const struct genlmsghdr *g = NLMSG_DATA(h);
		struct dead_match d = { index, 0 };

		if (h->nlmsg_type != watched_family || g->cmd != NBD_CMD_LINK_DEAD)
			continue;
		each_attr((const char *)g + GENL_HDRLEN,
			  (int)h->nlmsg_len - NLMSG_LENGTH(GENL_HDRLEN), dead_attr, &d);
		if (d.hit)
			return 1;
	}
	return 0;
}

int genl_nbd_wait_dead(int fd, unsigned index, int timeout_ms, char *err, size_t errlen)
{
	struct pollfd p = { fd, POLLIN, 0 };
	struct msg in;

	for (;;) {
		ssize_t n;
		int r = poll(&p, 1, timeout_ms);

		if (r < 0 && errno == EINTR)
			continue;
		if (r == 0) {
			close(fd);
			snprintf(err, errlen, "no NBD link-dead event for /dev/nbd%u within %d ms",
				 index, timeout_ms);
			return -1;
		}
		n = r < 0 ? -1 : recv(fd, &in, sizeof(in), 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			break;
		if (dead_event(&in, n, index)) {
			close(fd);
			return 0;
		}
	}
	snprintf(err, errlen, "NBD event socket failed: poll/recv: %s", strerror(errno));
	close(fd);
	return -1;
}
