/* SPDX-License-Identifier: GPL-2.0-or-later */
/* libFuzzer harness: the site-key authenticator of ATTACH (server/auth.c) and key files (common/key.c). */

#include <gnutls/crypto.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "netdiskd.h"

/*
 * The input's first byte switches: bit 0 parses the rest as a key file;
 * bit 1 sends from a second address; bit 2 puts the magic, the site key's
 * id and the current challenge in, and bit 3 a right HMAC too, so the
 * fuzzer reaches every outcome.  Whatever the bytes, auth_check must accept
 * only a datagram whose HMAC the site or admin key made, over a fresh
 * challenge for the address it came from: the harness aborts otherwise.
 */
static struct server srv;
static uint8_t site[32], admin[32];
static struct sockaddr_in one = { .sin_family = AF_INET, .sin_port = 4242 };
static struct sockaddr_in two = { .sin_family = AF_INET, .sin_port = 4343 };

static void key_file(char *path, uint8_t key[32], uint8_t fill)
{
	int fd = mkstemp(path);
	unsigned i;

	for (i = 0; i < 32; i++)
		key[i] = (uint8_t)(fill + i);
	if (fd < 0 || dprintf(fd, "%064x", 0) < 0)
		abort();
	lseek(fd, 0, SEEK_SET);
	for (i = 0; i < 32; i++)
		dprintf(fd, "%02x", key[i]);
	close(fd);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	char err[256];

	(void)argc, (void)argv;
	nd_log_init("fuzz", ND_LOG_ERROR + 1, ND_LOG_TEXT);
	config_defaults(&srv.cfg);
	snprintf(srv.cfg.site_key_file, PATH_MAX, "/tmp/netdisk-fuzz-site.XXXXXX");
	snprintf(srv.cfg.admin_key_file, PATH_MAX, "/tmp/netdisk-fuzz-admin.XXXXXX");
	key_file(srv.cfg.site_key_file, site, 1);
	key_file(srv.cfg.admin_key_file, admin, 101);
	one.sin_addr.s_addr = htonl(0x7f000001);
	two.sin_addr.s_addr = htonl(0x7f000002);
	if (auth_init(&srv, err, sizeof(err)) < 0) {
		fprintf(stderr, "fuzz-auth: %s\n", err);
		abort();
	}
	unlink(srv.cfg.site_key_file);
	unlink(srv.cfg.admin_key_file);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t pkt[ND_HDR_SIZE + ND_ATTACH_REQ_LEN] = { 0 }, challenge[16], mac[32], id[32];
	struct nd_auth_trailer *t = (struct nd_auth_trailer *)(pkt + ND_HDR_SIZE + ND_AUTH_OFFSET);
	const struct sockaddr *from;
	const char *why = NULL;
	int rc, signed_right;

	if (size < 1)
		return 0;
	if (data[0] & 1) {
		uint8_t key[ND_KEYFILE_LEN];
		char w[160];

		nd_key_parse((const char *)data + 1, size - 1, key, w, sizeof(w));
		return 0;
	}
	from = (const struct sockaddr *)(data[0] & 2 ? &two : &one);
	memcpy(pkt, data + 1, size - 1 < sizeof(pkt) ? size - 1 : sizeof(pkt));
	if (data[0] & 4) {
		/* What a keyed client sends once challenged: learn the challenge. */
		nd_put32(t->magic, ND_AUTH_MAGIC);
		gnutls_hash_fast(GNUTLS_DIG_SHA256, site, 32, id);
		memcpy(t->key_id, id, 4);
		memset(((struct nd_hdr *)pkt)->token, 0, 16);
		auth_check(&srv, pkt, from, challenge, &why);
		memcpy(((struct nd_hdr *)pkt)->token, challenge, 16);
		if (data[0] & 8)
			gnutls_hmac_fast(GNUTLS_MAC_SHA256, site, 32, pkt, ND_AUTH_SIGNED, t->hmac);
	}
	gnutls_hmac_fast(GNUTLS_MAC_SHA256, site, 32, pkt, ND_AUTH_SIGNED, mac);
	signed_right = !memcmp(mac, t->hmac, 32);
	gnutls_hmac_fast(GNUTLS_MAC_SHA256, admin, 32, pkt, ND_AUTH_SIGNED, mac);
	signed_right |= !memcmp(mac, t->hmac, 32);
	rc = auth_check(&srv, pkt, from, challenge, &why);
	if (rc > 0 && !signed_right)
		abort(); /* accepted without the key */
	if ((data[0] & 12) == 12 && rc != AUTH_SITE)
		abort(); /* a right one refused (a turned epoch still takes the last one) */
	if (rc <= 0)
		auth_log_refusal(&srv, from, pkt + ND_HDR_SIZE, why);
	return 0;
}
