/* SPDX-License-Identifier: GPL-2.0-or-later */
/* libFuzzer harness: any byte stream as an NBD client, from the handshake into transmission. */

#include "fuzz_server.h"
#include "nbd.h"

static struct server srv;
static char image_path[] = "/tmp/netdisk-fuzz-nbd.XXXXXX";

static void teardown(void)
{
	server_close(&srv);
	unlink(image_path);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!srv.cfg.nimages) {
		fuzz_server_open(&srv, image_path);
		atexit(teardown);
	}
	fuzz_feed_stream(&srv, NULL, 0, data, size, nbd_serve);
	return 0;
}
