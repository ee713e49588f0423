/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The stub's move out of base memory: the real-mode resident part
 * (resident.asm) goes to the top of base memory, the image (code, data,
 * the client's state, its stack) to extended memory, where it runs inside
 * INT 13h calls in 16-bit protected mode; and the calls that cross between
 * the two (BIOS and PXE calls, PXE buffers, seg:off memory).
 */
#include "bios.h"

_Static_assert(offsetof(struct res_hdr, bregs) == 64, "resident.asm header: bregs");
_Static_assert(offsetof(struct res_hdr, pxe_param) == 104, "resident.asm header: pxe_param");
_Static_assert(offsetof(struct res_hdr, gdt) == 232, "resident.asm header: gdt");
_Static_assert(offsetof(struct res_hdr, gdtr_limit) == 280, "resident.asm header: gdtr");

uint32_t hidden_start, hidden_end, ext_hidden_start, ext_hidden_end;
uint32_t image_lin;
uint8_t hd_count_ours;
static uint16_t res_seg, bounce_off;

#define HDR(field) (res_lin + offsetof(struct res_hdr, field))

enum { RM_BIOS_INT = 1, RM_PXE_CALL = 2, RM_IRQ_WINDOW = 3 };

/* An interrupt handler called as INT would; in protected mode through the
 * resident part (register values only: no pointers into the image). */
void bios_int(uint8_t vector, struct bregs *r)
{
	uint8_t fn = RM_BIOS_INT;

	if (!pm_mode) {
		rm_bios_int(vector, r);
		return;
	}
	flat_copy_to(HDR(bregs), r, sizeof(*r));
	flat_copy_to(HDR(bios_vector), &vector, 1);
	flat_copy_to(HDR(rm_fn), &fn, 1);
	rm_call();
	flat_copy_from(r, HDR(bregs), sizeof(*r));
}

/* A PXE API call; in protected mode the parameter block goes through the
 * resident part's copy (its buffers through pxe_buffer_*). */
uint16_t pxe_call_n(uint16_t opcode, void *param, unsigned size)
{
	uint8_t fn = RM_PXE_CALL;
	uint16_t status;

	if (!pm_mode)
		return rm_pxe_call(opcode, param);
	if (size > sizeof(((struct res_hdr *)0)->pxe_param))
		return 1;
	flat_copy_to(HDR(pxe_param), param, (uint16_t)size);
	flat_copy_to(HDR(pxe_opcode), &opcode, 2);
	flat_copy_to(HDR(rm_fn), &fn, 1);
	rm_call();
	flat_copy_from(param, HDR(pxe_param), (uint16_t)size);
	flat_copy_from(&status, HDR(pxe_status), 2);
	return status;
}

/* In protected mode interrupts stay off (there is no IDT): the clock calls
 * this every few milliseconds so that the BIOS timer tick and other
 * hardware interrupts pending meanwhile are served in real mode. */
void resident_irq_window(void)
{
	uint8_t fn = RM_IRQ_WINDOW;

	if (!pm_mode)
		return;
	flat_copy_to(HDR(rm_fn), &fn, 1);
	rm_call();
}

void far_to_near(void *dst, uint16_t seg, uint16_t off, uint16_t len)
{
	if (pm_mode)
		flat_copy_from(dst, ((uint32_t)seg << 4) + off, len);
	else
		far_copy(stub_seg, (uint16_t)(uintptr_t)dst, seg, off, len);
}

void near_to_far(uint16_t seg, uint16_t off, const void *src, uint16_t len)
{
	if (pm_mode)
		flat_copy_to(((uint32_t)seg << 4) + off, src, len);
	else
		far_copy(seg, off, stub_seg, (uint16_t)(uintptr_t)src, len);
}

/* A datagram for UDP_WRITE: in protected mode copied to the bounce buffer. */
void pxe_buffer_out(const void *buf, uint16_t len, uint16_t *seg, uint16_t *off)
{
	if (!pm_mode) {
		*seg = stub_seg;
		*off = (uint16_t)(uintptr_t)buf;
		return;
	}
	flat_copy_to(res_lin + bounce_off, buf, len);
	*seg = res_seg;
	*off = bounce_off;
}

/* The buffer for UDP_READ; pxe_buffer_done brings the datagram over. */
void pxe_buffer_in(void *buf, uint16_t *seg, uint16_t *off)
{
	if (!pm_mode) {
		*seg = stub_seg;
		*off = (uint16_t)(uintptr_t)buf;
		return;
	}
	*seg = res_seg;
	*off = bounce_off;
}

void pxe_buffer_done(void *buf, uint16_t len)
{
	if (pm_mode)
		flat_copy_from(buf, res_lin + bounce_off, len);
}

void resident_group_joined(uint8_t joined)
{
	if (pm_mode)
		flat_copy_to(HDR(group_joined), &joined, 1);
	else
		((struct res_hdr *)res_blob)->group_joined = joined;
}

/* The tables for the OS live in the resident part (docs/handoff.md: the
 * agent and the kernel look for them in 0x80000-0xFFFFF): the boot table at
 * the header's table_off, the iBFT (RES_IBFT) in the blob's last
 * ND_IBFT_MAX bytes. */
static uint16_t ibft_off(void)
{
	return (uint16_t)(res_blob_end - res_blob - ND_IBFT_MAX);
}

void resident_publish(uint16_t which, const void *table, unsigned len)
{
	struct res_hdr *h = (struct res_hdr *)res_blob;
	uint16_t off = which == RES_IBFT ? ibft_off() : h->table_off;

	if (pm_mode)
		flat_copy_to(res_lin + off, table, (uint16_t)len);
	else
		memcpy(res_blob + off, table, len);
}

static void set_base(uint8_t *desc, uint32_t base)
{
	desc[2] = (uint8_t)base;
	desc[3] = (uint8_t)(base >> 8);
	desc[4] = (uint8_t)(base >> 16);
	desc[7] = (uint8_t)(base >> 24);
}

void resident_install(uint32_t bounce_size)
{
	struct res_hdr *h = (struct res_hdr *)res_blob;
	uint32_t image_size = ((uint32_t)(uintptr_t)_resident_end + 4095) & ~4095u;
	uint16_t res_kb = (uint16_t)((h->res_size + bounce_size + 1023) / 1024), kb, now;
	uint32_t x, off;

	if (res_kb + 3 > RES_RESERVE_KB)
		give_up("the resident part does not fit its reserve");
	if (!flat_ok)
		give_up("V86 mode: the stub cannot run from extended memory");
	x = ext_memory_take(image_size);
	if (!x)
		give_up("no extended memory for the stub");

	/* Our base memory: only the resident part at the very top, from a
	 * 4 KiB boundary: Linux's /dev/mem reads a page that is partly usable
	 * RAM as zeros, and the agent must read the boot table there. */
	kb = (uint16_t)((base_kb_before - res_kb) & ~3u);
	res_seg = (uint16_t)(kb << 6);
	now = (uint16_t)far_read16(0x40, 0x13);
	if (now != stub_seg >> 6)
		kb = now; /* something was taken below us since: keep it */
	res_lin = (uint32_t)res_seg << 4;
	bounce_off = h->bounce_off;
	hidden_start = (uint32_t)kb << 10;
	hidden_end = (uint32_t)base_kb_before << 10;

	h->old_int13 = far_read32(0, 0x13 * 4);
	h->old_int15 = far_read32(0, 0x15 * 4);
	h->hidden_start = hidden_start;
	h->hidden_end = hidden_end;
	h->ext_hidden_start = ext_hidden_start;
	h->ext_hidden_end = ext_hidden_end;
	h->image_lin = x;
	h->res_lin = res_lin;
	h->pm_int13 = (uint16_t)(uintptr_t)pm_int13_entry;
	h->pm_resume = (uint16_t)(uintptr_t)pm_resume;
	h->pxe_entry = pxe_entry;
	h->our_drive = our_drive;
	h->hd_count_ours = hd_count_ours;
	h->pxe_use_pxenv = pxe_use_pxenv;
	h->res_seg = res_seg;
	set_base(h->gdt + 0x10, x);
	set_base(h->gdt + 0x18, x);
	set_base(h->gdt + 0x20, res_lin);
	set_base(h->gdt + 0x28, res_lin);
	h->gdtr_base = res_lin + offsetof(struct res_hdr, gdt);

	/* The image as the protected-mode copy sees itself, then back. */
	pm_mode = 1;
	image_lin = x;
	for (off = 0; off < image_size; off += 0x8000)
		flat_copy_to(x + off, (const void *)(uintptr_t)off,
			     (uint16_t)(image_size - off < 0x8000 ? image_size - off : 0x8000));
	pm_mode = 0;
	image_lin = (uint32_t)stub_seg << 4;

	/* The blob only: its stack and bounce buffer need no contents. */
	far_copy(res_seg, 0, stub_seg, (uint16_t)(uintptr_t)res_blob,
		 (uint16_t)(res_blob_end - res_blob));
	/* The iBFT is the resident copy's alone: the kernel takes the first
	 * signature in 0x80000-0xFFFFF, and the memory this copy is in goes
	 * back to the OS as RAM (the image in extended memory has its own). */
	memset(res_blob + ibft_off(), 0, 4);
	far_write16(0x40, 0x13, kb);
	asm volatile("cli");
	far_write32(0, 0x13 * 4, ((uint32_t)res_seg << 16) | h->int13_entry);
	far_write32(0, 0x15 * 4, ((uint32_t)res_seg << 16) | h->int15_entry);
	asm volatile("sti");
}
