/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The write-cache setting (wcache.h): parsed by netdiskd for netdiskd.conf's
 * write-cache key and by netdisk-attach for what it gets from the server or
 * the kernel command line.  Fuzzed by tests/fuzz/fuzz_tiers.c and fuzz_config.c. */

#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include "wcache.h"

/* SIZE with an optional K/M/G/T suffix (binary), whole bytes; 0 or -1. */
static int parse_size(const char *s, size_t n, uint64_t *out)
{
	uint64_t v = 0, mul = 1;
	size_t i;

	if (n && strchr("kKmMgGtT", s[n - 1])) {
		switch (toupper((unsigned char)s[n - 1])) {
		case 'K': mul = 1ull << 10; break;
		case 'M': mul = 1ull << 20; break;
		case 'G': mul = 1ull << 30; break;
		default: mul = 1ull << 40; break;
		}
		n--;
	}
	if (!n)
		return -1;
	for (i = 0; i < n; i++) {
		if (!isdigit((unsigned char)s[i]) || v > (UINT64_MAX - 9) / 10)
			return -1;
		v = v * 10 + (uint64_t)(s[i] - '0');
	}
	if (v > UINT64_MAX / mul)
		return -1;
	*out = v * mul;
	return 0;
}

int wc_spec_parse(const char *s, size_t n, char *out, size_t outlen)
{
	size_t i;

	if (!n || n >= outlen)
		return -1;
	for (i = 0; i < n; i++)
		if (!isgraph((unsigned char)s[i]) || s[i] == ',')
			return -1;
	if (!(s[0] == '/' || (n > 6 && !strncmp(s, "LABEL=", 6)) ||
	      (n > 10 && !strncmp(s, "PARTLABEL=", 10))))
		return -1;
	memcpy(out, s, n);
	out[n] = 0;
	return 0;
}

int wc_parse(const char *s, struct wc_config *w, char *err, size_t errlen)
{
	const char *p = s;
	int parts = 0;

	memset(w, 0, sizeof(*w));
	w->target = -1;
	while (*p) {
		size_t n;

		while (*p == ' ' || *p == ',' || *p == '\t')
			p++;
		if (!*p)
			break;
		for (n = 0; p[n] && p[n] != ' ' && p[n] != ',' && p[n] != '\t'; n++)
			;
		if (parts == 0 && n == 6 && !strncmp(p, "server", 6)) {
			w->target = WC_SERVER;
		} else if (parts == 0 && n > 4 && !strncmp(p, "ram:", 4)) {
			if (parse_size(p + 4, n - 4, &w->ram_bytes) || w->ram_bytes < 4096) {
				snprintf(err, errlen, "write-cache: bad RAM size '%.*s' (e.g. ram:512M)",
					 (int)(n - 4 > 40 ? 40 : n - 4), p + 4);
				return -1;
			}
			w->target = WC_RAM;
		} else if (parts == 0 && n > 5 && !strncmp(p, "disk:", 5)) {
			if (wc_spec_parse(p + 5, n - 5, w->disk, sizeof(w->disk))) {
				snprintf(err, errlen, "write-cache: bad disk '%.*s' (/PATH, LABEL=L or PARTLABEL=L)",
					 (int)(n - 5 > 40 ? 40 : n - 5), p + 5);
				return -1;
			}
			w->target = WC_DISK;
		} else if (parts == 1 && w->target == WC_RAM && n > 14 &&
			   !strncmp(p, "overflow=disk:", 14)) {
			if (wc_spec_parse(p + 14, n - 14, w->disk, sizeof(w->disk))) {
				snprintf(err, errlen, "write-cache: bad overflow disk '%.*s'",
					 (int)(n - 14 > 40 ? 40 : n - 14), p + 14);
				return -1;
			}
		} else if (w->disk[0] && !w->disk_persistent && n == 10 &&
			   !strncmp(p, "persistent", 10)) {
			w->disk_persistent = 1;
		} else {
			snprintf(err, errlen,
				 "write-cache: unexpected '%.*s' (ram:SIZE [overflow=disk:SPEC] | disk:SPEC"
				 " [persistent] | server)",
				 (int)(n > 40 ? 40 : n), p);
			return -1;
		}
		parts++;
		p += n;
	}
	if (w->target < 0) {
		snprintf(err, errlen, "write-cache: empty (ram:SIZE, disk:SPEC or server)");
		return -1;
	}
	return 0;
}

