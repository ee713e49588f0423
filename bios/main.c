/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The BIOS stub's main line (netdisk.pxe and the option ROM): network up, attach to netdiskd, hook INT 13h/15h, boot the disk like a BIOS. */

#include "bios.h"
#include "netdisk/boottable.h"
#include "ipstack.h"
#include "policy.h"

#define TX_DGRAM ND_DEFAULT_DGRAM /* PXE stacks do not fragment what they send */
/* Largest datagram: ND_RX_DATA (bios/build.mk: 16 KiB in netdisk.pxe, 8 KiB
 * in the option ROM) of data, IP-fragmented on the wire. */
#define RX_DGRAM (ND_RX_DATA + ND_HDR_SIZE)
_Static_assert(RX_DGRAM + 8 <= ND_REASM_MAX, "the IP stack must reassemble our largest datagram");
_Static_assert(offsetof(struct nd_ibft_req, dns) - offsetof(struct nd_ibft_req, ip) ==
		       offsetof(struct pxe_info, dns) - offsetof(struct pxe_info, my_ip),
	       "pxe_info's addresses copy into the iBFT request as one block");
#define DEFAULT_ATTACH_TIMEOUT 60 /* seconds */
#define RETRY_REPORT_EVERY_MS 5000

/* Patched in the binary by `netdisk patch`; found by its magic. */
struct nd_bootcfg bootcfg = {
	.magic = ND_BOOTCFG_MAGIC,
	.version = ND_BOOTCFG_VERSION,
};

static uint8_t txbuf[TX_DGRAM], rxbuf[RX_DGRAM];
static struct nd_boot_table boot_table __attribute__((aligned(16)));
static struct pxe_info net;
static struct nd_transport transport;
static uint16_t server_port;
static uint32_t next_retry_report;
static uint8_t probe_lost; /* the datagram-size probe lost datagrams: a lossy path */

/* Datagram sizes and windows to try, fastest first (the probe is
 * nd_attach_ladder, client/policy.c).  A large datagram reaches us as IP
 * fragments that the PXE stack reassembles; that costs far less per byte than
 * one datagram per frame.  But the frames of a burst must all fit what the NIC
 * and the stack buffer until we poll: with QEMU's e1000 and iPXE about a dozen
 * frames, so one 16 KiB datagram (12 frames) at a time gets through where
 * sixteen do not; rtl8139 keeps about five.  A stack without reassembly drops
 * every fragmented datagram and ends at one frame per datagram. */
static const struct nd_ladder_step ladder[] = {
	{ RX_DGRAM, 16 },
	{ RX_DGRAM, 1 },
#if ND_RX_DATA > 8192
	{ 8192 + ND_HDR_SIZE, 1 },
#endif
	{ 4096 + ND_HDR_SIZE, 1 },
	{ ND_DEFAULT_DGRAM, 16 },
};

#define PROBE_GIVE_UP_MS 600 /* a probe that stalls this long has lost datagrams */

/* Fault messages for the client core's and the stub policy's events. */
static void on_event(void *ctx, int event, uint32_t arg)
{
	if (event == ND_EV_RETRY) {
		if (arg < next_retry_report)
			return;
		con_printf("netdisk: server %I:%u not answering, retrying (%u s)\n",
			   net.server_ip, server_port, arg / 1000);
		next_retry_report = arg + RETRY_REPORT_EVERY_MS;
	} else if (event == ND_EV_RECOVERED) {
		con_printf("netdisk: server %I:%u answering again\n", net.server_ip, server_port);
		next_retry_report = 0;
	} else if (event == ND_EV_PROBE_LOST) {
		probe_lost = 1;
		con_printf("netdisk: %u-byte datagrams, window %u get lost here, trying %u, window %u\n",
			   disk.dgram, disk.window, ladder[arg].dgram, ladder[arg].window);
	} else if (event == ND_EV_SESSION_LOST) {
		con_printf("netdisk: %s\n", nd_recovery_text(arg));
	} else if (event == ND_EV_REATTACHED) {
		/* A new session: the OS must take over that one, not the lost one. */
		boot_table_publish();
	}
}

/* takeover = iscsi: the iBFT the server builds for this session from our
 * NIC's facts, beside the boot table (docs/handoff.md).  Without one the
 * OS takes the disk over by NBD, and says so. */
static void ibft_publish(void)
{
	struct nd_ibft_req q;
	uint8_t *t = disk.rxbuf + ND_HDR_SIZE;
	int n;

	memcpy(q.ip, net.my_ip, 24); /* ip, server, netmask, gateway, dhcp, dns */
	memcpy(q.mac, net.mac, 6);
	nd_put16(q.pci_bdf, net.bdf);
	n = nd_ibft(&disk, &q);
	if (n < 0) {
		con_printf("netdisk: no iBFT (%s): the OS takes the disk over by NBD\n",
			   n == ND_E_STATUS ? nd_status_text(disk.last_status) : nd_result_text(n));
		memset(t, 0, n = 4); /* no signature: an earlier session's table is gone */
	} else {
		con_printf("netdisk: iBFT for the OS's iSCSI takeover (%u bytes)\n", n);
	}
	resident_publish(RES_IBFT, t, (unsigned)n);
}

/* The session as the OS needs it to take the disk over through NBD: in our
 * resident memory, which the E820 hook keeps out of usable RAM, so Linux
 * lets /dev/mem read it. */
void boot_table_publish(void)
{
	struct nd_netfacts n;

	memcpy(n.mac, net.mac, 6);
	memcpy(n.ip, net.my_ip, 4);
	memcpy(n.netmask, net.netmask, 4);
	memcpy(n.gateway, net.router, 4);
	memcpy(n.server, net.server_ip, 4);
	n.port = server_port;
	nd_boot_table(&disk, ND_BT_FW_BIOS, &n, &boot_table);
	resident_publish(RES_TABLE, &boot_table, sizeof(boot_table));
	if (disk.handoff & ND_HANDOFF_ISCSI)
		ibft_publish();
}

/* Nothing to boot from us: give back our memory and let the BIOS try the next device. */
void give_up(const char *why)
{
	struct bregs r;

	con_printf("netdisk: %s\nnetdisk: giving up, trying the next boot device (INT 18h)\n", why);
	nic_group_leave();
	nic_stop();
	far_write16(0x40, 0x13, base_kb_before);
	memset(&r, 0, sizeof(r));
	bios_int(0x18, &r);
	for (;;)
		asm volatile("hlt");
}

/* How long to keep trying to reach the server (and DHCP) at start. */
uint16_t attach_timeout_s(void)
{
	uint16_t timeout = nd_get16(bootcfg.attach_timeout);

	return timeout ? timeout : DEFAULT_ATTACH_TIMEOUT;
}

static void attach(const struct nd_transport *tp)
{
	char image[ND_IMAGE_NAME_LEN + 1];
	uint16_t timeout = attach_timeout_s();
	int rc;

	/* The boot configuration's image, else the one DHCP named (option ROM). */
	memcpy(image, bootcfg.image[0] ? bootcfg.image : net.image, ND_IMAGE_NAME_LEN);
	image[ND_IMAGE_NAME_LEN] = 0;
	nd_client_init(&disk, tp, txbuf, rxbuf, RX_DGRAM);
	memcpy(disk.cfg.mac, net.mac, 6);
	disk.cfg.client_kind = ND_KIND_BIOS;
	disk.cfg.nonce = (uint32_t)rdtsc() ^ nd_get32(net.mac + 2);
	disk.cfg.give_up_ms = (uint32_t)timeout * 1000;
	disk.cfg.event = on_event;
	disk.cfg.caps = ND_CAP_BOOT_TABLE | ND_CAP_IBFT;
#ifdef ND_GROUP
	if (nic_keeps_frames()) /* the own driver: it receives the group */
		disk.cfg.caps |= ND_CAP_MULTICAST;
#endif
	if (bootcfg.flags & ND_BOOTCFG_KEYED) /* netdisk patch --key: ATTACH signed */
		disk.cfg.key = bootcfg.site_key;
	con_printf("netdisk: attaching to %I:%u as %I (up to %u s)\n", net.server_ip, server_port,
		   net.my_ip, timeout);
	rc = nd_attach_ladder(&disk, image, ladder, sizeof(ladder) / sizeof(ladder[0]),
			      PROBE_GIVE_UP_MS);
	if (rc == ND_E_STATUS) {
		con_printf("netdisk: server refused: %s%s\n", nd_status_text(disk.last_status),
			   nd_status_reason(&disk));
		give_up("cannot attach the disk");
	}
	if (rc != ND_DONE)
		give_up("no answer from the netdisk server");
	/* From now on a silent server is waited for, never given up on: a
	 * failed read would be worse for the booting OS than a pause. */
	disk.cfg.give_up_ms = 0;
}

void stub_main(void)
{
	int bounce;

	image_lin = (uint32_t)stub_seg << 4;
	flat_setup();
	con_init();
	con_printf("\n%s (starting at %x:0000)\n", stub_banner, stub_seg);
	clock_init();
	stub_net_start(&net, rxbuf, sizeof(rxbuf));
	if (!nd_ip_is_zero(bootcfg.server_ip))
		memcpy(net.server_ip, bootcfg.server_ip, 4);
	server_port = nd_get16(bootcfg.server_port);
	if (!server_port)
		server_port = net.server_port;
	if (!server_port)
		server_port = ND_DEFAULT_PORT;
	if (nd_ip_is_zero(net.server_ip))
		give_up("no netdisk server: neither the boot configuration nor DHCP names one");
	bounce = stub_net_open(&net, server_port, attach_timeout_s(), &transport);
	attach(&transport);
	con_printf("netdisk: server %I:%u image \"%s\" %u MiB (%u sectors) mode %s\n",
		   net.server_ip, server_port, disk.image, (uint32_t)(disk.sectors >> 11),
		   (uint32_t)disk.sectors, nd_mode_text(disk.mode));
	con_printf("netdisk: %u-byte datagrams, window %u\n", disk.dgram, disk.window);
	/* A path that lost the probe's datagrams loses the group's too, and a
	 * member waits at least 200 ms (ND_GROUP_RTO_MIN_MS) before it asks
	 * for a lost block again: there unicast is faster.  Else join, before
	 * the image takes its extended memory (the cache goes above it). */
	if (probe_lost && disk.mc_addr[0])
		con_printf("netdisk: datagrams get lost here: multicast group not joined\n");
	else
		nic_group_join();
	boot_table_publish();
	disk_geometry_init();
	if (disk_read_to(0, 1, 0x7c00) != 0)
		give_up("cannot read the boot sector");
	if (far_read16(0, 0x7dfe) != 0xaa55)
		give_up("the disk has no boot signature (55AA)");
	/* Claim drive 80h (other hard disks move up by one), move out of base
	 * memory but for the resident part, and hook INT 13h and INT 15h. */
	hd_count_ours = (uint8_t)(far_read8(0x40, 0x75) + 1);
	far_write8(0x40, 0x75, hd_count_ours);
	resident_install(bounce ? RX_DGRAM : 0);
	memory_report();
	con_printf("netdisk: booting drive 80h\n");
	boot_jump();
}
