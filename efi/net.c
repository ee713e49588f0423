/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The stub's transport: own IPv4/UDP on its own virtio-net driver or on the NIC's SNP, else the firmware's UDP4. */
#include "netdisk.h"

static enum { NET_NONE, NET_VIRTIO, NET_SNP, NET_UDP4 } in_use;

static uint32_t net_now(void *ctx)
{
	return efi_clock_ms();
}

/* What the IP stack needs, the same on either frame device. */
static void ip_conf(const struct efi_netinfo *ni, struct nd_ipconf *c)
{
	CopyMem(c->ip, (VOID *)ni->local.Addr, 4);
	CopyMem(c->netmask, (VOID *)ni->netmask.Addr, 4);
	CopyMem(c->gateway, (VOID *)ni->gateway.Addr, 4);
	CopyMem(c->server, (VOID *)ni->server.Addr, 4);
	c->server_port = ni->port;
	c->seed = efi_clock_entropy();
}

/* Bind the IP stack to a frame device: EFI_NO_RESPONSE when ARP got no answer. */
static EFI_STATUS ip_open(struct nd_framedev *dev, const struct nd_ipconf *conf,
			  struct nd_transport *tp)
{
	const UINT8 *hop;

	if (nd_ip_open(dev, conf, tp) == ND_IP_OK)
		return EFI_SUCCESS;
	hop = nd_ip_next_hop();
	Print(L"netdisk: no ARP answer from %d.%d.%d.%d\n", hop[0], hop[1], hop[2], hop[3]);
	return EFI_NO_RESPONSE;
}

/* The NIC on the stub's own driver, unless the boot config asks for the
 * firmware's network API or the NIC is no legacy virtio-net. */
static EFI_STATUS open_virtio(EFI_HANDLE image, struct efi_netinfo *ni,
			      const struct nd_ipconf *conf, struct nd_transport *tp)
{
	struct nd_framedev *dev;
	EFI_STATUS status;

	if (efi_bootcfg.flags & ND_BOOTCFG_FIRMWARE_NET)
		return EFI_UNSUPPORTED;
	status = efi_virtio_open(image, ni, &dev);
	if (EFI_ERROR(status))
		return status;
	status = ip_open(dev, conf, tp);
	if (EFI_ERROR(status))
		efi_virtio_close(ni); /* the firmware's stack needs the NIC back */
	return status;
}

/* The NIC's SNP, held from MNP's timer while the stack resolves the next hop. */
static EFI_STATUS open_snp(const struct efi_netinfo *ni, const struct nd_ipconf *conf,
			   struct nd_transport *tp)
{
	struct nd_framedev *dev;
	EFI_STATUS status;
	EFI_TPL tpl;

	status = efi_snp_open(ni, &dev);
	if (EFI_ERROR(status))
		return status;
	tpl = efi_snp_hold();
	status = ip_open(dev, conf, tp);
	efi_snp_release(tpl);
	if (EFI_ERROR(status))
		efi_snp_close();
	return status;
}

/* Own IPv4/UDP on the first frame device that works; sets in_use. */
static EFI_STATUS open_ip(EFI_HANDLE image, struct efi_netinfo *ni, struct nd_transport *tp)
{
	struct nd_ipconf conf;
	EFI_STATUS status;

	ip_conf(ni, &conf);
	status = open_virtio(image, ni, &conf, tp);
	if (!EFI_ERROR(status)) {
		in_use = NET_VIRTIO;
		return status;
	}
	if (status == EFI_NO_RESPONSE) {
		Print(L"netdisk: SNP would get no ARP answer either, falling back to the firmware's UDP4\n");
		return status;
	}
	status = open_snp(ni, &conf, tp);
	if (!EFI_ERROR(status)) {
		in_use = NET_SNP;
		return status;
	}
	Print(L"netdisk: SNP not usable, falling back to the firmware's UDP4\n");
	return status;
}

/* The transports fill in send and recv; the clock is the same for all. */
EFI_STATUS efi_net_open(EFI_HANDLE image, struct efi_netinfo *ni, struct nd_transport *tp)
{
	EFI_STATUS status;

	tp->ctx = NULL;
	tp->now_ms = net_now;
	if (!EFI_ERROR(open_ip(image, ni, tp)))
		return EFI_SUCCESS;
	status = efi_udp4_open(ni, tp);
	if (!EFI_ERROR(status))
		in_use = NET_UDP4;
	return status;
}

const char *efi_net_name(void)
{
	switch (in_use) {
	case NET_VIRTIO:
		return "virtio-net (own driver, own IPv4/UDP)";
	case NET_SNP:
		return "SNP (own IPv4/UDP)";
	default:
		return "UDP4 (firmware)";
	}
}

/* Only SNP needs the firmware's own network stack kept still: on the own
 * driver that stack is disconnected, and UDP4 is that stack and needs its
 * timers.  TPL_CALLBACK stands for "nothing raised". */
EFI_TPL efi_net_hold(void)
{
	return in_use == NET_SNP ? efi_snp_hold() : TPL_CALLBACK;
}

void efi_net_release(EFI_TPL tpl)
{
	efi_snp_release(tpl);
}

BOOLEAN efi_net_can_join(void)
{
	return in_use == NET_VIRTIO || in_use == NET_SNP;
}

/* The own driver takes every frame (QEMU's legacy virtio-net is
 * promiscuous without VIRTIO_NET_F_CTRL_RX); SNP needs its filter. */
EFI_STATUS efi_net_join(const UINT8 group[4], UINT16 port)
{
	EFI_STATUS status;

	if (!efi_net_can_join())
		return EFI_UNSUPPORTED;
	if (in_use == NET_SNP && EFI_ERROR((status = efi_snp_join(group))))
		return status;
	return nd_ip_join(group, port) == ND_IP_OK ? EFI_SUCCESS : EFI_INVALID_PARAMETER;
}

/* ExitBootServices: the OS owns the NIC and the memory our rings are in.
 * On the own driver the group is left first (IGMP leave); SNP may not be
 * called any more, so there the switch forgets us by itself. */
void efi_net_stop(void)
{
	if (in_use == NET_VIRTIO)
		nd_ip_leave();
	efi_virtio_stop();
	nd_ip_stop();
	efi_snp_stop();
	efi_udp4_stop();
}

void efi_net_close(struct efi_netinfo *ni)
{
	if (efi_net_can_join())
		nd_ip_leave(); /* IGMP leave, if joined */
	if (in_use == NET_VIRTIO)
		efi_virtio_close(ni);
	else if (in_use == NET_SNP)
		efi_snp_close();
	else if (in_use == NET_UDP4)
		efi_udp4_close();
	in_use = NET_NONE;
}
