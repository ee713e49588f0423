/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * takeover = nbd|iscsi (docs/handoff.md): which way the OS takes a firmware
 * stub's session over, and for iSCSI the iBFT netdiskd builds for the stub
 * (ND_OP_IBFT, docs/protocol.md): the client's initiator name, the session's
 * target PREFIX:session:TOKEN at the iscsi-listen address, and the CHAP the
 * login to it will ask for.
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>
#include "netdiskd.h"
#include "iscsi.h"
#include "ibft.h"

int takeover_of(const struct config *c, const struct client_rule *r, const struct image *im)
{
	if (r && r->takeover)
		return r->takeover;
	if (im && im->takeover)
		return im->takeover;
	return c->takeover ? c->takeover : TAKEOVER_NBD;
}

const struct iscsi_chap *iscsi_chap_for(const struct client_rule *r, const struct image *im)
{
	if (r && r->chap.secret[0])
		return &r->chap;
	return im ? &im->chap : NULL;
}

/* The initiator name the iBFT gives a client: its iscsi-initiator, else
 * PREFIX:client:MAC (12 hex digits), unique per MAC. */
static void initiator_name(const struct config *c, const struct client_rule *r, const uint8_t mac[6],
			   char *out, size_t len)
{
	if (r && r->iscsi_initiator[0])
		snprintf(out, len, "%s", r->iscsi_initiator);
	else
		snprintf(out, len, "%s:client:%02x%02x%02x%02x%02x%02x", c->iscsi_prefix, mac[0],
			 mac[1], mac[2], mac[3], mac[4], mac[5]);
}

/* The strings of a table for this client and image (names into the caller's
 * buffers); the target name's token is hex of tok, or 32 zeros for sizing. */
static void facts_for(const struct config *c, const struct client_rule *r, const struct image *im,
		      const uint8_t mac[6], const uint8_t tok[16], char ini[256], char target[256],
		      struct nd_ibft_facts *f)
{
	const struct iscsi_chap *ch = iscsi_chap_for(r, im);
	int n = snprintf(target, 256, "%s:session:", c->iscsi_prefix);

	for (int i = 0; i < 16 && n + 2 < 256; i++, n += 2)
		snprintf(target + n, 3, "%02x", tok[i]);
	initiator_name(c, r, mac, ini, 256);
	memset(f, 0, sizeof(*f));
	f->initiator = ini;
	f->target = target;
	if (ch && ch->secret[0]) {
		f->chap_user = ch->user[0] ? ch->user : ini; /* the login checks a set name only */
		f->chap_secret = ch->secret;
		if (ch->target_secret[0]) {
			f->rchap_user = ch->target_user[0] ? ch->target_user : target;
			f->rchap_secret = ch->target_secret;
		}
	}
}

int ibft_for_session(struct server *s, const struct session *ss, const struct nd_ibft_req *q,
		     uint8_t *out, size_t cap, char *why, size_t whylen)
{
	const struct config *c = &s->cfg;
	const struct client_rule *r = config_client(&s->cfg, ss->mac);
	struct nd_ibft_facts f;
	char ini[256], target[256], host[128];
	unsigned port = ISCSI_DEFAULT_PORT;
	struct in_addr a;
	int n;

	if (takeover_of(c, r, ss->img) != TAKEOVER_ISCSI || !c->iscsi_listen[0]) {
		snprintf(why, whylen, "the session's takeover is not iscsi");
		return -1;
	}
	facts_for(c, r, ss->img, ss->mac, ss->token, ini, target, &f);
	f.nic = q;
	/* The target is where iscsi-listen binds; bound to every address or to
	 * loopback (reached through a NAT, e.g. QEMU's user network), the
	 * address the stub reached us at. */
	if (nd_split_hostport(c->iscsi_listen, host, sizeof(host), &port, ISCSI_DEFAULT_PORT) == 0 &&
	    inet_pton(AF_INET, host, &a) == 1 && a.s_addr != htonl(INADDR_ANY) &&
	    (ntohl(a.s_addr) >> 24) != 127)
		memcpy(f.target_ip, &a, 4);
	else
		memcpy(f.target_ip, q->server, 4);
	f.target_port = (uint16_t)port;
	n = nd_ibft_build(&f, out, cap);
	if (n < 0)
		snprintf(why, whylen, "the iBFT would exceed %d bytes", ND_IBFT_MAX);
	return n;
}

/* Check one client's (or an image's unlisted clients') table fits. */
static int check_one(const struct config *c, const struct client_rule *r, const struct image *im,
		     const char *who, char *err, size_t errlen)
{
	static const uint8_t zero[16];
	static const uint8_t mac[6];
	struct nd_ibft_facts f;
	char ini[256], target[256];
	int n;

	if (takeover_of(c, r, im) != TAKEOVER_ISCSI)
		return 0;
	if (!c->iscsi_listen[0]) {
		snprintf(err, errlen, "%s: takeover = iscsi needs the iSCSI target (iscsi-listen)", who);
		return -1;
	}
	facts_for(c, r, im, mac, zero, ini, target, &f);
	n = nd_ibft_build(&f, NULL, 0);
	if (n < 0) {
		snprintf(err, errlen, "%s: its iBFT (initiator name %zu bytes, target name %zu, "
			 "CHAP names and secrets) would exceed the %d bytes the stubs keep: "
			 "shorten iscsi-target-prefix, iscsi-initiator or the iscsi-chap-* values",
			 who, strlen(ini), strlen(target), ND_IBFT_MAX);
		return -1;
	}
	return 0;
}

int ibft_config_check(const struct config *c, char *err, size_t errlen)
{
	char who[NAME_MAX_LEN + 16], mac[18];
	int i;

	for (i = 0; i < c->nimages; i++) {
		snprintf(who, sizeof(who), "image '%s'", c->images[i].name);
		if (check_one(c, NULL, &c->images[i], who, err, errlen) < 0)
			return -1;
	}
	for (i = 0; i < c->nclients; i++) {
		const struct client_rule *r = &c->clients[i];
		const struct image *im = config_image((struct config *)c,
						      r->image[0] ? r->image : c->default_image);

		nd_mac_format(r->mac, mac);
		snprintf(who, sizeof(who), "client %s", mac);
		if (check_one(c, r, im, who, err, errlen) < 0)
			return -1;
	}
	return 0;
}
