/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The boot NIC on the stub's own driver (virtio-net): checks it on PCI, starts it, runs the IP stack on it; PXE or the option ROM's BEV says which NIC. */

#include "bios.h"
#include "ipstack.h"
#include "virtio_net.h"
#ifdef ND_GROUP
#include "group.h"
#endif

#define PCI_CONFIG_ADDRESS 0xcf8
#define PCI_CONFIG_DATA 0xcfc
#define PCI_ID 0x00
#define PCI_COMMAND 0x04
#define PCI_COMMAND_IO 0x01
#define PCI_COMMAND_MASTER 0x04
#define PCI_BAR0 0x10
#define NIC_RX_BUFS 32  /* 48 KiB of frames: 16 measured slower, 64 no faster (docs/bios.md) */

static struct vn_dev vn;
static struct nd_framedev dev;
static uint32_t nic_mem, nic_mem_size;
static uint16_t io_base;
static int running;

/* PCI configuration mechanism #1, which every PCI PC has: select the
 * dword of a function's configuration space that holds reg. */
static void pci_select(uint16_t bdf, uint8_t reg)
{
	outl(PCI_CONFIG_ADDRESS, 0x80000000u | (uint32_t)bdf << 8 | (reg & 0xfc));
}

static uint32_t pci_read32(uint16_t bdf, uint8_t reg)
{
	pci_select(bdf, reg);
	return inl(PCI_CONFIG_DATA);
}

static void pci_write16(uint16_t bdf, uint8_t reg, uint16_t v)
{
	pci_select(bdf, reg);
	outw((uint16_t)(PCI_CONFIG_DATA + (reg & 2)), v);
}

/* The driver's port and memory access: ports within BAR 0, memory by
 * linear address, anywhere below 4 GiB (its block is in extended memory). */
static uint8_t vn_in8(void *ctx, uint16_t port)
{
	return inb((uint16_t)(io_base + port));
}

static uint16_t vn_in16(void *ctx, uint16_t port)
{
	return inw((uint16_t)(io_base + port));
}

static uint32_t vn_in32(void *ctx, uint16_t port)
{
	return inl((uint16_t)(io_base + port));
}

static void vn_out8(void *ctx, uint16_t port, uint8_t v)
{
	outb((uint16_t)(io_base + port), v);
}

static void vn_out16(void *ctx, uint16_t port, uint16_t v)
{
	outw((uint16_t)(io_base + port), v);
}

static void vn_out32(void *ctx, uint16_t port, uint32_t v)
{
	outl((uint16_t)(io_base + port), v);
}

/*
 * Memory goes through flat GS (entry.asm) unless we run in V86 mode, where
 * the BIOS block move (lin_copy_*, slow but all V86 monitors emulate it)
 * takes over.
 */
static uint16_t vn_read16(void *ctx, uint32_t addr)
{
	uint16_t v;

	if (flat_ok)
		return (uint16_t)flat_read16(addr);
	lin_copy_from(&v, addr, sizeof(v));
	return v;
}

static uint32_t vn_read32(void *ctx, uint32_t addr)
{
	uint32_t v;

	if (flat_ok)
		return flat_read32(addr);
	lin_copy_from(&v, addr, sizeof(v));
	return v;
}

static void vn_write16(void *ctx, uint32_t addr, uint16_t v)
{
	if (flat_ok)
		flat_write16(addr, v);
	else
		lin_copy_to(addr, &v, sizeof(v));
}

static void vn_write32(void *ctx, uint32_t addr, uint32_t v)
{
	if (flat_ok)
		flat_write32(addr, v);
	else
		lin_copy_to(addr, &v, sizeof(v));
}

static void vn_copy_from(void *ctx, void *dst, uint32_t addr, unsigned len)
{
	if (flat_ok)
		flat_copy_from(dst, addr, (uint16_t)len);
	else
		lin_copy_from(dst, addr, len);
}

/* The sum flat_copy_from_sum takes, of bytes already copied (the V86 case):
 * dwords with the bytes zero-padded, every carry added back in. */
static uint32_t ones_sum(const uint8_t *p, unsigned len)
{
	uint32_t sum = 0, w;
	unsigned i;

	for (i = 0; i < len; i += 4) {
		w = 0;
		memcpy(&w, p + i, len - i < 4 ? len - i : 4);
		sum += w;
		sum += sum < w;
	}
	return sum;
}

static uint32_t vn_copy_from_sum(void *ctx, void *dst, uint32_t addr, unsigned len)
{
	if (flat_ok)
		return flat_copy_from_sum(dst, addr, (uint16_t)len);
	lin_copy_from(dst, addr, len);
	return ones_sum(dst, len);
}

static void vn_copy_to(void *ctx, uint32_t addr, const void *src, unsigned len)
{
	if (flat_ok)
		flat_copy_to(addr, src, (uint16_t)len);
	else
		lin_copy_to(addr, src, len);
}

static const struct vn_platform platform = {
	.in8 = vn_in8, .in16 = vn_in16, .in32 = vn_in32,
	.out8 = vn_out8, .out16 = vn_out16, .out32 = vn_out32,
	.read16 = vn_read16, .read32 = vn_read32,
	.write16 = vn_write16, .write32 = vn_write32,
	.copy_from = vn_copy_from, .copy_to = vn_copy_to, .copy_from_sum = vn_copy_from_sum,
};

/* Take size bytes of base memory, 4 KiB aligned, from the top (below us):
 * its linear address, or 0 if that would leave less than 256 KiB.  Only
 * when there is no extended memory: boot loaders may write there. */
static uint32_t base_memory_take(uint32_t size)
{
	uint16_t kb = (uint16_t)far_read16(0x40, 0x13);
	uint16_t want = (uint16_t)((size + 1023) / 1024);

	if (kb < want + 256)
		return 0;
	kb = (uint16_t)((kb - want) & ~3u);
	far_write16(0x40, 0x13, kb);
	return (uint32_t)kb << 10;
}

/* A PCI function our driver runs (legacy virtio-net with an I/O BAR 0):
 * 0 with its I/O BAR in io_base. */
int nic_check(uint16_t bdf)
{
	uint32_t bar;

	if (pci_read32(bdf, PCI_ID) != ((uint32_t)VN_PCI_DEVICE << 16 | VN_PCI_VENDOR))
		return -1;
	bar = pci_read32(bdf, PCI_BAR0);
	if (!(bar & 1) || (bar & 0xfffc) == 0)
		return -1;
	io_base = (uint16_t)(bar & 0xfffc);
	return 0;
}

/* The first virtio-net function on bus 0-255 (an option ROM that was not
 * told its own): 0 and *bdf, or -1. */
int nic_scan(uint16_t *bdf)
{
	uint32_t b;

	for (b = 0; b < 0x10000; b++) {
		if ((b & 7) == 0 && pci_read32((uint16_t)b, PCI_ID) == 0xffffffffu) {
			b += 7; /* no device: none of its functions either */
			continue;
		}
		if (nic_check((uint16_t)b) == 0) {
			*bdf = (uint16_t)b;
			return 0;
		}
	}
	return -1;
}

/* The IP stack on the started NIC, once the next hop answers ARP: asked
 * again until timeout_s, like an ATTACH the server does not answer. */
void nic_ip_open(const struct pxe_info *info, uint16_t server_port, uint16_t timeout_s,
		 struct nd_transport *tp)
{
	struct nd_ipconf conf;
	uint32_t start = clock_ms(), waited;
	int rc;

	memcpy(conf.ip, info->my_ip, 4);
	memcpy(conf.netmask, info->netmask, 4);
	memcpy(conf.gateway, info->router, 4);
	memcpy(conf.server, info->server_ip, 4);
	conf.server_port = server_port;
	conf.seed = (uint32_t)rdtsc();
	tp->ctx = 0;
	tp->now_ms = clock_now;
	while ((rc = nd_ip_open(&dev, &conf, tp)) == ND_IP_E_ARP) {
		waited = (clock_ms() - start) / 1000;
		con_printf("netdisk: no ARP answer from %I, retrying (%u s)\n", nd_ip_next_hop(),
			   waited);
		if (waited >= timeout_s)
			give_up("no answer from the netdisk server's network");
	}
	if (rc != ND_IP_OK)
		give_up("the network settings from DHCP are not usable");
}

/* Take the NIC at bdf (nic_check passed) over: bus master, rings and
 * buffers in extended memory, the device started.  Gives up on failure. */
void nic_start(uint16_t bdf)
{
	uint32_t size, mem;

	pci_write16(bdf, PCI_COMMAND, (uint16_t)(pci_read32(bdf, PCI_COMMAND) | PCI_COMMAND_IO |
						  PCI_COMMAND_MASTER));
	if (nd_vn_probe(&vn, &platform, NIC_RX_BUFS, &size) != VN_OK)
		give_up("the virtio-net NIC does not start");
	mem = ext_memory_take(size);
	if (!mem) {
		con_printf("netdisk: WARNING: no extended memory for the NIC's rings: they go to base\n"
			   "netdisk: WARNING: memory, where boot loaders may overwrite them\n");
		mem = base_memory_take(size);
	}
	if (!mem)
		give_up("not enough memory for the NIC's rings");
	if (nd_vn_start(&vn, mem, &dev) != VN_OK)
		give_up("the virtio-net NIC does not start");
	running = 1;
	nic_mem = mem;
	nic_mem_size = size;
	con_printf("netdisk: NIC %x:%x.%u virtio-net at I/O %x, own driver, %u KiB of rings at %x\n",
		   bdf >> 8, (bdf >> 3) & 31, bdf & 7, io_base, (size + 1023) / 1024, mem);
}

/* The started NIC as a frame device (for DHCP before the IP stack). */
struct nd_framedev *nic_device(void)
{
	return &dev;
}

/* Whether frames go through our driver, whose NIC keeps receiving while
 * INT 13h is not called. */
int nic_keeps_frames(void)
{
	return running;
}

/* The NIC's block of rings and buffers, if our driver runs it: 1 and its place. */
int nic_memory(uint32_t *at, uint32_t *size)
{
	*at = nic_mem;
	*size = nic_mem_size;
	return running;
}

/* Stop the NIC's DMA before its memory is given back. */
void nic_stop(void)
{
	if (running)
		nd_vn_reset(&vn);
	running = 0;
}

#ifdef ND_GROUP
/*
 * The multicast group cache (client/group.c) in extended memory: its
 * entries and blocks do not fit the image's segment.  Below 1 MiB (one
 * even megabyte, as every block ext_memory_take carves): 768 KiB hold 756
 * blocks of two sectors.  Only the own driver receives the group: the PXE
 * API path stays on unicast (docs/bios.md, Multicast).
 */
#define GROUP_CACHE_BYTES (768u * 1024)
#define GROUP_TIMEOUT_MS 2000 /* at least the server's hold-back (group.c stretches it) */

static struct nd_group group;
static uint32_t group_lin;          /* the cache's linear address, 0: none */
static uint8_t group_joined;
static uint8_t group_sector[ND_SECTOR_SIZE]; /* view(): a copy of cached bytes */

/* The cache's memory through flat GS (flat_ok: the image moves to
 * extended memory only then, and the group is joined only then). */
static void group_load(void *ctx, void *dst, size_t at, unsigned len)
{
	flat_copy_from(dst, group_lin + at, (uint16_t)len);
}

static void group_store(void *ctx, size_t at, const void *src, unsigned len)
{
	flat_copy_to(group_lin + at, src, (uint16_t)len);
}

static const uint8_t *group_view(void *ctx, size_t at, unsigned len)
{
	flat_copy_from(group_sector, group_lin + at, (uint16_t)len); /* len <= a sector */
	return group_sector;
}

static const struct nd_group_mem group_mem = { group_load, group_store, group_view };

/* Join the group: the cache emptied, the IGMP report sent; 1 if joined. */
static int group_enter(void)
{
	if (nd_group_attach_mem(&disk, &group, &group_mem, 0, GROUP_CACHE_BYTES,
				GROUP_TIMEOUT_MS) != ND_DONE)
		return 0;
	if (nd_ip_join(disk.mc_addr, disk.mc_port) != ND_IP_OK) {
		nd_group_detach(&disk);
		return 0;
	}
	group_joined = 1;
	resident_group_joined(1);
	return 1;
}

void nic_group_join(void)
{
	if (!running || !disk.mc_addr[0] || !flat_ok)
		return;
	group_lin = ext_memory_take(GROUP_CACHE_BYTES);
	if (!group_lin || !group_enter()) {
		con_printf("netdisk: cannot join multicast group %I: %s\n", disk.mc_addr,
			   group_lin ? "refused" : "no extended memory for its cache");
		return;
	}
	con_printf("netdisk: multicast group %I:%u joined, %u KiB cache at %x\n", disk.mc_addr,
		   disk.mc_port, GROUP_CACHE_BYTES / 1024, group_lin);
}

void nic_group_leave(void)
{
	const struct nd_group_stats *st = &group.st;

	if (!group_joined)
		return;
	nd_ip_leave();
	nd_group_detach(&disk);
	group_joined = 0;
	resident_group_joined(0);
	con_printf("netdisk: multicast group %I left: %u datagrams cached, %u sectors read from it; "
		   "dropped %u malformed, %u of another stream, %u out of range\n",
		   disk.mc_addr, st->cached, st->hits, st->bad, st->foreign, st->range);
}

int nic_group_memory(uint32_t *at, uint32_t *size)
{
	*at = group_lin;
	*size = GROUP_CACHE_BYTES;
	return group_lin != 0;
}

void nic_group_rejoin(void)
{
	if (group_lin && !group_joined && running && group_enter())
		con_printf("netdisk: multicast group %I joined again\n", disk.mc_addr);
}
#else
int nic_group_memory(uint32_t *at, uint32_t *size) { return 0; }
void nic_group_join(void) {}
void nic_group_leave(void) {}
void nic_group_rejoin(void) {}
#endif
