/* SPDX-License-Identifier: GPL-2.0-or-later */
/* netdisk.pxe's boot path: finds the PXE API, reads its DHCPACK, hands a virtio-net NIC to the own driver or moves UDP datagrams through PXE. */

#include "bios.h"
#include "virtio_net.h"

#define PXENV_GET_CACHED_INFO 0x0071
#define PXENV_UDP_OPEN 0x0030
#define PXENV_UDP_READ 0x0032
#define PXENV_UDP_WRITE 0x0033
#define PXENV_PACKET_TYPE_DHCP_ACK 2
#define PXENV_PACKET_TYPE_CACHED_REPLY 3
#define PXENV_UNDI_SHUTDOWN 0x0005
#define PXENV_UNDI_GET_NIC_TYPE 0x0012
#define NIC_TYPE_PCI 2

#define FAR_SEG(p) ((uint16_t)((p) >> 16))
#define FAR_OFF(p) ((uint16_t)(p))

struct s_pxenv_get_cached_info {
	uint16_t status;
	uint16_t packet_type;
	uint16_t buffer_size;
	uint16_t buffer_off, buffer_seg;
	uint16_t buffer_limit;
} __attribute__((packed));

struct s_pxenv_udp_open {
	uint16_t status;
	uint8_t src_ip[4];
} __attribute__((packed));

struct s_pxenv_udp_read {
	uint16_t status;
	uint8_t src_ip[4];
	uint8_t dest_ip[4];
	uint16_t s_port;          /* network byte order */
	uint16_t d_port;          /* network byte order */
	uint16_t buffer_size;
	uint16_t buffer_off, buffer_seg;
} __attribute__((packed));

struct s_pxenv_udp_write {
	uint16_t status;
	uint8_t ip[4];
	uint8_t gw[4];
	uint16_t src_port;        /* network byte order */
	uint16_t dst_port;        /* network byte order */
	uint16_t buffer_size;
	uint16_t buffer_off, buffer_seg;
} __attribute__((packed));

struct s_pxenv_undi_shutdown {
	uint16_t status;
} __attribute__((packed));

struct s_pxenv_undi_get_nic_type {
	uint16_t status;
	uint8_t nic_type;
	uint16_t vendor, device;
	uint8_t base_class, sub_class, prog_if, revision;
	uint16_t bus_dev_fn;
	uint16_t sub_vendor, sub_device;
} __attribute__((packed));

const char stub_banner[] = "netdisk.pxe: disk over the network via PXE";

/* Where datagrams go: filled by pxe_udp_open. */
static struct {
	uint8_t my_ip[4];
	uint8_t server_ip[4];
	uint8_t gateway_ip[4];
	uint16_t server_port;     /* network byte order */
	uint16_t local_port;      /* network byte order */
} udp;

static int memcmp4(const uint8_t *a, const uint8_t *b)
{
	return a[0] != b[0] || a[1] != b[1] || a[2] != b[2] || a[3] != b[3];
}

static uint16_t htons(uint16_t v)
{
	return (uint16_t)((v << 8) | (v >> 8));
}

/* Sum of a structure's bytes in far memory; valid PXE structures sum to 0. */
static uint8_t far_sum(uint32_t farptr, unsigned len)
{
	uint8_t sum = 0;
	unsigned i;

	for (i = 0; i < len; i++)
		sum += (uint8_t)far_read8(FAR_SEG(farptr), (uint16_t)(FAR_OFF(farptr) + i));
	return sum;
}

static int far_sig(uint32_t farptr, const char *sig, unsigned len)
{
	unsigned i;

	for (i = 0; i < len; i++)
		if (far_read8(FAR_SEG(farptr), (uint16_t)(FAR_OFF(farptr) + i)) != (uint8_t)sig[i])
			return 0;
	return 1;
}

/* A !PXE structure with its checksum right; its EntryPointSP is at offset 16. */
static int valid_bang_pxe(uint32_t p)
{
	unsigned len;

	if (!p || !far_sig(p, "!PXE", 4))
		return 0;
	len = far_read8(FAR_SEG(p), FAR_OFF(p) + 4);
	return len >= 20 && far_sum(p, len) == 0;
}

/* Prefer !PXE (from the stack, else PXENV+.PXEPtr); fall back to PXENV+.RMEntry. */
int pxe_find(void)
{
	uint32_t p = pxenv_ptr;

	if (valid_bang_pxe(pxe_ptr)) {
		pxe_entry = far_read32(FAR_SEG(pxe_ptr), FAR_OFF(pxe_ptr) + 16);
		return 0;
	}
	if (!p || !far_sig(p, "PXENV+", 6))
		return -1;
	if (far_sum(p, far_read8(FAR_SEG(p), FAR_OFF(p) + 8)) != 0)
		return -1;
	if (far_read16(FAR_SEG(p), FAR_OFF(p) + 6) >= 0x0201) {
		uint32_t bang = far_read32(FAR_SEG(p), FAR_OFF(p) + 0x28);

		if (valid_bang_pxe(bang)) {
			pxe_entry = far_read32(FAR_SEG(bang), FAR_OFF(bang) + 16);
			return 0;
		}
	}
	pxe_entry = far_read32(FAR_SEG(p), FAR_OFF(p) + 0x0a);
	pxe_use_pxenv = 1;
	return 0;
}

static void far_get(uint16_t seg, uint16_t off, uint8_t *dst, unsigned len)
{
	far_to_near(dst, seg, off, (uint16_t)len);
}

/* Our address, the MAC, netmask and router from the DHCPACK the PXE stack
 * kept.  The next-server from the boot server's reply (PXE 2.1's "cached
 * reply") when it names one, else from the DHCPACK: beside a proxy-DHCP
 * server the DHCPACK comes from the site's DHCP server, whose next-server
 * (often itself) is not where the boot file and netdiskd are; the proxy's
 * reply names that machine.  Without a proxy the cached reply is the
 * DHCPACK itself.  Called once, at start. */
int pxe_get_info(struct pxe_info *info)
{
	/* In bss, so zero: buffer 0:0 asks for a pointer to the stack's own
	 * copy.  No code clears it: .text is a few bytes under a 4 KiB page
	 * boundary, and crossing it pushes the stub past its 64 KiB segment. */
	static struct s_pxenv_get_cached_info reply;
	struct s_pxenv_get_cached_info gci;
	uint16_t seg, off, end, pos;

	memset(&gci, 0, sizeof(gci));
	gci.packet_type = PXENV_PACKET_TYPE_DHCP_ACK;
	if (pxe_call(PXENV_GET_CACHED_INFO, &gci) || gci.status || gci.buffer_size < 240)
		return -1;
	seg = gci.buffer_seg;
	off = gci.buffer_off;
	far_get(seg, off + 16, info->my_ip, 4);
	far_get(seg, off + 20, info->server_ip, 4);
	far_get(seg, off + 28, info->mac, 6);
	memset(info->netmask, 0, 4);
	memset(info->router, 0, 4);
	/* Options after the magic cookie: 1 = subnet mask, 3 = routers, 6 =
	 * DNS servers, 54 = the DHCP server (the last two for the iBFT). */
	end = (uint16_t)(off + gci.buffer_size);
	for (pos = off + 240; pos + 2 <= end;) {
		uint8_t code = (uint8_t)far_read8(seg, pos), len, *dst;

		if (code == 255)
			break;
		if (code == 0) {
			pos++;
			continue;
		}
		len = (uint8_t)far_read8(seg, pos + 1);
		if (pos + 2 + len > end)
			break;
		dst = code == 1 ? info->netmask : code == 3 ? info->router
		      : code == 6 ? info->dns : code == 54 ? info->dhcp : NULL;
		if (dst && len >= 4)
			far_get(seg, pos + 2, dst, 4);
		pos += 2 + len;
	}
	reply.packet_type = PXENV_PACKET_TYPE_CACHED_REPLY;
	if (!pxe_call(PXENV_GET_CACHED_INFO, &reply) && !reply.status &&
	    far_read32(reply.buffer_seg, reply.buffer_off + 20))
		far_get(reply.buffer_seg, reply.buffer_off + 20, info->server_ip, 4);
	return 0;
}

/* Datagrams to a server off our subnet go through the DHCP router. */
int pxe_udp_open(const struct pxe_info *info, uint16_t server_port, uint16_t local_port)
{
	struct s_pxenv_udp_open op;
	int i, local = 1;

	for (i = 0; i < 4; i++)
		if ((info->my_ip[i] & info->netmask[i]) != (info->server_ip[i] & info->netmask[i]))
			local = 0;
	memset(udp.gateway_ip, 0, 4);
	if (!local)
		memcpy(udp.gateway_ip, info->router, 4);
	memcpy(udp.my_ip, info->my_ip, 4);
	memcpy(udp.server_ip, info->server_ip, 4);
	udp.server_port = htons(server_port);
	udp.local_port = htons(local_port);
	memset(&op, 0, sizeof(op));
	memcpy(op.src_ip, info->my_ip, 4);
	if (pxe_call(PXENV_UDP_OPEN, &op) || op.status)
		return -1;
	return 0;
}

/* A datagram the stack refuses (its transmit ring is full) counts as lost
 * on the wire: the client core's retransmission sends it again, where an
 * error would fail the whole disk request. */
static int udp_send(void *ctx, const void *buf, unsigned len)
{
	struct s_pxenv_udp_write w;
	uint16_t seg, off;

	memset(&w, 0, sizeof(w));
	memcpy(w.ip, udp.server_ip, 4);
	memcpy(w.gw, udp.gateway_ip, 4);
	w.src_port = udp.local_port;
	w.dst_port = udp.server_port;
	w.buffer_size = (uint16_t)len;
	pxe_buffer_out(buf, (uint16_t)len, &seg, &off);
	w.buffer_seg = seg;
	w.buffer_off = off;
	pxe_call(PXENV_UDP_WRITE, &w);
	return 0;
}

/* One poll of the PXE stack: a datagram from the server, or 0. */
static int udp_poll(void *buf, unsigned size)
{
	struct s_pxenv_udp_read r;
	uint16_t seg, off;

	memset(&r, 0, sizeof(r));
	memcpy(r.dest_ip, udp.my_ip, 4);
	r.d_port = udp.local_port;
	r.buffer_size = (uint16_t)size;
	pxe_buffer_in(buf, &seg, &off);
	r.buffer_seg = seg;
	r.buffer_off = off;
	if (pxe_call(PXENV_UDP_READ, &r) || r.status)
		return 0;
	if (r.buffer_size > size)
		return 0;
	pxe_buffer_done(buf, r.buffer_size);
	if (memcmp4(r.src_ip, udp.server_ip) || r.s_port != udp.server_port)
		return 0;
	return r.buffer_size;
}

/* UDP_READ never blocks, so waiting is polling until the deadline. */
static int udp_recv(void *ctx, void *buf, unsigned size, uint32_t wait_ms)
{
	uint32_t start = clock_ms();

	for (;;) {
		int len = udp_poll(buf, size);

		if (len > 0)
			return len;
		if (clock_ms() - start >= wait_ms)
			return 0;
	}
}

void pxe_transport(struct nd_transport *tp)
{
	tp->ctx = 0;
	tp->send = udp_send;
	tp->recv = udp_recv;
	tp->now_ms = clock_now;
}

/* The PXE stack's facts: its API and the DHCPACK it kept. */
void stub_net_start(struct pxe_info *net, uint8_t *scratch, unsigned size)
{
	if (pxe_find())
		give_up("no PXE API found (neither !PXE nor PXENV+)");
	if (pxe_get_info(net))
		give_up("the PXE stack has no DHCP information");
}

/* The PCI function PXE booted from (noted for the iBFT), if it is one our
 * driver runs. */
static int pxe_nic(uint16_t *bdf)
{
	struct s_pxenv_undi_get_nic_type t;

	memset(&t, 0, sizeof(t));
	if (pxe_call(PXENV_UNDI_GET_NIC_TYPE, &t) || t.status || t.nic_type != NIC_TYPE_PCI)
		return -1;
	*bdf = t.bus_dev_fn;
	if (t.vendor != VN_PCI_VENDOR || t.device != VN_PCI_DEVICE || nic_check(t.bus_dev_fn))
		return -1;
	return 0;
}

/* Our own driver when the NIC is one we have a driver for, else PXE's UDP. */
int stub_net_open(struct pxe_info *net, uint16_t server_port, uint16_t timeout_s,
		  struct nd_transport *tp)
{
	struct s_pxenv_undi_shutdown shutdown;
	uint16_t local_port, bdf = 0;
	int ours = pxe_nic(&bdf);

	net->bdf = bdf;
	if (!(bootcfg.flags & ND_BOOTCFG_FIRMWARE_NET) && ours == 0) {
		/* From here the PXE stack loses the NIC: it resets it when it
		 * shuts down, and so do we. */
		shutdown.status = 0;
		pxe_call(PXENV_UNDI_SHUTDOWN, &shutdown);
		nic_start(bdf);
		nic_ip_open(net, server_port, timeout_s, tp);
		return 0;
	}
	local_port = (uint16_t)(0xc000 | (rdtsc() & 0x3fff));
	if (pxe_udp_open(net, server_port, local_port))
		give_up("PXE UDP_OPEN failed");
	pxe_transport(tp);
	con_printf("netdisk: network through the PXE stack's UDP API\n");
	return 1;
}
