/* SPDX-License-Identifier: GPL-2.0-or-later */
/* SHA-256 and HMAC-SHA256 for the client core (freestanding: firmware cannot link GnuTLS). */
#ifndef ND_SHA256_H
#define ND_SHA256_H

/*
 * The stubs authenticate ATTACH with the site key (docs/security.md) in real
 * mode and in UEFI, where no crypto library exists; the host tools compile
 * the same code so that one implementation is tested (tests/unit against
 * GnuTLS's, with the RFC 4231 vectors).  Only <stdint.h> and <stddef.h>.
 */

#include <stddef.h>
#include <stdint.h>

#define ND_SHA256_LEN 32
#define ND_SHA256_BLOCK 64

struct nd_sha256 {
	uint32_t h[8];
	uint64_t bytes;                 /* message length so far */
	uint8_t buf[ND_SHA256_BLOCK];   /* a partial block */
	unsigned fill;                  /* bytes in buf */
};

void nd_sha256_init(struct nd_sha256 *s);
void nd_sha256_update(struct nd_sha256 *s, const void *data, size_t len);
void nd_sha256_final(struct nd_sha256 *s, uint8_t out[ND_SHA256_LEN]);

/* HMAC-SHA256 (RFC 2104) of one message; keys longer than a block are hashed first. */
void nd_hmac_sha256(const void *key, size_t keylen, const void *msg, size_t len,
		    uint8_t out[ND_SHA256_LEN]);

#endif /* ND_SHA256_H */
