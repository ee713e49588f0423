/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The boot configuration block inside netdisk.pxe and netdisk.efi, patched by `netdisk patch`. */
#ifndef NETDISK_BOOTCFG_H
#define NETDISK_BOOTCFG_H

/*
 * Each firmware stub carries one of these in its initialised data, found by
 * its magic.  `netdisk patch STUB --server IP[:PORT] --image NAME ...` rewrites
 * it in the binary, so an admin can point a stub at a server that is not the
 * DHCP next-server, or at a non-default port, without rebuilding.
 * Multi-byte fields are big-endian, as on the wire (proto.h accessors).
 */

#include <stdint.h>

#define ND_BOOTCFG_MAGIC "NDBOOTCF" /* 8 bytes, no NUL stored */
#define ND_BOOTCFG_VERSION 1

/* flags */
#define ND_BOOTCFG_VERBOSE 0x01 /* print every request on screen/serial */
#define ND_BOOTCFG_FIRMWARE_NET 0x02 /* use the firmware's network API (PXE, SNP/UDP4)
				      * even for a NIC the stub has a driver of its own for */
#define ND_BOOTCFG_KEYED 0x04 /* site_key holds the site key: ATTACH is signed with it */

struct nd_bootcfg {
	uint8_t magic[8];          /* ND_BOOTCFG_MAGIC */
	uint8_t version;           /* ND_BOOTCFG_VERSION */
	uint8_t flags;             /* ND_BOOTCFG_* */
	uint8_t server_port[2];    /* 0 = ND_DEFAULT_PORT */
	uint8_t server_ip[4];      /* IPv4; 0.0.0.0 = the DHCP next-server (siaddr) */
	uint8_t attach_timeout[2]; /* seconds to keep trying at start; 0 = 60 */
	uint8_t reserved0[2];
	char image[64];            /* image to request; empty = the server decides */
	char boot_path[128];       /* UEFI loader on the disk; empty = \EFI\BOOT\BOOTX64.EFI */
	uint8_t site_key[32];      /* with ND_BOOTCFG_KEYED: the site key (netdisk patch --key) */
	uint8_t reserved1[12];
} __attribute__((packed));

_Static_assert(sizeof(struct nd_bootcfg) == 256, "boot config block is 256 bytes");

#endif /* NETDISK_BOOTCFG_H */
