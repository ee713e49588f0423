/* SPDX-License-Identifier: GPL-2.0-or-later */
/* PCI expansion ROM images (netdisk-virtio.rom): check the header, PCIR and $PnP structures, set the sizes and fix the checksums. */
#ifndef NDOPTROM_H
#define NDOPTROM_H

#include <stddef.h>
#include <stdint.h>

#define ND_ROM_BLOCK 512
#define ND_ROM_MAX (64 * 1024) /* one real-mode segment, and what BIOSes shadow for one ROM */

/* What nd_optrom_check found in a valid image. */
struct nd_optrom_info {
	size_t size;             /* bytes the header's size field covers */
	uint16_t vendor, device; /* PCIR */
	uint32_t class_code;     /* PCIR: base class << 16 | sub-class << 8 | prog-if */
	uint8_t code_type;       /* PCIR: 0 = x86 BIOS */
	uint8_t last_image;      /* PCIR indicator bit 7 */
	uint16_t init;           /* where the jump at offset 3 goes */
	uint16_t bev;            /* $PnP boot entry vector */
	char product[64];        /* $PnP product name */
};

/* Whether data looks like an option ROM at all (55 AA): then it must pass
 * nd_optrom_check. */
int nd_optrom_is_rom(const uint8_t *data, size_t len);

/*
 * Check a whole image of len bytes: 55 AA; a size field that covers exactly
 * len bytes, at most ND_ROM_MAX; a jump at the init entry (offset 3) that
 * lands inside; a PCIR structure (aligned, inside, code type x86, the
 * last-image flag, its length equal to the header's); a $PnP header
 * (aligned, inside, its own checksum right) with a BEV and a product name
 * inside; all bytes summing to 0.  0 and *info, or -1 with the first
 * problem in err.
 */
int nd_optrom_check(const uint8_t *data, size_t len, struct nd_optrom_info *info, char *err,
		    size_t errlen);

/*
 * The link output of len bytes made into an image in buf (size bytes, len
 * <= size): zero-padded to whole 512-byte blocks with room for the
 * checksum in the last byte, both size fields set, the $PnP checksum and
 * the image checksum fixed.  Its new length, or 0 with err if it does not
 * fit size or ND_ROM_MAX or has no header to fill in.  Then nd_optrom_check.
 */
size_t nd_optrom_fix(uint8_t *buf, size_t len, size_t size, char *err, size_t errlen);

/* After a change inside an image (netdisk patch): set its last byte so all
 * bytes sum to 0 again. */
void nd_optrom_resum(uint8_t *data, size_t len);

#endif /* NDOPTROM_H */
