/* SPDX-License-Identifier: GPL-2.0-or-later */
/* SHA-256 (FIPS 180-4) and HMAC-SHA256 (RFC 2104), small and freestanding, for the site key. */

#include "sha256.h"

static const uint32_t K[64] = {
	0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
	0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
	0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
	0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
	0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
	0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
	0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
	0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
};

static uint32_t ror(uint32_t x, unsigned n)
{
	return (x >> n) | (x << (32 - n));
}

/* One 64-byte block into the state.  Written for size (the BIOS stub has
 * little room): a 16-word rolling schedule and the working variables in an
 * array that shifts down each round. */
static void compress(uint32_t h[8], const uint8_t *p)
{
	uint32_t w[16], v[8], t1, t2, x;
	unsigned i, j;

	for (i = 0; i < 8; i++)
		v[i] = h[i];
	for (i = 0; i < 64; i++) {
		if (i < 16) {
			w[i] = ((uint32_t)p[4 * i] << 24) | ((uint32_t)p[4 * i + 1] << 16) |
			       ((uint32_t)p[4 * i + 2] << 8) | p[4 * i + 3];
		} else {
			x = w[(i + 1) & 15];
			t1 = w[(i + 14) & 15];
			w[i & 15] += (ror(x, 7) ^ ror(x, 18) ^ (x >> 3)) + w[(i + 9) & 15] +
				     (ror(t1, 17) ^ ror(t1, 19) ^ (t1 >> 10));
		}
		t1 = v[7] + (ror(v[4], 6) ^ ror(v[4], 11) ^ ror(v[4], 25)) +
		     ((v[4] & v[5]) ^ (~v[4] & v[6])) + K[i] + w[i & 15];
		t2 = (ror(v[0], 2) ^ ror(v[0], 13) ^ ror(v[0], 22)) +
		     ((v[0] & v[1]) ^ (v[0] & v[2]) ^ (v[1] & v[2]));
		for (j = 7; j > 0; j--)
			v[j] = v[j - 1];
		v[4] += t1;
		v[0] = t1 + t2;
	}
	for (i = 0; i < 8; i++)
		h[i] += v[i];
}

void nd_sha256_init(struct nd_sha256 *s)
{
	static const uint32_t iv[8] = { 0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
					0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19 };
	unsigned i;

	for (i = 0; i < 8; i++)
		s->h[i] = iv[i];
	s->bytes = 0;
	s->fill = 0;
}

void nd_sha256_update(struct nd_sha256 *s, const void *data, size_t len)
{
	const uint8_t *p = data;

	s->bytes += len;
	while (len) {
		size_t n = ND_SHA256_BLOCK - s->fill;

		if (n > len)
			n = len;
		for (size_t i = 0; i < n; i++)
			s->buf[s->fill + i] = p[i];
		s->fill += (unsigned)n;
		p += n;
		len -= n;
		if (s->fill == ND_SHA256_BLOCK) {
			compress(s->h, s->buf);
			s->fill = 0;
		}
	}
}

void nd_sha256_final(struct nd_sha256 *s, uint8_t out[ND_SHA256_LEN])
{
	uint64_t bits = s->bytes * 8;
	uint8_t pad = 0x80, zero = 0, len[8];
	unsigned i;

	nd_sha256_update(s, &pad, 1);
	while (s->fill != ND_SHA256_BLOCK - 8)
		nd_sha256_update(s, &zero, 1);
	for (i = 0; i < 8; i++)
		len[i] = (uint8_t)(bits >> (56 - 8 * i));
	nd_sha256_update(s, len, 8);
	for (i = 0; i < 8; i++) {
		out[4 * i] = (uint8_t)(s->h[i] >> 24);
		out[4 * i + 1] = (uint8_t)(s->h[i] >> 16);
		out[4 * i + 2] = (uint8_t)(s->h[i] >> 8);
		out[4 * i + 3] = (uint8_t)s->h[i];
	}
}

void nd_hmac_sha256(const void *key, size_t keylen, const void *msg, size_t len,
		    uint8_t out[ND_SHA256_LEN])
{
	uint8_t k[ND_SHA256_BLOCK], pad[ND_SHA256_BLOCK], inner[ND_SHA256_LEN];
	struct nd_sha256 s;
	unsigned i;

	for (i = 0; i < ND_SHA256_BLOCK; i++)
		k[i] = 0;
	if (keylen > ND_SHA256_BLOCK) {
		nd_sha256_init(&s);
		nd_sha256_update(&s, key, keylen);
		nd_sha256_final(&s, k);
	} else {
		for (i = 0; i < keylen; i++)
			k[i] = ((const uint8_t *)key)[i];
	}
	for (i = 0; i < ND_SHA256_BLOCK; i++)
		pad[i] = k[i] ^ 0x36;
	nd_sha256_init(&s);
	nd_sha256_update(&s, pad, sizeof(pad));
	nd_sha256_update(&s, msg, len);
	nd_sha256_final(&s, inner);
	for (i = 0; i < ND_SHA256_BLOCK; i++)
		pad[i] = k[i] ^ 0x5c;
	nd_sha256_init(&s);
	nd_sha256_update(&s, pad, sizeof(pad));
	nd_sha256_update(&s, inner, sizeof(inner));
	nd_sha256_final(&s, out);
}
