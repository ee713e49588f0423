/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The boot table: what a firmware stub tells the OS about its netdisk session (freestanding). */
#ifndef NETDISK_BOOTTABLE_H
#define NETDISK_BOOTTABLE_H

/*
 * Both stubs publish one of these (docs/handoff.md) so the OS can take over
 * the same session: the BIOS stub 16-byte aligned in the base memory it
 * reserves (E820-reserved, readable through /dev/mem), the UEFI stub as an
 * ACPI table (/sys/firmware/acpi/tables/NDSK).
 *
 * It starts with a standard ACPI table header, whose fields are little-endian
 * as ACPI requires; every netdisk field after it is big-endian like the rest of
 * the protocol (proto.h accessors).  All bytes of the table sum to zero.
 */

#include <stdint.h>

#define ND_BT_SIGNATURE "NDSK"     /* ACPI signature, 4 bytes */
#define ND_BT_OEM_ID "NETDSK"      /* 6 bytes */
#define ND_BT_OEM_TABLE_ID "NETDISK " /* 8 bytes */
#define ND_BT_REVISION 1           /* ACPI header revision */
#define ND_BT_VERSION 1            /* netdisk body version */

/* Who published it (.firmware). */
#define ND_BT_FW_BIOS 1
#define ND_BT_FW_EFI 2
#define ND_BT_FLAG_PERSONALIZED 0x01 /* the server personalized the session (handoff) */

struct nd_boot_table {
	/* ACPI header, little-endian. */
	char signature[4];          /* "NDSK" */
	uint8_t length[4];          /* sizeof(struct nd_boot_table), little-endian */
	uint8_t revision;           /* ND_BT_REVISION */
	uint8_t checksum;           /* makes all bytes sum to 0 */
	char oem_id[6];
	char oem_table_id[8];
	uint8_t oem_revision[4];
	uint8_t creator_id[4];
	uint8_t creator_revision[4];
	/* netdisk body, big-endian. */
	uint8_t version;            /* ND_BT_VERSION */
	uint8_t firmware;           /* ND_BT_FW_* */
	uint8_t mode;               /* enum nd_mode of the session */
	uint8_t flags;              /* ND_BT_FLAG_* */
	uint8_t mac[6];             /* the NIC the stub booted from */
	uint8_t reserved0[2];
	uint8_t client_ip[4];       /* IPv4, network order */
	uint8_t netmask[4];
	uint8_t gateway[4];         /* 0.0.0.0 = none */
	uint8_t server_ip[4];
	uint8_t udp_port[2];        /* netdisk protocol */
	uint8_t nbd_port[2];        /* NBD on TCP, for the OS */
	uint8_t token[16];          /* the session to continue (export "session:HEX") */
	uint8_t sectors[8];         /* disk size */
	char image[64];             /* image name, NUL-padded */
	uint8_t handoff[4];         /* the ATTACH reply's handoff word (ND_HANDOFF_*) */
	uint8_t reserved1[32];
} __attribute__((packed));

_Static_assert(sizeof(struct nd_boot_table) == 192, "boot table is 192 bytes");

/* Set .checksum so that every byte of the table sums to zero (mod 256). */
static inline void nd_bt_seal(struct nd_boot_table *t)
{
	const uint8_t *p = (const uint8_t *)t;
	uint8_t sum = 0;
	unsigned i;

	t->checksum = 0;
	for (i = 0; i < sizeof(*t); i++)
		sum = (uint8_t)(sum + p[i]);
	t->checksum = (uint8_t)(0 - sum);
}

/* 1 if `t` (len bytes available) is a well-formed boot table. */
static inline int nd_bt_valid(const struct nd_boot_table *t, unsigned long len)
{
	const uint8_t *p = (const uint8_t *)t;
	uint8_t sum = 0;
	unsigned i;

	if (len < sizeof(*t) || p[0] != 'N' || p[1] != 'D' || p[2] != 'S' || p[3] != 'K')
		return 0;
	if ((t->length[0] | (t->length[1] << 8)) != sizeof(*t) || t->length[2] || t->length[3] ||
	    t->version != ND_BT_VERSION)
		return 0;
	for (i = 0; i < sizeof(*t); i++)
		sum = (uint8_t)(sum + p[i]);
	return sum == 0;
}

#endif /* NETDISK_BOOTTABLE_H */
