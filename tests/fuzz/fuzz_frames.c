/* SPDX-License-Identifier: GPL-2.0-or-later */
/* libFuzzer harness: any sequence of Ethernet frames into the firmware stubs' own IP stack. */

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "ipstack.h"

/*
 * The input is a sequence of frames, each prefixed by a 2-byte length,
 * after a fixed ARP reply that lets nd_ip_open resolve the server.  The
 * length's top bit makes the harness turn the frame into an IPv4 packet
 * from the server to us with a valid header checksum, so the fuzzer gets
 * to fragments and UDP quickly.  Every datagram the stack returns goes to
 * a sink and must fit the buffer given.
 */
#define FIX_UP 0x8000
static const uint8_t our_mac[6] = { 2, 0, 0, 0, 0, 2 }, server_mac[6] = { 2, 0, 0, 0, 0, 1 };
static const uint8_t our_ip[4] = { 10, 0, 0, 2 }, server_ip[4] = { 10, 0, 0, 1 };

static struct {
	const uint8_t *data;
	size_t left;
	uint8_t frame[65536];
	unsigned len;
	uint8_t arp_done;
	uint32_t clock;
} in;

static volatile uint8_t sink_sum;

static void arp_reply(void)
{
	uint8_t *f = in.frame;

	memset(f, 0, 60);
	memcpy(f, our_mac, 6);
	memcpy(f + 6, server_mac, 6);
	f[12] = 0x08, f[13] = 0x06;
	f[14] = 0, f[15] = 1, f[16] = 0x08, f[17] = 0, f[18] = 6, f[19] = 4, f[20] = 0, f[21] = 2;
	memcpy(f + 22, server_mac, 6);
	memcpy(f + 28, server_ip, 4);
	memcpy(f + 32, our_mac, 6);
	memcpy(f + 38, our_ip, 4);
	in.len = 60;
}

/* Ethernet and IPv4 header fields of a frame from the server, and the header checksum. */
static void fix_up(uint8_t *f, unsigned len)
{
	unsigned hlen, i;
	uint32_t sum = 0;

	if (len < 34)
		return;
	memcpy(f, our_mac, 6);
	f[12] = 0x08, f[13] = 0x00;
	f[14] = (uint8_t)(0x40 | (f[14] & 15));
	hlen = (f[14] & 15) * 4u;
	if (hlen < 20 || 14 + hlen > len)
		return;
	f[23] = 17;
	memcpy(f + 26, server_ip, 4);
	memcpy(f + 30, our_ip, 4);
	f[24] = f[25] = 0;
	for (i = 0; i < hlen; i += 2)
		sum += (uint32_t)f[14 + i] << 8 | f[15 + i];
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	f[24] = (uint8_t)(~sum >> 8);
	f[25] = (uint8_t)~sum;
}

static int fz_transmit(void *ctx, const void *frame, unsigned len)
{
	const uint8_t *f = frame;
	unsigned i;

	for (i = 0; i < len; i++)
		sink_sum += f[i];
	return 0;
}

static int fz_receive(void *ctx)
{
	unsigned prefix;

	if (!in.arp_done) {
		in.arp_done = 1;
		arp_reply();
		return (int)in.len;
	}
	if (in.left < 2)
		return -1; /* input used up: the device "fails", which ends every loop */
	prefix = (unsigned)in.data[0] << 8 | in.data[1];

	in.len = prefix & ~FIX_UP;
	in.data += 2;
	in.left -= 2;
	if (in.len > in.left)
		in.len = (unsigned)in.left;
	memcpy(in.frame, in.data, in.len);
	in.data += in.len;
	in.left -= in.len;
	if (prefix & FIX_UP)
		fix_up(in.frame, in.len);
	return in.len ? (int)in.len : 0;
}

static void fz_read(void *ctx, unsigned offset, void *dst, unsigned len)
{
	if (offset > in.len || len > in.len - offset)
		abort(); /* the stack read past the frame it was given */
	memcpy(dst, in.frame + offset, len);
}

static void fz_release(void *ctx)
{
}

/* Time moves 7 ms a call, so reassembly time-outs happen too. */
static uint32_t fz_clock(void *ctx)
{
	return in.clock += 7;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t buf[16384 + 48];
	struct nd_framedev dev = { 0 };
	struct nd_ipconf conf = { 0 };
	struct nd_transport tp = { 0 };
	unsigned sizes[2] = { sizeof(buf), 1500 }, round = 0;
	int got;

	memset(&in, 0, sizeof(in));
	in.data = data;
	in.left = size;
	memcpy(dev.mac, our_mac, 6);
	dev.mtu = 1500;
	dev.transmit = fz_transmit;
	dev.receive = fz_receive;
	dev.read = fz_read;
	dev.release = fz_release;
	memcpy(conf.ip, our_ip, 4);
	memset(conf.netmask, 255, 3);
	memcpy(conf.server, server_ip, 4);
	conf.server_port = 7777;
	conf.seed = 0x12345678; /* local port 49152 + seed % 16384 = 54904 */
	tp.now_ms = fz_clock;
	if (nd_ip_open(&dev, &conf, &tp) != ND_IP_OK)
		abort(); /* the ARP reply was not understood */
	do {
		unsigned n = sizes[round++ % 2];

		got = tp.recv(tp.ctx, buf, n, 0);
		if (got > (int)n)
			abort();
		for (; got > 0; got--)
			sink_sum += buf[got - 1];
		tp.send(tp.ctx, buf, round % 3 ? 100 : 4000);
	} while (got >= 0);
	return 0;
}
