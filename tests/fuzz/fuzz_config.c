/* SPDX-License-Identifier: GPL-2.0-or-later */
/* libFuzzer harness: any bytes as a netdiskd config file. */

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include "netdiskd.h"

static char path[] = "/tmp/netdisk-fuzz-config.XXXXXX";

static void teardown(void)
{
	unlink(path);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int fd = -1;
	struct config c;
	char err[512];

	if (fd < 0) {
		fd = mkstemp(path);
		if (fd < 0)
			abort();
		atexit(teardown);
	}
	if (ftruncate(fd, 0) < 0 || pwrite(fd, data, size, 0) != (ssize_t)size)
		return 0;
	config_defaults(&c);
	if (config_load(&c, path, err, sizeof(err)) == 0)
		config_check(&c, err, sizeof(err));
	config_free(&c);
	return 0;
}
