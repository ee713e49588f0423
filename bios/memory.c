/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Where the BIOS stub keeps its memory: the resident part at the top of base memory, the NIC's block in extended memory, and the report of both. */

#include "bios.h"

#define ONE_MIB 0x100000u
#define LOW_LIMIT 0x80000u   /* below this boot loaders put buffers (GRUB: 0x70000) */
#define PAGE 4096u
#define E820_MAX_ENTRIES 128
#define E820_RAM 1
#define SMAP 0x534d4150u

struct e820_entry {
	uint64_t base, size;
	uint32_t type;
} __attribute__((packed));


/*
 * A size-byte block at the top of the usable range [base, end), 4 KiB
 * aligned, and within one even-numbered megabyte: bit 20 of every address
 * in it is 0, so it reads the same whether the A20 gate is open or not
 * (a boot loader or DOS may close it again).  0 if it does not fit.
 */
static uint32_t carve(uint32_t base, uint32_t end, uint32_t size)
{
	uint32_t top = end & ~(PAGE - 1), start, even_end;

	if (size >= ONE_MIB)
		return 0;
	if (base < ONE_MIB)
		base = ONE_MIB;
	if (top < base || top - base < size)
		return 0;
	start = (top - size) & ~(PAGE - 1);
	even_end = (start & ~(2 * ONE_MIB - 1)) + ONE_MIB;
	if (start + size > even_end)
		start = (even_end - size) & ~(PAGE - 1);
	return start >= base ? start : 0;
}

/*
 * Take size bytes of extended memory for the NIC's rings and buffers, from
 * the top of the highest usable E820 range below 4 GiB (as iPXE places
 * itself: boot loaders put the kernel at 1 MiB and take memory for the
 * initrd from the map, which our INT 15h hook then leaves it out of).
 * Called before that hook is installed, so the map is the firmware's
 * (and the PXE stack's, which hides its own memory).  From the block to
 * the end of its range is hidden: at most 1 MiB more than size.
 * Returns the block's linear address, 0 if there is none.  A second block
 * (the NIC's first, then the stub's image) goes right below the first, in
 * the same range, and the hidden range grows down to it.
 */
static uint32_t taken_range_base;

uint32_t ext_memory_take(uint32_t size)
{
	struct e820_entry e;
	struct bregs r;
	uint32_t best = 0, best_end = 0, best_base = 0, start, next = 0;
	unsigned n;

	if (ext_hidden_start) {
		start = carve(taken_range_base, ext_hidden_start, size);
		if (start)
			ext_hidden_start = start;
		return start;
	}

	for (n = 0; n < E820_MAX_ENTRIES; n++) {
		memset(&e, 0, sizeof(e));
		memset(&r, 0, sizeof(r));
		r.eax = 0xe820;
		r.ebx = next;
		r.ecx = sizeof(e);
		r.edx = SMAP;
		r.es = stub_seg;
		r.edi = (uint16_t)(uintptr_t)&e;
		bios_int(0x15, &r);
		if ((r.flags & FLAG_CF) || r.eax != SMAP)
			break;
		/* Only ranges that end below 4 GiB: the hook keeps an entry's
		 * part below what it hides, and would lose what lies above. */
		if (e.type == E820_RAM && !(e.base >> 32) && e.size &&
		    e.size < 0x100000000ull - e.base) {
			start = carve((uint32_t)e.base, (uint32_t)(e.base + e.size), size);
			if (start > best) {
				best = start;
				best_base = (uint32_t)e.base;
				best_end = (uint32_t)(e.base + e.size);
			}
		}
		next = r.ebx;
		if (!next)
			break;
	}
	if (!best)
		return 0;
	ext_hidden_start = best;
	ext_hidden_end = best_end;
	taken_range_base = best_base;
	return best;
}

/*
 * One line on the console with every range the stub writes after the boot
 * sector starts (tests/t-bios-memory.sh reads it), and a warning if the
 * resident part had to go below 0x80000 into what boot loaders use.
 */
void memory_report(void)
{
	struct res_hdr *h = (struct res_hdr *)res_blob;
	uint32_t base = res_lin, end = hidden_end;
	uint32_t stack = base + h->bounce_off, nic_at, nic_size;
	uint32_t image = h->image_lin, image_end = image + (uint16_t)(uintptr_t)_resident_end;

	con_printf("netdisk: memory: resident %x-%x (%u KiB, stack %x-%x), image %x-%x (%u KiB)",
		   base, end - 1, (end - base + 1023) / 1024, stack - RES_STACK, stack - 1, image,
		   image_end - 1, (image_end - image + 1023) / 1024);
	if (nic_memory(&nic_at, &nic_size))
		con_printf(", NIC rings and buffers %x-%x (%u KiB)", nic_at, nic_at + nic_size - 1,
			   (nic_size + 1023) / 1024);
	else
		con_printf(", no NIC memory of its own");
	if (nic_group_memory(&nic_at, &nic_size))
		con_printf(", group cache %x-%x", nic_at, nic_at + nic_size - 1);
	con_printf(", hidden %x-%x\n", ext_hidden_start, ext_hidden_end - 1);
	if (base < LOW_LIMIT)
		con_printf("netdisk: WARNING: only %u KiB of base memory: the stub is at %x, below 80000,\n"
			   "netdisk: WARNING: where boot loaders (GRUB: 70000-7ffff) may overwrite it\n",
			   (uint32_t)base_kb_before, base);
}
