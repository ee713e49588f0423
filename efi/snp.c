/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The NIC's SNP as a frame device for the stub's own Ethernet/ARP/IPv4/UDP (client/ipstack.c). */
#include "netdisk.h"

#define FRAME_MIN_BUF 1536   /* frame buffers: at least a full Ethernet frame */
#define TX_BUFS 4            /* frames handed to the NIC and not yet given back */
#define TX_WAIT_MS 200       /* longest wait for the NIC to give a frame buffer back */

static struct {
	EFI_SIMPLE_NETWORK_PROTOCOL *snp;
	struct nd_framedev dev;
	UINTN frame_size;
	UINT8 *pool;          /* one allocation for every buffer below */
	UINT8 *frame;         /* the frame being received */
	UINTN frame_len;
	UINT8 *tx[TX_BUFS];
	BOOLEAN tx_busy[TX_BUFS];
	BOOLEAN stopped;      /* ExitBootServices happened: never touch the NIC again */
} net;

/* Take back every frame buffer the NIC has finished sending. */
static void reclaim_tx(void)
{
	VOID *done;
	UINTN i;

	for (;;) {
		done = NULL;
		if (EFI_ERROR(net.snp->GetStatus(net.snp, NULL, &done)) || !done)
			return;
		/* Buffers of other SNP users (MNP) may come back here too; only
		 * ours are ours to take. */
		for (i = 0; i < TX_BUFS; i++)
			if (done == net.tx[i])
				net.tx_busy[i] = FALSE;
	}
}

/* A free frame buffer, waiting a bounded time for the NIC to return one. */
static UINT8 *tx_buffer(void)
{
	uint32_t start = efi_clock_ms();
	UINTN i;

	do {
		reclaim_tx();
		for (i = 0; i < TX_BUFS; i++)
			if (!net.tx_busy[i])
				return net.tx[i];
	} while (efi_clock_ms() - start < TX_WAIT_MS);
	return NULL;
}

/* SNP keeps the buffer until GetStatus gives it back, so the frame is copied. */
static int snp_transmit(void *ctx, const void *frame, unsigned len)
{
	UINT8 *f;
	UINTN i;

	if (net.stopped || len > net.frame_size || !(f = tx_buffer()))
		return -1;
	efi_copy(f, frame, len);
	/* HeaderSize 0: the frame carries its own Ethernet header. */
	if (EFI_ERROR(net.snp->Transmit(net.snp, 0, len, f, NULL, NULL, NULL)))
		return -1;
	for (i = 0; i < TX_BUFS; i++)
		if (f == net.tx[i])
			net.tx_busy[i] = TRUE;
	return 0;
}

static int snp_receive(void *ctx)
{
	EFI_STATUS status;

	if (net.stopped)
		return -1;
	net.frame_len = net.frame_size;
	status = net.snp->Receive(net.snp, NULL, &net.frame_len, net.frame, NULL, NULL, NULL);
	if (status == EFI_NOT_READY || status == EFI_BUFFER_TOO_SMALL)
		return 0; /* nothing waiting, or a frame larger than any we take */
	return EFI_ERROR(status) ? -1 : (int)net.frame_len;
}

static void snp_read(void *ctx, unsigned offset, void *dst, unsigned len)
{
	efi_copy(dst, net.frame + offset, len);
}

static void snp_release(void *ctx)
{
}

/* The SNP as MNP left it: running, Ethernet, taking our unicast and broadcast. */
static EFI_STATUS check_mode(void)
{
	EFI_SIMPLE_NETWORK_MODE *m = net.snp->Mode;
	UINT32 want = EFI_SIMPLE_NETWORK_RECEIVE_UNICAST | EFI_SIMPLE_NETWORK_RECEIVE_BROADCAST;

	if (m->State != EfiSimpleNetworkInitialized) {
		Print(L"netdisk: the NIC's SNP is not initialized (state %d)\n", m->State);
		return EFI_NOT_READY;
	}
	if (m->HwAddressSize != ND_ETH_ALEN || m->MediaHeaderSize != ND_ETH_HLEN ||
	    m->MaxPacketSize < ND_DEFAULT_DGRAM + 28 /* IPv4 and UDP headers */) {
		Print(L"netdisk: the NIC is not Ethernet (address %d, header %d, packet %d bytes)\n",
		      m->HwAddressSize, m->MediaHeaderSize, m->MaxPacketSize);
		return EFI_UNSUPPORTED;
	}
	if ((m->ReceiveFilterSetting & want) != want &&
	    EFI_ERROR(net.snp->ReceiveFilters(net.snp, want, 0, FALSE, 0, NULL))) {
		Print(L"netdisk: the NIC does not take unicast and broadcast frames\n");
		return EFI_UNSUPPORTED;
	}
	return EFI_SUCCESS;
}

EFI_STATUS efi_snp_join(const UINT8 group[4])
{
	UINT32 want = EFI_SIMPLE_NETWORK_RECEIVE_UNICAST | EFI_SIMPLE_NETWORK_RECEIVE_BROADCAST |
		      EFI_SIMPLE_NETWORK_RECEIVE_MULTICAST;
	EFI_MAC_ADDRESS mac;
	EFI_STATUS status;

	ZeroMem(&mac, sizeof(mac));
	mac.Addr[0] = 0x01, mac.Addr[1] = 0x00, mac.Addr[2] = 0x5e;
	mac.Addr[3] = group[1] & 0x7f, mac.Addr[4] = group[2], mac.Addr[5] = group[3];
	status = net.snp->ReceiveFilters(net.snp, want, 0, FALSE, 1, &mac);
	if (EFI_ERROR(status)) /* no room for a filter: all multicast, if it can */
		status = net.snp->ReceiveFilters(net.snp, (want & ~EFI_SIMPLE_NETWORK_RECEIVE_MULTICAST) |
						  EFI_SIMPLE_NETWORK_RECEIVE_PROMISCUOUS_MULTICAST, 0,
						  FALSE, 0, NULL);
	return status;
}

static EFI_STATUS alloc_buffers(void)
{
	UINTN i, frame = net.snp->Mode->MaxPacketSize + ND_ETH_HLEN;

	net.frame_size = frame < FRAME_MIN_BUF ? FRAME_MIN_BUF : frame;
	net.pool = AllocatePool(net.frame_size * (1 + TX_BUFS));
	if (!net.pool)
		return EFI_OUT_OF_RESOURCES;
	net.frame = net.pool;
	for (i = 0; i < TX_BUFS; i++) {
		net.tx[i] = net.pool + net.frame_size * (1 + i);
		net.tx_busy[i] = FALSE;
	}
	return EFI_SUCCESS;
}

/* Free the buffers unless the NIC still holds one of them. */
static void free_buffers(void)
{
	uint32_t start = efi_clock_ms();
	BOOLEAN busy;
	UINTN i;

	do {
		reclaim_tx();
		for (busy = FALSE, i = 0; i < TX_BUFS; i++)
			busy |= net.tx_busy[i];
	} while (busy && efi_clock_ms() - start < TX_WAIT_MS);
	if (!busy)
		FreePool(net.pool);
	net.pool = NULL;
}

/* The SNP as a frame device; efi_snp_close() frees it again. */
EFI_STATUS efi_snp_open(const struct efi_netinfo *ni, struct nd_framedev **dev)
{
	EFI_STATUS status;

	status = gBS->HandleProtocol(ni->nic, &SimpleNetworkProtocol, (VOID **)&net.snp);
	if (EFI_ERROR(status)) {
		Print(L"netdisk: no SNP on the boot NIC: %r\n", status);
		return status;
	}
	status = check_mode();
	if (EFI_ERROR(status))
		return status;
	status = alloc_buffers();
	if (EFI_ERROR(status))
		return status;
	net.stopped = FALSE;
	CopyMem(net.dev.mac, net.snp->Mode->CurrentAddress.Addr, ND_ETH_ALEN);
	net.dev.mtu = (UINT16)(net.snp->Mode->MaxPacketSize < 65535 ? net.snp->Mode->MaxPacketSize
								     : 65535);
	net.dev.transmit = snp_transmit;
	net.dev.receive = snp_receive;
	net.dev.read = snp_read;
	net.dev.release = snp_release;
	*dev = &net.dev;
	return EFI_SUCCESS;
}

/*
 * MNP polls the SNP from a timer at TPL_CALLBACK and hands what it takes to
 * the firmware's IP4, where our datagrams would be lost.  Holding
 * TPL_CALLBACK (the highest level SNP may be called at) for the length of
 * a client-core call keeps that timer from running while we wait for
 * frames; in between, the firmware's stack works as before.  Returns what
 * efi_snp_release() restores.
 */
EFI_TPL efi_snp_hold(void)
{
	EFI_TPL tpl = gBS->RaiseTPL(TPL_HIGH_LEVEL);

	gBS->RestoreTPL(tpl);
	return tpl < TPL_CALLBACK ? gBS->RaiseTPL(TPL_CALLBACK) : tpl;
}

void efi_snp_release(EFI_TPL tpl)
{
	if (tpl < TPL_CALLBACK)
		gBS->RestoreTPL(tpl);
}

void efi_snp_stop(void)
{
	net.stopped = TRUE;
}

void efi_snp_close(void)
{
	if (net.stopped || !net.pool)
		return;
	free_buffers();
}
