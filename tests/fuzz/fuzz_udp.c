/* SPDX-License-Identifier: GPL-2.0-or-later */
/* libFuzzer harness: any datagram into netdiskd's handler, with and without a live session. */

#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "fuzz_server.h"
#include "netdiskd.h"

/*
 * Byte 7 of the header is reserved on the wire; the harness uses its low
 * bits as switches so the fuzzer reaches deep paths quickly: bit 0 puts a
 * valid magic and version in, bit 1 the live session's token, bit 2 sends
 * from another port than the session's.  Whatever the input, the server must
 * never answer with more bytes than it got unless the request carried the
 * live token from the session's own address (no amplification): the harness
 * aborts if it does.  Which tokens are live where, the harness learns on its
 * own from the ATTACH replies it sees (the fuzzer opens sessions too, and
 * learns their tokens from the server's comparisons), not from the server.
 */
#define FORCE_MAGIC 0x01
#define FORCE_TOKEN 0x02
#define OTHER_PEER 0x04

static struct server srv;
static uint8_t token[16];
static uint8_t last_reply[ND_HDR_SIZE];
static char image_path[] = "/tmp/netdisk-fuzz-image.XXXXXX";
static struct sockaddr_in peer = { .sin_family = AF_INET, .sin_port = 4242 };
static struct sockaddr_in other = { .sin_family = AF_INET, .sin_port = 4343 };
static size_t reply_bytes; /* what the handler sent for the input in hand */
#define GRANTS 256
static struct grant {
	uint8_t token[16];
	in_port_t port;
} grants[GRANTS]; /* tokens ATTACH replies handed out, and to which port */
static unsigned grant_next;
static volatile uint8_t reply_sum; /* keeps the reads in sink() from being optimised away */

/*
 * Record that an ATTACH reply handed this token to this port.  A slot is
 * reused only once its session is gone (the server holds at most
 * max_sessions, far fewer than GRANTS), so a live session's grant is never
 * forgotten however many sessions the fuzzer opens and ends.
 */
static void grant(const uint8_t tok[16], in_port_t port)
{
	unsigned i, slot = GRANTS;

	for (i = 0; i < GRANTS && slot == GRANTS; i++)
		if (!memcmp(grants[i].token, tok, 16))
			slot = i; /* a retried ATTACH: the same grant */
	for (i = 0; i < GRANTS && slot == GRANTS; i++)
		if (!grants[i].port || !session_find(&srv, grants[i].token))
			slot = i;
	if (slot == GRANTS) {
		slot = grant_next; /* cannot happen while GRANTS > max_sessions */
		grant_next = (grant_next + 1) % GRANTS;
	}
	memcpy(grants[slot].token, tok, 16);
	grants[slot].port = port;
}

/* Read every byte the handler hands out, so ASan sees any bad pointer. */
static void sink(struct server *s, struct iovec (*iov)[2], unsigned n,
		 const struct sockaddr *to, socklen_t tolen)
{
	const struct nd_hdr *r = (const struct nd_hdr *)last_reply;
	unsigned i, j;
	size_t k;

	for (i = 0; i < n; i++)
		for (j = 0; j < 2; j++) {
			for (k = 0; k < iov[i][j].iov_len; k++)
				reply_sum += ((const uint8_t *)iov[i][j].iov_base)[k];
			reply_bytes += iov[i][j].iov_len;
		}
	memcpy(last_reply, iov[0][0].iov_base, ND_HDR_SIZE);
	if (r->opcode == ND_OP_ATTACH && !nd_get16(r->status))
		grant(r->token, ((const struct sockaddr_in *)to)->sin_port);
}

/* Did an ATTACH reply hand this token to this port? */
static int granted(const uint8_t tok[16], const struct sockaddr_in *from)
{
	unsigned i;

	for (i = 0; i < GRANTS; i++)
		if (grants[i].port == from->sin_port && !memcmp(grants[i].token, tok, 16))
			return 1;
	return 0;
}

static void attach(void)
{
	uint8_t pkt[ND_HDR_SIZE + ND_ATTACH_REQ_LEN] = { 0 };
	struct nd_hdr *h = (struct nd_hdr *)pkt;
	struct nd_attach_req *r = (struct nd_attach_req *)(pkt + ND_HDR_SIZE);

	nd_put32(h->magic, ND_MAGIC);
	h->version = ND_VERSION;
	h->opcode = ND_OP_ATTACH;
	nd_put16(h->data_len, ND_ATTACH_REQ_LEN);
	memcpy(r->mac, "\x02\x00\x00\x00\x00\x01", 6);
	nd_put16(r->max_dgram, ND_DEFAULT_DGRAM);
	nd_put16(r->window, 16);
	handle_datagram(&srv, pkt, sizeof(pkt), (struct sockaddr *)&peer, sizeof(peer));
	memcpy(token, ((struct nd_hdr *)last_reply)->token, 16);
}

static void teardown(void)
{
	server_close(&srv);
	unlink(image_path);
}

static void setup(void)
{
	int fd;

	fuzz_server_open(&srv, image_path);
	fd = open(image_path, O_WRONLY);
	if (fd < 0 || pwrite(fd, "netdisk", 7, 4096) != 7) {
		perror("fuzz setup");
		exit(1);
	}
	close(fd);
	srv.cfg.max_sessions = 64;
	/* takeover = iscsi: ND_OP_IBFT builds a table from the input's NIC
	 * facts (the target itself is not opened here). */
	srv.cfg.takeover = TAKEOVER_ISCSI;
	snprintf(srv.cfg.iscsi_listen, sizeof(srv.cfg.iscsi_listen), "0.0.0.0:3260");
	srv.iobuf_size = 2048 * ND_SECTOR_SIZE;
	srv.iobuf = malloc(srv.iobuf_size);
	srv.send = sink;
	atexit(teardown);
	attach();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t pkt[ND_MAX_DGRAM];
	struct nd_hdr *h = (struct nd_hdr *)pkt;
	const struct sockaddr_in *from = &peer;
	int validated;

	if (!srv.iobuf)
		setup();
	if (size > sizeof(pkt))
		return 0;
	memcpy(pkt, data, size);
	if (size >= ND_HDR_SIZE && (h->reserved & FORCE_MAGIC)) {
		nd_put32(h->magic, ND_MAGIC);
		h->version = ND_VERSION;
		nd_put16(h->data_len, (uint16_t)(size - ND_HDR_SIZE));
	}
	if (size >= ND_HDR_SIZE && (h->reserved & FORCE_TOKEN))
		memcpy(h->token, token, 16);
	if (size >= ND_HDR_SIZE && (h->reserved & OTHER_PEER))
		from = &other;
	validated = size >= ND_HDR_SIZE && h->opcode != ND_OP_ATTACH && granted(h->token, from);
	reply_bytes = 0;
	handle_datagram(&srv, pkt, size, (const struct sockaddr *)from, sizeof(*from));
	if (!validated && reply_bytes > size) {
		fprintf(stderr, "amplification: %zu-byte request got %zu bytes back\n", size,
			reply_bytes);
		abort();
	}
	if (!session_find(&srv, token))
		attach(); /* the input ended the session: start another */
	return 0;
}
