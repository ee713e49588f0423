/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The firmware stubs' own Ethernet, ARP, IPv4 (reassembly included) and UDP on a frame device (freestanding). */
#ifndef NDIPSTACK_H
#define NDIPSTACK_H

#include <stddef.h>
#include <stdint.h>
#include "ndclient.h"

/* Ethernet, as the stack and the frame device drivers see it. */
#define ND_ETH_HLEN 14
#define ND_ETH_ALEN 6
#define ND_ETH_MIN_FRAME 60     /* shortest frame without FCS: shorter ones are padded */
#define ND_ETH_P_IP 0x0800
#define ND_ETH_P_ARP 0x0806

/*
 * A NIC as the stack sees it: frames go out whole (Ethernet header
 * included) and come in one at a time.  A received frame stays with the
 * stack, which copies what it needs out of it, until release().  Drivers:
 * the firmware's SNP (efi/snp.c), the stubs' own virtio-net
 * (client/virtio_net.c).
 */
struct nd_framedev {
	void *ctx;
	uint8_t mac[6];
	uint16_t mtu;  /* largest IP packet one frame carries */
	/* Send one frame of len bytes (at least 60: the stack pads).  0 when
	 * the NIC took it, negative when it could not (the frame is lost). */
	int (*transmit)(void *ctx, const void *frame, unsigned len);
	/* Take the next received frame: its length, 0 when none is waiting,
	 * negative when the NIC failed for good. */
	int (*receive)(void *ctx);
	/* Copy len bytes from offset of the frame receive() took. */
	void (*read)(void *ctx, unsigned offset, void *dst, unsigned len);
	/* Optional (NULL: the stack sums what read() copied): read() that
	 * also returns the ones' complement sum of the bytes, for a device
	 * whose copy can take it on the way.  The sum is of 32-bit words in
	 * the machine's byte order, the bytes zero-padded to whole words, with
	 * every carry out of bit 31 added back in. */
	uint32_t (*read_sum)(void *ctx, unsigned offset, void *dst, unsigned len);
	/* Hand the frame receive() took back to the NIC. */
	void (*release)(void *ctx);
};

/* Where the stub is and whom it talks to; addresses in network order. */
struct nd_ipconf {
	uint8_t ip[4], netmask[4], gateway[4]; /* gateway 0.0.0.0: none */
	uint8_t server[4];
	uint16_t server_port;
	uint32_t seed;  /* random per boot: local port, first IP id */
};

/* 0.0.0.0: "none" in the stubs' settings (gateway, server override). */
static inline int nd_ip_is_zero(const uint8_t *ip)
{
	return !(ip[0] | ip[1] | ip[2] | ip[3]);
}

enum nd_ip_result {
	ND_IP_OK = 0,
	ND_IP_E_ARP = -1,   /* the next hop never answered ARP */
	ND_IP_E_ARG = -2,   /* unusable device or addresses */
};

/*
 * Bind the stack to a device, resolve the next hop (the server, or the
 * gateway when the server is off-link) and fill tp->send/recv/ctx; tp's
 * clock must be set already, the stack times its waits with it.
 */
int nd_ip_open(struct nd_framedev *dev, const struct nd_ipconf *conf, struct nd_transport *tp);

/*
 * Receive the IPv4 multicast group `group`:`port` (the one ATTACH offered)
 * besides our own address, from the server only, and tell the switches so
 * (an IGMPv2 membership report); nd_ip_leave sends the IGMP leave.  The
 * device must deliver the group's frames (a promiscuous or multicast
 * filter).  Only in builds with -DND_GROUP.
 */
int nd_ip_join(const uint8_t group[4], uint16_t port);
void nd_ip_leave(void);

/* The Internet checksum (RFC 1071) of len bytes, to store as a native
 * 16-bit word (it is then in network order); over a header that carries
 * its checksum already the result is 0 when it is right.  For other
 * protocols on the same device (client/dhcp.c). */
uint16_t nd_ip_checksum(const void *data, unsigned len);

/* Whether the UDP datagram of len bytes at udp (header included) in the
 * IPv4 packet whose header is at ip carries a right checksum, or none. */
int nd_udp_checksum_ok(const uint8_t *ip, const uint8_t *udp, unsigned len);

/* Never touch the device again (ExitBootServices, takeover): sends and
 * receives fail from now on. */
void nd_ip_stop(void);

/* The next hop nd_ip_open resolved, or tried to: for messages. */
const uint8_t *nd_ip_next_hop(void);

#endif /* NDIPSTACK_H */
