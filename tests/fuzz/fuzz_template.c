/* SPDX-License-Identifier: GPL-2.0-or-later */
/* libFuzzer harness: the personalization template language (server/persona.c):
 * any bytes as a template (checked, unescaped and expanded) and as
 * `[image]` personalization keys, with invariants on what comes out. */

#include <stdlib.h>
#include <string.h>
#include "netdiskd.h"

static int known(const char *name, void *arg)
{
	(void)arg;
	return strcmp(name, "nope") != 0;
}

/* Every variable expands to a value that itself looks like a template. */
static const char *lookup(const char *name, void *arg)
{
	(void)arg;
	if (!strcmp(name, "nope"))
		return NULL;
	return name[0] == 'b' ? "{x}}" : "v";
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *t = malloc(size + 1), err[256], *out;
	struct persona_image pi = { 0 };
	size_t len = 0, n;

	if (!t)
		return 0;
	memcpy(t, data, size);
	t[size] = 0;
	n = strlen(t);
	(void)utf8_valid(t, n);
	if (tmpl_check(t, known, NULL, err, sizeof(err)) == 0) {
		/* A template the check accepts expands (no variable is unknown). */
		out = tmpl_expand(t, lookup, NULL, &len, err, sizeof(err));
		if (!out && !strstr(err, "larger than"))
			abort();
		if (out && strlen(out) != len)
			abort();
		free(out);
	} else if (!err[0]) {
		abort(); /* a refusal always says why */
	}
	/* The same bytes as a file template and as a hostname template. */
	persona_image_key(&pi, "file /etc/x", t, "", 1, err, sizeof(err));
	persona_image_key(&pi, "hostname", t, "", 2, err, sizeof(err));
	persona_image_key(&pi, "file-mode /etc/x", t, "", 3, err, sizeof(err));
	persona_image_key(&pi, "file-owner /etc/x", t, "", 4, err, sizeof(err));
	persona_image_free(&pi);
	if (unescape(t) == 0 && strlen(t) > n)
		abort(); /* unescaping never grows */
	free(t);
	return 0;
}
