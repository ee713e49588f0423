/* SPDX-License-Identifier: GPL-2.0-or-later */
/* libFuzzer harness: any bytes as the head of an HTTP request to the metrics
 * listener (server/http.c's request-line parser), checking that a path it
 * accepts starts with '/' and holds only visible ASCII. */

#include <stdlib.h>
#include <string.h>
#include "netdiskd.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *head = malloc(size + 1);
	const char *path;
	int ok;

	if (!head)
		return 0;
	memcpy(head, data, size);
	head[size] = 0;
	path = http_request_path(head, size, &ok);
	if (path) {
		if (ok != 1 || path[0] != '/' || path < head || path >= head + size)
			abort();
		for (const char *c = path; *c; c++)
			if ((unsigned char)*c <= 0x20 || (unsigned char)*c >= 0x7f)
				abort();
	}
	free(head);
	return 0;
}
