/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The option ROM's boot path: the NIC the BIOS ran the ROM for, on the own virtio-net driver, and DHCP of the stub's own (no PXE, no TFTP). */

#include "bios.h"
#include "dhcp.h"

const char stub_banner[] = "netdisk ROM: disk over the network from the virtio-net option ROM";

/* bios/romhdr.asm: the NIC's bus/device/function, as the ROM's init noted it. */
extern uint16_t rom_bdf, rom_bdf_inv;

/* The DHCP exchange on the console. */
static void on_dhcp(void *ctx, int what, uint32_t arg)
{
	if (what == ND_DHCP_EV_RETRY)
		con_printf("netdisk: no DHCP answer, trying again (next wait %u s)\n", arg / 1000);
	else
		con_printf("netdisk: DHCP %s %s\n", nd_dhcp_type_text((int)arg),
			   what == ND_DHCP_EV_SENT ? "sent" : "received");
}

/* Our NIC: the one init was called for, else the first virtio-net on PCI. */
static uint16_t find_nic(void)
{
	uint16_t bdf = rom_bdf, inv = (uint16_t)~rom_bdf_inv;

	if (bdf != 0xffff && bdf == inv && nic_check(bdf) == 0)
		return bdf;
	if (nic_scan(&bdf))
		give_up("no virtio-net NIC on PCI");
	con_printf("netdisk: the ROM's init did not note its NIC; taking the first virtio-net\n");
	return bdf;
}

/* The NIC started, then an address and the server from DHCP. */
void stub_net_start(struct pxe_info *net, uint8_t *scratch, unsigned size)
{
	struct nd_dhcp_lease lease;
	struct nd_framedev *dev;
	int rc;

	net->bdf = find_nic();
	nic_start(net->bdf);
	dev = nic_device();
	{
		struct nd_dhcp_io io = {
			.dev = dev, .now_ms = clock_now, .buf = scratch, .size = size,
			.seed = (uint32_t)rdtsc() ^ nd_get32(dev->mac + 2),
			.give_up_ms = (uint32_t)attach_timeout_s() * 1000, .event = on_dhcp,
		};

		rc = nd_dhcp_run(&io, &lease);
	}
	if (rc == ND_DHCP_E_TIMEOUT)
		give_up("no DHCP lease");
	if (rc)
		give_up("the NIC failed during DHCP");
	/* The lease's first five addresses are pxe_info's, in its order. */
	memcpy(net->my_ip, lease.ip, 20);
	memcpy(net->mac, dev->mac, 6);
	net->server_port = lease.port;
	memcpy(net->image, lease.image, sizeof(lease.image));
	con_printf("netdisk: DHCP lease %I netmask %I router %I; netdisk server %I, image \"%s\"\n",
		   lease.ip, lease.netmask, lease.router, lease.server,
		   lease.image[0] ? lease.image : "(server decides)");
}

_Static_assert(offsetof(struct nd_dhcp_lease, server) == 4 && offsetof(struct nd_dhcp_lease, netmask) == 8 &&
		       offsetof(struct nd_dhcp_lease, router) == 12 &&
		       offsetof(struct pxe_info, server_ip) == offsetof(struct pxe_info, my_ip) + 4 &&
		       offsetof(struct pxe_info, netmask) == offsetof(struct pxe_info, my_ip) + 8 &&
		       offsetof(struct pxe_info, router) == offsetof(struct pxe_info, my_ip) + 12 &&
		       offsetof(struct nd_dhcp_lease, server_id) == 16 &&
		       offsetof(struct pxe_info, dhcp) == offsetof(struct pxe_info, my_ip) + 16,
	       "a lease's addresses copy into pxe_info as one block");

/* The IP stack on the NIC stub_net_start started: no bounce buffer. */
int stub_net_open(struct pxe_info *net, uint16_t server_port, uint16_t timeout_s,
		  struct nd_transport *tp)
{
	nic_ip_open(net, server_port, timeout_s, tp);
	return 0;
}
