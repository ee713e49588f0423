/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Unit tests of the client core's SHA-256/HMAC (client/sha256.c) against RFC 4231 and GnuTLS, and key files. */

#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>
#include <stdio.h>
#include <string.h>
#include "ndcommon.h"
#include "sha256.h"
#include "unit.h"

static size_t unhex(const char *h, uint8_t *out)
{
	size_t n = 0;

	for (; h[0] && h[1]; h += 2)
		sscanf(h, "%2hhx", &out[n++]);
	return n;
}

/* 131 bytes of 0xaa: the key of RFC 4231 cases 6 and 7 (longer than a block) */
#define AA10 "aaaaaaaaaaaaaaaaaaaa"
#define KEY131 AA10 AA10 AA10 AA10 AA10 AA10 AA10 AA10 AA10 AA10 AA10 AA10 AA10 "aa"

/* RFC 4231 test cases 1-4, 6, 7 (5 truncates the output; nothing here does). */
static void rfc4231(void)
{
	static const struct {
		const char *key, *data, *mac;
	} v[] = {
		{ "0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b", "4869205468657265",
		  "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7" },
		{ "4a656665", "7768617420646f2079612077616e7420666f72206e6f7468696e673f",
		  "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843" },
		{ "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
		  "dddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddd"
		  "dddddddddddddddddddd",
		  "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe" },
		{ "0102030405060708090a0b0c0d0e0f10111213141516171819",
		  "cdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcd"
		  "cdcdcdcdcdcdcdcdcdcd",
		  "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b" },
		{ KEY131,
		  "54657374205573696e67204c6172676572205468616e20426c6f636b2d53697a65204b6579202d20"
		  "48617368204b6579204669727374",
		  "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54" },
		{ KEY131,
		  "5468697320697320612074657374207573696e672061206c6172676572207468616e20626c6f636b"
		  "2d73697a65206b657920616e642061206c6172676572207468616e20626c6f636b2d73697a652064"
		  "6174612e20546865206b6579206e6565647320746f20626520686173686564206265666f72652062"
		  "65696e6720757365642062792074686520484d414320616c676f726974686d2e",
		  "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2" },
	};
	uint8_t key[256], data[256], want[32], got[32];
	size_t i, ok = 0;

	for (i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		size_t kl = unhex(v[i].key, key), dl = unhex(v[i].data, data);

		unhex(v[i].mac, want);
		nd_hmac_sha256(key, kl, data, dl, got);
		if (!memcmp(got, want, 32))
			ok++;
		else
			check_that(0, "hmac-rfc4231", "test case %zu differs", i);
	}
	check_that(ok == sizeof(v) / sizeof(v[0]), "hmac-sha256-rfc4231-vectors", "%zu of %zu right",
		   ok, sizeof(v) / sizeof(v[0]));
}

/* Every length 0..300 (every padding case, multi-block), key lengths 0..130,
 * against GnuTLS's SHA-256 and HMAC, which the server uses. */
static void against_gnutls(void)
{
	uint8_t buf[300], key[130], a[32], b[32];
	struct nd_sha256 s;
	size_t n, bad = 0;

	for (n = 0; n < sizeof(buf); n++)
		buf[n] = (uint8_t)(n * 7 + 3);
	for (n = 0; n < sizeof(key); n++)
		key[n] = (uint8_t)(n * 13 + 1);
	for (n = 0; n <= sizeof(buf); n++) {
		nd_sha256_init(&s);
		nd_sha256_update(&s, buf, n / 3);
		nd_sha256_update(&s, buf + n / 3, n - n / 3); /* split updates too */
		nd_sha256_final(&s, a);
		gnutls_hash_fast(GNUTLS_DIG_SHA256, buf, n, b);
		bad += memcmp(a, b, 32) != 0;
	}
	check_that(!bad, "sha256-matches-gnutls", "%zu of 301 lengths differ", bad);
	for (n = 0, bad = 0; n <= sizeof(key); n++) {
		nd_hmac_sha256(key, n, buf, 176, a);
		gnutls_hmac_fast(GNUTLS_MAC_SHA256, key, n, buf, 176, b);
		bad += memcmp(a, b, 32) != 0;
	}
	check_that(!bad, "hmac-sha256-matches-gnutls", "%zu of 131 key lengths differ", bad);
}

static void key_files(void)
{
	static const char good[] = "00112233445566778899aabbccddeeff 00112233445566778899AABBCCDDEEFF\n";
	static const char *const bad[] = {
		"", "0011", "00112233445566778899aabbccddeeff00112233445566778899aabbccddeef",
		"00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff00",
		"00112233445566778899aabbccddeeff00112233445566778899aabbccddeefg",
	};
	uint8_t key[ND_KEYFILE_LEN];
	char why[160];
	size_t i, rejected = 0;

	check_that(nd_key_parse(good, sizeof(good) - 1, key, why, sizeof(why)) == 0 && key[0] == 0 &&
		   key[31] == 0xff, "key-parse-hex-with-spaces", "%s", why);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		rejected += nd_key_parse(bad[i], strlen(bad[i]), key, why, sizeof(why)) < 0;
	check_that(rejected == sizeof(bad) / sizeof(bad[0]), "key-parse-rejects-bad",
		   "%zu of %zu rejected", rejected, sizeof(bad) / sizeof(bad[0]));
}

void unit_crypto(void)
{
	rfc4231();
	against_gnutls();
	key_files();
}
