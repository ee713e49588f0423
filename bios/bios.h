/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Shared declarations of the BIOS stub: real-mode helpers, console, PXE transport, disk. */
#ifndef NETDISK_BIOS_H
#define NETDISK_BIOS_H

#include <stddef.h>
#include <stdint.h>
#include "ndclient.h"
#include "ipstack.h"
#include "netdisk/bootcfg.h"

/* Registers for bios_int(); layout shared with entry.asm. */
struct bregs {
	uint32_t eax, ebx, ecx, edx, esi, edi, ebp;
	uint16_t ds, es;
	uint16_t flags;
} __attribute__((packed));

#define FLAG_CF 0x0001

/* Registers saved by the INT 13h entry (push es/ds after pushad). */
struct int13_regs {
	uint16_t es, ds;
	uint32_t edi, esi, ebp, esp, ebx, edx, ecx, eax;
} __attribute__((packed));

/* entry.asm: far memory, BIOS and PXE calls, hooks. */
uint32_t far_read8(uint16_t seg, uint16_t off);
uint32_t far_read16(uint16_t seg, uint16_t off);
uint32_t far_read32(uint16_t seg, uint16_t off);
void far_write8(uint16_t seg, uint16_t off, uint32_t val);
void far_write16(uint16_t seg, uint16_t off, uint32_t val);
void far_write32(uint16_t seg, uint16_t off, uint32_t val);
void far_copy(uint16_t dseg, uint16_t doff, uint16_t sseg, uint16_t soff, uint16_t len);
void rm_bios_int(uint8_t vector, struct bregs *r);
/* Flat GS (entry.asm): linear addresses below 4 GiB, valid while flat_ok. */
void flat_setup(void);
uint32_t flat_read16(uint32_t addr);
uint32_t flat_read32(uint32_t addr);
void flat_write16(uint32_t addr, uint32_t val);
void flat_write32(uint32_t addr, uint32_t val);
void flat_copy_from(void *dst, uint32_t src, uint16_t len);
uint32_t flat_copy_from_sum(void *dst, uint32_t src, uint16_t len);
void flat_copy_to(uint32_t dst, const void *src, uint16_t len);
void flat_move(uint32_t dst, uint32_t src, uint16_t len);
uint16_t rm_pxe_call(uint16_t opcode, void *param);
void boot_jump(void) __attribute__((noreturn));
void rm_call(void);
extern char pm_int13_entry[], pm_resume[];
extern uint8_t res_blob[], res_blob_end[];
extern uint32_t pxenv_ptr, pxe_ptr, pxe_entry, res_lin;
extern uint16_t stub_seg, base_kb_before;
extern uint8_t pxe_use_pxenv, our_drive, flat_ok, pm_mode;
extern char _resident_end[];

/*
 * resident.c: the real-mode resident part (resident.asm) and the image in
 * extended memory.  The header at the start of the resident part; its
 * layout is resident.asm's.
 */
struct res_hdr {
	uint16_t int13_entry, int15_entry, int13_back, rm_call_entry;
	uint32_t old_int13, old_int15;
	uint32_t hidden_start, hidden_end, ext_hidden_start, ext_hidden_end;
	uint32_t image_lin, res_lin;
	uint16_t pm_int13, pm_resume;
	uint32_t pxe_entry;
	uint8_t our_drive, hd_count_ours, pxe_use_pxenv, rm_fn;
	uint16_t bounce_off, table_off, rm_sp, res_seg;
	uint8_t bios_vector, group_joined;
	uint16_t res_size;
	struct bregs bregs;
	uint16_t pad2;
	uint16_t pxe_status, pxe_opcode;
	uint8_t pxe_param[128];
	uint8_t gdt[48];
	uint16_t gdtr_limit;
	uint32_t gdtr_base;
} __attribute__((packed));

/* Base memory the resident part may take (RES_RESERVE_KB in entry.asm). */
#define RES_RESERVE_KB 24
/* The resident part's real-mode stack, right below its bounce buffer. */
#define RES_STACK 2048

extern uint32_t hidden_start, hidden_end, ext_hidden_start, ext_hidden_end;
extern uint32_t image_lin;   /* linear address of the running image */
extern uint8_t hd_count_ours;
void bios_int(uint8_t vector, struct bregs *r);
#define pxe_call(op, param) pxe_call_n((op), (param), sizeof(*(param)))
uint16_t pxe_call_n(uint16_t opcode, void *param, unsigned size);
/* Near memory <-> seg:off, in either mode. */
void far_to_near(void *dst, uint16_t seg, uint16_t off, uint16_t len);
void near_to_far(uint16_t seg, uint16_t off, const void *src, uint16_t len);
/* PXE UDP buffers: where the PXE stack reads (out) or writes a datagram. */
void pxe_buffer_out(const void *buf, uint16_t len, uint16_t *seg, uint16_t *off);
void pxe_buffer_in(void *buf, uint16_t *seg, uint16_t *off);
void pxe_buffer_done(void *buf, uint16_t len);
/* Move the image to extended memory, the resident part to the top of base
 * memory, and hook INT 13h and INT 15h there. */
void resident_install(uint32_t bounce_size);
/* Copy a table for the OS into the resident part: the boot table
 * (RES_TABLE) or the iBFT (RES_IBFT, at most ND_IBFT_MAX bytes). */
enum { RES_TABLE, RES_IBFT };
void resident_publish(uint16_t which, const void *table, unsigned len);
void resident_irq_window(void);
/* Tell the resident part whether the multicast group is joined: its E820
 * hook then has the image leave it (ND_INT13_GROUP_LEAVE). */
void resident_group_joined(uint8_t joined);

/* Port I/O (COM1, PCI configuration, the NIC). */
static inline uint8_t inb(uint16_t port)
{
	uint8_t v;

	asm volatile("inb %w1, %0" : "=a"(v) : "Nd"(port));
	return v;
}

static inline uint16_t inw(uint16_t port)
{
	uint16_t v;

	asm volatile("inw %w1, %0" : "=a"(v) : "Nd"(port));
	return v;
}

static inline uint32_t inl(uint16_t port)
{
	uint32_t v;

	asm volatile("inl %w1, %0" : "=a"(v) : "Nd"(port));
	return v;
}

static inline void outb(uint16_t port, uint8_t v)
{
	asm volatile("outb %0, %w1" : : "a"(v), "Nd"(port));
}

static inline void outw(uint16_t port, uint16_t v)
{
	asm volatile("outw %0, %w1" : : "a"(v), "Nd"(port));
}

static inline void outl(uint16_t port, uint32_t v)
{
	asm volatile("outl %0, %w1" : : "a"(v), "Nd"(port));
}

/* Linear address of a near pointer in our segment. */
static inline uint32_t linear(const void *p)
{
	return image_lin + (uint16_t)(uintptr_t)p;
}

/* Copy between near memory and any linear address (above 1 MiB too). */
void lin_copy_to(uint32_t dst, const void *src, unsigned len);
void lin_copy_from(void *dst, uint32_t src, unsigned len);

/* console.c: screen (INT 10h) and COM1. */
void con_init(void);
void con_printf(const char *fmt, ...);
extern int con_serial_only;

/* What the network told us (the PXE stack's DHCPACK, or the option ROM's
 * own DHCP); addresses in network order. */
struct pxe_info {
	uint8_t my_ip[4];
	uint8_t server_ip[4];   /* the netdisk server; 0.0.0.0 = none named */
	uint8_t netmask[4];     /* DHCP option 1 */
	uint8_t router[4];      /* DHCP option 3, 0 = none */
	uint8_t dhcp[4];        /* DHCP option 54: the server that gave the address */
	uint8_t dns[4];         /* DHCP option 6 (the first), 0 = none */
	uint8_t mac[6];
	uint16_t bdf;           /* the NIC's PCI bus/device/function, 0 = unknown */
	uint16_t server_port;   /* 0 = not named (option ROM: DHCP option 43) */
	char image[ND_IMAGE_NAME_LEN]; /* NUL-terminated; "" = not named (option ROM: DHCP) */
};

/*
 * The boot path, one of two linked in: pxe.c for netdisk.pxe (the PXE
 * stack's DHCP facts, the own driver or PXE's UDP), rom.c for the option
 * ROM (the own driver and DHCP, no PXE).  stub_net_start fills *net (it
 * may use scratch as a buffer); stub_net_open makes the transport to the
 * server and returns 1 if datagrams go through the resident part's bounce
 * buffer (PXE's UDP API).  Both give up on failure.
 */
extern const char stub_banner[];
void stub_net_start(struct pxe_info *net, uint8_t *scratch, unsigned size);
int stub_net_open(struct pxe_info *net, uint16_t server_port, uint16_t timeout_s,
		  struct nd_transport *tp);

/* pxe.c: PXE API and the client transport. */
int pxe_find(void);
int pxe_get_info(struct pxe_info *info);
int pxe_udp_open(const struct pxe_info *info, uint16_t server_port, uint16_t local_port);
void pxe_transport(struct nd_transport *tp);

/* nic.c: the boot NIC on the stub's own driver (virtio-net). */
int nic_check(uint16_t bdf);
int nic_scan(uint16_t *bdf);
void nic_start(uint16_t bdf);
struct nd_framedev *nic_device(void);
void nic_ip_open(const struct pxe_info *info, uint16_t server_port, uint16_t timeout_s,
		 struct nd_transport *tp);
int nic_keeps_frames(void);
int nic_memory(uint32_t *at, uint32_t *size);
void nic_stop(void);
/* The multicast group ATTACH offered (netdisk.pxe on the own driver, built
 * with -DND_GROUP): join it with a cache in extended memory, leave it
 * (IGMP leave, counters on the console), join it again on the next read. */
void nic_group_join(void);
void nic_group_leave(void);
void nic_group_rejoin(void);
int nic_group_memory(uint32_t *at, uint32_t *size); /* 1 and its place if it has a cache */
/* The private INT 13h function (our drive) the resident part's E820 hook
 * calls when a map enumeration starts: a boot loader or the OS is about to
 * take the machine over, so the group is left (resident.asm). */
#define ND_INT13_GROUP_LEAVE 0x7e

/* memory.c: extended memory for the NIC, the memory report. */
uint32_t ext_memory_take(uint32_t size);
void memory_report(void);

/* clock.c: milliseconds from the TSC, calibrated against the BIOS tick. */
void clock_init(void);
uint32_t clock_ms(void);
uint32_t clock_now(void *ctx); /* clock_ms() as a transport's clock */
uint64_t rdtsc(void);

/* main.c: the configuration block `netdisk patch` rewrites. */
extern struct nd_bootcfg bootcfg;

/* main.c: how long to keep trying to reach the server at start, in seconds. */
uint16_t attach_timeout_s(void);

/* main.c: stop, give back our memory and let the BIOS boot the next device. */
void give_up(const char *why) __attribute__((noreturn));

/* main.c: the boot table for the OS (docs/handoff.md), refreshed after a re-attach. */
void boot_table_publish(void);

/* disk.c: the netdisk drive behind INT 13h. */
extern struct nd_client disk;
void disk_geometry_init(void);
int disk_read_to(uint64_t lba, uint32_t count, uint32_t dst_linear);
int int13_handler(struct int13_regs *r);

/* libc.c */
void *memcpy(void *dst, const void *src, size_t n);
void *memset(void *dst, int c, size_t n);

#endif /* NETDISK_BIOS_H */
