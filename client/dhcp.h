/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The firmware stubs' own DHCP client (RFC 2131) on a frame device, for boots with no PXE stack (freestanding). */
#ifndef NDDHCP_H
#define NDDHCP_H

#include <stdint.h>
#include "ipstack.h"

/*
 * What a DHCPACK (or DHCPOFFER) says, in network byte order.  Where the
 * netdisk server is, in this order: option 43 (vendor-specific information,
 * sent to a client whose vendor class is "netdisk") sub-option 1, option 66
 * when it is a dotted IPv4 address, siaddr (the next-server), option 54 (the
 * DHCP server itself).  The image: option 43 sub-option 3, option 67, the
 * BOOTP file field.  docs/rom.md shows the dnsmasq and ISC dhcpd lines.
 */
#define ND_DHCP_VENDOR_CLASS "netdisk"
#define ND_DHCP_SUB_SERVER 1 /* option 43 sub-option: IPv4 address, 4 bytes */
#define ND_DHCP_SUB_PORT 2   /* UDP port, 2 bytes big-endian */
#define ND_DHCP_SUB_IMAGE 3  /* image name */
#define ND_DHCP_IMAGE_MAX 63 /* longest image name kept (the boot config's field less its NUL) */

struct nd_dhcp_lease {
	uint8_t ip[4];          /* yiaddr */
	uint8_t server[4];      /* the netdisk server (see above); 0.0.0.0 = none named */
	uint8_t netmask[4];     /* option 1; 0.0.0.0 when absent */
	uint8_t router[4];      /* option 3 (the first); 0.0.0.0 = none */
	uint8_t server_id[4];   /* option 54 */
	uint16_t port;          /* option 43 sub-option 2; 0 = not given */
	char image[ND_DHCP_IMAGE_MAX + 1]; /* "" = not given */
};

/* DHCP message types (option 53). */
enum {
	ND_DHCP_DISCOVER = 1, ND_DHCP_OFFER = 2, ND_DHCP_REQUEST = 3, ND_DHCP_DECLINE = 4,
	ND_DHCP_ACK = 5, ND_DHCP_NAK = 6, ND_DHCP_RELEASE = 7, ND_DHCP_INFORM = 8,
};

enum nd_dhcp_error {
	ND_DHCP_E_SHORT = -1,   /* shorter than a BOOTP header and the cookie */
	ND_DHCP_E_NOT_OURS = -2, /* not a reply, another xid or another client's */
	ND_DHCP_E_COOKIE = -3,  /* no DHCP magic cookie */
	ND_DHCP_E_OPTION = -4,  /* an option runs past the packet */
	ND_DHCP_E_TYPE = -5,    /* no or an unknown message type */
	ND_DHCP_E_ADDRESS = -6, /* an OFFER or ACK without an address for us */
	ND_DHCP_E_TIMEOUT = -7, /* nd_dhcp_run: no lease within the time allowed */
	ND_DHCP_E_DEVICE = -8,  /* nd_dhcp_run: the device failed */
};

/*
 * Parse a DHCP reply of len bytes (the UDP payload) to our xid and MAC:
 * its message type (ND_DHCP_OFFER, ND_DHCP_ACK, ND_DHCP_NAK, ...) with
 * *lease filled in, or an nd_dhcp_error.  Never reads past pkt + len.
 */
int nd_dhcp_parse(const uint8_t *pkt, unsigned len, uint32_t xid, const uint8_t mac[6],
		  struct nd_dhcp_lease *lease);

/*
 * Find the DHCP payload (UDP from port 67 to port 68) in an Ethernet frame
 * of len bytes to mac or to broadcast: its offset in *at and length in
 * *plen, 0; -1 if the frame is anything else or malformed (checksums
 * included).  Never reads past frame + len.
 */
int nd_dhcp_frame(const uint8_t *frame, unsigned len, const uint8_t mac[6], unsigned *at,
		  unsigned *plen);

/*
 * Build a whole Ethernet frame (broadcast, from 0.0.0.0:68 to
 * 255.255.255.255:67) carrying a DISCOVER or a REQUEST for lease->ip from
 * lease->server_id: its length, 0 if size is too small (ND_DHCP_FRAME_MAX
 * always suffices).  secs goes into the secs field.
 */
#define ND_DHCP_FRAME_MAX 400
unsigned nd_dhcp_build(uint8_t *frame, unsigned size, int type, uint32_t xid,
		       const uint8_t mac[6], uint16_t secs, const struct nd_dhcp_lease *lease);

/* What nd_dhcp_run reports while it works (for the console). */
enum nd_dhcp_event {
	ND_DHCP_EV_SENT = 1,     /* arg = the message type sent */
	ND_DHCP_EV_RECEIVED = 2, /* arg = the type of a reply to us */
	ND_DHCP_EV_RETRY = 3,    /* no answer; arg = the next wait in ms */
};

struct nd_dhcp_io {
	struct nd_framedev *dev;          /* started, dev->mac set */
	uint32_t (*now_ms)(void *ctx);    /* a millisecond clock */
	void *ctx;
	uint8_t *buf;                     /* scratch for one frame */
	unsigned size;                    /* at least dev's largest frame (1514) */
	uint32_t seed;                    /* random per boot: the xid */
	uint32_t give_up_ms;              /* stop trying after this long */
	void (*event)(void *ctx, int what, uint32_t arg); /* optional */
};

/* First and longest wait for a reply: the wait doubles after each miss. */
#define ND_DHCP_FIRST_WAIT_MS 1000
#define ND_DHCP_MAX_WAIT_MS 8000

/*
 * DISCOVER, OFFER, REQUEST, ACK: 0 with *lease filled in from the ACK, or
 * an nd_dhcp_error.  A lost message is sent again after 1, 2, 4, 8, 8, ...
 * seconds (ND_DHCP_*_WAIT_MS); a NAK or a REQUEST left unanswered starts
 * over with a DISCOVER; all within io->give_up_ms.
 */
int nd_dhcp_run(const struct nd_dhcp_io *io, struct nd_dhcp_lease *lease);

/* "DISCOVER", "OFFER", ... for messages. */
const char *nd_dhcp_type_text(int type);

#endif /* NDDHCP_H */
