/* ndblast: structure-aware hostile datagrams at netdiskd (valid magic, random fields), bounded. */

/*
 * usage: ndblast SERVER COUNT SECONDS SEED
 *
 * Sends up to COUNT datagrams, for at most SECONDS, that look enough like the
 * protocol to get past the first checks: the magic is always right, the
 * version and the length field usually are, and the token is the blaster's
 * own live session's (it attaches now and then), zero, or random.  Opcodes,
 * flags, LBAs, counts, offsets, payload lengths and bytes are random, biased
 * towards the edges.  Prints what it sent and received; exit 0 if it sent
 * COUNT datagrams in time, 1 if not, 2 on bad arguments or a socket error.
 */

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include "udp_host.h"

#define BATCH 64
#define MAX_LEN 1600         /* longest datagram sent */
#define REATTACH_EVERY 50000 /* datagrams between fresh ATTACHes (a DETACH may end ours) */

static uint64_t rng;

static uint32_t rnd(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return (uint32_t)(rng >> 16);
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* A number biased towards the edges a parser gets wrong: 0, 1, small, huge. */
static uint64_t edgy(uint64_t small)
{
	switch (rnd() % 6) {
	case 0: return 0;
	case 1: return 1;
	case 2: return rnd() % small;
	case 3: return ~(uint64_t)0 - rnd() % 4;
	case 4: return ((uint64_t)rnd() << 32) | rnd();
	default: return small - 1 + rnd() % 3;
	}
}

/* A padded ATTACH with a random MAC; its reply's token becomes the blaster's own. */
static unsigned build_attach(uint8_t *buf)
{
	struct nd_hdr *h = (struct nd_hdr *)buf;
	struct nd_attach_req *r = (struct nd_attach_req *)(buf + ND_HDR_SIZE);
	unsigned i;

	memset(buf, 0, ND_HDR_SIZE + ND_ATTACH_REQ_LEN);
	nd_put32(h->magic, ND_MAGIC);
	h->version = ND_VERSION;
	h->opcode = ND_OP_ATTACH;
	nd_put32(h->req_id, rnd());
	nd_put16(h->data_len, ND_ATTACH_REQ_LEN);
	r->mac[0] = 0x02;
	for (i = 1; i < 6; i++)
		r->mac[i] = (uint8_t)rnd();
	nd_put16(r->max_dgram, ND_DEFAULT_DGRAM);
	nd_put16(r->window, 16);
	nd_put32(r->nonce, rnd());
	return ND_HDR_SIZE + ND_ATTACH_REQ_LEN;
}

/* One hostile datagram into buf; returns its length. */
static unsigned build(uint8_t *buf, const uint8_t *token)
{
	struct nd_hdr *h = (struct nd_hdr *)buf;
	unsigned len = ND_HDR_SIZE + (rnd() % 4 ? rnd() % 600 : rnd() % (MAX_LEN - ND_HDR_SIZE + 1));
	unsigned i, pick = rnd() % 10;

	for (i = 0; i < len; i++)
		buf[i] = (uint8_t)rnd();
	if (rnd() % 8 == 0)
		len = rnd() % ND_HDR_SIZE + 1; /* too short for a header */
	nd_put32(h->magic, ND_MAGIC);
	if (len < ND_HDR_SIZE)
		return len;
	h->version = rnd() % 20 ? ND_VERSION : (uint8_t)rnd();
	h->opcode = (uint8_t)(rnd() % 9);
	h->flags = rnd() % 16 ? 0 : (uint8_t)rnd();
	nd_put16(h->data_len, (uint16_t)(rnd() % 10 ? len - ND_HDR_SIZE : edgy(1500)));
	if (pick < 5)
		memcpy(h->token, token, 16);
	else if (pick < 6)
		memset(h->token, 0, 16);
	nd_put64(h->lba, edgy(65536));
	nd_put32(h->count, (uint32_t)edgy(200));
	nd_put32(h->offset, rnd() % 2 ? (uint32_t)(rnd() % 64) * (ND_DEFAULT_DGRAM - ND_HDR_SIZE)
				      : (uint32_t)edgy(100000));
	return len;
}

int main(int argc, char **argv)
{
	static uint8_t buf[BATCH][MAX_LEN], rx[65536];
	struct mmsghdr msg[BATCH];
	struct iovec iov[BATCH];
	struct nd_udp_host u;
	unsigned long count, sent = 0, replies = 0, attaches = 0;
	unsigned long long bytes_out = 0, bytes_in = 0;
	uint8_t token[16] = { 0 };
	double start, limit;
	char err[256];
	int i, n;

	if (argc != 5 || !(count = strtoul(argv[2], NULL, 10)) || !(limit = atof(argv[3]))) {
		fprintf(stderr, "usage: ndblast SERVER COUNT SECONDS SEED\n");
		return 2;
	}
	rng = strtoull(argv[4], NULL, 0) * 0x9e3779b97f4a7c15ull | 1;
	if (nd_udp_host_open(&u, argv[1], err, sizeof(err)) < 0) {
		fprintf(stderr, "ndblast: %s\n", err);
		return 2;
	}
	start = now_s();
	while (sent < count && now_s() - start < limit) {
		int want = count - sent < BATCH ? (int)(count - sent) : BATCH;

		for (i = 0; i < want; i++) {
			unsigned len = (sent + (unsigned long)i) % REATTACH_EVERY == 0 ?
					       (attaches++, build_attach(buf[i])) : build(buf[i], token);

			iov[i].iov_base = buf[i];
			iov[i].iov_len = len;
			memset(&msg[i], 0, sizeof(msg[i]));
			msg[i].msg_hdr.msg_iov = &iov[i];
			msg[i].msg_hdr.msg_iovlen = 1;
		}
		n = sendmmsg(u.fd, msg, (unsigned)want, 0);
		if (n < 0 && errno != EINTR && errno != ECONNREFUSED && errno != ENOBUFS) {
			fprintf(stderr, "ndblast: sendmmsg: %s\n", strerror(errno));
			return 2;
		}
		for (i = 0; i < n; i++)
			bytes_out += iov[i].iov_len;
		sent += n > 0 ? (unsigned long)n : 0;
		/* Take what came back; an ATTACH reply gives the blaster a live token. */
		for (;;) {
			ssize_t got = recv(u.fd, rx, sizeof(rx), MSG_DONTWAIT);
			const struct nd_hdr *h = (const struct nd_hdr *)rx;

			if (got < 0)
				break;
			replies++;
			bytes_in += (unsigned long long)got;
			if (got >= ND_HDR_SIZE && h->opcode == ND_OP_ATTACH && !nd_get16(h->status))
				memcpy(token, h->token, 16);
		}
	}
	printf("# ndblast: %lu datagrams (%llu bytes, %lu ATTACHes) in %.1f s; %lu replies "
	       "(%llu bytes) came back\n", sent, bytes_out, attaches, now_s() - start, replies,
	       bytes_in);
	nd_udp_host_close(&u);
	if (sent < count) {
		fprintf(stderr, "ndblast: sent only %lu of %lu datagrams in %.0f s\n", sent, count,
			limit);
		return 1;
	}
	return 0;
}
