/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Parser of netdisk-attach's control-socket requests (tiers.h).  Fuzzed by
 * tests/fuzz/fuzz_tiers.c. */

#include <stdio.h>
#include <string.h>
#include "tiers.h"

int ctl_parse(const char *line, size_t len, struct ctl_cmd *c, char *err, size_t errlen)
{
	char buf[256];
	size_t n = len;

	memset(c, 0, sizeof(*c));
	while (n && (line[n - 1] == '\n' || line[n - 1] == '\r' || line[n - 1] == ' '))
		n--;
	if (n >= sizeof(buf) || memchr(line, 0, n)) {
		snprintf(err, errlen, "request too long or not text");
		return -1;
	}
	memcpy(buf, line, n);
	buf[n] = 0;
	if (!strcmp(buf, "status") || !strcmp(buf, "leave")) {
		c->cmd = buf[0] == 's' ? CTL_STATUS : CTL_LEAVE;
		return 0;
	}
	if (strncmp(buf, "redirect ", 9)) {
		snprintf(err, errlen, "unknown request (redirect ram|disk[:PATH]|server, status, leave)");
		return -1;
	}
	c->cmd = CTL_REDIRECT;
	if (!strcmp(buf + 9, "ram"))
		c->target = TGT_RAM;
	else if (!strcmp(buf + 9, "server"))
		c->target = TGT_SERVER;
	else if (!strcmp(buf + 9, "disk"))
		c->target = TGT_DISK;
	else if (!strncmp(buf + 9, "disk:", 5) &&
		 wc_spec_parse(buf + 14, strlen(buf + 14), c->path, sizeof(c->path)) == 0)
		c->target = TGT_DISK;
	else {
		snprintf(err, errlen, "redirect to what? ram, disk, disk:/PATH or server");
		return -1;
	}
	return 0;
}
