/* UDP transport for the client core straight on the NIC's SNP: own Ethernet, ARP, IPv4 (reassembly included) and UDP. */
#include "netdisk.h"

#define ETH_HLEN 14
#define ETH_ALEN 6
#define ETH_MIN_FRAME 60     /* shortest frame without FCS: shorter ones are padded */
#define ETH_P_IP 0x0800
#define ETH_P_ARP 0x0806
#define ARP_LEN 28
#define ARP_REQUEST 1
#define ARP_REPLY 2
#define ARP_TRIES 8
#define ARP_WAIT_MS 250
#define IP_HLEN 20
#define IP_TTL 64
#define IP_PROTO_UDP 17
#define IP_MF 0x2000
#define IP_OFFSET 0x1fff
#define IP_MAX_PAYLOAD (65535 - IP_HLEN)
#define UDP_HLEN 8
#define FRAME_MIN_BUF 1536   /* frame buffers: at least a full Ethernet frame */
#define TX_BUFS 4            /* frames handed to the NIC and not yet given back */
#define TX_WAIT_MS 200       /* longest wait for the NIC to give a frame buffer back */
#define REASM_MS 500         /* a datagram whose fragments take longer is dropped */
#define REASM_WORDS ((IP_MAX_PAYLOAD / 8 + 64) / 64) /* bitmap of 8-byte blocks */
#define PORT_BASE 49152      /* local port: one from the dynamic range per boot */

/* The reassembly of the one fragmented datagram being received. */
struct reasm {
	UINT8 *data;          /* its IP payload: UDP header and data */
	UINT64 have[REASM_WORDS]; /* 8-byte blocks received */
	UINT32 blocks;        /* how many */
	UINT32 total;         /* IP payload length; 0 until the last fragment came */
	UINT64 sum;           /* ones' complement sum of every byte received */
	UINT32 started_ms;
	UINT16 id;
	BOOLEAN active;
	BOOLEAN dropped;      /* too large or malformed: ignore the rest of it */
};

static struct {
	EFI_SIMPLE_NETWORK_PROTOCOL *snp;
	UINT8 mac[ETH_ALEN];
	UINT8 hop_mac[ETH_ALEN]; /* the server's, or the router's when it is off-link */
	UINT8 ip[4], server[4], hop[4];
	UINT16 port, server_port;
	UINT16 ip_id;
	UINT32 mtu;           /* largest IP packet a frame carries */
	UINTN frame_size;
	UINT8 *pool;          /* one allocation for every buffer below */
	UINT8 *frame;         /* the frame being received */
	UINT8 *tx[TX_BUFS];
	BOOLEAN tx_busy[TX_BUFS];
	BOOLEAN hop_known;
	BOOLEAN stopped;      /* ExitBootServices happened: never touch the NIC again */
	struct reasm ra;
} net;

static BOOLEAN ip_eq(const UINT8 *a, const UINT8 *b)
{
	return a[0] == b[0] && a[1] == b[1] && a[2] == b[2] && a[3] == b[3];
}

/*
 * Ones' complement sum of len bytes starting at an even offset of the
 * summed data, in the machine's byte order (RFC 1071): sums of pieces add
 * up, and storing the folded result as a native 16-bit word gives network
 * order on the wire.
 */
static UINT64 sum_bytes(UINT64 sum, const UINT8 *p, UINTN len)
{
	UINT32 w;
	UINT16 h;

	for (; len >= 4; p += 4, len -= 4) {
		__builtin_memcpy(&w, p, 4);
		sum += w;
	}
	if (len >= 2) {
		__builtin_memcpy(&h, p, 2);
		sum += h;
		p += 2;
		len -= 2;
	}
	if (len)
		sum += *p; /* the odd last byte is the high half of a network-order word */
	return sum;
}

static UINT16 fold(UINT64 sum)
{
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (UINT16)sum;
}

/* The UDP pseudo-header's sum: addresses, protocol and UDP length. */
static UINT64 pseudo_sum(const UINT8 *src, const UINT8 *dst, UINT16 udp_len)
{
	UINT8 ph[12];

	CopyMem(ph, (VOID *)src, 4);
	CopyMem(ph + 4, (VOID *)dst, 4);
	ph[8] = 0;
	ph[9] = IP_PROTO_UDP;
	nd_put16(ph + 10, udp_len);
	return sum_bytes(0, ph, sizeof(ph));
}

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
	uint32_t start = nd_clock_ms();
	UINTN i;

	do {
		reclaim_tx();
		for (i = 0; i < TX_BUFS; i++)
			if (!net.tx_busy[i])
				return net.tx[i];
	} while (nd_clock_ms() - start < TX_WAIT_MS);
	return NULL;
}

static void put_eth(UINT8 *f, const UINT8 *dst, UINT16 type)
{
	CopyMem(f, (VOID *)dst, ETH_ALEN);
	CopyMem(f + ETH_ALEN, net.mac, ETH_ALEN);
	nd_put16(f + 12, type);
}

/* Hand a frame built in a buffer from tx_buffer() to the NIC. */
static EFI_STATUS transmit(UINT8 *f, UINTN len)
{
	EFI_STATUS status;
	UINTN i;

	if (len < ETH_MIN_FRAME) {
		ZeroMem(f + len, ETH_MIN_FRAME - len);
		len = ETH_MIN_FRAME;
	}
	/* HeaderSize 0: the frame carries its own Ethernet header. */
	status = net.snp->Transmit(net.snp, 0, len, f, NULL, NULL, NULL);
	for (i = 0; i < TX_BUFS && !EFI_ERROR(status); i++)
		if (f == net.tx[i])
			net.tx_busy[i] = TRUE;
	return status;
}

static void send_arp(UINT16 op, const UINT8 *eth_dst, const UINT8 *tha, const UINT8 *tpa)
{
	UINT8 *f = tx_buffer(), *a;

	if (!f)
		return;
	put_eth(f, eth_dst, ETH_P_ARP);
	a = f + ETH_HLEN;
	nd_put16(a, 1); /* Ethernet */
	nd_put16(a + 2, ETH_P_IP);
	a[4] = ETH_ALEN;
	a[5] = 4;
	nd_put16(a + 6, op);
	CopyMem(a + 8, net.mac, ETH_ALEN);
	CopyMem(a + 14, net.ip, 4);
	CopyMem(a + 18, (VOID *)tha, ETH_ALEN);
	CopyMem(a + 24, (VOID *)tpa, 4);
	transmit(f, ETH_HLEN + ARP_LEN);
}

/* Learn the next hop's address from anything it says; answer who asks for ours. */
static void take_arp(const UINT8 *a, UINTN len)
{
	if (len < ARP_LEN || nd_get16(a) != 1 || nd_get16(a + 2) != ETH_P_IP || a[4] != ETH_ALEN ||
	    a[5] != 4)
		return;
	if (ip_eq(a + 14, net.hop)) {
		CopyMem(net.hop_mac, (VOID *)(a + 8), ETH_ALEN);
		net.hop_known = TRUE;
	}
	if (nd_get16(a + 6) == ARP_REQUEST && ip_eq(a + 24, net.ip))
		send_arp(ARP_REPLY, a + 8, a + 8, a + 14);
}

/* A whole UDP datagram from the server (IP header at ip, UDP at udp): its
 * payload copied to buf and its length, or 0 if it is not for us. */
static int take_udp(const UINT8 *ip, const UINT8 *udp, UINT32 len, UINT64 sum, void *buf,
		    unsigned size)
{
	if (len < UDP_HLEN || nd_get16(udp + 4) != len || nd_get16(udp) != net.server_port ||
	    nd_get16(udp + 2) != net.port || len - UDP_HLEN > size)
		return 0;
	/* A zero checksum means the sender computed none (RFC 768). */
	if ((udp[6] | udp[7]) && fold(sum + pseudo_sum(ip + 12, ip + 16, (UINT16)len)) != 0xffff)
		return 0;
	nd_copy(buf, udp + UDP_HLEN, len - UDP_HLEN);
	return (int)(len - UDP_HLEN);
}

static void reasm_start(UINT16 id, uint32_t now)
{
	struct reasm *r = &net.ra;

	gBS->SetMem(r->have, sizeof(r->have), 0); /* gnu-efi's ZeroMem goes byte by byte */
	r->blocks = 0;
	r->total = 0;
	r->sum = 0;
	r->started_ms = now;
	r->id = id;
	r->active = TRUE;
	r->dropped = FALSE;
}

/* Bits [first, end) of one 64-bit bitmap word (end - first <= 64). */
static UINT64 bits(UINT32 first, UINT32 end)
{
	UINT32 n = end - first;

	return (n == 64 ? ~0ull : (1ull << n) - 1) << (first & 63);
}

/* Record blocks [first, end) as received; FALSE, recording nothing, if any
 * of them already was (a duplicate or an overlapping fragment). */
static BOOLEAN mark_blocks(UINT32 first, UINT32 end)
{
	UINT64 *have = net.ra.have;
	UINT32 b, stop;

	for (b = first; b < end; b = stop) {
		stop = (b | 63) + 1 < end ? (b | 63) + 1 : end;
		if (have[b / 64] & bits(b, stop))
			return FALSE;
	}
	for (b = first; b < end; b = stop) {
		stop = (b | 63) + 1 < end ? (b | 63) + 1 : end;
		have[b / 64] |= bits(b, stop);
	}
	net.ra.blocks += end - first;
	return TRUE;
}

/*
 * One fragment of a datagram.  Only one datagram is reassembled at a time:
 * a fragment of another one, or the time limit, drops what was gathered.
 * Nothing is returned until every byte of the datagram is there exactly
 * once, so a lost or duplicated fragment costs a retransmission, never
 * wrong data.
 */
static int take_fragment(const UINT8 *ip, UINT32 hlen, UINT32 total, void *buf, unsigned size)
{
	struct reasm *r = &net.ra;
	UINT16 frag = nd_get16(ip + 6);
	UINT32 off = (frag & IP_OFFSET) * 8, n = total - hlen, end = off + n;
	uint32_t now = nd_clock_ms();

	if (!r->active || r->id != nd_get16(ip + 4) || now - r->started_ms > REASM_MS)
		reasm_start(nd_get16(ip + 4), now);
	if (r->dropped)
		return 0;
	if (!n || end > size + UDP_HLEN || end > IP_MAX_PAYLOAD || ((frag & IP_MF) && n % 8) ||
	    (!(frag & IP_MF) && r->total && r->total != end) || (r->total && end > r->total)) {
		r->dropped = TRUE;
		return 0;
	}
	if (!mark_blocks(off / 8, (end + 7) / 8))
		return 0;
	if (!(frag & IP_MF))
		r->total = end;
	nd_copy(r->data + off, ip + hlen, n);
	r->sum += sum_bytes(0, ip + hlen, n);
	if (!r->total || r->blocks != (r->total + 7) / 8)
		return 0;
	r->active = FALSE;
	return take_udp(ip, r->data, r->total, r->sum, buf, size);
}

/* An IPv4 packet: a datagram from the server to us, whole or in fragments. */
static int take_ipv4(const UINT8 *ip, UINTN len, void *buf, unsigned size)
{
	UINT32 hlen, total;

	if (len < IP_HLEN || ip[0] >> 4 != 4)
		return 0;
	hlen = (ip[0] & 15) * 4;
	total = nd_get16(ip + 2);
	if (hlen < IP_HLEN || total < hlen || total > len || ip[9] != IP_PROTO_UDP ||
	    !ip_eq(ip + 12, net.server) || !ip_eq(ip + 16, net.ip) ||
	    fold(sum_bytes(0, ip, hlen)) != 0xffff)
		return 0;
	if (nd_get16(ip + 6) & (IP_MF | IP_OFFSET))
		return take_fragment(ip, hlen, total, buf, size);
	return take_udp(ip, ip + hlen, total - hlen, sum_bytes(0, ip + hlen, total - hlen), buf,
			size);
}

/* Receive one frame and act on it: a datagram's length (in buf), 0 when
 * the frame completed none, -1 when no frame was waiting. */
static int take_frame(void *buf, unsigned size)
{
	UINT8 *f = net.frame;
	UINTN len = net.frame_size;

	if (EFI_ERROR(net.snp->Receive(net.snp, NULL, &len, f, NULL, NULL, NULL)))
		return -1;
	if (len < ETH_HLEN || (CompareMem(f, net.mac, ETH_ALEN) && (f[0] & f[1] & f[2] & f[3] &
								       f[4] & f[5]) != 0xff))
		return 0; /* another station's: the NIC may be promiscuous */
	switch (nd_get16(f + 12)) {
	case ETH_P_ARP:
		take_arp(f + ETH_HLEN, len - ETH_HLEN);
		return 0;
	case ETH_P_IP:
		return take_ipv4(f + ETH_HLEN, len - ETH_HLEN, buf, size);
	default:
		return 0;
	}
}

/* Datagram lost or refused by the NIC: the client core retransmits. */
static int snp_send(void *ctx, const void *buf, unsigned len)
{
	UINT8 *f, *ip, *udp;
	UINT16 csum;

	if (net.stopped)
		return -1;
	/* The client core sends nothing that needs fragmenting (docs/efi.md). */
	if (len > net.mtu - IP_HLEN - UDP_HLEN)
		return -1;
	f = tx_buffer();
	if (!f)
		return 0;
	put_eth(f, net.hop_mac, ETH_P_IP);
	ip = f + ETH_HLEN;
	ip[0] = 0x45;
	ip[1] = 0;
	nd_put16(ip + 2, (UINT16)(IP_HLEN + UDP_HLEN + len));
	nd_put16(ip + 4, net.ip_id++);
	nd_put16(ip + 6, 0);
	ip[8] = IP_TTL;
	ip[9] = IP_PROTO_UDP;
	nd_put16(ip + 10, 0);
	CopyMem(ip + 12, net.ip, 4);
	CopyMem(ip + 16, net.server, 4);
	csum = ~fold(sum_bytes(0, ip, IP_HLEN));
	__builtin_memcpy(ip + 10, &csum, 2);
	udp = ip + IP_HLEN;
	nd_put16(udp, net.port);
	nd_put16(udp + 2, net.server_port);
	nd_put16(udp + 4, (UINT16)(UDP_HLEN + len));
	nd_put16(udp + 6, 0);
	CopyMem(udp + UDP_HLEN, (VOID *)buf, len);
	csum = ~fold(pseudo_sum(net.ip, net.server, (UINT16)(UDP_HLEN + len)) +
		     sum_bytes(0, udp, UDP_HLEN + len));
	if (!csum)
		csum = 0xffff; /* zero would mean "no checksum" */
	__builtin_memcpy(udp + 6, &csum, 2);
	transmit(f, ETH_HLEN + IP_HLEN + UDP_HLEN + len);
	return 0;
}

static int snp_recv(void *ctx, void *buf, unsigned size, uint32_t wait_ms)
{
	uint32_t start = nd_clock_ms();
	int len;

	do {
		if (net.stopped)
			return -1;
		len = take_frame(buf, size);
		if (len > 0)
			return len;
	} while (nd_clock_ms() - start < wait_ms);
	return 0;
}

/* Ask for the next hop's MAC address until it answers. */
static BOOLEAN resolve_hop(void)
{
	static const UINT8 broadcast[ETH_ALEN] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };
	static const UINT8 unknown[ETH_ALEN];
	unsigned try;
	uint32_t start;
	UINT8 none;

	for (try = 0; try < ARP_TRIES && !net.hop_known; try++) {
		send_arp(ARP_REQUEST, broadcast, unknown, net.hop);
		start = nd_clock_ms();
		while (!net.hop_known && nd_clock_ms() - start < ARP_WAIT_MS)
			take_frame(&none, 0);
	}
	return net.hop_known;
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
	if (m->HwAddressSize != ETH_ALEN || m->MediaHeaderSize != ETH_HLEN ||
	    m->MaxPacketSize < ND_DEFAULT_DGRAM + IP_HLEN + UDP_HLEN) {
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

static EFI_STATUS alloc_buffers(void)
{
	UINTN i, frame = net.mtu + ETH_HLEN;

	net.frame_size = frame < FRAME_MIN_BUF ? FRAME_MIN_BUF : frame;
	net.pool = AllocatePool(net.frame_size * (1 + TX_BUFS) + IP_MAX_PAYLOAD);
	if (!net.pool)
		return EFI_OUT_OF_RESOURCES;
	net.frame = net.pool;
	for (i = 0; i < TX_BUFS; i++) {
		net.tx[i] = net.pool + net.frame_size * (1 + i);
		net.tx_busy[i] = FALSE;
	}
	net.ra.data = net.pool + net.frame_size * (1 + TX_BUFS);
	net.ra.active = FALSE;
	return EFI_SUCCESS;
}

static BOOLEAN on_link(const struct nd_netinfo *ni)
{
	UINTN i;

	for (i = 0; i < 4; i++)
		if ((ni->server.Addr[i] ^ ni->local.Addr[i]) & ni->netmask.Addr[i])
			return FALSE;
	return TRUE;
}

static void set_addresses(const struct nd_netinfo *ni, uint32_t seed)
{
	const EFI_IPv4_ADDRESS *hop = &ni->server;

	if (!on_link(ni) && !ip_is_zero(ni->gateway.Addr))
		hop = &ni->gateway;
	CopyMem(net.mac, net.snp->Mode->CurrentAddress.Addr, ETH_ALEN);
	CopyMem(net.ip, (VOID *)ni->local.Addr, 4);
	CopyMem(net.server, (VOID *)ni->server.Addr, 4);
	CopyMem(net.hop, (VOID *)hop->Addr, 4);
	net.server_port = ni->port;
	net.port = PORT_BASE + seed % (65536 - PORT_BASE);
	net.ip_id = (UINT16)(seed >> 16);
	net.hop_known = FALSE;
	net.stopped = FALSE;
}

/* Free the buffers unless the NIC still holds one of them. */
static void free_buffers(void)
{
	uint32_t start = nd_clock_ms();
	BOOLEAN busy;
	UINTN i;

	do {
		reclaim_tx();
		for (busy = FALSE, i = 0; i < TX_BUFS; i++)
			busy |= net.tx_busy[i];
	} while (busy && nd_clock_ms() - start < TX_WAIT_MS);
	if (!busy)
		FreePool(net.pool);
	net.pool = NULL;
}

EFI_STATUS nd_snp_open(const struct nd_netinfo *ni, uint32_t seed, struct nd_transport *tp)
{
	EFI_STATUS status;
	EFI_TPL tpl;

	status = gBS->HandleProtocol(ni->nic, &SimpleNetworkProtocol, (VOID **)&net.snp);
	if (EFI_ERROR(status)) {
		Print(L"netdisk: no SNP on the boot NIC: %r\n", status);
		return status;
	}
	status = check_mode();
	if (EFI_ERROR(status))
		return status;
	net.mtu = net.snp->Mode->MaxPacketSize;
	status = alloc_buffers();
	if (EFI_ERROR(status))
		return status;
	set_addresses(ni, seed);
	tpl = nd_snp_hold();
	if (!resolve_hop()) {
		nd_snp_release(tpl);
		Print(L"netdisk: no ARP answer from %d.%d.%d.%d\n", net.hop[0], net.hop[1],
		      net.hop[2], net.hop[3]);
		free_buffers();
		return EFI_NO_RESPONSE;
	}
	nd_snp_release(tpl);
	tp->send = snp_send;
	tp->recv = snp_recv;
	return EFI_SUCCESS;
}

/*
 * MNP polls the SNP from a timer at TPL_CALLBACK and hands what it takes to
 * the firmware's IP4, where our datagrams would be lost.  Holding
 * TPL_CALLBACK (the highest level SNP may be called at) for the length of
 * a client-core call keeps that timer from running while we wait for
 * frames; in between, the firmware's stack works as before.  Returns what
 * nd_snp_release() restores.
 */
EFI_TPL nd_snp_hold(void)
{
	EFI_TPL tpl = gBS->RaiseTPL(TPL_HIGH_LEVEL);

	gBS->RestoreTPL(tpl);
	return tpl < TPL_CALLBACK ? gBS->RaiseTPL(TPL_CALLBACK) : tpl;
}

void nd_snp_release(EFI_TPL tpl)
{
	if (tpl < TPL_CALLBACK)
		gBS->RestoreTPL(tpl);
}

void nd_snp_stop(void)
{
	net.stopped = TRUE;
}

void nd_snp_close(void)
{
	if (net.stopped || !net.pool)
		return;
	free_buffers();
}
