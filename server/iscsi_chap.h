/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The CHAP settings of an iSCSI login (per client or per image in the config). */
#ifndef NETDISKD_ISCSI_CHAP_H
#define NETDISKD_ISCSI_CHAP_H

#define CHAP_NAME_MAX 223   /* bytes of a CHAP name (an IQN fits) */
#define CHAP_SECRET_MAX 255 /* bytes of a CHAP secret */
#define CHAP_SECRET_MIN 12  /* what RFC 7143 and the Windows initiator ask at least */

struct iscsi_chap {
	char user[CHAP_NAME_MAX + 1];          /* iscsi-chap-user: the initiator's CHAP name */
	char secret[CHAP_SECRET_MAX + 1];      /* iscsi-chap-secret; "" = no CHAP */
	char target_user[CHAP_NAME_MAX + 1];   /* iscsi-chap-target-user (mutual CHAP) */
	char target_secret[CHAP_SECRET_MAX + 1]; /* iscsi-chap-target-secret; "" = one-way */
};

#endif
