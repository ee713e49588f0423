/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Building an iBFT (include/netdisk/ibft.h) for a firmware stub's session: netdiskd answers ND_OP_IBFT with it. */
#ifndef NDIBFT_H
#define NDIBFT_H

#include <stddef.h>
#include <stdint.h>
#include "netdisk/proto.h"

/* Everything a table says.  Strings are NUL-terminated; NULL or "" = none. */
struct nd_ibft_facts {
	const struct nd_ibft_req *nic; /* the stub's NIC facts (wire order); NULL: sizing only */
	const char *initiator;         /* the initiator's iSCSI name (required) */
	const char *target;            /* the target's iSCSI name (required) */
	uint8_t target_ip[4];          /* network order */
	uint16_t target_port;
	const char *chap_user, *chap_secret;    /* one-way CHAP: both or neither */
	const char *rchap_user, *rchap_secret;  /* mutual CHAP: both or neither */
	const char *hostname;          /* the NIC's host name, optional */
};

/*
 * Build the table into out (cap bytes; out may be NULL to learn the size):
 * header, control, initiator, NIC and target structures, each on an 8-byte
 * boundary, then the strings; sealed with its checksum.  Returns its length,
 * or -1 if a required name is missing or the table would exceed
 * ND_IBFT_MAX (or cap, when out is given).
 */
int nd_ibft_build(const struct nd_ibft_facts *f, uint8_t *out, size_t cap);

#endif /* NDIBFT_H */
