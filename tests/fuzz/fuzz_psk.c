/* SPDX-License-Identifier: GPL-2.0-or-later */
/* libFuzzer harness: any bytes as the text of an nbd-tls-psk-file (server/tls.c's
 * parser), which must give a count of 1..256 identities or an error message. */

#include <stdlib.h>
#include <string.h>
#include "netdiskd.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text = malloc(size + 1), err[200] = "";
	int n;

	if (!text)
		return 0;
	memcpy(text, data, size);
	text[size] = 0;
	n = tls_psk_count(text, err, sizeof(err));
	if (n == 0 || n > 256 || (n < 0 && !err[0]))
		abort();
	free(text);
	return 0;
}
