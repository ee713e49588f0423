/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Host helpers shared by netdiskd, the CLI, the Linux agent and the tests:
 * MAC addresses, write-mode names, HOST:PORT parsing and whole-buffer I/O. */
#ifndef NDCOMMON_H
#define NDCOMMON_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* "aa:bb:cc:dd:ee:ff": the one MAC syntax every tool accepts (hex digits in
 * either case, colons only), and what nd_mac_format writes. */
#define ND_MAC_STRLEN 17

/* Parse s as aa:bb:cc:dd:ee:ff into mac; 0, or -1 (mac untouched) for
 * anything else. */
int nd_mac_parse(const char *s, uint8_t mac[6]);

/* Write mac as aa:bb:cc:dd:ee:ff into out (ND_MAC_STRLEN + 1 bytes). */
void nd_mac_format(const uint8_t mac[6], char out[ND_MAC_STRLEN + 1]);

/* A write mode (enum nd_mode) from its name: direct, volatile, persistent,
 * readonly (or read-only); 0 for any other name.  The names the other way are
 * nd_mode_name() in netdisk/proto.h. */
int nd_mode_parse(const char *s);

/* Split "HOST[:PORT]" / "[V6]:PORT" into host and port (default_port when
 * none is given); 0, or -1 if malformed. */
int nd_split_hostport(const char *s, char *host, size_t hostlen, unsigned *port,
		      unsigned default_port);

/* Read or write all len bytes on fd, retrying short transfers and EINTR; 0, or
 * -1 on an error (errno set) or end of file (errno 0). */
int nd_read_full(int fd, void *buf, size_t len);
int nd_write_full(int fd, const void *buf, size_t len);

/* A whole regular file of at most max bytes, NUL-terminated and malloc'd,
 * its length in *len; NULL with errno set (EFBIG: larger than max, EINVAL:
 * not a regular file).  Opened non-blocking: a FIFO cannot hang the caller. */
char *nd_read_file(const char *path, size_t max, size_t *len);

/* Room for len bytes in *buf (*cap bytes now), grown with realloc: 0, or -1
 * (out of memory; *buf unchanged). */
int nd_reserve(uint8_t **buf, size_t *cap, size_t len);

/* Bytes read ahead of a stream's reader (NBD requests, iSCSI PDUs: small ones
 * come many to a read()).  nd_readahead_read gives len bytes through it;
 * `some` reads at most its len bytes from the stream (how many, or -1 at the
 * end, an error or a time-out).  0, or -1. */
struct nd_readahead {
	uint8_t *buf;
	size_t cap, start, end;
};
int nd_readahead_read(struct nd_readahead *r, void *dst, size_t len,
		      ssize_t (*some)(void *ctx, void *buf, size_t len), void *ctx);

/* Site and admin keys (docs/security.md): a file of 64 hex digits, white
 * space ignored.  0, or -1 with why saying what is wrong (key.c). */
#define ND_KEYFILE_LEN 32
int nd_key_parse(const char *text, size_t len, uint8_t key[ND_KEYFILE_LEN], char *why,
		 size_t whylen);
int nd_key_load(const char *path, uint8_t key[ND_KEYFILE_LEN], char *why, size_t whylen);

/* An n-byte little-endian number at p (on-disk formats: MBR, GPT, FAT). */
static inline uint64_t nd_get_le(const uint8_t *p, int n)
{
	uint64_t v = 0;

	while (n--)
		v = v << 8 | p[n];
	return v;
}

static inline void nd_put_le(uint8_t *p, uint64_t v, int n)
{
	int i;

	for (i = 0; i < n; i++, v >>= 8)
		p[i] = (uint8_t)v;
}

#endif /* NDCOMMON_H */
