/* SPDX-License-Identifier: GPL-2.0-or-later */
/* UDP transport for the client core: the boot NIC's UDP4 service, polled, tokens reused. */
#include "netdisk.h"

#define DHCP_OPTIONS 240   /* after the BOOTP fields and the magic cookie */
#define DHCP_OPT_PAD 0
#define DHCP_OPT_NETMASK 1
#define DHCP_OPT_ROUTER 3
#define DHCP_OPT_DNS 6
#define DHCP_OPT_SERVER_ID 54
#define DHCP_OPT_END 255
#define TX_WAIT_MS 2000    /* longest wait for a send (ARP included) to complete */

static EFI_GUID udp4_sb_guid = EFI_UDP4_SERVICE_BINDING_PROTOCOL;
static EFI_GUID udp4_guid = EFI_UDP4_PROTOCOL;

/* The one UDP4 child this stub uses. */
static struct {
	EFI_SERVICE_BINDING *sb;
	EFI_HANDLE child;
	EFI_UDP4 *udp;
	EFI_UDP4_COMPLETION_TOKEN rx;
	EFI_UDP4_COMPLETION_TOKEN tx;
	BOOLEAN rx_posted;
	BOOLEAN stopped;   /* ExitBootServices happened: never touch the NIC again */
} net;

static void copy_ip(EFI_IPv4_ADDRESS *dst, const UINT8 *src)
{
	CopyMem(dst->Addr, (VOID *)src, 4);
}

/* Take the subnet mask, router, DNS server and DHCP server (the last two
 * for the iBFT) from the DHCP options of the PXE DhcpAck. */
static void parse_dhcp_options(const UINT8 *pkt, UINTN len, struct efi_netinfo *ni)
{
	UINTN i = DHCP_OPTIONS;

	while (i < len && pkt[i] != DHCP_OPT_END) {
		UINT8 code = pkt[i], optlen;

		if (code == DHCP_OPT_PAD) {
			i++;
			continue;
		}
		if (i + 2 > len || i + 2 + pkt[i + 1] > len)
			break;
		optlen = pkt[i + 1];
		if (code == DHCP_OPT_NETMASK && optlen >= 4)
			copy_ip(&ni->netmask, pkt + i + 2);
		if (code == DHCP_OPT_ROUTER && optlen >= 4)
			copy_ip(&ni->gateway, pkt + i + 2);
		if (code == DHCP_OPT_DNS && optlen >= 4)
			copy_ip(&ni->dns, pkt + i + 2);
		if (code == DHCP_OPT_SERVER_ID && optlen >= 4)
			copy_ip(&ni->dhcp, pkt + i + 2);
		i += 2 + optlen;
	}
}

/* The PCI location of the NIC at path (for the iBFT), 0 if none is found. */
static UINT16 pci_location(EFI_DEVICE_PATH *path)
{
	EFI_DEVICE_PATH *walk = path;
	EFI_PCI_IO *pci;
	EFI_HANDLE h;
	UINTN seg, bus, dev, fn;

	if (EFI_ERROR(gBS->LocateDevicePath(&PciIoProtocol, &walk, &h)) ||
	    EFI_ERROR(gBS->HandleProtocol(h, &PciIoProtocol, (VOID **)&pci)) ||
	    EFI_ERROR(pci->GetLocation(pci, &seg, &bus, &dev, &fn)))
		return 0;
	return (UINT16)(bus << 8 | dev << 3 | fn);
}

/* Find the handle with the UDP4 service binding that the boot device sits on. */
static EFI_STATUS find_udp4_nic(EFI_HANDLE boot_device, struct efi_netinfo *ni)
{
	EFI_DEVICE_PATH *dp = DevicePathFromHandle(boot_device);
	EFI_DEVICE_PATH *walk = dp;
	EFI_STATUS status;

	if (!dp)
		return EFI_NOT_FOUND;
	/* Under OVMF's PXE the boot device is the PXE child (.../MAC/IPv4) of
	 * the NIC; under iPXE it is iPXE's SNP handle, on which the
	 * firmware's UDP4 stack is bound as well: both lead to the NIC. */
	status = gBS->LocateDevicePath(&udp4_sb_guid, &walk, &ni->nic);
	if (EFI_ERROR(status))
		return status;
	ni->nic_path = DevicePathFromHandle(ni->nic);
	if (ni->nic_path)
		ni->pci_bdf = pci_location(ni->nic_path);
	return ni->nic_path ? EFI_SUCCESS : EFI_NOT_FOUND;
}

/*
 * The next-server: of the boot server's reply (PxeReply) or the proxy-DHCP
 * offer when the firmware got one and it names a server, else the
 * DhcpAck's.  Beside a proxy-DHCP server the DhcpAck comes from the site's
 * DHCP server, whose next-server (often itself) is not where the boot file
 * and netdiskd are.
 */
static const UINT8 *boot_server(EFI_PXE_BASE_CODE_MODE *mode)
{
	if (mode->PxeReplyReceived && !nd_ip_is_zero(mode->PxeReply.Raw + 20))
		return mode->PxeReply.Raw + 20;
	if (mode->ProxyOfferReceived && !nd_ip_is_zero(mode->ProxyOffer.Raw + 20))
		return mode->ProxyOffer.Raw + 20;
	return mode->DhcpAck.Raw + 20;
}

EFI_STATUS efi_net_discover(EFI_HANDLE image, struct efi_netinfo *ni)
{
	EFI_LOADED_IMAGE *li;
	EFI_PXE_BASE_CODE *pxe;
	const UINT8 *ack;
	EFI_STATUS status;

	ZeroMem(ni, sizeof(*ni));
	status = gBS->HandleProtocol(image, &LoadedImageProtocol, (VOID **)&li);
	if (EFI_ERROR(status))
		return status;
	status = gBS->HandleProtocol(li->DeviceHandle, &PxeBaseCodeProtocol, (VOID **)&pxe);
	if (EFI_ERROR(status)) {
		Print(L"netdisk: not loaded over PXE (no PXE base code on the boot device)\n");
		return status;
	}
	if (!pxe->Mode->Started || !pxe->Mode->DhcpAckReceived) {
		Print(L"netdisk: the PXE base code holds no DHCP acknowledgement\n");
		return EFI_NOT_READY;
	}
	ack = pxe->Mode->DhcpAck.Raw;
	copy_ip(&ni->local, pxe->Mode->StationIp.v4.Addr);
	copy_ip(&ni->netmask, pxe->Mode->SubnetMask.v4.Addr);
	CopyMem(ni->mac, (VOID *)(ack + 28), sizeof(ni->mac));
	parse_dhcp_options(ack, sizeof(pxe->Mode->DhcpAck.Raw), ni);
	if (nd_ip_is_zero(ni->local.Addr))
		copy_ip(&ni->local, ack + 16);
	copy_ip(&ni->server, nd_ip_is_zero(efi_bootcfg.server_ip) ? boot_server(pxe->Mode)
								    : efi_bootcfg.server_ip);
	ni->port = nd_get16(efi_bootcfg.server_port) ? nd_get16(efi_bootcfg.server_port)
						    : ND_DEFAULT_PORT;
	status = find_udp4_nic(li->DeviceHandle, ni);
	if (EFI_ERROR(status)) {
		Print(L"netdisk: no UDP4 service on the boot NIC: %r\n", status);
		return status;
	}
	/*
	 * edk2's PXE base code keeps its own UDP4 children, which get copies
	 * of our datagrams too.  Their queues are only drained by timers, and
	 * timers do not run while a loader reads at TPL_CALLBACK: the NIC then
	 * runs out of receive buffers and drops our data.  We have what we need
	 * from it, so stop it; the firmware restarts it for the next PXE boot.
	 */
	pxe->Stop(pxe);
	return EFI_SUCCESS;
}

/* Datagram lost or refused: the client core retransmits, so only stopping is fatal. */
static int udp_send(void *ctx, const void *buf, unsigned len)
{
	EFI_UDP4_TRANSMIT_DATA td;
	uint32_t start;

	if (net.stopped)
		return -1;
	ZeroMem(&td, sizeof(td));
	td.DataLength = len;
	td.FragmentCount = 1;
	td.FragmentTable[0].FragmentLength = len;
	td.FragmentTable[0].FragmentBuffer = (VOID *)buf;
	net.tx.Status = EFI_NOT_READY;
	net.tx.Packet.TxData = &td;
	if (EFI_ERROR(net.udp->Transmit(net.udp, &net.tx)))
		return 0;
	/* The caller reuses its buffer at once, so the send must finish here. */
	start = efi_clock_ms();
	while (net.tx.Status == EFI_NOT_READY && efi_clock_ms() - start < TX_WAIT_MS)
		net.udp->Poll(net.udp);
	if (net.tx.Status == EFI_NOT_READY)
		net.udp->Cancel(net.udp, &net.tx);
	return 0;
}

static void post_receive(void)
{
	net.rx.Status = EFI_NOT_READY;
	net.rx.Packet.RxData = NULL;
	net.rx_posted = !EFI_ERROR(net.udp->Receive(net.udp, &net.rx));
}

/* Copy a completed receive out and hand its buffer back: its length, or 0. */
static int take_received(void *buf, unsigned size)
{
	EFI_UDP4_RECEIVE_DATA *rd = net.rx.Packet.RxData;
	UINT32 i, len = 0;

	net.rx_posted = FALSE;
	if (EFI_ERROR(net.rx.Status) || !rd)
		return 0; /* ICMP errors and the like: as if nothing came */
	if (rd->DataLength <= size) {
		for (i = 0; i < rd->FragmentCount; i++) {
			efi_copy((UINT8 *)buf + len, rd->FragmentTable[i].FragmentBuffer,
				rd->FragmentTable[i].FragmentLength);
			len += rd->FragmentTable[i].FragmentLength;
		}
	}
	gBS->SignalEvent(rd->RecycleSignal);
	return (int)len;
}

static int udp_recv(void *ctx, void *buf, unsigned size, uint32_t wait_ms)
{
	uint32_t start = efi_clock_ms();
	int len;

	for (;;) {
		if (net.stopped)
			return -1;
		if (!net.rx_posted)
			post_receive();
		net.udp->Poll(net.udp);
		if (net.rx_posted && net.rx.Status != EFI_NOT_READY) {
			len = take_received(buf, size);
			post_receive();
			if (len > 0)
				return len;
		}
		if (efi_clock_ms() - start >= wait_ms)
			return 0;
	}
}

static EFI_STATUS create_token_events(void)
{
	EFI_STATUS status;

	/* Completion is seen through the token's Status while polling, so
	 * the events need no notify function. */
	status = gBS->CreateEvent(0, 0, NULL, NULL, &net.rx.Event);
	if (!EFI_ERROR(status))
		status = gBS->CreateEvent(0, 0, NULL, NULL, &net.tx.Event);
	return status;
}

static EFI_STATUS configure(const struct efi_netinfo *ni)
{
	EFI_UDP4_CONFIG_DATA cfg;
	EFI_IPv4_ADDRESS any;
	EFI_STATUS status;

	ZeroMem(&cfg, sizeof(cfg));
	cfg.TimeToLive = 64;
	cfg.StationAddress = ni->local;
	cfg.SubnetMask = ni->netmask;
	cfg.RemoteAddress = ni->server;
	cfg.RemotePort = ni->port;
	status = net.udp->Configure(net.udp, &cfg);
	if (EFI_ERROR(status) || nd_ip_is_zero(ni->gateway.Addr))
		return status;
	ZeroMem(&any, sizeof(any));
	status = net.udp->Routes(net.udp, FALSE, &any, &any, (EFI_IPv4_ADDRESS *)&ni->gateway);
	return status == EFI_ACCESS_DENIED ? EFI_SUCCESS : status; /* route already there */
}

EFI_STATUS efi_udp4_open(const struct efi_netinfo *ni, struct nd_transport *tp)
{
	EFI_STATUS status;

	status = gBS->HandleProtocol(ni->nic, &udp4_sb_guid, (VOID **)&net.sb);
	if (!EFI_ERROR(status))
		status = net.sb->CreateChild(net.sb, &net.child);
	if (!EFI_ERROR(status))
		status = gBS->HandleProtocol(net.child, &udp4_guid, (VOID **)&net.udp);
	if (!EFI_ERROR(status))
		status = create_token_events();
	if (!EFI_ERROR(status))
		status = configure(ni);
	if (EFI_ERROR(status)) {
		Print(L"netdisk: cannot set up UDP4: %r\n", status);
		return status;
	}
	tp->send = udp_send;
	tp->recv = udp_recv;
	return EFI_SUCCESS;
}

void efi_udp4_stop(void)
{
	net.stopped = TRUE;
}

void efi_udp4_close(void)
{
	if (net.stopped || !net.udp)
		return;
	if (net.rx_posted)
		net.udp->Cancel(net.udp, &net.rx);
	net.udp->Configure(net.udp, NULL);
	net.sb->DestroyChild(net.sb, net.child);
	gBS->CloseEvent(net.rx.Event);
	gBS->CloseEvent(net.tx.Event);
	net.udp = NULL;
}
