/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Site and admin key files: 64 hex digits (32 bytes), read by netdiskd and the CLI. */

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "ndcommon.h"

int nd_key_parse(const char *text, size_t len, uint8_t key[ND_KEYFILE_LEN], char *why,
		 size_t whylen)
{
	size_t i, n = 0;

	for (i = 0; i < len; i++) {
		char c = text[i];
		int v;

		if (c == ' ' || c == '\t' || c == '\n' || c == '\r')
			continue;
		if (c >= '0' && c <= '9')
			v = c - '0';
		else if (c >= 'a' && c <= 'f')
			v = c - 'a' + 10;
		else if (c >= 'A' && c <= 'F')
			v = c - 'A' + 10;
		else {
			snprintf(why, whylen, "a key is %d hex digits; byte %zu is not one", 2 * ND_KEYFILE_LEN, i);
			return -1;
		}
		if (n >= 2 * ND_KEYFILE_LEN) {
			snprintf(why, whylen, "a key is %d hex digits; this one is longer", 2 * ND_KEYFILE_LEN);
			return -1;
		}
		if (n % 2 == 0)
			key[n / 2] = (uint8_t)(v << 4);
		else
			key[n / 2] |= (uint8_t)v;
		n++;
	}
	if (n != 2 * ND_KEYFILE_LEN) {
		snprintf(why, whylen, "a key is %d hex digits (openssl rand -hex %d), not %zu",
			 2 * ND_KEYFILE_LEN, ND_KEYFILE_LEN, n);
		return -1;
	}
	return 0;
}

int nd_key_load(const char *path, uint8_t key[ND_KEYFILE_LEN], char *why, size_t whylen)
{
	char inner[160];
	size_t len;
	char *text = nd_read_file(path, 4096, &len);
	int rc;

	if (!text) {
		snprintf(why, whylen, "cannot read key file %s: %s", path, strerror(errno));
		return -1;
	}
	rc = nd_key_parse(text, len, key, inner, sizeof(inner));
	memset(text, 0, len);
	free(text);
	if (rc < 0)
		snprintf(why, whylen, "key file %s: %s", path, inner);
	return rc;
}
