/* SPDX-License-Identifier: GPL-2.0-or-later */
/* libFuzzer harness: any bytes as a control-socket request (parsed, then run
 * against a server with one plain image, whose mutating commands are refused
 * for want of a state directory), and as the text of an image store file. */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "netdiskd.h"

static struct server s;
static char dir[] = "/tmp/netdisk-fuzz-control.XXXXXX";
static char img[sizeof(dir) + 16];

static void teardown(void)
{
	char cmd[sizeof(dir) + 16];

	store_close_all(&s);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "fuzz-control: cannot remove %s\n", dir);
}

static void setup(void)
{
	char err[512];
	FILE *f;

	if (!mkdtemp(dir))
		abort();
	snprintf(img, sizeof(img), "%s/disk.img", dir);
	f = fopen(img, "w");
	if (!f || ftruncate(fileno(f), 1 << 20) < 0 || fclose(f))
		abort();
	config_defaults(&s.cfg);
	nd_log_init("fuzz", ND_LOG_ERROR, ND_LOG_TEXT);
	if (config_add_image(&s.cfg, "disk", img, 0, err, sizeof(err)) < 0 ||
	    config_check(&s.cfg, err, sizeof(err)) < 0)
		abort();
	snprintf(s.state_dir, sizeof(s.state_dir), "%s", dir);
	s.control_fd = -1;
	if (server_open_images(&s, err, sizeof(err)) < 0 || store_init_all(&s, err, sizeof(err)) < 0) {
		fprintf(stderr, "fuzz-control: %s\n", err);
		abort();
	}
	atexit(teardown);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int ready;
	char *line = malloc(size + 1), *argv[8], msg[512];
	struct strbuf out = { 0 };
	struct store st;
	int argc;

	if (!ready) {
		setup();
		ready = 1;
	}
	if (!line)
		return 0;
	memcpy(line, data, size);
	line[size] = 0;
	/* As a store file (text up to the first NUL). */
	memset(&st, 0, sizeof(st));
	store_parse(&st, line, msg, sizeof(msg));
	store_free(&st);
	/* As a request. */
	memcpy(line, data, size);
	argc = control_parse(line, size, argv, 8, msg, sizeof(msg));
	if (argc > 0)
		store_cmd(&s, argc, argv, &out, msg, sizeof(msg));
	free(out.p);
	free(line);
	return 0;
}
