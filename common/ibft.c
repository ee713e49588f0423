/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The iBFT builder: the table a firmware stub publishes so that the OS's iSCSI initiator takes its session over (docs/handoff.md). */
#include <string.h>
#include "ibft.h"
#include "netdisk/ibft.h"

/* Where the fixed structures go: each on an 8-byte boundary after the header. */
#define ALIGN8(x) (((x) + 7u) & ~7u)
#define OFF_CONTROL ((unsigned)sizeof(struct nd_ibft_header))
#define OFF_INITIATOR ALIGN8(OFF_CONTROL + (unsigned)sizeof(struct nd_ibft_control))
#define OFF_NIC ALIGN8(OFF_INITIATOR + (unsigned)sizeof(struct nd_ibft_initiator))
#define OFF_TARGET ALIGN8(OFF_NIC + (unsigned)sizeof(struct nd_ibft_nic))
#define OFF_STRINGS ALIGN8(OFF_TARGET + (unsigned)sizeof(struct nd_ibft_target))

/* The table being written: out is NULL while only sizing it. */
struct builder {
	uint8_t *out;
	unsigned len;
};

static size_t slen(const char *s)
{
	return s ? strlen(s) : 0;
}

/* Fill a structure header. */
static void shdr(struct nd_ibft_shdr *h, uint8_t id, unsigned size)
{
	h->id = id;
	h->version = 1;
	nd_le16_put(h->length, (uint16_t)size);
	h->index = 0;
	h->flags = ND_IBFT_FL_VALID | ND_IBFT_FL_SELECTED;
}

/* An IPv4 address (network order) as the iBFT's 16 bytes: ::ffff:a.b.c.d,
 * and 0.0.0.0 as all zeros (no address). */
static void ip16(uint8_t dst[16], const uint8_t ip[4])
{
	memset(dst, 0, 16);
	if (!(ip[0] | ip[1] | ip[2] | ip[3]))
		return;
	dst[10] = dst[11] = 0xff;
	memcpy(dst + 12, ip, 4);
}

/* Append string s (with its NUL) and set its length and offset fields;
 * nothing for an empty one. */
static void string(struct builder *b, const char *s, uint8_t len_field[2], uint8_t off_field[2])
{
	size_t n = slen(s);

	if (!n)
		return;
	if (b->out && b->len + n + 1 <= ND_IBFT_MAX) {
		memcpy(b->out + b->len, s, n + 1);
		nd_le16_put(len_field, (uint16_t)n);
		nd_le16_put(off_field, (uint16_t)b->len);
	}
	b->len += (unsigned)n + 1;
}

/* The prefix length of a netmask (its leading one bits). */
static uint8_t prefix_of(const uint8_t mask[4])
{
	uint8_t n = 0;
	int i, bit;

	for (i = 0; i < 4; i++)
		for (bit = 7; bit >= 0 && (mask[i] >> bit & 1); bit--)
			n++;
	return n;
}

/* The structures' strings, in one place so that sizing and building agree. */
static void strings(struct builder *b, const struct nd_ibft_facts *f, struct nd_ibft_initiator *ini,
		    struct nd_ibft_nic *nic, struct nd_ibft_target *t)
{
	string(b, f->initiator, ini->name_len, ini->name_off);
	string(b, f->hostname, nic->hostname_len, nic->hostname_off);
	string(b, f->target, t->name_len, t->name_off);
	string(b, f->chap_user, t->chap_name_len, t->chap_name_off);
	string(b, f->chap_secret, t->chap_secret_len, t->chap_secret_off);
	string(b, f->rchap_user, t->rchap_name_len, t->rchap_name_off);
	string(b, f->rchap_secret, t->rchap_secret_len, t->rchap_secret_off);
}

int nd_ibft_build(const struct nd_ibft_facts *f, uint8_t *out, size_t cap)
{
	struct builder b = { NULL, OFF_STRINGS };
	struct nd_ibft_initiator scratch_ini;
	struct nd_ibft_nic scratch_nic;
	struct nd_ibft_target scratch_t;
	struct nd_ibft_header *h;
	struct nd_ibft_control *ctl;
	struct nd_ibft_initiator *ini;
	struct nd_ibft_nic *nic;
	struct nd_ibft_target *t;
	const struct nd_ibft_req *q = f->nic;
	uint8_t sum = 0;
	unsigned i;

	if (!slen(f->initiator) || !slen(f->target) || !!slen(f->chap_user) != !!slen(f->chap_secret) ||
	    !!slen(f->rchap_user) != !!slen(f->rchap_secret) ||
	    (slen(f->rchap_secret) && !slen(f->chap_secret)))
		return -1;
	/* Sizing first: the strings' total decides whether the table fits. */
	strings(&b, f, &scratch_ini, &scratch_nic, &scratch_t);
	if (b.len > ND_IBFT_MAX || (out && (b.len > cap || !q)))
		return -1;
	if (!out)
		return (int)b.len;

	memset(out, 0, b.len);
	b.out = out;
	b.len = OFF_STRINGS;
	h = (struct nd_ibft_header *)out;
	ctl = (struct nd_ibft_control *)(out + OFF_CONTROL);
	ini = (struct nd_ibft_initiator *)(out + OFF_INITIATOR);
	nic = (struct nd_ibft_nic *)(out + OFF_NIC);
	t = (struct nd_ibft_target *)(out + OFF_TARGET);

	memcpy(h->signature, ND_IBFT_SIGNATURE, 4);
	h->revision = ND_IBFT_REVISION;
	memcpy(h->oem_id, ND_IBFT_OEM_ID, 6);
	memcpy(h->oem_table_id, ND_IBFT_OEM_TABLE_ID, 8);

	shdr(&ctl->hdr, ND_IBFT_ID_CONTROL, sizeof(*ctl));
	ctl->hdr.flags = 0; /* the control structure has no flags */
	nd_le16_put(ctl->initiator_off, OFF_INITIATOR);
	nd_le16_put(ctl->nic0_off, OFF_NIC);
	nd_le16_put(ctl->tgt0_off, OFF_TARGET);

	shdr(&ini->hdr, ND_IBFT_ID_INITIATOR, sizeof(*ini));

	shdr(&nic->hdr, ND_IBFT_ID_NIC, sizeof(*nic));
	ip16(nic->ip, q->ip);
	nic->prefix = prefix_of(q->netmask);
	nic->origin = ND_IBFT_ORIGIN_DHCP;
	ip16(nic->gateway, q->gateway);
	ip16(nic->dns1, q->dns);
	ip16(nic->dhcp, q->dhcp);
	memcpy(nic->mac, q->mac, 6);
	nd_le16_put(nic->pci_bdf, nd_get16(q->pci_bdf));

	shdr(&t->hdr, ND_IBFT_ID_TARGET, sizeof(*t));
	ip16(t->ip, f->target_ip);
	nd_le16_put(t->port, f->target_port);
	t->chap_type = slen(f->rchap_secret) ? ND_IBFT_CHAP_MUTUAL
		       : slen(f->chap_secret) ? ND_IBFT_CHAP_ONE_WAY : ND_IBFT_CHAP_NONE;
	t->nic_assoc = 0;

	strings(&b, f, ini, nic, t);
	h->length[0] = (uint8_t)b.len;
	h->length[1] = (uint8_t)(b.len >> 8);
	for (i = 0; i < b.len; i++)
		sum = (uint8_t)(sum + out[i]);
	h->checksum = (uint8_t)-sum;
	return (int)b.len;
}
