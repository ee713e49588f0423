/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The iSCSI Boot Firmware Table's layout (iBFT revision 1), as netdiskd builds it for the stubs (freestanding). */
#ifndef NETDISK_IBFT_H
#define NETDISK_IBFT_H

/*
 * The table a firmware leaves so that an OS's iSCSI initiator (Linux's
 * iscsi_ibft + open-iscsi, Windows) logs in to its boot disk: an ACPI-style
 * header, a control structure holding the offsets of the others, and one
 * initiator, NIC and target structure, then their strings.  Every
 * multi-byte field is little-endian (ACPI's order, unlike the rest of the
 * netdisk protocol); offsets count from the table's first byte; IP addresses
 * are 16 bytes, IPv4 mapped as ::ffff:a.b.c.d; strings are NUL-terminated
 * and their lengths leave the NUL out.  All bytes sum to 0 (mod 256).
 *
 * netdiskd builds it (common/ibft.c), the stubs only copy it: the BIOS stub
 * 16-byte aligned in its E820-reserved base memory (the OS scans
 * 0x80000-0xFFFFF), the UEFI stub as an ACPI table.  docs/handoff.md.
 */

#include <stdint.h>

#define ND_IBFT_SIGNATURE "iBFT"
#define ND_IBFT_OEM_ID "NETDSK"
#define ND_IBFT_OEM_TABLE_ID "NETDISK "
#define ND_IBFT_REVISION 1

/* Structure ids (the first byte of each structure's header). */
enum nd_ibft_id {
	ND_IBFT_ID_CONTROL = 1,
	ND_IBFT_ID_INITIATOR = 2,
	ND_IBFT_ID_NIC = 3,
	ND_IBFT_ID_TARGET = 4,
};

/* Structure header flags. */
#define ND_IBFT_FL_VALID 0x01     /* the structure is in use */
#define ND_IBFT_FL_SELECTED 0x02  /* the firmware booted through it */

#define ND_IBFT_ORIGIN_DHCP 3     /* NIC .origin: the address came from DHCP */
#define ND_IBFT_CHAP_NONE 0       /* target .chap_type */
#define ND_IBFT_CHAP_ONE_WAY 1
#define ND_IBFT_CHAP_MUTUAL 2

/* The table header: ACPI's 36 bytes, then 12 reserved. */
struct nd_ibft_header {
	char signature[4];       /* "iBFT" */
	uint8_t length[4];       /* the whole table, strings included */
	uint8_t revision;        /* 1 */
	uint8_t checksum;        /* makes every byte of the table sum to 0 */
	char oem_id[6];
	char oem_table_id[8];
	uint8_t reserved[24];
} __attribute__((packed));

/* The header every structure starts with. */
struct nd_ibft_shdr {
	uint8_t id;              /* enum nd_ibft_id */
	uint8_t version;         /* 1 */
	uint8_t length[2];       /* the structure's size, as below */
	uint8_t index;           /* 0: the first of its kind */
	uint8_t flags;           /* ND_IBFT_FL_* */
} __attribute__((packed));

struct nd_ibft_control {
	struct nd_ibft_shdr hdr;
	uint8_t extensions[2];
	uint8_t initiator_off[2];
	uint8_t nic0_off[2];
	uint8_t tgt0_off[2];
	uint8_t nic1_off[2];     /* 0: none */
	uint8_t tgt1_off[2];     /* 0: none */
} __attribute__((packed));

struct nd_ibft_initiator {
	struct nd_ibft_shdr hdr;
	uint8_t isns[16];
	uint8_t slp[16];
	uint8_t radius1[16];
	uint8_t radius2[16];
	uint8_t name_len[2];     /* the initiator's iSCSI name */
	uint8_t name_off[2];
} __attribute__((packed));

struct nd_ibft_nic {
	struct nd_ibft_shdr hdr;
	uint8_t ip[16];
	uint8_t prefix;          /* subnet prefix length */
	uint8_t origin;          /* ND_IBFT_ORIGIN_* */
	uint8_t gateway[16];
	uint8_t dns1[16];
	uint8_t dns2[16];
	uint8_t dhcp[16];
	uint8_t vlan[2];
	uint8_t mac[6];
	uint8_t pci_bdf[2];      /* bus << 8 | device << 3 | function */
	uint8_t hostname_len[2];
	uint8_t hostname_off[2]; /* 0: none */
} __attribute__((packed));

struct nd_ibft_target {
	struct nd_ibft_shdr hdr;
	uint8_t ip[16];
	uint8_t port[2];
	uint8_t lun[8];          /* SAM LUN, 0 */
	uint8_t chap_type;       /* ND_IBFT_CHAP_* */
	uint8_t nic_assoc;       /* index of the NIC structure to use */
	uint8_t name_len[2];     /* the target's iSCSI name */
	uint8_t name_off[2];
	uint8_t chap_name_len[2];
	uint8_t chap_name_off[2];
	uint8_t chap_secret_len[2];
	uint8_t chap_secret_off[2];
	uint8_t rchap_name_len[2];  /* mutual CHAP: the name the target answers with */
	uint8_t rchap_name_off[2];
	uint8_t rchap_secret_len[2];
	uint8_t rchap_secret_off[2];
} __attribute__((packed));

_Static_assert(sizeof(struct nd_ibft_header) == 48, "iBFT header is 48 bytes");
_Static_assert(sizeof(struct nd_ibft_control) == 18, "iBFT control is 18 bytes");
_Static_assert(sizeof(struct nd_ibft_initiator) == 74, "iBFT initiator is 74 bytes");
_Static_assert(sizeof(struct nd_ibft_nic) == 102, "iBFT NIC is 102 bytes");
_Static_assert(sizeof(struct nd_ibft_target) == 54, "iBFT target is 54 bytes");

/* Little-endian accessors for the iBFT's fields. */
static inline void nd_le16_put(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

static inline uint16_t nd_le16_get(const uint8_t *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

#endif /* NETDISK_IBFT_H */
