/* SPDX-License-Identifier: GPL-2.0-or-later */
/* libFuzzer harness: any bytes as netdisk-attach's write-cache setting
 * (wc_parse, from netdisk.write-cache= or --write-cache) and as a
 * control-socket request (ctl_parse). */

#include <stdlib.h>
#include <string.h>
#include "../../linux/agent/tiers.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct wc_config w;
	struct ctl_cmd c;
	char err[200], *s = malloc(size + 1);

	if (!s)
		return 0;
	memcpy(s, data, size);
	s[size] = 0;
	if (wc_parse(s, &w, err, sizeof(err)) == 0 &&
	    (w.target < 0 || w.target > TGT_SERVER || strlen(w.disk) >= sizeof(w.disk)))
		abort();
	if (ctl_parse(s, size, &c, err, sizeof(err)) == 0 &&
	    (c.target < 0 || c.target > TGT_SERVER || strlen(c.path) >= sizeof(c.path)))
		abort();
	free(s);
	return 0;
}
