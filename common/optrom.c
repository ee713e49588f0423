/* SPDX-License-Identifier: GPL-2.0-or-later */
/* PCI expansion ROM images (netdisk-virtio.rom): check the header, PCIR and $PnP structures, set the sizes and fix the checksums. */

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include "optrom.h"

#define OFF_SIZE 2
#define OFF_INIT 3
#define OFF_PCIR 0x18
#define OFF_PNP 0x1a
#define PCIR_ILEN 0x10
#define PNP_LEN 32

static unsigned get16(const uint8_t *p)
{
	return p[0] | (unsigned)p[1] << 8;
}

static uint8_t sum(const uint8_t *p, size_t n)
{
	uint8_t s = 0;

	while (n--)
		s = (uint8_t)(s + *p++);
	return s;
}

static int bad(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return -1;
}

int nd_optrom_is_rom(const uint8_t *data, size_t len)
{
	return len >= 2 && data[0] == 0x55 && data[1] == 0xaa;
}

/* Where the init entry's jump goes, or -1 if offset 3 holds no jump. */
static long init_target(const uint8_t *d)
{
	if (d[OFF_INIT] == 0xeb)
		return OFF_INIT + 2 + (int8_t)d[OFF_INIT + 1];
	if (d[OFF_INIT] == 0xe9)
		return (OFF_INIT + 3 + (long)get16(d + OFF_INIT + 1)) & 0xffff;
	return -1;
}

int nd_optrom_check(const uint8_t *d, size_t len, struct nd_optrom_info *info, char *err,
		    size_t errlen)
{
	size_t pcir, pnp, name, n;
	long init;

	memset(info, 0, sizeof(*info));
	if (len < ND_ROM_BLOCK || !nd_optrom_is_rom(d, len))
		return bad(err, errlen, "no option ROM signature 55 AA (or shorter than 512 bytes)");
	info->size = (size_t)d[OFF_SIZE] * ND_ROM_BLOCK;
	if (info->size != len)
		return bad(err, errlen, "size field says %zu bytes, the image has %zu", info->size, len);
	if (len > ND_ROM_MAX)
		return bad(err, errlen, "%zu bytes: more than the %u an option ROM may take here", len,
			   ND_ROM_MAX);
	init = init_target(d);
	if (init < 0 || (size_t)init >= len)
		return bad(err, errlen, "no jump to the init code at offset 3");
	info->init = (uint16_t)init;
	pcir = get16(d + OFF_PCIR);
	if (pcir & 3 || pcir + 0x18 > len || memcmp(d + pcir, "PCIR", 4))
		return bad(err, errlen, "no PCIR structure at offset %zx", pcir);
	if (get16(d + pcir + 0x0a) < 0x18 || pcir + get16(d + pcir + 0x0a) > len)
		return bad(err, errlen, "the PCIR structure's length runs past the image");
	info->vendor = (uint16_t)get16(d + pcir + 4);
	info->device = (uint16_t)get16(d + pcir + 6);
	info->class_code = (uint32_t)d[pcir + 0x0f] << 16 | (uint32_t)d[pcir + 0x0e] << 8 |
			   d[pcir + 0x0d];
	info->code_type = d[pcir + 0x14];
	info->last_image = (d[pcir + 0x15] & 0x80) != 0;
	if ((size_t)get16(d + pcir + PCIR_ILEN) * ND_ROM_BLOCK != len)
		return bad(err, errlen, "PCIR image length %u blocks, the header says %u",
			   get16(d + pcir + PCIR_ILEN), d[OFF_SIZE]);
	if (info->code_type != 0)
		return bad(err, errlen, "PCIR code type %u, not x86 BIOS (0)", info->code_type);
	if (!info->last_image)
		return bad(err, errlen, "PCIR indicator lacks the last-image flag");
	pnp = get16(d + OFF_PNP);
	if (!pnp || pnp & 15 || pnp + PNP_LEN > len || memcmp(d + pnp, "$PnP", 4))
		return bad(err, errlen, "no $PnP header at offset %zx", pnp);
	if (d[pnp + 5] * 16u < PNP_LEN || pnp + d[pnp + 5] * 16u > len)
		return bad(err, errlen, "the $PnP header's length runs past the image");
	if (sum(d + pnp, d[pnp + 5] * 16u))
		return bad(err, errlen, "the $PnP header's checksum is wrong");
	info->bev = (uint16_t)get16(d + pnp + 0x1a);
	if (!info->bev || info->bev >= len)
		return bad(err, errlen, "the $PnP header has no boot entry vector inside the image");
	name = get16(d + pnp + 0x10);
	if (!name || name >= len)
		return bad(err, errlen, "the $PnP header has no product name inside the image");
	for (n = 0; name + n < len && d[name + n]; n++)
		;
	if (name + n >= len || n >= sizeof(info->product))
		return bad(err, errlen, "the product name is not terminated inside the image");
	memcpy(info->product, d + name, n + 1);
	if (sum(d, len))
		return bad(err, errlen, "bytes sum to %02x, not 0: checksum wrong", sum(d, len));
	return 0;
}

void nd_optrom_resum(uint8_t *data, size_t len)
{
	data[len - 1] = 0;
	data[len - 1] = (uint8_t)-sum(data, len);
}

size_t nd_optrom_fix(uint8_t *buf, size_t len, size_t size, char *err, size_t errlen)
{
	size_t out = (len / ND_ROM_BLOCK + 1) * ND_ROM_BLOCK; /* room for the checksum */
	size_t pcir, pnp;

	if (len < 0x20 || !nd_optrom_is_rom(buf, len)) {
		bad(err, errlen, "no option ROM header (55 AA) at the start");
		return 0;
	}
	if (out > size || out > ND_ROM_MAX) {
		bad(err, errlen, "%zu bytes: more than the %u an option ROM may take here", out,
		    ND_ROM_MAX);
		return 0;
	}
	pcir = get16(buf + OFF_PCIR);
	pnp = get16(buf + OFF_PNP);
	if (pcir + 0x18 > len || pnp + PNP_LEN > len) {
		bad(err, errlen, "the PCIR or $PnP offset points past the image");
		return 0;
	}
	memset(buf + len, 0, out - len);
	buf[OFF_SIZE] = (uint8_t)(out / ND_ROM_BLOCK);
	buf[pcir + PCIR_ILEN] = (uint8_t)(out / ND_ROM_BLOCK);
	buf[pcir + PCIR_ILEN + 1] = (uint8_t)(out / ND_ROM_BLOCK >> 8);
	buf[pnp + 9] = 0;
	buf[pnp + 9] = (uint8_t)-sum(buf + pnp, PNP_LEN);
	nd_optrom_resum(buf, out);
	return out;
}
