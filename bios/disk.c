/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The netdisk drive behind INT 13h: CHS and EDD functions, transfers to any buffer, status codes. */

#include "bios.h"
#include "policy.h"

#define BDA_SEG 0x40
#define BDA_DISK_STATUS 0x74
#define BDA_HDCOUNT 0x75

/* INT 13h status codes (AH). */
#define ST_OK 0x00
#define ST_BAD_COMMAND 0x01
#define ST_NOT_FOUND 0x04
#define ST_WRITE_PROTECTED 0x03
#define ST_CONTROLLER 0x20
#define ST_WRITE_FAULT 0xcc /* the server is out of space for our writes */
#define ST_TIMEOUT 0x80

#define ONE_MIB 0x100000u
#define CHS_LIMIT (16383u * 16u * 63u) /* largest disk EDD still describes in CHS */
#define PROGRESS_STEP (4u * 2048u)     /* sectors between progress lines: 4 MiB */

struct nd_client disk;
static uint16_t heads = 255, spt = 63;
static uint32_t sectors_moved, next_progress = PROGRESS_STEP;
static uint16_t granted_window;
static uint64_t sequential_next; /* the sector after the last read */
static int block_move_failed; /* since the start of the current request */

/* Copy between linear addresses with the BIOS block move (INT 15h AH=87h),
 * used for buffers above 1 MiB.  It works in V86 mode under memory managers
 * and needs no GDT or A20 handling of our own, which unreal mode would. */
static void block_move(uint32_t dst, uint32_t src, unsigned bytes)
{
	uint8_t gdt[48];
	struct bregs r;
	uint32_t base[2] = { src, dst };
	int i;

	memset(gdt, 0, sizeof(gdt));
	for (i = 0; i < 2; i++) {
		uint8_t *d = gdt + 16 + 8 * i;

		d[0] = 0xff;
		d[1] = 0xff;
		d[2] = (uint8_t)base[i];
		d[3] = (uint8_t)(base[i] >> 8);
		d[4] = (uint8_t)(base[i] >> 16);
		d[5] = 0x93;
		d[7] = (uint8_t)(base[i] >> 24);
	}
	memset(&r, 0, sizeof(r));
	r.eax = 0x8700;
	r.ecx = bytes / 2;
	r.es = stub_seg;
	r.esi = (uint16_t)(uintptr_t)gdt;
	bios_int(0x15, &r);
	if (r.flags & FLAG_CF)
		block_move_failed = 1;
}

/* Linear copy of any length: directly below 1 MiB, by block move above it,
 * where an odd last byte is merged into the destination word (the block
 * move copies words). */
static void linear_move(uint32_t dst, uint32_t src, unsigned len)
{
	uint8_t old[2], last[2];

	if (pm_mode) {
		while (len) {
			uint16_t n = len > 0x8000 ? 0x8000 : (uint16_t)len;

			flat_move(dst, src, n);
			dst += n;
			src += n;
			len -= n;
		}
		return;
	}
	if (dst + len <= ONE_MIB && src + len <= ONE_MIB) {
		far_copy((uint16_t)(dst >> 4), (uint16_t)(dst & 15), (uint16_t)(src >> 4),
			 (uint16_t)(src & 15), (uint16_t)len);
		return;
	}
	if (len & ~1u)
		block_move(dst, src, len & ~1u);
	if (len & 1) {
		block_move(linear(old), dst + len - 1, 2);
		block_move(linear(last), src + len - 1, 2);
		old[0] = last[0];
		block_move(dst + len - 1, linear(old), 2);
	}
}

void lin_copy_to(uint32_t dst, const void *src, unsigned len)
{
	linear_move(dst, linear(src), len);
}

void lin_copy_from(void *dst, uint32_t src, unsigned len)
{
	linear_move(linear(dst), src, len);
}
static void put_linear(void *ctx, uint32_t offset, const void *data, unsigned len)
{
	lin_copy_to(*(uint32_t *)ctx + offset, data, len);
}

static void get_linear(void *ctx, uint32_t offset, void *data, unsigned len)
{
	lin_copy_from(data, *(uint32_t *)ctx + offset, len);
}

/* Progress: how much the boot has moved so far.  Once the boot sector
 * runs, the screen belongs to the OS loader, so only COM1 shows it. */
static void progress(uint32_t count)
{
	sectors_moved += count;
	if (sectors_moved >= next_progress) {
		con_serial_only = 1;
		con_printf("netdisk: %u MiB transferred (%u retransmissions)\n", sectors_moved / 2048,
			   disk.retransmits);
		con_serial_only = 0;
		next_progress = sectors_moved + PROGRESS_STEP;
	}
}

/* Reads in flight adapt to what the NIC keeps: a PXE stack whose receive
 * ring is small (iPXE's rtl8139: about five frames) drops the tail of a
 * burst, and each loss costs a retransmission timeout.  Halve the window
 * after a read that needed retransmissions, grow it by one after a clean
 * one, never above what the server granted. */
static void adapt_window(uint32_t retransmits_before)
{
	if (!granted_window || disk.window > granted_window)
		granted_window = disk.window;
	if (disk.retransmits != retransmits_before)
		disk.window = disk.window > 2 ? disk.window / 2 : 1;
	else if (disk.window < granted_window)
		disk.window++;
}

/* Writes go out in pieces the PXE stack can send: every datagram below the
 * Ethernet MTU (PXE stacks do not fragment; with large read datagrams that
 * means one WRITE of at most two sectors per datagram), and no burst longer
 * than a small transmit ring holds (the stack frees its ring only while we
 * poll for the reply). */
#define WRITE_SECTORS_UNFRAGMENTED ((ND_DEFAULT_DGRAM - ND_HDR_SIZE) / ND_SECTOR_SIZE)
#define WRITE_BURST 8 /* datagrams */

static uint32_t write_piece(void)
{
	return disk.dgram <= ND_DEFAULT_DGRAM ? (uint32_t)WRITE_BURST * disk.chunk / ND_SECTOR_SIZE
					      : WRITE_SECTORS_UNFRAGMENTED;
}

/*
 * Sectors to request ahead of a read.  A reader that goes on where it
 * stopped is likely to keep going: as many again, which then arrive while
 * the caller works on this read's data.  Only on our own NIC driver: the
 * PXE stack moves frames only inside its calls and drops what it cannot
 * keep.
 */
static uint32_t ahead_for(uint64_t lba, uint32_t count)
{
	uint64_t end = lba + count;
	int sequential = lba == sequential_next;

	sequential_next = end;
	if (!sequential || !nic_keeps_frames() || end >= disk.sectors)
		return 0;
	return count < disk.sectors - end ? count : (uint32_t)(disk.sectors - end);
}

/* One transfer through the client core.  A server that lost our session
 * (restarted without its state) is attached again when the stub policy
 * (nd_recover, client/policy.c) says that cannot lose writes. */
static int transfer(int write, uint64_t lba, uint32_t count, uint32_t buffer)
{
	struct nd_retry retry;
	int rc;

	nd_retry_begin(&disk, &retry);
	for (;;) {
		uint32_t retransmits = disk.retransmits;

		if (write) {
			rc = nd_write_pieces(&disk, lba, count, write_piece(), get_linear, &buffer);
		} else {
			rc = nd_read_ahead(&disk, lba, count, ahead_for(lba, count), put_linear,
					   &buffer);
			adapt_window(retransmits);
		}
		if (!nd_recover(&disk, rc, &retry))
			return rc;
		granted_window = disk.window;
	}
}

/* Read or write count sectors at lba to/from a linear buffer: a BIOS status. */
static uint8_t disk_io(int write, uint64_t lba, uint32_t count, uint32_t buffer)
{
	int rc;

	if (bootcfg.flags & ND_BOOTCFG_VERBOSE) {
		con_serial_only = 1;
		con_printf("netdisk: %s %u+%u -> %x\n", write ? "write" : "read", (uint32_t)lba, count,
			   buffer);
		con_serial_only = 0;
	}
	if (lba >= disk.sectors || count > disk.sectors - lba)
		return ST_NOT_FOUND;
	if (!count)
		return ST_OK;
	block_move_failed = 0;
	if (!write)
		nic_group_rejoin(); /* left at an E820 call that did not end our part */
	rc = transfer(write, lba, count, buffer);
	if (block_move_failed) {
		con_printf("netdisk: INT 15h AH=87h could not reach the buffer at %x\n", buffer);
		return ST_CONTROLLER;
	}
	if (rc == ND_DONE) {
		progress(count);
		return ST_OK;
	}
	if (rc == ND_E_STATUS) {
		con_printf("netdisk: %s at sector %u: %s\n", write ? "write" : "read",
			   (uint32_t)lba, nd_status_text(disk.last_status));
		if (disk.last_status == ND_ERR_READONLY)
			return ST_WRITE_PROTECTED;
		if (disk.last_status == ND_ERR_RANGE)
			return ST_NOT_FOUND;
		if (disk.last_status == ND_ERR_NOSPACE)
			return ST_WRITE_FAULT;
		return ST_CONTROLLER;
	}
	con_printf("netdisk: %s at sector %u failed (%d)\n", write ? "write" : "read",
		   (uint32_t)lba, rc);
	return ST_TIMEOUT;
}

int disk_read_to(uint64_t lba, uint32_t count, uint32_t dst_linear)
{
	return disk_io(0, lba, count, dst_linear);
}

/* CHS geometry from the ending CHS of the first partition whose entry is
 * usable; 255 heads and 63 sectors otherwise, as most BIOSes translate. */
void disk_geometry_init(void)
{
	uint8_t mbr[512];
	int i;

	if (disk_io(0, 0, 1, linear(mbr)) != ST_OK || mbr[510] != 0x55 || mbr[511] != 0xaa)
		return;
	for (i = 0; i < 4; i++) {
		const uint8_t *p = mbr + 446 + 16 * i;
		uint8_t end_head = p[5], end_sector = p[6] & 63;

		if (p[4] && end_sector) {
			heads = (uint16_t)(end_head + 1);
			spt = end_sector;
			return;
		}
	}
}

static uint32_t cylinders(void)
{
	if (disk.sectors >> 32)
		return 0xffffffffu / ((uint32_t)heads * spt);
	return (uint32_t)disk.sectors / ((uint32_t)heads * spt);
}

/* Register fields of the caller's INT 13h frame. */
#define AH(r) ((uint8_t)((r)->eax >> 8))
#define AL(r) ((uint8_t)(r)->eax)
#define CH(r) ((uint8_t)((r)->ecx >> 8))
#define CL(r) ((uint8_t)(r)->ecx)
#define DH(r) ((uint8_t)((r)->edx >> 8))
#define BX(r) ((uint16_t)(r)->ebx)
#define SI(r) ((uint16_t)(r)->esi)

static void set_ah(struct int13_regs *r, uint8_t v)
{
	r->eax = (r->eax & ~0xff00u) | ((uint32_t)v << 8);
}

static void set_al(struct int13_regs *r, uint8_t v)
{
	r->eax = (r->eax & ~0xffu) | v;
}

/* AH=02h/03h/04h: CL bits 6-7 are cylinder bits 8-9. */
static uint8_t chs_io(struct int13_regs *r, uint8_t fn)
{
	uint32_t cyl = CH(r) | ((uint32_t)(CL(r) & 0xc0) << 2);
	uint8_t sector = CL(r) & 63, head = DH(r), count = AL(r), st;
	uint64_t lba;

	if (!count || !sector || sector > spt || head >= heads) {
		set_al(r, 0);
		return ST_BAD_COMMAND;
	}
	lba = ((uint64_t)cyl * heads + head) * spt + sector - 1;
	if (fn == 0x04)
		st = lba + count <= disk.sectors ? ST_OK : ST_NOT_FOUND;
	else
		st = disk_io(fn == 0x03, lba, count, ((uint32_t)r->es << 4) + BX(r));
	set_al(r, st == ST_OK ? count : 0);
	return st;
}

/* AH=08h: the CHS view, at most 1024 cylinders. */
static uint8_t get_params(struct int13_regs *r)
{
	uint32_t cyls = cylinders(), max_cyl;

	if (cyls > 1024)
		cyls = 1024;
	max_cyl = cyls ? cyls - 1 : 0;
	r->eax &= ~0xffffu;
	r->ecx = (r->ecx & ~0xffffu) | ((max_cyl & 0xff) << 8) | ((max_cyl >> 2) & 0xc0) | spt;
	r->edx = (r->edx & ~0xffffu) | ((uint32_t)(heads - 1) << 8) |
		 far_read8(BDA_SEG, BDA_HDCOUNT);
	return ST_OK;
}

/* Disk address packet of AH=42h-44h/47h. */
struct dap {
	uint8_t size;
	uint8_t reserved;
	uint16_t count;
	uint16_t buf_off, buf_seg;
	uint64_t lba;
	uint64_t flat;  /* when size >= 24 and buf is FFFF:FFFF */
} __attribute__((packed));

static uint8_t ext_io(struct int13_regs *r, uint8_t fn)
{
	struct dap d;
	uint32_t buffer;
	uint8_t st;

	memset(&d, 0, sizeof(d));
	far_to_near(&d, r->ds, SI(r), 16);
	if (d.size < 16)
		return ST_BAD_COMMAND;
	if (d.size >= 24)
		far_to_near(&d.flat, r->ds, SI(r) + 16, 8);
	buffer = ((uint32_t)d.buf_seg << 4) + d.buf_off;
	if (d.size >= 24 && d.buf_off == 0xffff && d.buf_seg == 0xffff) {
		if (d.flat >> 32) {
			far_write16(r->ds, SI(r) + 2, 0);
			return ST_BAD_COMMAND;
		}
		buffer = (uint32_t)d.flat;
	}
	if (fn == 0x42 || fn == 0x43)
		st = disk_io(fn == 0x43, d.lba, d.count, buffer);
	else
		st = d.lba < disk.sectors && d.count <= disk.sectors - d.lba ? ST_OK : ST_NOT_FOUND;
	if (st != ST_OK)
		far_write16(r->ds, SI(r) + 2, 0);
	return st;
}

/* AH=48h result buffer, EDD 3.0 size. */
struct edd_params {
	uint16_t size;
	uint16_t flags;
	uint32_t cylinders;
	uint32_t heads;
	uint32_t spt;
	uint64_t sectors;
	uint16_t sector_size;
	uint32_t dpte;        /* FFFF:FFFF: no device parameter table */
	uint16_t key;         /* 0xBEDD when the device path below is valid */
	uint8_t path_len;
	uint8_t reserved[3];
	char host_bus[4];
	char interface[8];
	uint8_t interface_path[8];
	uint8_t device_path[8];
	uint8_t reserved2;
	uint8_t checksum;
} __attribute__((packed));

_Static_assert(sizeof(struct edd_params) == 0x42, "EDD 3.0 result is 66 bytes");

#define EDD_FLAG_CHS_VALID 0x0002

/* No device path is claimed: a network disk has no EDD interface type. */
static uint8_t edd_params(struct int13_regs *r)
{
	struct edd_params p;
	uint16_t size = (uint16_t)far_read16(r->ds, SI(r));

	if (size < 0x1a)
		return ST_BAD_COMMAND;
	size = size >= 0x42 ? 0x42 : size >= 0x1e ? 0x1e : 0x1a;
	memset(&p, 0, sizeof(p));
	p.size = size;
	p.sectors = disk.sectors;
	p.sector_size = ND_SECTOR_SIZE;
	if (disk.sectors <= CHS_LIMIT) {
		p.flags = EDD_FLAG_CHS_VALID;
		p.cylinders = cylinders();
		p.heads = heads;
		p.spt = spt;
	} else {
		p.cylinders = 16383;
		p.heads = 16;
		p.spt = 63;
	}
	p.dpte = 0xffffffffu;
	near_to_far(r->ds, SI(r), &p, size);
	return ST_OK;
}

/* The INT 13h handler for our drive; returns the carry flag for the caller. */
int int13_handler(struct int13_regs *r)
{
	uint8_t fn = AH(r), st;

	switch (fn) {
	case 0x00: /* reset */
	case 0x0d: /* alternate reset */
	case 0x10: /* test unit ready */
	case 0x11: /* recalibrate */
		st = ST_OK;
		break;
	case 0x01: /* status of the last operation */
		st = (uint8_t)far_read8(BDA_SEG, BDA_DISK_STATUS);
		set_ah(r, st);
		return st != ST_OK;
	case 0x02: /* read, CHS */
	case 0x03: /* write, CHS */
	case 0x04: /* verify, CHS */
		st = chs_io(r, fn);
		break;
	case 0x08:
		st = get_params(r);
		break;
	case 0x0c: /* seek */
		st = (CH(r) | ((uint32_t)(CL(r) & 0xc0) << 2)) < cylinders() ? ST_OK : ST_NOT_FOUND;
		break;
	case 0x15: /* disk type: 3 = hard disk, CX:DX sectors */
		far_write8(BDA_SEG, BDA_DISK_STATUS, ST_OK);
		set_ah(r, 3);
		{
			uint32_t n = disk.sectors >> 32 ? 0xffffffffu : (uint32_t)disk.sectors;

			r->ecx = (r->ecx & ~0xffffu) | (n >> 16);
			r->edx = (r->edx & ~0xffffu) | (n & 0xffff);
		}
		return 0;
	case 0x41: /* EDD installation check */
		if (BX(r) != 0x55aa) {
			st = ST_BAD_COMMAND;
			break;
		}
		far_write8(BDA_SEG, BDA_DISK_STATUS, ST_OK);
		r->ebx = (r->ebx & ~0xffffu) | 0xaa55;
		r->ecx = (r->ecx & ~0xffffu) | 0x0005; /* fixed-disk access + EDD (no removable) */
		set_ah(r, 0x30);                       /* EDD 3.0 */
		return 0;
	case 0x42: /* extended read */
	case 0x43: /* extended write */
	case 0x44: /* extended verify */
	case 0x47: /* extended seek */
		st = ext_io(r, fn);
		break;
	case 0x48:
		st = edd_params(r);
		break;
	case ND_INT13_GROUP_LEAVE: /* from our E820 hook: the machine is being handed over */
		nic_group_leave();
		return 0;
	default:
		st = ST_BAD_COMMAND;
		break;
	}
	far_write8(BDA_SEG, BDA_DISK_STATUS, st);
	set_ah(r, st);
	return st != ST_OK;
}
